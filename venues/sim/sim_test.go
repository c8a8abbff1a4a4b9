package sim

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/engine"
	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/venues"
)

var (
	_ engine.Venue         = (*Venue)(nil)
	_ engine.FillLister    = (*Venue)(nil)
	_ engine.ClientIDRules = (*Venue)(nil)
)

// tuesday is a weekday at the busiest hour.
var tuesday = time.Date(2024, 10, 1, 14, 0, 0, 0, time.UTC)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func newMarket(t testing.TB, seed int64) *Market {
	t.Helper()
	m, err := NewMarket(MarketConfig{Seed: seed, Symbol: "BTCUSDT", Base: "BTC", Quote: "USDT",
		StartPrice: d("63000"), Start: tuesday.Add(-14 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newVenue(t testing.TB, m *Market, clk clock.Clock, name string, share float64, step string) *Venue {
	t.Helper()
	v, err := New(m, clk, Config{Name: name, Share: share, Instrument: market.Instrument{
		Tick: d("0.01"), Step: d(step), MinQty: d(step), MinNotional: d("5"),
		MakerFee: d("0.0001"), TakerFee: d("0.0004")}})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func req(id string, side market.Side, price, qty string, tif market.TimeInForce) market.OrderRequest {
	return market.OrderRequest{ClientID: id, Symbol: "BTCUSDT", Side: side, Price: d(price), Qty: d(qty), TIF: tif}
}

func TestIOC_PartialFillExpiresRemainderAndNeverCrossesLimit(t *testing.T) {
	for _, side := range []market.Side{market.Sell, market.Buy} {
		t.Run(side.String(), func(t *testing.T) {
			ctx := context.Background()
			clk := clock.NewVirtual(tuesday)
			v := newVenue(t, newMarket(t, 1), clk, "simA", 0.5, "0.00001")
			b, _ := v.Book(ctx, "BTCUSDT", 10)
			opp := b.Opposite(side)
			touch, limit := opp[0].Price, opp[2].Price // three levels deep
			avail := opp[0].Qty.Add(opp[1].Qty).Add(opp[2].Qty)
			o, fills, err := v.Place(ctx, req("c1", side, limit.String(), avail.Add(d("5")).String(), market.IOC))
			if err != nil {
				t.Fatal(err)
			}
			if o.Status != market.Expired || !o.Filled.Equal(avail) || len(fills) != 3 {
				t.Fatalf("order %+v with %d fills; want expired after filling %s in 3 fills", o, len(fills), avail)
			}
			var notional decimal.Decimal
			for _, f := range fills {
				if !market.Within(side, f.Price, limit) || market.Within(side, f.Price, touch) && !f.Price.Equal(touch) {
					t.Errorf("%s fill at %s outside the touch %s and limit %s", side, f.Price, touch, limit)
				}
				if !f.Price.Mod(d("0.01")).IsZero() || !f.Qty.Mod(d("0.00001")).IsZero() {
					t.Errorf("fill %s @ %s off tick or step", f.Qty, f.Price)
				}
				if f.Liquidity != market.Taker || !f.Fee.Equal(f.Price.Mul(f.Qty).Mul(d("0.0004"))) || f.FeeAsset != "USDT" {
					t.Errorf("fill fee %s %s %s; want taker 4 bps in USDT", f.Fee, f.FeeAsset, f.Liquidity)
				}
				if f.Side != side || f.ClientID != "c1" || f.OrderID != o.VenueOrderID || f.Venue != "simA" {
					t.Errorf("fill %+v does not name its order", f)
				}
				notional = notional.Add(f.Price.Mul(f.Qty))
			}
			if !o.Notional.Equal(notional) {
				t.Errorf("order notional %s, fills %s", o.Notional, notional)
			}
			// A small order inside the touch fills in full at the touch.
			b, _ = v.Book(ctx, "BTCUSDT", 1)
			top := b.Opposite(side)[0].Price
			o, fills, err = v.Place(ctx, req("c2", side, top.String(), "0.01", market.IOC))
			if err != nil || o.Status != market.Filled || len(fills) != 1 || !fills[0].Price.Equal(top) {
				t.Fatalf("small IOC at the touch %s: %+v %v %v", top, o, fills, err)
			}
		})
	}
}

func TestPostOnly_CrossingRefusedRestingFillsLaterAsMaker(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewVirtual(tuesday)
	v := newVenue(t, newMarket(t, 2), clk, "simA", 0.5, "0.00001")
	b, _ := v.Book(ctx, "BTCUSDT", 1)
	_, _, err := v.Place(ctx, req("p1", market.Sell, b.Bids[0].Price.String(), "0.1", market.PostOnly))
	var re *venues.RejectError
	if !errors.Is(err, venues.ErrWouldTake) || !errors.As(err, &re) || re.Code != "WOULD_TAKE" {
		t.Fatalf("crossing post-only: err = %v, want a WOULD_TAKE rejection wrapping ErrWouldTake", err)
	}
	if _, err := v.Order(ctx, "BTCUSDT", "p1"); !errors.Is(err, venues.ErrUnknownOrder) {
		t.Fatalf("a refused post-only must not exist: %v", err)
	}
	o, fills, err := v.Place(ctx, req("p2", market.Sell, b.Asks[0].Price.String(), "0.5", market.PostOnly))
	if err != nil || o.Status != market.New || len(fills) != 0 {
		t.Fatalf("resting post-only: %+v %v %v", o, fills, err)
	}
	clk.Advance(30 * time.Minute)
	got, err := v.Order(ctx, "BTCUSDT", "p2")
	if err != nil {
		t.Fatal(err)
	}
	if got.Filled.IsZero() {
		t.Fatalf("a sell resting at the ask filled nothing in 30 minutes: %+v", got)
	}
	fs, _ := v.Fills(ctx, "BTCUSDT", tuesday, clk.Now())
	for _, f := range fs {
		if f.Liquidity != market.Maker || !f.Price.Equal(b.Asks[0].Price) || !f.Fee.Equal(f.Price.Mul(f.Qty).Mul(d("0.0001"))) {
			t.Errorf("resting fill %+v: want maker at its limit with the maker fee", f)
		}
		if !f.Time.After(tuesday) {
			t.Errorf("resting fill at %s, before the market moved", f.Time)
		}
	}
}

func TestGTC_RestsAndCancelReturnsFinalState(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewVirtual(tuesday)
	v := newVenue(t, newMarket(t, 3), clk, "simA", 0.5, "0.00001")
	b, _ := v.Book(ctx, "BTCUSDT", 1)
	far := b.Asks[0].Price.Mul(d("1.05")).Round(2)
	o, _, err := v.Place(ctx, req("g1", market.Sell, far.String(), "1", market.GTC))
	if err != nil || o.Status != market.New {
		t.Fatalf("%+v %v", o, err)
	}
	clk.Advance(time.Minute)
	c, err := v.Cancel(ctx, "BTCUSDT", "g1")
	if err != nil || c.Status != market.Canceled || !c.Filled.IsZero() {
		t.Fatalf("cancel: %+v %v", c, err)
	}
	if again, err := v.Cancel(ctx, "BTCUSDT", "g1"); err != nil || again.Status != market.Canceled {
		t.Fatalf("second cancel: %+v %v", again, err)
	}
	if _, err := v.Cancel(ctx, "BTCUSDT", "nope"); !errors.Is(err, venues.ErrUnknownOrder) {
		t.Fatalf("unknown cancel: %v", err)
	}
	// A GTC that crosses takes what it can and rests the rest.
	b, _ = v.Book(ctx, "BTCUSDT", 1)
	o, fills, err := v.Place(ctx, req("g2", market.Sell, b.Bids[0].Price.String(), "50", market.GTC))
	if err != nil || o.Status != market.PartiallyFilled || len(fills) == 0 {
		t.Fatalf("crossing GTC: %+v %v", o, err)
	}
	c, err = v.Cancel(ctx, "BTCUSDT", "g2")
	if err != nil || c.Status != market.Canceled || !c.Filled.Equal(o.Filled) {
		t.Fatalf("cancel partial: %+v %v", c, err)
	}
}

func TestPlace_RefusesDuplicatesAndRuleBreaks(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewVirtual(tuesday)
	v := newVenue(t, newMarket(t, 4), clk, "simC", 0.2, "0.003") // a step that is not a power of ten
	b, _ := v.Book(ctx, "BTCUSDT", 1)
	px := b.Bids[0].Price.String()
	if _, _, err := v.Place(ctx, req("r1", market.Sell, px, "0.009", market.IOC)); err != nil {
		t.Fatalf("0.009 is on a 0.003 step: %v", err)
	}
	cases := []struct {
		name string
		r    market.OrderRequest
		code string
		is   error
	}{
		{"duplicate", req("r1", market.Sell, px, "0.009", market.IOC), "", venues.ErrDuplicateClientID},
		{"step", req("r2", market.Sell, px, "0.01", market.IOC), "STEP", nil},
		{"tick", req("r3", market.Sell, "63000.005", "0.009", market.IOC), "TICK", nil},
		{"min notional", req("r4", market.Sell, "1.00", "0.003", market.IOC), "MIN_NOTIONAL", nil},
		{"unknown symbol", market.OrderRequest{ClientID: "r5", Symbol: "ETHUSDT", Side: market.Sell, Price: d("1"), Qty: d("1")}, "", venues.ErrUnknownSymbol},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := v.Place(ctx, tc.r)
			if tc.is != nil {
				if !errors.Is(err, tc.is) {
					t.Fatalf("err = %v, want %v", err, tc.is)
				}
				return
			}
			var re *venues.RejectError
			if !errors.As(err, &re) || re.Code != tc.code {
				t.Fatalf("err = %v, want a %s rejection", err, tc.code)
			}
		})
	}
}

func TestFailNextPlace_BeforeAcceptPlacesNothingAfterAcceptIsFoundByLookup(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewVirtual(tuesday)
	v := newVenue(t, newMarket(t, 6), clk, "simA", 0.5, "0.00001")
	b, _ := v.Book(ctx, "BTCUSDT", 1)
	v.FailNextPlace(venues.ErrUnavailable, false)
	if _, _, err := v.Place(ctx, req("f0", market.Sell, b.Bids[0].Price.String(), "0.1", market.IOC)); !errors.Is(err, venues.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if _, err := v.Order(ctx, "BTCUSDT", "f0"); !errors.Is(err, venues.ErrUnknownOrder) {
		t.Fatalf("an order failed before acceptance exists: %v", err)
	}
	v.FailNextPlace(venues.ErrUnavailable, true)
	if _, _, err := v.Place(ctx, req("f1", market.Sell, b.Bids[0].Price.String(), "0.1", market.IOC)); !errors.Is(err, venues.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	o, err := v.Order(ctx, "BTCUSDT", "f1")
	if err != nil || !o.Filled.Equal(d("0.1")) {
		t.Fatalf("accepted-then-failed order: %+v %v", o, err)
	}
	if _, _, err := v.Place(ctx, req("f2", market.Sell, b.Bids[0].Price.String(), "0.1", market.IOC)); err != nil {
		t.Fatalf("the fault outlived one Place: %v", err)
	}
}

func TestNew_FillsDefaultsAndRefusesBadConfigNamingTheField(t *testing.T) {
	m := newMarket(t, 1)
	clk := clock.NewVirtual(tuesday)
	v, err := New(m, clk, Config{Name: "simA"})
	if err != nil {
		t.Fatal(err)
	}
	in := v.cfg.Instrument
	if v.cfg.Share != 1 || in.Symbol != "BTCUSDT" || in.Quote != "USDT" || !in.Tick.Equal(d("0.01")) || !in.Step.Equal(d("0.00001")) ||
		!in.MinQty.Equal(in.Step) || v.cfg.ImpactHalfLife != 5*time.Minute || v.cfg.ImpactCoef != 0.7 || v.cfg.DepthCoef != 8 ||
		!strings.HasPrefix(v.cfg.IDPrefix, "simA-") {
		t.Errorf("defaults: %+v", v.cfg)
	}
	cases := []struct {
		field string
		edit  func(*Config)
	}{
		{"name", func(c *Config) { c.Name = "" }},
		{"share", func(c *Config) { c.Share = 1.5 }},
		{"share", func(c *Config) { c.Share = -0.1 }},
		{"instrument.symbol", func(c *Config) { c.Instrument.Symbol = "ETHUSDT" }},
		{"instrument.base/quote", func(c *Config) { c.Instrument.Quote = "USDC" }},
		{"instrument.tick", func(c *Config) { c.Instrument.Tick = d("-0.01") }},
		{"instrument.step", func(c *Config) { c.Instrument.Step = d("-1") }},
		{"instrument.min_notional", func(c *Config) { c.Instrument.MinNotional = d("-5") }},
		{"instrument.maker_fee", func(c *Config) { c.Instrument.MakerFee = d("1") }},
		{"instrument.taker_fee", func(c *Config) { c.Instrument.TakerFee = d("-0.0001") }},
		{"impact_half_life", func(c *Config) { c.ImpactHalfLife = -time.Minute }},
		{"impact_coef", func(c *Config) { c.ImpactCoef = -1 }},
		{"depth_coef", func(c *Config) { c.DepthCoef = -8 }},
	}
	for _, tc := range cases {
		t.Run(tc.field, func(t *testing.T) {
			c := Config{Name: "simA", Share: 0.5}
			tc.edit(&c)
			if _, err := New(m, clk, c); err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("err = %v, want one naming %s", err, tc.field)
			}
		})
	}
}
