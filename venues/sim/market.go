package sim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/shopspring/decimal"
)

// volumeNoiseSigma is the σ of the lognormal per-minute volume noise.
const volumeNoiseSigma = 0.35

// defaultDailyVolatility is σ of BTCUSDT's daily log return (2024).
const defaultDailyVolatility = 0.0275

// MarketConfig describes the synthetic market.
type MarketConfig struct {
	Seed            int64
	Symbol          string
	Base, Quote     string
	StartPrice      decimal.Decimal
	Start           time.Time
	DailyVolume     decimal.Decimal // base units per day, whole market; default 29,700
	DailyVolatility float64         // σ of the daily log return; default 0.0275
}

// Market is the fundamental price and volume path that venues share. It is
// generated minute by minute, lazily and deterministically from the seed.
// Safe for concurrent use.
type Market struct {
	cfg   MarketConfig
	start time.Time // Start truncated to the minute
	dayV  float64
	sigma float64

	replay bool // minutes come from data, not the generator

	mu   sync.Mutex
	rng  *rand.Rand
	logp []float64 // log price at the start of minute i; len = minutes+1
	vol  []float64 // volume traded in minute i
	cumV []float64 // volume before minute i; len = minutes+1
	cumN []float64 // notional before minute i
}

// NewMarket validates cfg and returns the market.
func NewMarket(cfg MarketConfig) (*Market, error) {
	switch {
	case cfg.Symbol == "":
		return nil, errors.New("sim market: symbol is required")
	case cfg.Base == "":
		return nil, errors.New("sim market: base is required")
	case cfg.Quote == "":
		return nil, errors.New("sim market: quote is required")
	}
	if cfg.StartPrice.Sign() <= 0 {
		return nil, fmt.Errorf("sim market: start_price %s must be positive", cfg.StartPrice)
	}
	if cfg.Start.IsZero() {
		return nil, errors.New("sim market: start is required")
	}
	if cfg.DailyVolume.IsZero() {
		cfg.DailyVolume = decimal.NewFromInt(29_700)
	}
	if cfg.DailyVolume.Sign() < 0 {
		return nil, fmt.Errorf("sim market: daily_volume %s must be positive", cfg.DailyVolume)
	}
	if cfg.DailyVolatility == 0 {
		cfg.DailyVolatility = defaultDailyVolatility
	}
	if cfg.DailyVolatility < 0 || cfg.DailyVolatility > 1 {
		return nil, fmt.Errorf("sim market: daily_volatility %g must be in [0, 1]", cfg.DailyVolatility)
	}
	m := &Market{
		cfg: cfg, start: cfg.Start.UTC().Truncate(time.Minute),
		dayV: cfg.DailyVolume.InexactFloat64(), sigma: cfg.DailyVolatility,
		rng:  rand.New(rand.NewPCG(uint64(cfg.Seed), 0x626c6f636b657865)),
		logp: []float64{math.Log(cfg.StartPrice.InexactFloat64())},
		cumV: []float64{0}, cumN: []float64{0},
	}
	return m, nil
}

// Config returns the market's configuration with defaults applied.
func (m *Market) Config() MarketConfig { return m.cfg }

// ensure generates minutes up to and including index i. Caller holds mu.
func (m *Market) ensure(i int) {
	if m.replay {
		// Past the data: the price holds and nothing trades.
		for n := len(m.vol); n <= i; n++ {
			m.logp = append(m.logp, m.logp[n])
			m.vol = append(m.vol, 0)
			m.cumV = append(m.cumV, m.cumV[n])
			m.cumN = append(m.cumN, m.cumN[n])
		}
		return
	}
	for n := len(m.vol); n <= i; n++ {
		at := m.start.Add(time.Duration(n) * time.Minute)
		w := MinuteShare(at)
		noise := math.Exp(volumeNoiseSigma*m.rng.NormFloat64() - volumeNoiseSigma*volumeNoiseSigma/2)
		v := m.dayV * w * noise
		r := m.sigma * math.Sqrt(w) * m.rng.NormFloat64()
		lp := m.logp[n]
		m.logp = append(m.logp, lp+r)
		avgP := (math.Exp(lp) + math.Exp(lp+r)) / 2
		m.vol = append(m.vol, v)
		m.cumV = append(m.cumV, m.cumV[n]+v)
		m.cumN = append(m.cumN, m.cumN[n]+v*avgP)
	}
}

// locate returns the minute index and the fraction of it elapsed at t;
// ok is false before the market's start.
func (m *Market) locate(t time.Time) (i int, frac float64, ok bool) {
	d := t.Sub(m.start)
	if d < 0 {
		return 0, 0, false
	}
	i = int(d / time.Minute)
	frac = float64(d%time.Minute) / float64(time.Minute)
	return i, frac, true
}

// Price returns the fundamental price at t.
func (m *Market) Price(t time.Time) float64 {
	i, frac, ok := m.locate(t)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !ok {
		return math.Exp(m.logp[0])
	}
	m.ensure(i)
	return math.Exp(m.logp[i] + frac*(m.logp[i+1]-m.logp[i]))
}

// cumulative returns the market's volume and notional traded from the
// start up to t.
func (m *Market) cumulative(t time.Time) (vol, notional float64) {
	i, frac, ok := m.locate(t)
	if !ok {
		return 0, 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ensure(i)
	return m.cumV[i] + frac*m.vol[i], m.cumN[i] + frac*(m.cumN[i+1]-m.cumN[i])
}

// MinuteVolume returns the market's volume in the minute containing t.
func (m *Market) MinuteVolume(t time.Time) float64 {
	i, _, ok := m.locate(t)
	if !ok {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ensure(i)
	return m.vol[i]
}

// liquidity is the depth multiplier at t: the square root of the minute's
// expected share of the day against the average minute (synthetic), or of
// its recorded volume against the data's average (replay, floored at a
// fifth so a quiet minute still shows a book).
func (m *Market) liquidity(t time.Time) float64 {
	if !m.replay {
		return math.Sqrt(MinuteShare(t) * 24 * 60)
	}
	avg := m.dayV / 1440
	if avg <= 0 {
		return 1
	}
	return math.Sqrt(math.Max(m.MinuteVolume(t)/avg, 0.2))
}
