package sim

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/market"
)

func TestBook_LevelsOnTheGridAroundTheMidBestFirst(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewVirtual(tuesday.Add(17 * time.Second))
	v := newVenue(t, newMarket(t, 1), clk, "simA", 0.5, "0.00001")
	b, err := v.Book(ctx, "BTCUSDT", 20)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Bids) != 20 || len(b.Asks) != 20 {
		t.Fatalf("%d bids, %d asks; want 20 each", len(b.Bids), len(b.Asks))
	}
	v.mu.Lock()
	mid := v.mid(clk.Now())
	scale := v.depthScale(clk.Now())
	v.mu.Unlock()
	grid := d("6.30") // 1 bps of 63,000 in whole ticks of 0.01
	for name, side := range map[string][]market.Level{"bids": b.Bids, "asks": b.Asks} {
		cum := 0.0
		for i, l := range side {
			if !l.Price.Mod(d("0.01")).IsZero() || !l.Qty.Mod(d("0.00001")).IsZero() || l.Qty.Sign() <= 0 {
				t.Fatalf("%s[%d] = %s @ %s: off tick or step, or empty", name, i, l.Qty, l.Price)
			}
			if i > 0 && !l.Price.Sub(side[i-1].Price).Abs().Equal(grid) {
				t.Fatalf("%s[%d] at %s, %s from the level before; want one grid step %s", name, i, l.Price, l.Price.Sub(side[i-1].Price), grid)
			}
			cum += l.Qty.InexactFloat64()
			// D(x) at the level's nominal distance, (i + ½) bps.
			want := scale * math.Pow(float64(i)+0.5, depthExponent)
			if math.Abs(cum-want) > 0.02*want+0.00002 {
				t.Errorf("%s: depth to level %d = %.5f, want D(%.1f bps) = %.5f", name, i, cum, float64(i)+0.5, want)
			}
		}
	}
	bid, ask := b.Bids[0].Price.InexactFloat64(), b.Asks[0].Price.InexactFloat64()
	if !(bid < mid && mid < ask) || !b.Asks[0].Price.Sub(b.Bids[0].Price).Equal(grid) {
		t.Errorf("touch %v / %v around mid %v: want one grid step straddling the mid", bid, ask, mid)
	}
}

func TestBook_DepthIsThinnerAtTheQuietHour(t *testing.T) {
	ctx := context.Background()
	depth := func(at time.Time) float64 {
		clk := clock.NewVirtual(at)
		v := newVenue(t, newMarket(t, 1), clk, "simA", 0.5, "0.00001")
		b, _ := v.Book(ctx, "BTCUSDT", 50)
		sum := 0.0
		for _, l := range b.Bids {
			sum += l.Qty.InexactFloat64()
		}
		return sum
	}
	quiet, busy := depth(tuesday.Add(-9*time.Hour+30*time.Minute)), depth(tuesday.Add(30*time.Minute))
	// sqrt of the hours' shares: sqrt(2.8 / 8.3) ≈ 0.58.
	if r := quiet / busy; math.Abs(r-math.Sqrt(2.8/8.3)) > 0.08 {
		t.Errorf("depth at 05:30 / 14:30 = %.3f (%.2f / %.2f BTC), want about %.2f", r, quiet, busy, math.Sqrt(2.8/8.3))
	}
}

func TestBook_TakerSellConsumesBidsThatRefillWithTheHalfLife(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewVirtual(tuesday)
	v := newVenue(t, newMarket(t, 7), clk, "simA", 0.5, "0.00001")
	// levelsBelowMid is how many grid steps the best bid sits under the
	// venue's own mid; the best ask's the same above it.
	gaps := func() (bidGap, askGap float64) {
		b, _ := v.Book(ctx, "BTCUSDT", 1)
		v.mu.Lock()
		mid := v.mid(clk.Now())
		v.mu.Unlock()
		return (mid - b.Bids[0].Price.InexactFloat64()) / 6.30, (b.Asks[0].Price.InexactFloat64() - mid) / 6.30
	}
	if bg, ag := gaps(); bg > 1 || ag > 1 {
		t.Fatalf("before: touch %.2f / %.2f steps from the mid, want within one", bg, ag)
	}
	b, _ := v.Book(ctx, "BTCUSDT", 1)
	o, fills, err := v.Place(ctx, req("big", market.Sell, b.Bids[0].Price.Mul(d("0.99")).Round(2).String(), "40", market.IOC))
	if err != nil || !o.Filled.Equal(d("40")) {
		t.Fatalf("%+v %v", o, err)
	}
	taken := len(fills)
	bg, ag := gaps()
	if bg < float64(taken)-2 || ag > 1 {
		t.Fatalf("after taking %d levels: bid %.2f steps under the mid, ask %.2f above; want the bids gone, the asks intact", taken, bg, ag)
	}
	clk.Advance(5 * time.Minute) // one half-life
	half, _ := gaps()
	if half > bg*0.75 || half < bg*0.25 {
		t.Errorf("after one half-life the bid is %.2f steps under the mid (was %.2f); want about half", half, bg)
	}
	clk.Advance(time.Hour)
	if bg, _ := gaps(); bg > 1 {
		t.Errorf("an hour later the bid is still %.2f steps under the mid", bg)
	}
}

func TestVenue_ConcurrentCallsAreSafe(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewVirtual(tuesday)
	m := newMarket(t, 8)
	vs := []*Venue{newVenue(t, m, clk, "simA", 0.5, "0.00001"), newVenue(t, m, clk, "simB", 0.3, "0.0001")}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := vs[g%2]
			for i := 0; i < 50; i++ {
				b, _ := v.Book(ctx, "BTCUSDT", 5)
				_, _ = v.Tape(ctx, "BTCUSDT", tuesday, clk.Now())
				id := "g" + decimal.NewFromInt(int64(g*1000+i)).String()
				_, _, _ = v.Place(ctx, req(id, market.Sell, b.Asks[1].Price.String(), "0.01", market.GTC))
				_, _ = v.Fills(ctx, "BTCUSDT", tuesday, clk.Now())
				clk.Advance(time.Second)
			}
		}()
	}
	wg.Wait()
}

// sellOver sells qty in equal IOC children, one per minute over d, each
// allowed 100 bps below the touch, and returns the average price.
func sellOver(t *testing.T, seed int64, qty float64, over time.Duration) (avg float64, v *Venue, clk *clock.Virtual) {
	t.Helper()
	ctx := context.Background()
	clk = clock.NewVirtual(tuesday.Add(-6 * time.Hour))
	v = newVenue(t, newMarket(t, seed), clk, "simA", 0.5, "0.00001")
	n := int(over / time.Minute)
	child := decimal.NewFromFloat(qty / float64(n)).Round(5)
	var filled, notional decimal.Decimal
	for i := 0; i < n; i++ {
		b, _ := v.Book(ctx, "BTCUSDT", 1)
		limit := b.Bids[0].Price.Mul(d("0.99")).Round(2)
		o, _, err := v.Place(ctx, req("s"+decimal.NewFromInt(int64(i)).String(), market.Sell, limit.String(), child.String(), market.IOC))
		if err != nil {
			t.Fatal(err)
		}
		filled, notional = filled.Add(o.Filled), notional.Add(o.Notional)
		clk.Advance(time.Minute)
	}
	return notional.Div(filled).InexactFloat64(), v, clk
}

func TestImpact_SellingFasterCostsMoreOnTheSameSeed(t *testing.T) {
	for _, seed := range []int64{1, 2, 3} {
		fast, v, clk := sellOver(t, seed, 40, 30*time.Minute)
		slow, _, _ := sellOver(t, seed, 40, 8*time.Hour)
		// Measure both against the same fundamental path: the fast sale's
		// cost vs the price it started at must exceed the slow one's
		// relative to its own path average.
		m := v.m
		startP := m.Price(tuesday.Add(-6 * time.Hour))
		var fundSlow float64
		for i := 0; i < 480; i++ {
			fundSlow += m.Price(tuesday.Add(-6*time.Hour + time.Duration(i)*time.Minute))
		}
		fundSlow /= 480
		var fundFast float64
		for i := 0; i < 30; i++ {
			fundFast += m.Price(tuesday.Add(-6*time.Hour + time.Duration(i)*time.Minute))
		}
		fundFast /= 30
		costFast := (fundFast - fast) / fundFast * 1e4
		costSlow := (fundSlow - slow) / fundSlow * 1e4
		t.Logf("seed %d: fast %.2f bps, slow %.2f bps below the fundamental", seed, costFast, costSlow)
		if costFast <= costSlow {
			t.Errorf("seed %d: fast cost %.2f bps ≤ slow cost %.2f bps (start %.2f)", seed, costFast, costSlow, startP)
		}
		// The sale depressed the venue's mid below the fundamental, and it
		// recovers once we stop.
		now := clk.Now()
		v.mu.Lock()
		gapNow := v.mid(now)/m.Price(now) - 1
		gapLater := v.mid(now.Add(time.Hour))/m.Price(now.Add(time.Hour)) - 1
		v.mu.Unlock()
		if !(gapNow < 0 && gapLater > gapNow/100) {
			t.Errorf("seed %d: mid gap %.6f after the sale, %.6f an hour later; want negative then recovered", seed, gapNow, gapLater)
		}
	}
}
