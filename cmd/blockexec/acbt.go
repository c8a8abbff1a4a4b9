package main

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/blockexec/blockexec/configs"
	"github.com/blockexec/blockexec/engine"

	"github.com/blockexec/blockexec/engine/backtest"
	"github.com/blockexec/blockexec/strategies/ac"
	"github.com/blockexec/blockexec/venues/sim"
)

// acStrategies is one Almgren–Chriss schedule per --lambda, each day's
// parameters estimated from the days before it (time in minutes).
func acStrategies(f backtestFlags) ([]backtest.Strategy, error) {
	var out []backtest.Strategy
	for _, l := range f.lambdas {
		if !(l > 0) {
			return nil, fmt.Errorf("--lambda %g: must be > 0 (λ → 0 is TWAP)", l)
		}
		out = append(out, backtest.Strategy{Name: fmt.Sprintf("ac λ=%g", l), Plan: func(d backtest.Day) (backtest.Plan, error) {
			p, err := acParams(d)
			if err != nil {
				return backtest.Plan{}, err
			}
			p.Lambda = l
			s, err := ac.NewSchedule(d.Config.Qty, d.Start, d.End, p.N, p)
			if err != nil {
				return backtest.Plan{}, err
			}
			return backtest.Plan{Strategy: "ac", Schedule: s}, nil
		}})
	}
	return out, nil
}

// acParams estimates the model for a day, minutes as the time unit: σ from
// the last week's one-minute price changes (each within its minute, so a
// gap in the history adds no false jump), ε from the half-spread and the
// taker fee, η from the sim's depth walked at the parent's average rate,
// and γ = 0 (the sim's impact is transient).
func acParams(d backtest.Day) (ac.Params, error) {
	h := d.History
	if len(h) > 7*1440 {
		h = h[len(h)-7*1440:]
	}
	if len(h) < 60 {
		return ac.Params{}, fmt.Errorf("ac: %d minutes of history before %s; need at least an hour", len(h), d.Start)
	}
	var sum, ss, price float64
	for _, m := range h {
		dp := m.ClosePx - m.OpenPx
		sum += dp
		ss += dp * dp
		price += m.ClosePx
	}
	n := float64(len(h))
	price /= n
	sigma := math.Sqrt(ss/n - (sum/n)*(sum/n))
	// ε takes the venues' taker fees weighted by share (ε does not move
	// the trajectory, only E).
	var share, feeBps float64
	for _, v := range d.Config.Venues {
		share += v.Share
		feeBps += v.Share * v.Instrument.TakerFee.InexactFloat64() * 1e4
	}
	return acModel(d.Config.Qty.InexactFloat64(), d.Start, d.End, d.Config.SliceInterval, price, sigma, feeBps/share, share), nil
}

// acModel is the Almgren–Chriss model the backtest's ac strategy uses,
// minutes as the time unit: σ in price per √minute; ε the sim's mean
// half-spread plus the taker fee; η the sim's depth D(x) =
// share·k·x^a walked at the parent's average rate X/T, linearised, taking
// the mean concession of a walk to x as x/(1+a); γ = 0 because the sim's
// impact is transient.
//
// It leaves out the sim's transient square-root impact, which at the
// default parent is far larger than the walk (see simCost, which plan
// --calibrate uses), and the exact mean concession of a continuous walk is
// a·x/(1+a). Both are kept as they were so that the λ sweep in
// BENCHMARKS.md stays reproducible; moving to simCost rescales η, and with
// it the λ that gives a trajectory.
func acModel(x float64, start, end time.Time, slice time.Duration, price, sigma, takerFeeBps, share float64) ac.Params {
	T := end.Sub(start).Minutes()
	rate := x / T
	a := sim.DepthExponent
	bps := math.Pow(rate/(sim.DefaultDepthCoef*share), 1/a) / (1 + a)
	return ac.Params{X: x, T: T, N: int(end.Sub(start) / slice), Sigma: sigma,
		Epsilon: price * (sim.HalfSpreadBps + takerFeeBps) / 1e4, Eta: price * bps / 1e4 / rate, Gamma: 0}
}

// simCost is what the sim venues charge a parent that sells (or buys) at a
// steady pace, from the sim's own model and constants (see the venues/sim
// package doc), with the default impact and depth coefficients:
//
//   - transient impact: each taker child of q moves the venue's log mid by
//     DefaultImpactCoef·σ_d·√(q/V_venue), decaying with
//     DefaultImpactHalfLife; children every dt stack to a steady state of
//     I = s·r/(1−r) before each child, r = 2^(−dt/half-life);
//   - the book: depth D(x) = share·DefaultDepthCoef·x^DepthExponent within
//     x bps of the mid (at a minute of average volume), of which earlier
//     children consumed G = q·r/(1−r), refilling at the same half-life; a
//     child walks it from G to G+q.
//
// Splitting a child across venues in proportion to their shares gives every
// venue the same impact and walk, so the parent's venues act as one venue
// of their summed share.
type simCost struct {
	Price       float64 // P, quote per base
	DailySigma  float64 // σ_d, the daily log-return sd the impact law uses
	DailyVolume float64 // V, the whole market's base volume a day
	Share       float64 // of the market's volume and depth on the parent's venues
}

// steady returns the mean concession per share, in price, of children of
// q every dt once impact and consumed depth have reached their steady
// state, split into the transient impact on the mid and the walk of the
// book from the mid, with the depth consumed (base units) it walks past.
func (c simCost) steady(q float64, dt time.Duration) (impact, walk, consumed float64) {
	r := math.Exp(-dt.Seconds() * math.Ln2 / sim.DefaultImpactHalfLife.Seconds())
	carry := r / (1 - r)
	s := sim.DefaultImpactCoef * c.DailySigma * math.Sqrt(q/(c.Share*c.DailyVolume))
	impact = c.Price * (1 - math.Exp(-s*carry))
	consumed = q * carry
	// x(D) = (D/depth)^(1/a) bps; its mean over [G, G+q] in closed form.
	a, depth := sim.DepthExponent, c.Share*sim.DefaultDepthCoef
	b := 1 + 1/a
	walkBps := (math.Pow(consumed+q, b) - math.Pow(consumed, b)) / (b * q * math.Pow(depth, 1/a))
	return impact, c.Price * walkBps / 1e4, consumed
}

// acSchedule builds a config parent's Almgren–Chriss schedule from the
// synthetic market it trades: σ from daily_volatility at the start price,
// the mean taker fee and the depth of the parent's venues.
func acSchedule(cfg *configs.Config, p configs.Parent) (engine.Schedule, error) {
	price := cfg.Market.StartPrice.InexactFloat64()
	sigma := price * cfg.Market.DailyVolatility.InexactFloat64() / math.Sqrt(1440)
	var share, fee float64
	n := 0
	for _, v := range cfg.Venues {
		if slices.Contains(p.Venues, v.Name) {
			share += v.Share.InexactFloat64()
			fee += v.TakerFeeBps.InexactFloat64()
			n++
		}
	}
	m := acModel(p.Quantity.InexactFloat64(), p.Start, p.End, p.SliceInterval, price, sigma, fee/float64(n), share)
	m.Lambda = p.ACLambda.InexactFloat64()
	return ac.NewSchedule(p.Quantity, p.Start, p.End, m.N, m)
}
