package sim

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/venues"
)

// Model defaults (see the package doc).
const (
	// DefaultImpactHalfLife is how fast our impact decays and consumed
	// depth refills.
	DefaultImpactHalfLife = 5 * time.Minute
	// DefaultImpactCoef is η of the square-root impact law.
	DefaultImpactCoef = 0.7
	// DefaultDepthCoef is k of D(x) = Share·k·x^0.85 BTC.
	DefaultDepthCoef = 8.0
	queueShare       = 0.10 // our share of the flow at the touch
	maxClientIDLen   = 36
)

// Default instrument rules for fields left zero: Binance BTCUSDT's.
var (
	defaultTick = decimal.New(1, -2)
	defaultStep = decimal.New(1, -5)
)

// Config is one venue. Zero fields take the defaults noted.
type Config struct {
	Name string // required
	// Share is the fraction of the market's volume and depth on this
	// venue, in (0, 1]; default 1.
	Share float64
	// Instrument is the venue's rules. Symbol, Base and Quote default to
	// the market's; Tick to 0.01, Step to 0.00001, MinQty to Step; fees
	// are fractions (0.0004 is 4 bps) and may be zero.
	Instrument     market.Instrument
	ImpactHalfLife time.Duration // default 5m
	ImpactCoef     float64       // η of the square-root law; default 0.7
	DepthCoef      float64       // k of D(x) = Share·k·x^0.85; default 8
	// IDPrefix starts every trade and order id ("<prefix>-<seq>",
	// "<prefix>-o<seq>"), so ids are deterministic for a given prefix.
	// Default: the name and a random session token, so that two runs of a
	// sim venue never reuse a trade id (the bus de-duplicates fills by
	// venue and trade id); set it for reproducible ids.
	IDPrefix string
}

// Venue is a simulated exchange listing one symbol of a Market.
// Safe for concurrent use.
type Venue struct {
	m    *Market
	clk  clock.Clock
	cfg  Config
	tau  float64 // impact decay time constant, seconds
	vDay float64
	tick float64 // Instrument.Tick and Step as floats, for the model only
	step float64

	tickUnits, stepUnits units
	grid                 int64     // ticks between price levels
	gridPx               float64   // grid × tick
	levelPow             []float64 // x^0.85 at each level's nominal distance x, bps

	mu        sync.Mutex
	prof      profile
	scratch   []market.Level // levels walked by Place and settle
	prices    [priceSlots]gridSlot
	orders    map[string]*order // by client id
	resting   []*order          // open orders, by placement
	impact    float64           // log-price shift of our trades at tradeAt
	bidGone   float64           // bid depth our sells consumed at tradeAt, base units
	askGone   float64           // ask depth our buys consumed at tradeAt
	tradeAt   time.Time
	ours      []ourTrade // by time
	oursSum   windowSum
	fills     []market.Fill
	nextTrade int64
	nextOrder int64
	checked   time.Time // resting orders are settled up to here
	failNext  *fault
}

type order struct {
	o     market.Order
	fills []market.Fill
}

// ourTrade is one of our executions with the running totals of all of
// ours up to and including it, so a window's sum is one subtraction.
type ourTrade struct {
	at          time.Time
	cumQty      decimal.Decimal
	cumNotional decimal.Decimal
}

// windowSum is the last sum of our trades lo to hi−1 that Tape computed.
type windowSum struct {
	lo, hi        int
	qty, notional decimal.Decimal
	ok            bool
}

type fault struct {
	err         error
	afterAccept bool
}

// New returns a venue on market m. It fills cfg's zero fields with the
// defaults and refuses a config it cannot run, naming the field.
func New(m *Market, clk clock.Clock, cfg Config) (*Venue, error) {
	if m == nil || clk == nil {
		return nil, errors.New("sim venue: market and clock are required")
	}
	if err := cfg.fill(m.Config()); err != nil {
		return nil, err
	}
	in := cfg.Instrument
	v := &Venue{
		m: m, clk: clk, cfg: cfg,
		tau:       cfg.ImpactHalfLife.Seconds() / math.Ln2,
		vDay:      m.dayV * cfg.Share,
		tick:      in.Tick.InexactFloat64(),
		step:      in.Step.InexactFloat64(),
		tickUnits: newUnits(in.Tick), stepUnits: newUnits(in.Step),
		orders: map[string]*order{},
	}
	// Levels sit on a grid of whole ticks about gridBps apart at the start
	// price; level i is nominally (i + ½) grid steps from the mid, as the
	// best level is anywhere up to one step away.
	p0 := m.Config().StartPrice.InexactFloat64()
	v.grid = max(1, int64(math.Round(p0*gridBps/1e4/v.tick)))
	v.gridPx = float64(v.grid) * v.tick
	spacing := v.gridPx / p0 * 1e4
	v.levelPow = make([]float64, maxLevels)
	for i := range v.levelPow {
		v.levelPow[i] = math.Pow((float64(i)+0.5)*spacing, depthExponent)
	}
	return v, nil
}

// fill applies the defaults to zero fields and validates the rest.
func (c *Config) fill(mc MarketConfig) error {
	if c.Name == "" {
		return errors.New("sim venue: name is required")
	}
	bad := func(field, format string, a ...any) error {
		return fmt.Errorf("sim venue %s: %s: %s", c.Name, field, fmt.Sprintf(format, a...))
	}
	if c.Share == 0 {
		c.Share = 1
	}
	if !(c.Share > 0 && c.Share <= 1) {
		return bad("share", "%g must be in (0, 1]", c.Share)
	}
	in := &c.Instrument
	if in.Symbol == "" {
		in.Symbol = mc.Symbol
	}
	if in.Base == "" {
		in.Base = mc.Base
	}
	if in.Quote == "" {
		in.Quote = mc.Quote
	}
	switch {
	case in.Symbol != mc.Symbol:
		return bad("instrument.symbol", "%s is not the market's %s", in.Symbol, mc.Symbol)
	case in.Base != mc.Base || in.Quote != mc.Quote:
		return bad("instrument.base/quote", "%s/%s is not the market's %s/%s", in.Base, in.Quote, mc.Base, mc.Quote)
	}
	if in.Tick.IsZero() {
		in.Tick = defaultTick
	}
	if in.Step.IsZero() {
		in.Step = defaultStep
	}
	if in.MinQty.IsZero() {
		in.MinQty = in.Step
	}
	maxFee := decimal.New(1, -2) // 100 bps: a fee beyond that is a unit mistake
	for _, f := range []struct {
		name, want string
		v          decimal.Decimal
		ok         bool
	}{
		{"instrument.tick", "positive", in.Tick, in.Tick.Sign() > 0},
		{"instrument.step", "positive", in.Step, in.Step.Sign() > 0},
		{"instrument.min_qty", "not negative", in.MinQty, in.MinQty.Sign() >= 0},
		{"instrument.min_notional", "not negative", in.MinNotional, in.MinNotional.Sign() >= 0},
		{"instrument.maker_fee", "a fraction in (-0.01, 0.01)", in.MakerFee, in.MakerFee.Abs().LessThan(maxFee)},
		{"instrument.taker_fee", "a fraction in [0, 0.01)", in.TakerFee, in.TakerFee.Sign() >= 0 && in.TakerFee.LessThan(maxFee)},
	} {
		if !f.ok {
			return bad(f.name, "%s must be %s", f.v, f.want)
		}
	}
	if c.ImpactHalfLife == 0 {
		c.ImpactHalfLife = DefaultImpactHalfLife
	}
	if c.ImpactHalfLife < 0 {
		return bad("impact_half_life", "%s must be positive", c.ImpactHalfLife)
	}
	if c.ImpactCoef == 0 {
		c.ImpactCoef = DefaultImpactCoef
	}
	if !(c.ImpactCoef > 0 && c.ImpactCoef <= 10) {
		return bad("impact_coef", "%g must be in (0, 10]", c.ImpactCoef)
	}
	if c.DepthCoef == 0 {
		c.DepthCoef = DefaultDepthCoef
	}
	if !(c.DepthCoef > 0 && c.DepthCoef <= 1e9) {
		return bad("depth_coef", "%g must be positive", c.DepthCoef)
	}
	if c.IDPrefix == "" {
		c.IDPrefix = c.Name + "-" + sessionToken()
	}
	return nil
}

// Name returns the venue's name.
func (v *Venue) Name() string { return v.cfg.Name }

// MaxClientIDLen is the longest client order id the venue takes.
func (v *Venue) MaxClientIDLen() int { return maxClientIDLen }

// FailNextPlace makes the next Place return err. With afterAccept the order
// is still accepted and matched first, as when an exchange times out after
// taking an order: the caller must look it up before placing again.
func (v *Venue) FailNextPlace(err error, afterAccept bool) {
	v.mu.Lock()
	v.failNext = &fault{err: err, afterAccept: afterAccept}
	v.mu.Unlock()
}

// Rules returns the venue's instrument: the one symbol it lists and its
// rules.
func (v *Venue) Rules() market.Instrument { return v.cfg.Instrument }

// Instrument returns the venue's rules for symbol.
func (v *Venue) Instrument(_ context.Context, symbol string) (market.Instrument, error) {
	if symbol != v.cfg.Instrument.Symbol {
		return market.Instrument{}, fmt.Errorf("%s: %s: %w", v.cfg.Name, symbol, venues.ErrUnknownSymbol)
	}
	return v.cfg.Instrument, nil
}

// mid returns the venue's mid at t: the fundamental price moved by the
// decaying impact of our trades. Caller holds mu.
func (v *Venue) mid(t time.Time) float64 { return v.stateAt(t).mid }

// Book returns up to depth levels per side now.
func (v *Venue) Book(_ context.Context, symbol string, depth int) (market.Book, error) {
	if symbol != v.cfg.Instrument.Symbol {
		return market.Book{}, fmt.Errorf("%s: %s: %w", v.cfg.Name, symbol, venues.ErrUnknownSymbol)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.clk.Now()
	v.settle(now)
	return v.book(now, depth), nil
}

// Tape returns the venue's traded volume and notional in (from, to], ours
// included; a window beyond now ends at now.
func (v *Venue) Tape(_ context.Context, symbol string, from, to time.Time) (market.Tape, error) {
	if symbol != v.cfg.Instrument.Symbol {
		return market.Tape{}, fmt.Errorf("%s: %s: %w", v.cfg.Name, symbol, venues.ErrUnknownSymbol)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.clk.Now()
	v.settle(now)
	if to.After(now) {
		to = now
	}
	if !to.After(from) {
		return market.Tape{Volume: decimal.Zero, Notional: decimal.Zero}, nil
	}
	v0, n0 := v.background(from)
	v1, n1 := v.background(to)
	t := market.Tape{Volume: decimal.New(v1-v0, volumeExp), Notional: decimal.New(n1-n0, notionalExp)}
	lo := sort.Search(len(v.ours), func(i int) bool { return v.ours[i].at.After(from) })
	hi := sort.Search(len(v.ours), func(i int) bool { return v.ours[i].at.After(to) })
	if hi > lo {
		q, n := v.oursBetween(lo, hi)
		t.Volume, t.Notional = t.Volume.Add(q), t.Notional.Add(n)
	}
	return t, nil
}

// oursBetween sums our trades lo to hi−1. A moving window keeps the same
// trades for many calls, so the last sum is kept. Caller holds mu.
func (v *Venue) oursBetween(lo, hi int) (qty, notional decimal.Decimal) {
	if w := &v.oursSum; w.ok && w.lo == lo && w.hi == hi {
		return w.qty, w.notional
	}
	qty, notional = v.ours[hi-1].cumQty, v.ours[hi-1].cumNotional
	if lo > 0 {
		qty, notional = qty.Sub(v.ours[lo-1].cumQty), notional.Sub(v.ours[lo-1].cumNotional)
	}
	v.oursSum = windowSum{lo: lo, hi: hi, qty: qty, notional: notional, ok: true}
	return qty, notional
}

// The tape counts background volume in units of 1e-8 base and notional in
// 1e-4 quote.
const (
	volumeExp   = -8
	notionalExp = -4
)

// background is the venue's cumulative background volume and notional at
// t in whole tape units, rounded once per instant so that windows add up
// exactly.
func (v *Venue) background(t time.Time) (vol, notional int64) {
	cv, cn := v.m.cumulative(t)
	return int64(math.Round(cv * v.cfg.Share * 1e8)), int64(math.Round(cn * v.cfg.Share * 1e4))
}

// sessionToken is 8 random hex characters.
func sessionToken() string {
	var b [4]byte
	_, _ = cryptorand.Read(b[:])
	return hex.EncodeToString(b[:])
}
