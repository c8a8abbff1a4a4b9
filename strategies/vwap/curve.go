// Package vwap is the volume-weighted schedule: the cumulative target follows
// the market's expected intraday volume curve, learned from past one-minute
// bars or given by hour, and leans ahead when the day trades heavier than
// expected.
package vwap

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/blockexec/blockexec/marketdata"
	"github.com/shopspring/decimal"
)

// Minutes is the number of minutes in a UTC day, the length of a curve.
const Minutes = marketdata.MinutesPerDay

// SmoothMinutes is the half-width of the centred moving average Learn applies
// to each minute, so a single spike does not dominate the curve.
const SmoothMinutes = 7

const day = 24 * time.Hour

// ErrNoHistory is returned by Learn when no complete UTC day precedes the
// cut-off.
var ErrNoHistory = errors.New("vwap: no complete day of history")

// Curve holds the fraction of a UTC day's volume traded in each minute, one
// profile for weekdays and one for Saturdays and Sundays; each sums to 1.
type Curve struct {
	Weekday, Weekend [Minutes]float64
}

// For returns the profile that applies to the UTC date of t.
func (c *Curve) For(t time.Time) *[Minutes]float64 {
	if isWeekend(t) {
		return &c.Weekend
	}
	return &c.Weekday
}

// Validate checks both profiles are finite, non-negative and sum to 1
// within 1e-6.
func (c *Curve) Validate() error {
	for _, p := range []struct {
		name string
		v    *[Minutes]float64
	}{{"weekday", &c.Weekday}, {"weekend", &c.Weekend}} {
		sum := 0.0
		for m, x := range p.v {
			if math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
				return fmt.Errorf("vwap: %s curve minute %02d:%02d is %v", p.name, m/60, m%60, x)
			}
			sum += x
		}
		if math.Abs(sum-1) > 1e-6 {
			return fmt.Errorf("vwap: %s curve sums to %v, want 1", p.name, sum)
		}
	}
	return nil
}

func isWeekend(t time.Time) bool {
	wd := t.UTC().Weekday()
	return wd == time.Saturday || wd == time.Sunday
}

// FromHourly builds a curve from 24 hourly shares (any positive scale, e.g.
// percentages), spread evenly over each hour's minutes and used for weekdays
// and weekends alike. Shares must be finite, non-negative and not all zero.
func FromHourly(shares [24]float64) (Curve, error) {
	sum := 0.0
	for h, x := range shares {
		if math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
			return Curve{}, fmt.Errorf("vwap: hourly share for %02d:00 is %v", h, x)
		}
		sum += x
	}
	if sum <= 0 {
		return Curve{}, errors.New("vwap: hourly shares are all zero")
	}
	var c Curve
	for m := range c.Weekday {
		c.Weekday[m] = shares[m/60] / sum / 60
	}
	c.Weekend = c.Weekday
	return c, nil
}

// Learned is a curve learned from history, with what it was learned from.
type Learned struct {
	Curve
	// WeekdayDays and WeekendDays count the complete days behind each profile.
	WeekdayDays, WeekendDays int
	// WeekdayVolume and WeekendVolume are the mean daily base volume of each
	// kind of day, for WithDailyVolume.
	WeekdayVolume, WeekendVolume decimal.Decimal
	// Fallback is empty, or says which profile was copied from the other
	// because the window held no day of its kind.
	Fallback string
}

type dayVolume struct {
	date  time.Time
	vol   [Minutes]float64
	seen  [Minutes]bool
	n     int
	total decimal.Decimal
}

// Learn estimates a curve from the days most recent complete UTC days ending
// at or before before; a day is complete when it has all 1,440 bars and some
// volume, and incomplete days are passed over (the window reaches further
// back). Each day is normalised before averaging, so a busy day weighs no
// more than a quiet one; each minute is then smoothed over ±SmoothMinutes
// (wrapping around midnight). Weekdays feed Weekday and weekend days
// Weekend. When the window holds days of one kind only, the other profile is
// copied from it and Learned.Fallback says so: a short window ending on a
// Friday remains usable. With no complete day at all Learn fails with
// ErrNoHistory.
func Learn(bars []marketdata.Bar, before time.Time, days int) (Learned, error) {
	if days <= 0 {
		return Learned{}, fmt.Errorf("vwap: learn over %d days: want at least 1", days)
	}
	byDay := map[int64]*dayVolume{}
	for _, b := range bars {
		t := b.Open.UTC().Truncate(time.Minute)
		date := t.Truncate(day)
		if date.Add(day).After(before) || b.Volume.Sign() < 0 {
			continue
		}
		dv := byDay[date.Unix()]
		if dv == nil {
			dv = &dayVolume{date: date}
			byDay[date.Unix()] = dv
		}
		m := int(t.Sub(date) / time.Minute)
		if dv.seen[m] {
			continue
		}
		dv.seen[m] = true
		dv.n++
		dv.vol[m] = b.Volume.InexactFloat64()
		dv.total = dv.total.Add(b.Volume)
	}
	var complete []*dayVolume
	for _, dv := range byDay {
		if dv.n == Minutes && dv.total.Sign() > 0 {
			complete = append(complete, dv)
		}
	}
	if len(complete) == 0 {
		return Learned{}, fmt.Errorf("%w before %s (%d bars over %d partial days)",
			ErrNoHistory, before.UTC().Format(time.RFC3339), len(bars), len(byDay))
	}
	sort.Slice(complete, func(i, j int) bool { return complete[i].date.After(complete[j].date) })
	if len(complete) > days {
		complete = complete[:days]
	}
	var l Learned
	var sums [2][Minutes]float64
	var totals [2]decimal.Decimal
	var counts [2]int
	for _, dv := range complete {
		k := 0
		if isWeekend(dv.date) {
			k = 1
		}
		total := 0.0
		for _, v := range dv.vol {
			total += v
		}
		for m, v := range dv.vol {
			sums[k][m] += v / total
		}
		totals[k] = totals[k].Add(dv.total)
		counts[k]++
	}
	l.WeekdayDays, l.WeekendDays = counts[0], counts[1]
	switch {
	case counts[1] == 0:
		sums[1], totals[1], counts[1] = sums[0], totals[0], counts[0]
		l.Fallback = fmt.Sprintf("no weekend day among the %d days learned: weekend curve copied from weekdays", len(complete))
	case counts[0] == 0:
		sums[0], totals[0], counts[0] = sums[1], totals[1], counts[1]
		l.Fallback = fmt.Sprintf("no weekday among the %d days learned: weekday curve copied from weekends", len(complete))
	}
	l.Weekday = smooth(&sums[0])
	l.Weekend = smooth(&sums[1])
	l.WeekdayVolume = totals[0].Div(decimal.NewFromInt(int64(counts[0])))
	l.WeekendVolume = totals[1].Div(decimal.NewFromInt(int64(counts[1])))
	return l, nil
}

// smooth returns the centred moving average of v over ±SmoothMinutes,
// wrapping around midnight, normalised to sum to 1.
func smooth(v *[Minutes]float64) [Minutes]float64 {
	var out [Minutes]float64
	sum := 0.0
	for m := range out {
		acc := 0.0
		for k := -SmoothMinutes; k <= SmoothMinutes; k++ {
			acc += v[(m+k+Minutes)%Minutes]
		}
		out[m] = acc
		sum += acc
	}
	for m := range out {
		out[m] /= sum
	}
	return out
}
