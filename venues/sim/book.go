package sim

import (
	"math"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/market"
)

// Depth profile constants (see the package doc).
const (
	depthExponent = 0.85
	// gridBps is the target distance between price levels; the grid is
	// a whole number of ticks near it at the market's start price.
	gridBps    = 1.0
	maxLevels  = 400
	priceSlots = 1024 // price decimals kept per venue, by grid index
)

// profile is a venue's undepleted depth for one minute, the same on both
// sides: cum[i] is D(x_i) in whole steps (rounded down), qty[i] the level's
// quantity cum[i] − cum[i−1] as a decimal. It grows lazily to the deepest
// level asked for, so a 10-level book costs 10 decimals a minute.
type profile struct {
	minute time.Time
	scale  float64
	cum    []int64
	qty    []decimal.Decimal
}

// ensure extends the profile to n levels; pow[i] is x^0.85 at level i's
// nominal distance x from the mid.
func (p *profile) ensure(n int, pow []float64, step float64, steps units) {
	for i := len(p.cum); i < n; i++ {
		c := int64(math.Floor(p.scale * pow[i] / step))
		prev := int64(0)
		if i > 0 {
			prev = p.cum[i-1]
		}
		p.cum = append(p.cum, c)
		p.qty = append(p.qty, steps.of(c-prev))
	}
}

// profileAt returns the depth profile for t's minute, rebuilding it when
// the minute or the depth scale changed. Caller holds mu.
func (v *Venue) profileAt(t time.Time) *profile {
	minute := t.Truncate(time.Minute)
	scale := v.depthScale(t)
	p := &v.prof
	if !minute.Equal(p.minute) || scale != p.scale {
		p.minute, p.scale = minute, scale
		p.cum, p.qty = p.cum[:0], p.qty[:0]
	}
	return p
}

// depthScale is Share·k·sqrt(w/w̄) at t: D(x) = depthScale·x^0.85.
func (v *Venue) depthScale(t time.Time) float64 {
	return v.cfg.Share * v.cfg.DepthCoef * v.m.liquidity(t)
}

// state is the venue's own price state at one instant: the mid and how
// many steps of each side our taker trades have consumed and not yet
// refilled.
type state struct {
	mid        float64
	bidGone    int64
	askGone    int64
	prof       *profile
	tick, step float64
}

// stateAt returns the venue's state at t. Impact and depletion decay with
// the same half-life; exponential decay is memoryless, so each is one
// number carried forward from our last taker trade. Caller holds mu.
func (v *Venue) stateAt(t time.Time) state {
	decay := 1.0
	if dt := t.Sub(v.tradeAt); dt > 0 {
		decay = math.Exp(-dt.Seconds() / v.tau)
	}
	return state{
		mid:     v.m.Price(t) * math.Exp(v.impact*decay),
		bidGone: wholeSteps(v.bidGone * decay / v.step),
		askGone: wholeSteps(v.askGone * decay / v.step),
		prof:    v.profileAt(t),
		tick:    v.tick, step: v.step,
	}
}

// wholeSteps rounds a step count down, forgiving float error just under a
// whole number so that a level we fully took never shows a one-step sliver.
func wholeSteps(x float64) int64 { return int64(math.Floor(x + 1e-9)) }

// walk appends to dst the levels of one side (bids, or asks), best first,
// until it holds n levels, a level passes limit (in ticks; bids stop below
// it, asks above it) or maxLevels are looked at. Prices are on the venue's
// grid: the best bid is the highest grid price below the mid, the best ask
// the lowest above it. Levels our trades consumed are left out. Caller
// holds mu.
func (v *Venue) walk(dst []market.Level, s state, bids bool, n int, limit int64) []market.Level {
	gone, top, dir := s.askGone, int64(math.Ceil(s.mid/v.gridPx)), int64(1)
	if bids {
		gone, top, dir = s.bidGone, int64(math.Floor(s.mid/v.gridPx)), -1
	}
	if float64(top)*v.gridPx == s.mid {
		top += dir
	}
	start := len(dst)
	for i := 0; i < maxLevels && len(dst)-start < n; i++ {
		g := top + dir*int64(i)
		if k := g * v.grid; (bids && k < limit) || (!bids && k > limit) || k <= 0 {
			break
		}
		if len(s.prof.cum) <= i {
			s.prof.ensure(i+1, v.levelPow, v.step, v.stepUnits)
		}
		prev := int64(0)
		if i > 0 {
			prev = s.prof.cum[i-1]
		}
		q := s.prof.qty[i]
		switch {
		case gone >= s.prof.cum[i] || s.prof.cum[i] == prev:
			continue // consumed by our trades, or rounds to nothing
		case gone > prev:
			q = v.stepUnits.of(s.prof.cum[i] - gone)
		}
		dst = append(dst, market.Level{Price: v.gridPrice(g), Qty: q})
	}
	return dst
}

// gridPrice returns the price of grid index g as a decimal, kept in a small
// table: from one second to the next the mid moves a fraction of a level,
// so a book reuses almost every price it built the second before. Caller
// holds mu.
func (v *Venue) gridPrice(g int64) decimal.Decimal {
	slot := &v.prices[uint64(g)%priceSlots]
	if !slot.ok || slot.g != g {
		*slot = gridSlot{g: g, price: v.tickUnits.of(g * v.grid), ok: true}
	}
	return slot.price
}

// gridSlot is one cached grid price.
type gridSlot struct {
	g     int64
	price decimal.Decimal
	ok    bool
}

// book builds up to depth levels per side at t. Caller holds mu.
func (v *Venue) book(t time.Time, depth int) market.Book {
	if depth <= 0 || depth > maxLevels {
		depth = maxLevels
	}
	s := v.stateAt(t)
	all := make([]market.Level, 0, 2*depth)
	bids := v.walk(all, s, true, depth, math.MinInt64)
	asks := v.walk(bids[len(bids):len(bids):cap(all)], s, false, depth, math.MaxInt64)
	return market.Book{Symbol: v.cfg.Instrument.Symbol, Time: t, Bids: bids[:len(bids):len(bids)], Asks: asks}
}

// units builds k × unit as a decimal; for a power of ten (0.01, 0.00001)
// without a multiplication.
type units struct {
	unit  decimal.Decimal
	exp   int32
	pow10 bool
}

func newUnits(u decimal.Decimal) units {
	return units{unit: u, exp: u.Exponent(), pow10: u.Coefficient().IsInt64() && u.Coefficient().Int64() == 1}
}

func (u units) of(k int64) decimal.Decimal {
	if u.pow10 {
		return decimal.New(k, u.exp)
	}
	return decimal.NewFromInt(k).Mul(u.unit)
}

// count returns p in whole units, rounded toward zero.
func (u units) count(p decimal.Decimal) int64 {
	return p.Div(u.unit).IntPart()
}
