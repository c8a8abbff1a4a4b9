package sim

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/market"
)

func minutes(start time.Time, n int) []Minute {
	out := make([]Minute, n)
	px := 60000.0
	for i := range out {
		next := px * (1 + 0.001*math.Sin(float64(i)/7))
		out[i] = Minute{Open: start.Add(time.Duration(i) * time.Minute), OpenPx: px, ClosePx: next,
			Volume: 10 + float64(i%5), QuoteVolume: (10 + float64(i%5)) * (px + next) / 2}
		px = next
	}
	return out
}

func TestReplay_FollowsTheRecordedPathAndVolume(t *testing.T) {
	ctx := context.Background()
	data := minutes(tuesday, 120)
	m, err := NewReplay(ReplayConfig{Symbol: "BTCUSDT", Base: "BTC", Quote: "USDT"}, data)
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewVirtual(tuesday)
	v := newVenue(t, m, clk, "simA", 0.5, "0.00001")
	for _, i := range []int{0, 30, 119} {
		at := data[i].Open
		if got := m.Price(at); math.Abs(got-data[i].OpenPx)/data[i].OpenPx > 1e-12 {
			t.Errorf("price at minute %d = %v, recorded open %v", i, got, data[i].OpenPx)
		}
	}
	clk.Advance(90 * time.Minute)
	tape, err := v.Tape(ctx, "BTCUSDT", tuesday.Add(10*time.Minute), tuesday.Add(20*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	want := 0.0
	for _, b := range data[10:20] {
		want += b.Volume * 0.5
	}
	if got := tape.Volume.InexactFloat64(); math.Abs(got-want) > 1e-6 {
		t.Errorf("tape volume %v, want half the recorded %v", got, want)
	}
	// The book sits around the recorded price.
	b, _ := v.Book(ctx, "BTCUSDT", 1)
	mid, _ := b.Mid()
	if rec := m.Price(clk.Now()); math.Abs(mid.InexactFloat64()/rec-1) > 2e-4 {
		t.Errorf("mid %s vs recorded %v", mid, rec)
	}
	// Selling moves the venue's price as on the synthetic market.
	if _, _, err := v.Place(ctx, req("r1", market.Sell, b.Bids[0].Price.Mul(d("0.99")).Round(2).String(), "20", market.IOC)); err != nil {
		t.Fatal(err)
	}
	after, _ := v.Book(ctx, "BTCUSDT", 1)
	if !after.Bids[0].Price.LessThan(b.Bids[0].Price) {
		t.Errorf("a 20 BTC sale left the bid at %s (was %s)", after.Bids[0].Price, b.Bids[0].Price)
	}
	// Past the data the price holds and nothing trades.
	clk.Advance(2 * time.Hour)
	late, _ := v.Tape(ctx, "BTCUSDT", m.End(), m.End().Add(time.Hour))
	if !late.Volume.IsZero() {
		t.Errorf("volume after the data ends: %s", late.Volume)
	}
}

func TestReplay_RefusesGapsAndBadRows(t *testing.T) {
	data := minutes(tuesday, 10)
	gap := append(append([]Minute{}, data[:4]...), data[5:]...)
	bad := append([]Minute{}, data...)
	bad[3].ClosePx = 0
	for name, tc := range map[string]struct {
		in   []Minute
		want string
	}{
		"gap":   {gap, "gap"},
		"price": {bad, "prices must be positive"},
		"empty": {nil, "no minutes"},
	} {
		if _, err := NewReplay(ReplayConfig{Symbol: "BTCUSDT", Base: "BTC", Quote: "USDT"}, tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
}

func TestDailySigma_FromCompleteDaysOnly(t *testing.T) {
	day := func(d int, open, close float64, n int) []Minute {
		t0 := time.Date(2024, 10, d, 0, 0, 0, 0, time.UTC)
		out := make([]Minute, n)
		for i := range out {
			out[i] = Minute{Open: t0.Add(time.Duration(i) * time.Minute), OpenPx: open, ClosePx: close, Volume: 1, QuoteVolume: open}
		}
		out[0].OpenPx, out[n-1].ClosePx = open, close
		return out
	}
	var m []Minute
	m = append(m, day(1, 100, 110, 1440)...)
	m = append(m, day(2, 110, 99, 1440)...)
	m = append(m, day(3, 99, 200, 700)...) // incomplete: left out
	r1, r2 := math.Log(110.0/100), math.Log(99.0/110)
	mean := (r1 + r2) / 2
	want := math.Sqrt(((r1-mean)*(r1-mean) + (r2-mean)*(r2-mean)) / 1)
	if got := DailySigma(m); math.Abs(got-want) > 1e-12 {
		t.Fatalf("σ = %g, want %g", got, want)
	}
	if got := DailySigma(day(1, 100, 110, 1440)); got != 0 {
		t.Fatalf("one day: σ = %g, want 0 (the sim's default)", got)
	}
}
