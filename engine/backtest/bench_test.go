package backtest

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/engine"
	"github.com/blockexec/blockexec/risk"
	"github.com/blockexec/blockexec/venues/sim"
)

// memPublisher encodes every message as the bus would and counts it; it
// keeps none, so the benchmark measures the engine, not a growing heap
// (BenchmarkRun8h in cmd/blockexec measures the real bus).
type memPublisher struct {
	mu     sync.Mutex
	fills  int
	events int
	bytes  int
}

func (p *memPublisher) PublishFill(_ context.Context, m bus.FillMsg) error {
	b, err := json.Marshal(m)
	p.mu.Lock()
	p.fills++
	p.bytes += len(b)
	p.mu.Unlock()
	return err
}

func (p *memPublisher) PublishEvent(_ context.Context, m bus.EventMsg) error {
	b, err := json.Marshal(m)
	p.mu.Lock()
	p.events++
	p.bytes += len(b)
	p.mu.Unlock()
	return err
}

var _ engine.Publisher = (*memPublisher)(nil)

// BenchmarkEngineDay1s is issue 3's speed target: one simulated day of a
// 3-venue run at 1 s ticks. The engine, with its risk checks, works a TWAP
// parent (sell 400 BTC) over 24 hours in 1-second slices on three sim
// venues sharing a synthetic market 0.5/0.3/0.2, publishing every fill and
// event to an in-memory publisher. One op is the whole day: 86,400 slices.
func BenchmarkEngineDay1s(b *testing.B) { benchEngine1s(b, 24*time.Hour) }

// BenchmarkEngineHour1s is the same for one hour: quick to profile.
func BenchmarkEngineHour1s(b *testing.B) { benchEngine1s(b, time.Hour) }

func benchEngine1s(b *testing.B, span time.Duration) {
	ctx := context.Background()
	start := time.Date(2024, 10, 8, 0, 0, 0, 0, time.UTC) // a Tuesday
	cfg := testConfig()
	b.ReportAllocs()
	var sum engine.Summary
	var pub *memPublisher
	for b.Loop() {
		m, err := sim.NewMarket(sim.MarketConfig{Seed: 1, Symbol: "BTCUSDT", Base: "BTC", Quote: "USDT",
			StartPrice: decimal.NewFromInt(63_000), Start: start.Add(-time.Hour)})
		if err != nil {
			b.Fatal(err)
		}
		clk := clock.NewVirtual(start)
		vs := make([]engine.Venue, 0, len(cfg.Venues))
		for _, vc := range cfg.Venues {
			v, err := sim.New(m, clk, sim.Config{Name: vc.Name, Share: vc.Share, Instrument: vc.Instrument, IDPrefix: vc.Name})
			if err != nil {
				b.Fatal(err)
			}
			vs = append(vs, v)
		}
		kill := risk.NewKillSwitch(false)
		pub = &memPublisher{}
		eng, err := engine.New(clk, vs, risk.NewChecker(kill), kill, pub, zerolog.Nop())
		if err != nil {
			b.Fatal(err)
		}
		sums, err := eng.Run(ctx, []engine.ParentSpec{{ID: "day1s", Side: cfg.Side, Symbol: cfg.Symbol,
			Qty:      decimal.NewFromInt(400).Mul(decimal.NewFromInt(int64(span))).Div(decimal.NewFromInt(int64(24 * time.Hour))).Round(3),
			Strategy: "twap", Start: start, End: start.Add(span),
			SliceInterval: time.Second, MaxParticipation: decimal.RequireFromString("0.1"),
			BandBps: decimal.NewFromInt(500)}}) // wide enough that a day's drift does not stop the parent
		if err != nil {
			b.Fatal(err)
		}
		sum = sums[0]
	}
	if sum.Filled.IsZero() {
		b.Fatalf("the parent filled nothing: %+v", sum)
	}
	b.ReportMetric(float64(sum.ChildOrders), "children/op")
	b.ReportMetric(float64(pub.fills), "fills/op")
	b.ReportMetric(float64(pub.events), "events/op")
	b.ReportMetric(sum.Filled.Div(sum.Qty).InexactFloat64()*100, "completion-%")
}
