package sim

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/market"
)

func TestTape_AddsUpExactlyAndIncludesOurTrades(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewVirtual(tuesday)
	m := newMarket(t, 5)
	v := newVenue(t, m, clk, "simA", 0.5, "0.00001")
	w := newVenue(t, m, clk, "simB", 0.25, "0.00001")
	clk.Advance(10 * time.Minute)
	a, b, c := tuesday.Add(90*time.Second), tuesday.Add(4*time.Minute+7*time.Second), tuesday.Add(10*time.Minute)
	ab, _ := v.Tape(ctx, "BTCUSDT", a, b)
	bc, _ := v.Tape(ctx, "BTCUSDT", b, c)
	ac, _ := v.Tape(ctx, "BTCUSDT", a, c)
	if !ab.Add(bc).Volume.Equal(ac.Volume) || !ab.Add(bc).Notional.Equal(ac.Notional) || ac.Volume.Sign() <= 0 {
		t.Fatalf("tape not additive: %v + %v != %v", ab, bc, ac)
	}
	wac, _ := w.Tape(ctx, "BTCUSDT", a, c)
	if r := wac.Volume.Div(ac.Volume).InexactFloat64(); math.Abs(r-0.5) > 1e-6 {
		t.Errorf("simB/simA volume = %g, want the share ratio 0.5", r)
	}
	book, _ := v.Book(ctx, "BTCUSDT", 1)
	o, _, err := v.Place(ctx, req("t1", market.Sell, book.Bids[0].Price.String(), "0.2", market.IOC))
	if err != nil {
		t.Fatal(err)
	}
	after, _ := v.Tape(ctx, "BTCUSDT", a, c)
	if !after.Volume.Sub(ac.Volume).Equal(o.Filled) {
		t.Fatalf("tape grew by %s, our fill was %s", after.Volume.Sub(ac.Volume), o.Filled)
	}
	future, _ := v.Tape(ctx, "BTCUSDT", c, c.Add(time.Hour))
	if !future.Volume.IsZero() {
		t.Fatalf("tape beyond now: %s", future.Volume)
	}
	if cut, _ := v.Tape(ctx, "BTCUSDT", a, c.Add(time.Hour)); !cut.Volume.Equal(after.Volume) || !cut.Notional.Equal(after.Notional) {
		t.Fatalf("a window past now: %v, want it cut at now: %v", cut, after)
	}
	start := m.Config().Start
	if early, _ := v.Tape(ctx, "BTCUSDT", start.Add(-48*time.Hour), start); !early.Volume.IsZero() || !early.Notional.IsZero() {
		t.Fatalf("tape before the market's start: %v", early)
	}
	if first, _ := v.Tape(ctx, "BTCUSDT", start.Add(-time.Hour), start.Add(time.Minute)); first.Volume.Sign() <= 0 {
		t.Fatalf("no volume in the market's first minute: %v", first)
	}
}
