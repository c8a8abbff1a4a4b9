package coinbase

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/blockexec/blockexec/venues"
	"github.com/blockexec/blockexec/venues/coinbase/coinbasefake"
	"github.com/blockexec/blockexec/venues/venuetest"
)

func TestMatchProduct_FindsTheProductByItsCurrencies(t *testing.T) {
	p := func(id, base, quote, typ string) productJSON {
		return productJSON{ProductID: id, BaseCurrencyID: base, QuoteCurrencyID: quote, ProductType: typ}
	}
	list := []productJSON{
		p("BTC-USD", "BTC", "USD", "SPOT"), p("BTC-USDT", "BTC", "USDT", "SPOT"), p("BTC-USDC", "BTC", "USDC", "SPOT"),
		p("ETH-USDT", "ETH", "USDT", ""), p("BIT-27DEC24-CDE", "BTC", "USDT", "FUTURE"),
		p("AB-CDE", "AB", "CDE", "SPOT"), p("ABC-DE", "ABC", "DE", "SPOT"),
	}
	cases := []struct {
		symbol, want string
		unknown      bool
	}{
		{"BTCUSDT", "BTC-USDT", false},
		{"BTCUSD", "BTC-USD", false},
		{"ethusdt", "ETH-USDT", false}, // product_type absent: taken as spot
		{"DOGEUSDT", "", true},
		{"ABCDE", "", false}, // two products spell it: refused, not guessed
	}
	for _, tc := range cases {
		t.Run(tc.symbol, func(t *testing.T) {
			got, err := matchProduct(tc.symbol, list)
			switch {
			case tc.unknown:
				if !errors.Is(err, venues.ErrUnknownSymbol) {
					t.Fatalf("%v, want ErrUnknownSymbol", err)
				}
			case tc.want == "":
				if err == nil || errors.Is(err, venues.ErrUnknownSymbol) {
					t.Fatalf("%+v %v, want an ambiguity error", got, err)
				}
			case err != nil || got.ProductID != tc.want:
				t.Fatalf("%s %v, want %s", got.ProductID, err, tc.want)
			}
		})
	}
}

func TestInstrument_DerivesTheProductOrTakesTheSymbolsMap(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name, symbol string
		symbols      map[string]string
		unknown      bool
	}{
		{"derived from base and quote", "BTCUSDT", nil, false},
		{"mapped under another name", "XBTUSDT", map[string]string{"XBTUSDT": "BTC-USDT"}, false},
		{"mapped to a product the venue lacks", "BTCUSDT", map[string]string{"BTCUSDT": "BTC-USD"}, true},
		{"not listed", "DOGEUSDT", nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, func(c *Config, _ *coinbasefake.Options) { c.Symbols = tc.symbols })
			in, err := r.v.Instrument(ctx, tc.symbol)
			if tc.unknown {
				if !errors.Is(err, venues.ErrUnknownSymbol) || !venues.IsReject(err) {
					t.Fatalf("%v, want ErrUnknownSymbol", err)
				}
				return
			}
			rules := venuetest.Rules
			if err != nil || in.Symbol != tc.symbol || in.Base != "BTC" || in.Quote != "USDT" ||
				!in.Tick.Equal(rules.Tick) || !in.Step.Equal(rules.Step) || !in.MinQty.Equal(rules.MinQty) ||
				!in.MinNotional.Equal(rules.MinNotional) || !in.TakerFee.Equal(rules.TakerFee) ||
				!in.MakerFee.Equal(rules.MakerFee) {
				t.Fatalf("%+v %v", in, err)
			}
			b, err := r.v.Book(ctx, tc.symbol, 2)
			if err != nil || b.Symbol != tc.symbol || len(b.Bids) != 2 {
				t.Fatalf("book %+v %v", b, err)
			}
		})
	}
}

func TestInstrument_ConfiguredFeesSkipTheFeeTier(t *testing.T) {
	r := newRig(t, func(c *Config, _ *coinbasefake.Options) {
		c.MakerFee, c.TakerFee = venuetest.D("0"), venuetest.D("0.0025")
	})
	in, err := r.v.Instrument(context.Background(), venuetest.Symbol)
	if err != nil || !in.TakerFee.Equal(venuetest.D("0.0025")) || !in.MakerFee.IsZero() {
		t.Fatalf("%+v %v", in, err)
	}
	if n := r.rec.count(pathFees); n != 0 {
		t.Fatalf("read the fee tier %d times", n)
	}
}

func TestTape_PagesThroughMoreTradesThanAPage(t *testing.T) {
	r := newRig(t, nil)
	r.v.tradesPage = 7
	ctx := context.Background()
	from, to := venuetest.T0.Add(-5*time.Minute), venuetest.T0
	got, err := r.v.Tape(ctx, venuetest.Symbol, from, to)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := r.sim.Tape(ctx, venuetest.Symbol, from, to)
	if !got.Volume.Equal(want.Volume) {
		t.Fatalf("volume %s, the venue traded %s", got.Volume, want.Volume)
	}
	if n := r.rec.count(pathProducts + "/BTC-USDT/ticker"); n < 30/7 {
		t.Fatalf("%d ticker requests for 30 trades at 7 a page", n)
	}
	// A window off the buckets keeps the trades stamped inside it: each
	// fake trade carries its 10 s bucket and is stamped at the bucket's end.
	half, err := r.v.Tape(ctx, venuetest.Symbol, from.Add(5*time.Second), to.Add(-5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	inner, _ := r.sim.Tape(ctx, venuetest.Symbol, from, to.Add(-10*time.Second))
	if !half.Volume.Equal(inner.Volume) {
		t.Fatalf("volume %s, the buckets stamped inside traded %s", half.Volume, inner.Volume)
	}
}
