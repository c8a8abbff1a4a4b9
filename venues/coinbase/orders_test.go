package coinbase

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/venues"
	"github.com/blockexec/blockexec/venues/coinbase/coinbasefake"
	"github.com/blockexec/blockexec/venues/fakex"
	"github.com/blockexec/blockexec/venues/venuetest"
)

// sellAtBid is an IOC sell of qty at the sim's second bid.
func sellAtBid(t *testing.T, r *rig, clientID, qty string) market.OrderRequest {
	t.Helper()
	b, err := r.sim.Book(context.Background(), venuetest.Symbol, 2)
	if err != nil {
		t.Fatal(err)
	}
	return market.OrderRequest{ClientID: clientID, Symbol: venuetest.Symbol, Side: market.Sell, Price: b.Bids[1].Price,
		Qty: venuetest.D(qty), TIF: market.IOC}
}

func TestRateLimit_StopsSendingUntilRetryAfterOnTheMarketClock(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	r.fake.Faults().Add(fakex.Fault{Kind: fakex.RateLimited, RetryAfter: 30 * time.Second})
	if _, err := r.v.Book(ctx, venuetest.Symbol, 1); !errors.Is(err, venues.ErrUnavailable) || venues.IsReject(err) {
		t.Fatalf("429: %v, want ErrUnavailable", err)
	}
	if !strings.Contains(r.logs.String(), "rate limited") {
		t.Fatal("no rate-limit warning")
	}
	sent := len(r.rec.requests())
	r.clk.Advance(29 * time.Second)
	if _, err := r.v.Book(ctx, venuetest.Symbol, 1); !errors.Is(err, venues.ErrUnavailable) {
		t.Fatalf("during the pause: %v", err)
	}
	if n := len(r.rec.requests()); n != sent {
		t.Fatalf("%d requests sent during the pause", n-sent)
	}
	r.clk.Advance(time.Second)
	if _, err := r.v.Book(ctx, venuetest.Symbol, 1); err != nil {
		t.Fatalf("after retry-after: %v", err)
	}
}

func TestFailures_ServerErrorsAndTimeoutsAreUnavailableNotRefusals(t *testing.T) {
	for _, kind := range []fakex.Kind{fakex.ServerError, fakex.Timeout, fakex.AcceptThen5xx} {
		t.Run(kind.String(), func(t *testing.T) {
			r := newRig(t, func(c *Config, _ *coinbasefake.Options) { c.HTTPClient.Timeout = 300 * time.Millisecond })
			ctx := context.Background()
			if _, err := r.v.Instrument(ctx, venuetest.Symbol); err != nil {
				t.Fatal(err)
			}
			r.fake.Faults().Add(fakex.Fault{Kind: kind, Method: http.MethodPost, Path: coinbasefake.PathOrders})
			req := sellAtBid(t, r, "f-1", "0.3")
			_, _, err := r.v.Place(ctx, req)
			if !errors.Is(err, venues.ErrUnavailable) || venues.IsReject(err) {
				t.Fatalf("%v, want ErrUnavailable and no rejection", err)
			}
			o, err := r.v.Order(ctx, venuetest.Symbol, req.ClientID)
			switch {
			case kind == fakex.AcceptThen5xx && (err != nil || !o.Filled.IsPositive() || o.ClientID != req.ClientID):
				t.Fatalf("the lost order: %+v %v", o, err)
			case kind != fakex.AcceptThen5xx && !errors.Is(err, venues.ErrUnknownOrder):
				t.Fatalf("an order never taken: %+v %v, want ErrUnknownOrder", o, err)
			}
		})
	}
}

func TestOrder_FindsAnOrderWhoseAnswerWasLostByListingTheProduct(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	r.fake.Faults().Add(fakex.Fault{Kind: fakex.AcceptThen5xx, Method: http.MethodPost, Path: coinbasefake.PathOrders})
	req := sellAtBid(t, r, "lost-1", "0.51")
	if _, _, err := r.v.Place(ctx, req); !errors.Is(err, venues.ErrUnavailable) {
		t.Fatalf("%v", err)
	}
	// A restarted engine has a fresh adapter that never saw the order id.
	fresh, err := New(Config{BaseURL: r.fake.URL(), KeyName: venues.NewSecret(r.keyName),
		PrivateKey: venues.NewSecret(r.pemText), HTTPClient: &http.Client{Transport: r.rec}}, r.clk, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []*Venue{r.v, fresh} {
		before := r.rec.count(pathListOrders)
		o, err := v.Order(ctx, venuetest.Symbol, req.ClientID)
		if err != nil || o.ClientID != req.ClientID || !o.Status.Done() || !o.Filled.IsPositive() {
			t.Fatalf("lookup: %+v %v", o, err)
		}
		if r.rec.count(pathListOrders) == before {
			t.Fatal("found without listing the product's orders")
		}
		fills, err := v.Fills(ctx, venuetest.Symbol, venuetest.T0.Add(-time.Hour), venuetest.T0)
		sum := venuetest.D("0")
		for _, f := range fills {
			if f.ClientID != req.ClientID || f.OrderID != o.VenueOrderID || f.Symbol != venuetest.Symbol {
				t.Fatalf("fill %+v", f)
			}
			sum = sum.Add(f.Qty)
		}
		if err != nil || !sum.Equal(o.Filled) {
			t.Fatalf("fills add to %s of %s: %v", sum, o.Filled, err)
		}
	}
	if len(r.fake.Placed()) != 1 {
		t.Fatalf("placed %v", r.fake.Placed())
	}
}

func TestPlace_AReusedClientIDReturnsTheFirstOrderWithoutFills(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	req := sellAtBid(t, r, "dup-1", "0.3")
	first, fills, err := r.v.Place(ctx, req)
	if err != nil || len(fills) == 0 {
		t.Fatalf("%+v %v %v", first, fills, err)
	}
	again, fills, err := r.v.Place(ctx, req)
	if err != nil || again.VenueOrderID != first.VenueOrderID || len(fills) != 0 || !again.Filled.Equal(first.Filled) {
		t.Fatalf("again: %+v %d fills %v; first %s", again, len(fills), err, first.VenueOrderID)
	}
	if p := r.fake.Placed(); len(p) != 1 {
		t.Fatalf("placed %v", p)
	}
}

func TestPlace_GTCReturnsWhatCrossedOnArrivalAndCancelKeepsIt(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	b, _ := r.sim.Book(ctx, venuetest.Symbol, 1)
	req := market.OrderRequest{ClientID: "gtc-1", Symbol: venuetest.Symbol, Side: market.Sell, Price: b.Bids[0].Price,
		Qty: b.Bids[0].Qty.Add(venuetest.D("3")), TIF: market.GTC}
	o, fills, err := r.v.Place(ctx, req)
	if err != nil || o.Status != market.PartiallyFilled || o.TIF != market.GTC || len(fills) != 1 ||
		!fills[0].Qty.Equal(b.Bids[0].Qty) || fills[0].Liquidity != market.Taker {
		t.Fatalf("%+v %+v %v", o, fills, err)
	}
	c, err := r.v.Cancel(ctx, venuetest.Symbol, req.ClientID)
	if err != nil || c.Status != market.Canceled || !c.Filled.Equal(o.Filled) {
		t.Fatalf("cancel: %+v %v", c, err)
	}
	if again, err := r.v.Cancel(ctx, venuetest.Symbol, req.ClientID); err != nil || again.Status != market.Canceled {
		t.Fatalf("second cancel: %+v %v", again, err)
	}
	if _, err := r.v.Cancel(ctx, venuetest.Symbol, "never"); !errors.Is(err, venues.ErrUnknownOrder) {
		t.Fatalf("unknown: %v", err)
	}
}

func TestPlace_RuleBreaksAreTypedRefusals(t *testing.T) {
	r := newRig(t, nil)
	ctx := context.Background()
	b, _ := r.sim.Book(ctx, venuetest.Symbol, 1)
	bid := b.Bids[0].Price
	cases := []struct {
		name, price, qty string
		code             string
	}{
		{"price off the tick", bid.Add(venuetest.D("0.005")).String(), "0.3", "INVALID_PRICE_PRECISION"},
		{"size off the increment", bid.String(), "0.3001", "INVALID_SIZE_PRECISION"},
		{"below base_min_size", bid.String(), "0", "PREVIEW_INVALID_BASE_SIZE_TOO_SMALL"},
		{"below quote_min_size", "1", "0.003", "PREVIEW_INVALID_QUOTE_SIZE_TOO_SMALL"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := r.v.Place(ctx, market.OrderRequest{ClientID: "rule-" + string(rune('a'+i)),
				Symbol: venuetest.Symbol, Side: market.Sell, Price: venuetest.D(tc.price), Qty: venuetest.D(tc.qty),
				TIF: market.IOC})
			var re *venues.RejectError
			if !errors.As(err, &re) || re.Code != tc.code {
				t.Fatalf("%v, want a RejectError %s", err, tc.code)
			}
		})
	}
	if len(r.fake.Placed()) != 0 {
		t.Fatalf("placed %v", r.fake.Placed())
	}
}
