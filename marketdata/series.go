package marketdata

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// MinutesPerDay is the number of one-minute bars in a complete UTC day.
const MinutesPerDay = 1440

const day = 24 * time.Hour

// Series is a run of bars in strictly increasing time, one per minute at most.
type Series struct {
	bars  []Bar
	index map[int64]int // unix minute → position in bars
}

// Gap is a run of missing minutes [From, To): From is the first missing
// minute, To the first minute after it that is present.
type Gap struct {
	From, To time.Time
}

// Minutes is the number of missing minutes in the gap.
func (g Gap) Minutes() int { return int(g.To.Sub(g.From) / time.Minute) }

// String prints the gap as "2006-01-02 15:04–15:04 (n min)".
func (g Gap) String() string {
	return fmt.Sprintf("%s–%s (%d min)", g.From.Format("2006-01-02 15:04"), g.To.Format("15:04"), g.Minutes())
}

// GapError is a day asked of Series.Day that is not complete.
type GapError struct {
	Date    time.Time
	Missing int   // minutes missing out of MinutesPerDay
	Gaps    []Gap // where they are
}

// Error says how many minutes are missing and lists the first gaps.
func (e *GapError) Error() string {
	parts := make([]string, 0, len(e.Gaps))
	for i, g := range e.Gaps {
		if i == 5 {
			parts = append(parts, fmt.Sprintf("and %d more", len(e.Gaps)-i))
			break
		}
		parts = append(parts, g.String())
	}
	return fmt.Sprintf("marketdata: day %s has gaps: %d of %d minutes missing: %s",
		e.Date.Format(time.DateOnly), e.Missing, MinutesPerDay, strings.Join(parts, ", "))
}

// NewSeries builds a Series from bars, which it sorts; bars not on a UTC
// minute or present twice are an error.
func NewSeries(bars []Bar) (*Series, error) {
	sorted := make([]Bar, len(bars))
	copy(sorted, bars)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Open.Before(sorted[j].Open) })
	for i, b := range sorted {
		if !b.Open.Equal(b.Open.Truncate(time.Minute)) {
			return nil, fmt.Errorf("marketdata: bar at %s is not on a minute", b.Open.Format(time.RFC3339Nano))
		}
		if i > 0 && b.Open.Equal(sorted[i-1].Open) {
			return nil, fmt.Errorf("marketdata: duplicate bar at %s", b.Open.Format(time.RFC3339))
		}
		sorted[i].Open = b.Open.UTC()
	}
	return newSeries(sorted), nil
}

// newSeries indexes bars already sorted and unique.
func newSeries(bars []Bar) *Series {
	s := &Series{bars: bars, index: make(map[int64]int, len(bars))}
	for i, b := range bars {
		s.index[minute(b.Open)] = i
	}
	return s
}

func minute(t time.Time) int64 { return t.Unix() / 60 }

// Len is the number of bars.
func (s *Series) Len() int { return len(s.bars) }

// Bars returns a copy of all bars in time order.
func (s *Series) Bars() []Bar { return append([]Bar(nil), s.bars...) }

// At returns the bar opening at minute t.
func (s *Series) At(t time.Time) (Bar, bool) {
	i, ok := s.index[minute(t.Truncate(time.Minute))]
	if !ok {
		return Bar{}, false
	}
	return s.bars[i], true
}

// Range returns a copy of the bars opening in [from, to).
func (s *Series) Range(from, to time.Time) []Bar {
	lo := sort.Search(len(s.bars), func(i int) bool { return !s.bars[i].Open.Before(from) })
	hi := sort.Search(len(s.bars), func(i int) bool { return !s.bars[i].Open.Before(to) })
	if hi <= lo {
		return nil
	}
	return append([]Bar(nil), s.bars[lo:hi]...)
}

// Gaps lists the missing minutes between the first and the last bar.
func (s *Series) Gaps() []Gap {
	var gaps []Gap
	for i := 1; i < len(s.bars); i++ {
		prev, cur := s.bars[i-1].Open, s.bars[i].Open
		if next := prev.Add(time.Minute); cur.After(next) {
			gaps = append(gaps, Gap{From: next, To: cur})
		}
	}
	return gaps
}

// Days lists the UTC dates (midnight) holding at least one bar, in order.
func (s *Series) Days() []time.Time {
	var days []time.Time
	for _, b := range s.bars {
		d := b.Open.Truncate(day)
		if n := len(days); n == 0 || !days[n-1].Equal(d) {
			days = append(days, d)
		}
	}
	return days
}

// Day returns the MinutesPerDay bars of the UTC date holding date. It fails
// with ErrMissingDay when the day has no bar and with a *GapError saying how
// many minutes are missing and where when it is incomplete.
func (s *Series) Day(date time.Time) ([]Bar, error) {
	d := date.UTC().Truncate(day)
	bars := s.Range(d, d.Add(day))
	if len(bars) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrMissingDay, d.Format(time.DateOnly))
	}
	if len(bars) == MinutesPerDay {
		return bars, nil
	}
	e := &GapError{Date: d, Missing: MinutesPerDay - len(bars)}
	next := d
	for _, b := range append(bars, Bar{Open: d.Add(day)}) {
		if b.Open.After(next) {
			e.Gaps = append(e.Gaps, Gap{From: next, To: b.Open})
		}
		next = b.Open.Add(time.Minute)
	}
	return nil, e
}

// MissingDays lists the UTC dates between the first and the last bar that
// hold no bar at all (an empty, missing or left-out file), in order.
func (s *Series) MissingDays() []time.Time {
	days := s.Days()
	var out []time.Time
	for i := 1; i < len(days); i++ {
		for d := days[i-1].Add(day); d.Before(days[i]); d = d.Add(day) {
			out = append(out, d)
		}
	}
	return out
}
