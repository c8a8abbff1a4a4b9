package vwap

import (
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/shopspring/decimal"
)

// DefaultObserveWeight is the weight Observe gives observed volume.
const DefaultObserveWeight = 0.5

// MaxSpan is the longest schedule New accepts; it keeps one weight a minute.
const MaxSpan = 92 * day

// qtyPlaces is the precision of targets: they are rounded down to 1e-8.
const qtyPlaces = 8

// sigDigits is the precision Q·fraction is rounded to before it is rounded
// down to qtyPlaces, so float noise in the cumulative curve (19.999…9997 for
// 130·2/13) does not cost a step of 1e-8.
const sigDigits = 14

// Option tunes a Schedule.
type Option func(*config)

type config struct {
	weight           float64
	weekday, weekend float64
	hasDaily         bool
}

// WithObserveWeight sets w in [0, 1], how far Observe moves the target from
// the plan towards what the observed volume implies (default 0.5).
func WithObserveWeight(w float64) Option { return func(c *config) { c.weight = w } }

// WithDailyVolume sets the expected base volume of a whole weekday and
// weekend day (e.g. Learned.WeekdayVolume and WeekendVolume). Without it
// Observe cannot tell a heavy day from a light one and only counts volume.
func WithDailyVolume(weekday, weekend decimal.Decimal) Option {
	return func(c *config) {
		c.weekday, c.weekend = weekday.InexactFloat64(), weekend.InexactFloat64()
		c.hasDaily = true
	}
}

// Schedule is target(t) = Q·V̂(t)/V̂(end), V̂ being the curve's cumulative
// volume from start, re-weighted by Observe. It is safe for concurrent use.
type Schedule struct {
	qty        decimal.Decimal
	start, end time.Time
	cfg        config
	flat       bool
	places     int32 // decimal places carrying sigDigits of qty

	m0   time.Time // start's minute
	w    []float64 // curve weight of minute m0+k
	cum  []float64 // cum[k] = Σ w[:k]
	d    []float64 // expected base volume of minute m0+k
	cumD []float64
	v0   float64 // g(start)
	vEnd float64 // g(end)

	mu       sync.Mutex
	observed decimal.Decimal
	anchors  []anchor
}

// anchor is a point the remaining schedule is laid out from: fraction f is
// done at time at, and the rest follows the curve to end.
type anchor struct {
	at time.Time
	v  float64 // g(at)
	f  float64
}

// New returns the schedule for qty over [start, end] following c, whose
// weekday or weekend profile applies by each minute's UTC date. A window over
// which the curve has no volume at all falls back to a flat (TWAP) profile.
func New(qty decimal.Decimal, start, end time.Time, c Curve, opts ...Option) (*Schedule, error) {
	cfg := config{weight: DefaultObserveWeight}
	for _, o := range opts {
		o(&cfg)
	}
	switch {
	case qty.Sign() <= 0:
		return nil, fmt.Errorf("vwap: quantity %s must be positive", qty)
	case !end.After(start):
		return nil, fmt.Errorf("vwap: end %s must be after start %s", end.Format(time.RFC3339), start.Format(time.RFC3339))
	case end.Sub(start) > MaxSpan:
		return nil, fmt.Errorf("vwap: span %s exceeds the maximum %s", end.Sub(start), MaxSpan)
	case !(cfg.weight >= 0 && cfg.weight <= 1):
		return nil, fmt.Errorf("vwap: observe weight %v must be in [0, 1]", cfg.weight)
	case cfg.hasDaily && !(cfg.weekday > 0 && cfg.weekend > 0 && !math.IsInf(cfg.weekday+cfg.weekend, 0)):
		return nil, fmt.Errorf("vwap: daily volumes %v (weekday) and %v (weekend) must be positive", cfg.weekday, cfg.weekend)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	s := &Schedule{qty: qty, start: start, end: end, cfg: cfg, m0: start.UTC().Truncate(time.Minute)}
	intDigits := int32(qty.NumDigits()) + qty.Exponent()
	s.places = min(max(sigDigits-intDigits, qtyPlaces), 20)
	n := int((end.Sub(s.m0) + time.Minute - 1) / time.Minute)
	s.w, s.d = make([]float64, n), make([]float64, n)
	for k := range n {
		t := s.m0.Add(time.Duration(k) * time.Minute)
		s.w[k] = c.For(t)[t.Hour()*60+t.Minute()]
	}
	s.build()
	if !(s.vEnd > s.v0) {
		s.flat = true
		for k := range s.w {
			s.w[k] = 1.0 / Minutes
		}
		s.build()
	}
	s.anchors = []anchor{{at: start, v: s.v0}}
	return s, nil
}

// build fills the cumulative sums from w and the daily volumes.
func (s *Schedule) build() {
	s.cum, s.cumD = prefix(s.w), nil
	for k, w := range s.w {
		daily := s.cfg.weekday
		if isWeekend(s.m0.Add(time.Duration(k) * time.Minute)) {
			daily = s.cfg.weekend
		}
		s.d[k] = w * daily
	}
	s.cumD = prefix(s.d)
	s.v0, s.vEnd = s.g(s.start), s.g(s.end)
}

func prefix(w []float64) []float64 {
	c := make([]float64, len(w)+1)
	for k, x := range w {
		c[k+1] = c[k] + x
	}
	return c
}

// interp is the cumulative of w at t, linear within a minute.
func (s *Schedule) interp(w, cum []float64, t time.Time) float64 {
	el := t.Sub(s.m0)
	if el <= 0 {
		return 0
	}
	k := int(el / time.Minute)
	if k >= len(w) {
		return cum[len(w)]
	}
	frac := float64(el-time.Duration(k)*time.Minute) / float64(time.Minute)
	return cum[k] + frac*w[k]
}

func (s *Schedule) g(t time.Time) float64 { return s.interp(s.w, s.cum, t) }

// Flat reports whether the curve had no volume over the window and the
// schedule fell back to TWAP.
func (s *Schedule) Flat() bool { return s.flat }

// Target returns the cumulative quantity due by t: zero at or before start,
// exactly Q at or after end, in between Q times the completed fraction,
// rounded down to 1e-8. It never decreases in t, never decreases as Observe
// is called, and never exceeds Q.
func (s *Schedule) Target(t time.Time) decimal.Decimal {
	switch {
	case !t.After(s.start):
		return decimal.Zero
	case !t.Before(s.end):
		return s.qty
	}
	s.mu.Lock()
	f := s.fraction(t)
	s.mu.Unlock()
	v := s.qty.Mul(decimal.NewFromFloat(f)).Round(s.places)
	return decimal.Min(s.qty, v.RoundDown(qtyPlaces))
}

// fraction is the completed fraction at t, in [0, 1], from the last anchor
// at or before t.
func (s *Schedule) fraction(t time.Time) float64 {
	i := sort.Search(len(s.anchors), func(i int) bool { return s.anchors[i].at.After(t) }) - 1
	if i < 0 {
		return 0
	}
	a := s.anchors[i]
	rest := s.vEnd - a.v
	if rest <= 0 {
		return a.f
	}
	x := (s.g(t) - a.v) / rest
	return math.Min(1, math.Max(a.f, a.f+(1-a.f)*x))
}

// Volume returns the market volume observed so far within the window.
func (s *Schedule) Volume() decimal.Decimal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.observed
}

// Observe is told the market volume printed in (from, to]; the share of it
// outside [start, end] is dropped pro rata. With WithDailyVolume set it then
// re-weights the rest of the schedule at τ = min(to, end), or at the previous
// observation's τ when to is older:
//
//	r      = observed / expected volume over [start, τ]
//	F_obs  = r·V̂(τ) / (r·V̂(τ) + V̂(end) − V̂(τ))   fraction done if the rest trades as planned
//	F(τ)   = max(current F(τ), (1−w)·V̂(τ)/V̂(end) + w·F_obs)
//
// and the remaining quantity follows the curve from τ to end. Heavier volume
// than expected moves the target up; lighter volume never moves it down, so
// Target never goes backwards. Negative volume is ignored.
func (s *Schedule) Observe(from, to time.Time, volume decimal.Decimal) {
	if volume.Sign() <= 0 || !to.After(s.start) || !from.Before(s.end) {
		return
	}
	if to.After(from) && (from.Before(s.start) || to.After(s.end)) {
		lo, hi := latest(from, s.start), earliest(to, s.end)
		volume = volume.Mul(decimal.NewFromInt(int64(hi.Sub(lo)))).Div(decimal.NewFromInt(int64(to.Sub(from))))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.observed = s.observed.Add(volume)
	last := s.anchors[len(s.anchors)-1]
	tau := latest(earliest(to, s.end), last.at)
	if !s.cfg.hasDaily || !tau.Before(s.end) {
		return
	}
	expected := s.interp(s.d, s.cumD, tau) - s.interp(s.d, s.cumD, s.start)
	done := s.g(tau) - s.v0
	if expected <= 0 || done <= 0 {
		return
	}
	r := s.observed.InexactFloat64() / expected
	x, rest := r*done, s.vEnd-s.g(tau)
	fObs := 1.0
	if x+rest > 0 {
		fObs = x / (x + rest)
	}
	plan := done / (s.vEnd - s.v0)
	blend := math.Min(1, (1-s.cfg.weight)*plan+s.cfg.weight*fObs)
	cur := s.fraction(tau)
	if math.IsNaN(blend) || blend <= cur {
		return
	}
	next := anchor{at: tau, v: s.g(tau), f: blend}
	if tau.Equal(last.at) {
		s.anchors[len(s.anchors)-1] = next
		return
	}
	s.anchors = append(s.anchors, next)
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
