// Package pov is the percentage-of-volume schedule: the cumulative target
// follows the market volume as it prints, at a rate ρ between a minimum and
// a maximum rate, and in the last part of the window it rises towards the
// whole quantity, never faster than the maximum rate allows.
//
// A rate ρ is our share of all the volume, ours included: to take ρ of
// the market we trade k(ρ) = ρ/(1−ρ) times what the others trade. With V(t)
// the volume the others printed since the start on the parent's venues
// (the engine leaves our own fills out), P(t) = Q·(t−start)/(end−start) the
// pace that finishes exactly at the end, and F(t) the end-forcing line
// (zero until ForceFrom of the window, then linear to Q at the end):
//
//	base = k(ρ)·V
//	if base > P(t):  base = max(k(ρ_min)·V, P(t))   ahead of pace: slow down, not below ρ_min
//	if F(t) > base:  base = F(t)                    behind at the end: speed up
//	target(t) = min(Q, base, last + k(ρ_max)·v), never decreasing
//
// where v is the others' volume in the last observed window and last the
// previous target: no window's increase is above the maximum rate of that
// window's volume.
//
// The engine's participation cap still bounds each child; what the market
// is too thin to absorb by the end is reported as unfilled.
package pov

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// DefaultForceFrom is where the end forcing starts, as a fraction of the
// window: the last 20 %.
const DefaultForceFrom = "0.8"

// Params are the rates, each a fraction of market volume in (0, 1).
type Params struct {
	Rate      decimal.Decimal // ρ, the target rate
	MinRate   decimal.Decimal // zero: Rate; the target never falls below MinRate·V
	MaxRate   decimal.Decimal // zero: Rate; caps the end forcing
	ForceFrom decimal.Decimal // fraction of the window where forcing starts; zero: 0.8
}

// Schedule is a POV schedule. It needs the market's volume: call Observe
// before asking Target.
type Schedule struct {
	qty        decimal.Decimal
	start, end time.Time
	p          Params
	volume     decimal.Decimal // V since start
	seen       time.Time
	last       decimal.Decimal // the target never decreases
	allowed    decimal.Decimal // last + k(ρ_max)·(last window's volume)
}

var one = decimal.NewFromInt(1)

// New validates p and returns the schedule for qty over [start, end].
func New(qty decimal.Decimal, start, end time.Time, p Params) (*Schedule, error) {
	if qty.Sign() <= 0 {
		return nil, fmt.Errorf("pov: quantity %s must be positive", qty)
	}
	if !end.After(start) {
		return nil, fmt.Errorf("pov: end %s must be after start %s", end.Format(time.RFC3339), start.Format(time.RFC3339))
	}
	if p.MinRate.IsZero() {
		p.MinRate = p.Rate
	}
	if p.MaxRate.IsZero() {
		p.MaxRate = p.Rate
	}
	if p.ForceFrom.IsZero() {
		p.ForceFrom = decimal.RequireFromString(DefaultForceFrom)
	}
	for _, r := range []struct {
		name string
		v    decimal.Decimal
	}{{"rate", p.Rate}, {"min_rate", p.MinRate}, {"max_rate", p.MaxRate}} {
		if r.v.Sign() <= 0 || !r.v.LessThan(one) {
			return nil, fmt.Errorf("pov: %s %s must be in (0, 1)", r.name, r.v)
		}
	}
	if p.MinRate.GreaterThan(p.Rate) || p.Rate.GreaterThan(p.MaxRate) {
		return nil, fmt.Errorf("pov: rates must satisfy min_rate ≤ rate ≤ max_rate, got %s ≤ %s ≤ %s", p.MinRate, p.Rate, p.MaxRate)
	}
	if p.ForceFrom.Sign() <= 0 || p.ForceFrom.GreaterThan(one) {
		return nil, fmt.Errorf("pov: force_from %s must be in (0, 1]", p.ForceFrom)
	}
	return &Schedule{qty: qty, start: start, end: end, p: p}, nil
}

// share is k(r)·v = r·v/(1−r): what to trade for a share r of the whole
// when the others trade v. Multiplying first keeps exact inputs exact as
// far as the one division allows.
func share(r, v decimal.Decimal) decimal.Decimal { return r.Mul(v).Div(one.Sub(r)) }

// Observe adds the volume the others printed in (from, to] on the parent's
// venues (ours left out). Windows before the start, or already seen, are
// ignored.
func (s *Schedule) Observe(from, to time.Time, volume decimal.Decimal) {
	if !to.After(s.start) || !to.After(s.seen) || volume.Sign() <= 0 {
		return
	}
	s.volume = s.volume.Add(volume)
	s.seen = to
	s.allowed = s.last.Add(share(s.p.MaxRate, volume))
}

// state is what a Schedule learns as it runs, as a checkpoint keeps it:
// the terms (quantity, window, rates) come from the order again.
type state struct {
	Volume  decimal.Decimal `json:"volume"`
	Seen    time.Time       `json:"seen"`
	Last    decimal.Decimal `json:"last"`
	Allowed decimal.Decimal `json:"allowed"`
}

// State returns what the schedule has observed and promised so far, for a
// checkpoint: a schedule rebuilt from the same order and given it by
// Restore goes on where this one is.
func (s *Schedule) State() ([]byte, error) {
	return json.Marshal(state{Volume: s.volume, Seen: s.seen, Last: s.last, Allowed: s.allowed})
}

// Restore takes back a State of a schedule of the same order.
func (s *Schedule) Restore(b []byte) error {
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("pov: schedule state: %w", err)
	}
	if st.Volume.Sign() < 0 || st.Last.Sign() < 0 || st.Allowed.Sign() < 0 {
		return fmt.Errorf("pov: schedule state %s: negative quantity", b)
	}
	s.volume, s.seen, s.last, s.allowed = st.Volume, st.Seen, st.Last, st.Allowed
	return nil
}

// Volume returns the others' volume observed since the start.
func (s *Schedule) Volume() decimal.Decimal { return s.volume }

// Target returns the cumulative quantity due by t.
func (s *Schedule) Target(t time.Time) decimal.Decimal {
	if !t.After(s.start) {
		return decimal.Zero
	}
	base := share(s.p.Rate, s.volume)
	if pace := s.line(t, s.start); base.GreaterThan(pace) {
		base = decimal.Max(share(s.p.MinRate, s.volume), pace)
	}
	if f := s.force(t); f.GreaterThan(base) {
		base = f
	}
	target := decimal.Min(s.qty, base, s.allowed)
	if target.LessThan(s.last) {
		return s.last
	}
	s.last = target
	return target
}

// force is the end-forcing line: zero before ForceFrom of the window, then
// linear to Q at the end.
func (s *Schedule) force(t time.Time) decimal.Decimal {
	window := decimal.NewFromInt(int64(s.end.Sub(s.start)))
	return s.line(t, s.start.Add(time.Duration(window.Mul(s.p.ForceFrom).IntPart())))
}

// line rises linearly from zero at from to Q at the end.
func (s *Schedule) line(t, from time.Time) decimal.Decimal {
	switch {
	case !t.After(from):
		return decimal.Zero
	case !t.Before(s.end):
		return s.qty
	}
	return s.qty.Mul(decimal.NewFromInt(int64(t.Sub(from)))).Div(decimal.NewFromInt(int64(s.end.Sub(from))))
}
