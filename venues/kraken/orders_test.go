package kraken

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/venues"
	"github.com/blockexec/blockexec/venues/fakex"
	"github.com/blockexec/blockexec/venues/venuetest"
)

func TestErrors_KrakensAnswersMapOntoTheEnginesErrors(t *testing.T) {
	v, err := New(Config{Name: "kraken", APIKey: venues.NewSecret("k"), Secret: venues.NewSecret("c2VjcmV0"),
		AuthClock: clock.NewVirtual(venuetest.T0)}, clock.NewVirtual(venuetest.T0), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	var rl *rateLimited
	for _, tc := range []struct {
		status int
		msg    string
		is     error  // errors.Is target, or nil
		code   string // RejectError code, or ""
		rate   bool
	}{
		{200, "EOrder:Post only order", venues.ErrWouldTake, "WOULD_TAKE", false},
		{200, "EGeneral:Invalid arguments:cl_ord_id not unique", venues.ErrDuplicateClientID, "", false},
		{200, "EOrder:Order minimum not met", nil, "MIN_QTY", false},
		{200, "EOrder:Cost minimum not met", nil, "MIN_NOTIONAL", false},
		{200, "EOrder:Tick size check failed", nil, "TICK", false},
		{200, "EGeneral:Invalid arguments:volume", nil, "VOLUME", false},
		{200, "EOrder:Insufficient funds", nil, "FUNDS", false},
		{200, "EGeneral:Invalid arguments:cl_ord_id", nil, "INVALID_ARGUMENTS", false},
		{200, "EService:Market in cancel_only mode", nil, "MARKET_STATUS", false},
		{200, "EAPI:Invalid key", nil, "AUTH", false},
		{200, "EAPI:Invalid signature", nil, "AUTH", false},
		{200, "EGeneral:Permission denied", nil, "AUTH", false},
		{200, "EQuery:Unknown asset pair", venues.ErrUnknownSymbol, "", false},
		{200, "EOrder:Unknown order", venues.ErrUnknownOrder, "", false},
		{200, "EService:Unavailable", venues.ErrUnavailable, "", false},
		{200, "EService:Busy", venues.ErrUnavailable, "", false},
		{200, "EService:Deadline elapsed", venues.ErrUnavailable, "", false},
		{200, "EGeneral:Internal error:1234", venues.ErrUnavailable, "", false},
		{503, "", venues.ErrUnavailable, "", false},
		{200, "EAPI:Invalid nonce", errBadNonce, "", false},
		{200, "EAPI:Rate limit exceeded", nil, "", true},
		{200, "EOrder:Rate limit exceeded", nil, "", true},
		{200, "EGeneral:Too many requests", nil, "", true},
		{200, "EGeneral:Temporary lockout", nil, "", true},
		{200, "EService:Throttled:1727769660", nil, "", true},
		{429, "", nil, "", true},
	} {
		res := &http.Response{StatusCode: tc.status, Header: http.Header{}}
		err := v.mapError(request{method: "AddOrder"}, res, &krakenError{status: tc.status, msg: tc.msg})
		var re *venues.RejectError
		switch {
		case tc.rate && !errors.As(err, &rl):
			t.Errorf("%d %q: %v, want a rate limit", tc.status, tc.msg, err)
		case tc.is != nil && !errors.Is(err, tc.is):
			t.Errorf("%d %q: %v, want %v", tc.status, tc.msg, err, tc.is)
		case tc.code != "" && (!errors.As(err, &re) || re.Code != tc.code):
			t.Errorf("%d %q: %v, want a rejection %s", tc.status, tc.msg, err, tc.code)
		case errors.Is(tc.is, venues.ErrUnavailable) && venues.IsReject(err):
			t.Errorf("%d %q: %v is a rejection; the order may exist", tc.status, tc.msg, err)
		}
	}
	// The throttle says when to come back, on the wall clock.
	err = v.mapError(request{method: "Depth"}, &http.Response{Header: http.Header{}},
		&krakenError{status: 200, msg: "EService:Throttled:" + strconv.FormatInt(venuetest.T0.Add(30*time.Second).Unix(), 10)})
	if !errors.As(err, &rl) || rl.after != 30*time.Second {
		t.Fatalf("throttled: %v", err)
	}
}

func TestRateLimit_PausesWithoutWaitingAndAnOrderIsNotResent(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	if _, err := r.v.Instrument(ctx, venuetest.Symbol); err != nil {
		t.Fatal(err)
	}
	start := r.clk.Now()
	r.fake.Faults().Add(fakex.Fault{Kind: fakex.RateLimited, Path: "/0/public/Depth", RetryAfter: 30 * time.Second})
	if _, err := r.v.Book(ctx, venuetest.Symbol, 1); !errors.Is(err, venues.ErrUnavailable) {
		t.Fatalf("a rate-limited read: %v, want venues.ErrUnavailable (the engine's other venues must not wait)", err)
	}
	if !r.clk.Now().Equal(start) || !strings.Contains(r.logs.String(), "rate limited") {
		t.Fatalf("the adapter waited %s, or logged no warning", r.clk.Now().Sub(start))
	}
	// During the pause nothing is sent; after it, the read works.
	if _, err := r.v.Book(ctx, venuetest.Symbol, 1); !errors.Is(err, venues.ErrUnavailable) {
		t.Fatalf("inside the 30 s pause: %v", err)
	}
	r.clk.Advance(30 * time.Second)
	if _, err := r.v.Book(ctx, venuetest.Symbol, 1); err != nil {
		t.Fatalf("after the pause: %v", err)
	}

	r.fake.Faults().Add(fakex.Fault{Kind: fakex.RateLimited, Path: "/0/private/AddOrder"})
	b, _ := r.sim.Book(ctx, venuetest.Symbol, 1)
	_, _, err := r.v.Place(ctx, market.OrderRequest{ClientID: "rl-1", Symbol: venuetest.Symbol, Side: market.Sell,
		Price: b.Bids[0].Price, Qty: d("0.1"), TIF: market.IOC})
	if !errors.Is(err, venues.ErrUnavailable) || venues.IsReject(err) {
		t.Fatalf("rate-limited order: %v, want venues.ErrUnavailable", err)
	}
	if len(r.fake.Placed()) != 0 {
		t.Fatalf("the order was sent again: %v", r.fake.Placed())
	}
	r.clk.Advance(time.Minute) // the fake's Retry-After
	if _, err := r.v.Order(ctx, venuetest.Symbol, "rl-1"); !errors.Is(err, venues.ErrUnknownOrder) {
		t.Fatalf("lookup after the pause: %v", err)
	}
}

func TestRateLimit_ALongPauseFailsFastInsteadOfBlocking(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	if _, err := r.v.Instrument(ctx, venuetest.Symbol); err != nil {
		t.Fatal(err)
	}
	r.fake.Faults().Add(fakex.Fault{Kind: fakex.Banned, RetryAfter: 15 * time.Minute})
	start := r.clk.Now()
	if _, err := r.v.Book(ctx, venuetest.Symbol, 1); !errors.Is(err, venues.ErrUnavailable) {
		t.Fatalf("locked out: %v", err)
	}
	if _, err := r.v.Tape(ctx, venuetest.Symbol, start.Add(-time.Minute), start); !errors.Is(err, venues.ErrUnavailable) {
		t.Fatalf("while paused: %v", err)
	}
	if !r.clk.Now().Equal(start) {
		t.Fatalf("the market clock moved %s for a 15-minute lockout", r.clk.Now().Sub(start))
	}
}

func TestTape_PagesPastOneThousandTrades(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	from, to := venuetest.T0.Add(-3*time.Hour), venuetest.T0 // 1080 ten-second trades
	got, err := r.v.Tape(ctx, venuetest.Symbol, from, to)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := r.sim.Tape(ctx, venuetest.Symbol, from, to)
	if !got.Volume.Equal(want.Volume) {
		t.Fatalf("volume %s, the venue traded %s", got.Volume, want.Volume)
	}
	if diff := got.Notional.Sub(want.Notional).Abs().Div(want.Notional); diff.GreaterThan(d("0.0001")) {
		t.Fatalf("notional %s vs %s", got.Notional, want.Notional)
	}
	if n := strings.Count(r.logs.String(), `"method":"Trades"`); n < 2 {
		t.Fatalf("%d Trades calls for more than 1000 trades", n)
	}
}

func TestPlace_AnIDUsedBeforeARestartIsNotPlacedAgain(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	b, _ := r.sim.Book(ctx, venuetest.Symbol, 1)
	req := market.OrderRequest{ClientID: "p9-0-kraken-0", Symbol: venuetest.Symbol, Side: market.Sell,
		Price: b.Bids[0].Price, Qty: d("0.01"), TIF: market.IOC}
	first, _, err := r.v.Place(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	// A new process with the same key knows nothing of the first order;
	// Kraken would take the id again as the first order is closed.
	again, err := New(Config{Name: "kraken", BaseURL: r.fake.URL(), APIKey: venues.NewSecret(r.key),
		Secret: venues.NewSecret(r.secret)}, r.clk, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = again.Place(ctx, req)
	if !errors.Is(err, venues.ErrDuplicateClientID) || !strings.Contains(err.Error(), first.VenueOrderID) {
		t.Fatalf("reused id after a restart: %v, want venues.ErrDuplicateClientID naming %s", err, first.VenueOrderID)
	}
	if len(r.fake.Placed()) != 1 {
		t.Fatalf("placed %v", r.fake.Placed())
	}
	fills, err := again.Fills(ctx, venuetest.Symbol, venuetest.T0.Add(-time.Minute), venuetest.T0)
	if err != nil || len(fills) == 0 || fills[0].ClientID != req.ClientID || fills[0].Liquidity != market.Taker {
		t.Fatalf("fills of the first process's order: %+v %v", fills, err)
	}
}

func TestPlace_RestingOrderFillsLaterAsMaker(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	b, _ := r.sim.Book(ctx, venuetest.Symbol, 1)
	// One at each touch: whichever way the market moves, one of them fills.
	for _, req := range []market.OrderRequest{
		{ClientID: "ask-9", Symbol: venuetest.Symbol, Side: market.Sell, Price: b.Asks[0].Price, Qty: d("0.02"), TIF: market.PostOnly},
		{ClientID: "bid-9", Symbol: venuetest.Symbol, Side: market.Buy, Price: b.Bids[0].Price, Qty: d("0.02"), TIF: market.PostOnly},
	} {
		o, fills, err := r.v.Place(ctx, req)
		if err != nil || len(fills) != 0 || o.Status != market.New || o.TIF != market.PostOnly {
			t.Fatalf("post-only at the touch: %+v %v %v", o, fills, err)
		}
	}
	r.clk.Advance(30 * time.Minute)
	filled := map[string]decimal.Decimal{}
	for _, id := range []string{"ask-9", "bid-9"} {
		got, err := r.v.Order(ctx, venuetest.Symbol, id)
		if err != nil {
			t.Fatal(err)
		}
		filled[id] = got.Filled
	}
	listed, err := r.v.Fills(ctx, venuetest.Symbol, venuetest.T0, r.clk.Now())
	if err != nil || len(listed) == 0 {
		t.Fatalf("fills %v %v (orders filled %v)", listed, err, filled)
	}
	sum := map[string]decimal.Decimal{}
	for _, f := range listed {
		sum[f.ClientID] = sum[f.ClientID].Add(f.Qty)
		if f.Liquidity != market.Maker || !f.Fee.Equal(f.Price.Mul(f.Qty).Mul(d("0.0025")).Round(8)) || f.FeeAsset != "USDT" {
			t.Errorf("fill %+v", f)
		}
	}
	for id, q := range filled {
		if !sum[id].Equal(q) {
			t.Fatalf("%s: fills add to %s, the order filled %s", id, sum[id], q)
		}
	}
}

func TestPlace_ClientIDKrakenCannotTakeIsRefusedBeforeSending(t *testing.T) {
	r := newRig(t)
	_, _, err := r.v.Place(context.Background(), market.OrderRequest{ClientID: "this-id-is-longer-than-18",
		Symbol: venuetest.Symbol, Side: market.Sell, Price: d("63000"), Qty: d("0.1"), TIF: market.IOC})
	var re *venues.RejectError
	if !errors.As(err, &re) || re.Code != "CLIENT_ID" || len(r.fake.Placed()) != 0 {
		t.Fatalf("%v, want a CLIENT_ID rejection", err)
	}
	if r.v.MaxClientIDLen() != 18 {
		t.Fatalf("MaxClientIDLen %d", r.v.MaxClientIDLen())
	}
}
