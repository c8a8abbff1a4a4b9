package sim

import (
	"context"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/market"
)

func TestMinuteCurve_SmoothKeepsEachHourAndSumsToOne(t *testing.T) {
	for name, tc := range map[string]struct {
		hours   *[24]float64
		minutes *[1440]float64
	}{
		"weekday": {&weekdayCurve, &minuteCurves[0]},
		"weekend": {&weekendCurve, &minuteCurves[1]},
	} {
		t.Run(name, func(t *testing.T) {
			var day, maxJump float64
			for h := 0; h < 24; h++ {
				var hour float64
				for m := 0; m < 60; m++ {
					w := tc.minutes[h*60+m]
					if w <= 0 {
						t.Fatalf("minute %02d:%02d has weight %g", h, m, w)
					}
					hour += w
				}
				if math.Abs(hour-tc.hours[h]/100) > 1e-12 {
					t.Errorf("hour %02d sums to %.6f, want %.6f", h, hour, tc.hours[h]/100)
				}
				day += hour
			}
			if math.Abs(day-1) > 1e-12 {
				t.Errorf("day sums to %.15f", day)
			}
			for i := range tc.minutes {
				a, b := tc.minutes[i], tc.minutes[(i+1)%1440]
				maxJump = math.Max(maxJump, math.Abs(b-a)/a)
			}
			// An hourly step curve jumps 43 % into 14:00; a smooth one moves
			// well under 2 % from one minute to the next.
			if maxJump > 0.02 {
				t.Errorf("largest minute-to-minute change %.1f %%: the curve is not smooth", maxJump*100)
			}
		})
	}
}

func TestMarket_VolumeCurveAndVolatilityMatchTheData(t *testing.T) {
	// Realised shares over 20 simulated weeks.
	m, _ := NewMarket(MarketConfig{Seed: 11, Symbol: "BTCUSDT", Base: "BTC", Quote: "USDT", StartPrice: d("63000"),
		Start: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}) // a Monday
	var wdHour, weHour [24]float64
	var wdTot, weTot float64
	days := 140
	for day := 0; day < days; day++ {
		t0 := m.start.Add(time.Duration(day) * 24 * time.Hour)
		weekend := t0.Weekday() == time.Saturday || t0.Weekday() == time.Sunday
		for mi := 0; mi < 1440; mi++ {
			vol := m.MinuteVolume(t0.Add(time.Duration(mi) * time.Minute))
			if weekend {
				weHour[mi/60] += vol
				weTot += vol
			} else {
				wdHour[mi/60] += vol
				wdTot += vol
			}
		}
	}
	within := func(name string, got, want, tol float64) {
		t.Helper()
		if math.Abs(got-want) > tol {
			t.Errorf("%s = %.4f, want %.4f ± %.4f", name, got, want, tol)
		}
	}
	within("weekday 14:00 share", wdHour[14]/wdTot, 0.083, 0.003)
	within("weekday 05:00 share", wdHour[5]/wdTot, 0.028, 0.002)
	within("weekday 13-17 share", (wdHour[13]+wdHour[14]+wdHour[15]+wdHour[16])/wdTot, 0.26, 0.006)
	within("weekend 14:00 share", weHour[14]/weTot, 0.054, 0.003)
	within("mean daily volume", (wdTot+weTot)/float64(days), 29700, 29700*0.03)

	// Daily log returns over 5 seeds × 100 days: σ within 15 % of 2.75 %.
	var ss float64
	n := 0
	for seed := int64(20); seed < 25; seed++ {
		m := newMarket(t, seed)
		for day := 0; day < 100; day++ {
			t0 := m.start.Add(time.Duration(day) * 24 * time.Hour)
			r := math.Log(m.Price(t0.Add(24*time.Hour)) / m.Price(t0))
			ss += r * r
			n++
		}
	}
	within("daily log-return σ", math.Sqrt(ss/float64(n)), 0.0275, 0.0275*0.15)
}

func TestDeterminism_SameSeedSameBooksAndFills(t *testing.T) {
	run := func(seed int64) (books []market.Book, fills []market.Fill) {
		ctx := context.Background()
		clk := clock.NewVirtual(tuesday)
		v, err := New(newMarket(t, seed), clk, Config{Name: "simA", Share: 0.5, IDPrefix: "simA"})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 20; i++ {
			b, _ := v.Book(ctx, "BTCUSDT", 5)
			b.Time = time.Time{}
			books = append(books, b)
			_, fs, err := v.Place(ctx, req("c"+string(rune('a'+i)), market.Sell, b.Bids[2].Price.String(), "0.5", market.IOC))
			if err != nil {
				t.Fatal(err)
			}
			fills = append(fills, fs...)
			clk.Advance(37 * time.Second)
		}
		return books, fills
	}
	b1, f1 := run(9)
	b2, f2 := run(9)
	b3, _ := run(10)
	if !reflect.DeepEqual(b1, b2) || !reflect.DeepEqual(f1, f2) {
		t.Fatal("same seed: different books or fills")
	}
	if f1[0].TradeID != "simA-1" || f1[0].OrderID != "simA-o1" {
		t.Errorf("ids %s %s, want simA-1 simA-o1", f1[0].TradeID, f1[0].OrderID)
	}
	if reflect.DeepEqual(b1, b3) {
		t.Fatal("different seeds gave the same books")
	}
}

func TestVenues_ShareTheFundamentalButNotEachOthersImpact(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewVirtual(tuesday)
	m := newMarket(t, 12)
	a := newVenue(t, m, clk, "simA", 0.5, "0.00001")
	b := newVenue(t, m, clk, "simB", 0.2, "0.001")
	grid := 6.30 // one grid step at 63,000 with a 0.01 tick
	for i := 0; i < 5; i++ {
		ba, _ := a.Book(ctx, "BTCUSDT", 1)
		bb, _ := b.Book(ctx, "BTCUSDT", 1)
		ma, _ := ba.Mid()
		mb, _ := bb.Mid()
		if diff := math.Abs(ma.Sub(mb).InexactFloat64()); diff > grid {
			t.Fatalf("mids %s and %s differ by more than one level", ma, mb)
		}
		clk.Advance(13 * time.Minute)
	}
	before, _ := b.Book(ctx, "BTCUSDT", 1)
	top, _ := a.Book(ctx, "BTCUSDT", 1)
	if _, _, err := a.Place(ctx, req("x", market.Sell, top.Bids[0].Price.Mul(d("0.99")).Round(2).String(), "30", market.IOC)); err != nil {
		t.Fatal(err)
	}
	after, _ := b.Book(ctx, "BTCUSDT", 1)
	if !reflect.DeepEqual(before.Bids, after.Bids) {
		t.Errorf("a sale on simA moved simB's bid from %s to %s", before.Bids[0].Price, after.Bids[0].Price)
	}
}

func TestNewMarket_RefusesBadConfigNamingTheField(t *testing.T) {
	ok := MarketConfig{Symbol: "BTCUSDT", Base: "BTC", Quote: "USDT", StartPrice: d("63000"), Start: tuesday}
	cases := []struct {
		field string
		edit  func(*MarketConfig)
	}{
		{"symbol", func(c *MarketConfig) { c.Symbol = "" }},
		{"base", func(c *MarketConfig) { c.Base = "" }},
		{"quote", func(c *MarketConfig) { c.Quote = "" }},
		{"start_price", func(c *MarketConfig) { c.StartPrice = d("-1") }},
		{"start", func(c *MarketConfig) { c.Start = time.Time{} }},
		{"daily_volume", func(c *MarketConfig) { c.DailyVolume = d("-5") }},
		{"daily_volatility", func(c *MarketConfig) { c.DailyVolatility = 2 }},
	}
	for _, tc := range cases {
		t.Run(tc.field, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			if _, err := NewMarket(c); err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("err = %v, want one naming %s", err, tc.field)
			}
		})
	}
	m, err := NewMarket(ok)
	if err != nil {
		t.Fatal(err)
	}
	if c := m.Config(); !c.DailyVolume.Equal(d("29700")) || c.DailyVolatility != 0.0275 {
		t.Errorf("defaults: volume %s, volatility %g", c.DailyVolume, c.DailyVolatility)
	}
}
