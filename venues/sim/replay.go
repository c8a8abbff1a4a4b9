package sim

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/shopspring/decimal"
)

// Minute is one minute of recorded market data to replay: the price at its
// open and close and what traded in it (base and quote).
type Minute struct {
	Open        time.Time
	OpenPx      float64
	ClosePx     float64
	Volume      float64
	QuoteVolume float64
}

// ReplayConfig names the replayed market.
type ReplayConfig struct {
	Symbol      string
	Base, Quote string
	// DailyVolatility feeds the impact model; zero: the daily log-return σ
	// of the data itself (at least two complete UTC days), else the
	// synthetic market's default.
	DailyVolatility float64
}

// NewReplay returns a market that replays recorded minutes instead of
// generating them: the fundamental price runs from each minute's open to
// its close (log-linear within the minute) and the volume and notional are
// those recorded. Depth scales with the square root of the minute's volume
// against the data's average, as the synthetic market's does with its
// curve; impact and matching are the same. Minutes must be consecutive; past
// the last one the price stays at the last close and nothing trades.
func NewReplay(cfg ReplayConfig, minutes []Minute) (*Market, error) {
	if cfg.Symbol == "" || cfg.Base == "" || cfg.Quote == "" {
		return nil, errors.New("replay market: symbol, base and quote are required")
	}
	if len(minutes) == 0 {
		return nil, errors.New("replay market: no minutes to replay")
	}
	start := minutes[0].Open.UTC()
	if !start.Equal(start.Truncate(time.Minute)) {
		return nil, fmt.Errorf("replay market: first minute %s is not on a minute", start.Format(time.RFC3339Nano))
	}
	m := &Market{
		start:  start,
		replay: true,
		logp:   make([]float64, 1, len(minutes)+1),
		vol:    make([]float64, 0, len(minutes)),
		cumV:   make([]float64, 1, len(minutes)+1),
		cumN:   make([]float64, 1, len(minutes)+1),
	}
	m.logp[0] = math.Log(minutes[0].OpenPx)
	for i, b := range minutes {
		want := start.Add(time.Duration(i) * time.Minute)
		switch {
		case !b.Open.Equal(want):
			return nil, fmt.Errorf("replay market: minute %d opens at %s, want %s: the data has a gap or is out of order",
				i, b.Open.UTC().Format(time.RFC3339), want.Format(time.RFC3339))
		case !(b.OpenPx > 0 && b.ClosePx > 0) || b.Volume < 0 || b.QuoteVolume < 0:
			return nil, fmt.Errorf("replay market: minute %s has open %g close %g volume %g: prices must be positive, volumes not negative",
				want.Format(time.RFC3339), b.OpenPx, b.ClosePx, b.Volume)
		}
		m.logp = append(m.logp, math.Log(b.ClosePx))
		m.vol = append(m.vol, b.Volume)
		m.cumV = append(m.cumV, m.cumV[i]+b.Volume)
		m.cumN = append(m.cumN, m.cumN[i]+b.QuoteVolume)
	}
	days := float64(len(minutes)) / 1440
	m.dayV = m.cumV[len(minutes)] / days
	m.sigma = cfg.DailyVolatility
	if m.sigma == 0 {
		m.sigma = DailySigma(minutes)
	}
	if m.sigma == 0 {
		m.sigma = defaultDailyVolatility
	}
	m.cfg = MarketConfig{Symbol: cfg.Symbol, Base: cfg.Base, Quote: cfg.Quote, Start: start,
		StartPrice: decimal.NewFromFloat(minutes[0].OpenPx), DailyVolume: decimal.NewFromFloat(m.dayV).Round(8),
		DailyVolatility: m.sigma}
	return m, nil
}

// DailySigma is the standard deviation of the daily log returns (first
// open to last close of each complete UTC day) of minutes, or zero with
// fewer than two complete days (the sim then takes its default).
func DailySigma(minutes []Minute) float64 {
	type day struct {
		n           int
		open, close float64
	}
	var order []time.Time
	days := map[time.Time]*day{}
	for _, m := range minutes {
		d := m.Open.UTC().Truncate(24 * time.Hour)
		x, ok := days[d]
		if !ok {
			x = &day{open: m.OpenPx}
			days[d] = x
			order = append(order, d)
		}
		x.n++
		x.close = m.ClosePx
	}
	var rets []float64
	for _, d := range order {
		if x := days[d]; x.n == 1440 && x.open > 0 && x.close > 0 {
			rets = append(rets, math.Log(x.close/x.open))
		}
	}
	if len(rets) < 2 {
		return 0
	}
	var mean, ss float64
	for _, r := range rets {
		mean += r
	}
	mean /= float64(len(rets))
	for _, r := range rets {
		ss += (r - mean) * (r - mean)
	}
	return math.Sqrt(ss / float64(len(rets)-1))
}

// End returns the end of the replayed data (the zero time for a synthetic
// market, which never ends).
func (m *Market) End() time.Time {
	if !m.replay {
		return time.Time{}
	}
	return m.start.Add(time.Duration(len(m.vol)) * time.Minute)
}
