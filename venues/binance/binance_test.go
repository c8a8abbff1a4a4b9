package binance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/engine"
	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/venues"
	"github.com/blockexec/blockexec/venues/binance/binancefake"
	"github.com/blockexec/blockexec/venues/fakex"
	"github.com/blockexec/blockexec/venues/sim"
	"github.com/blockexec/blockexec/venues/venuetest"
)

var (
	_ engine.Venue         = (*Venue)(nil)
	_ engine.FillLister    = (*Venue)(nil)
	_ engine.ClientIDRules = (*Venue)(nil)
)

// Obviously fake credentials, made up for these tests: the fake checks
// them as Binance would.
const (
	testKey    = "fake-api-key-for-tests-only-abcdefghij"
	testSecret = "fake-secret-for-tests-only-0123456789abcdef"
)

func start(t *testing.T, env venuetest.Env, o binancefake.Options) (*binancefake.Server, *Venue) {
	t.Helper()
	o.Venue, o.APIKey, o.Secret, o.Clock = env.Sim, testKey, testSecret, env.Clock
	fake, err := binancefake.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	secret := testSecret
	if env.WrongSecret {
		secret = "fake-but-wrong-secret-0123456789abcdef"
	}
	v, err := New(Config{Name: "binance", BaseURL: fake.URL(), APIKey: venues.NewSecret(testKey),
		SecretKey: venues.NewSecret(secret), HTTPClient: &http.Client{Timeout: env.Timeout}},
		env.Clock, zerolog.New(env.Logs).Level(zerolog.DebugLevel))
	if err != nil {
		t.Fatal(err)
	}
	return fake, v
}

func TestConformance(t *testing.T) {
	venuetest.Run(t, venuetest.Rules, func(t *testing.T, env venuetest.Env) venuetest.Rig {
		fake, v := start(t, env, binancefake.Options{})
		// With the user data stream on, recovered fills come from it once
		// it covers the order, from REST before.
		if err := v.StartStream(context.Background()); err != nil && !env.WrongSecret {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = v.Close() })
		return venuetest.Rig{Venue: v, Server: fake.Server(), Faults: fake.Faults(), PlaceMethod: http.MethodPost,
			PlacePath: "/api/v3/order", Placed: fake.Placed, Secrets: []string{testKey, testSecret}}
	})
}

// rig is the fake and the adapter over a fresh sim venue.
type rig struct {
	clk  *clock.Virtual
	sim  *sim.Venue
	fake *binancefake.Server
	v    *Venue
	logs *bytes.Buffer
}

func newRig(t *testing.T, o binancefake.Options) rig {
	t.Helper()
	t0 := venuetest.T0
	m, err := sim.NewMarket(sim.MarketConfig{Seed: 3, Symbol: "BTCUSDT", Base: "BTC", Quote: "USDT",
		StartPrice: venuetest.D("63000"), Start: t0.Add(-8 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewVirtual(t0)
	sv, err := sim.New(m, clk, sim.Config{Name: "core", Share: 0.5, Instrument: venuetest.Rules})
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	fake, v := start(t, venuetest.Env{Clock: clk, Sim: sv, Logs: logs, Timeout: time.Second}, o)
	return rig{clk: clk, sim: sv, fake: fake, v: v, logs: logs}
}

func TestInstrument_ReadsEveryFilterAndTheRateLimits(t *testing.T) {
	r := newRig(t, binancefake.Options{})
	in, err := r.v.Instrument(context.Background(), "BTCUSDT")
	if err != nil {
		t.Fatal(err)
	}
	if !in.TakerFee.Equal(venuetest.Rules.TakerFee) || !in.MakerFee.Equal(venuetest.Rules.MakerFee) {
		t.Fatalf("fees %s/%s, the account's rates are %s/%s", in.MakerFee, in.TakerFee, venuetest.Rules.MakerFee, venuetest.Rules.TakerFee)
	}
	if in.MaxOpenOrders != 200 {
		t.Fatalf("MAX_NUM_ORDERS read as %d, want 200", in.MaxOpenOrders)
	}
	if r.v.weightLimit != 6000 || r.v.orderLimit != 100 {
		t.Fatalf("rate limits read as weight %d / min, orders %d / 10 s", r.v.weightLimit, r.v.orderLimit)
	}
}

func TestClockSkew_ResyncsOnceOnMinus1021AndCarriesOn(t *testing.T) {
	r := newRig(t, binancefake.Options{ClockOffset: -20 * time.Second}) // the server's clock is behind ours
	b, err := r.v.Book(context.Background(), "BTCUSDT", 1)
	if err != nil {
		t.Fatal(err)
	}
	_, fills, err := r.v.Place(context.Background(), market.OrderRequest{ClientID: "skew-1", Symbol: "BTCUSDT",
		Side: market.Sell, Price: b.Bids[0].Price, Qty: venuetest.D("0.3"), TIF: market.IOC})
	if err != nil || len(fills) == 0 {
		t.Fatalf("after a -1021 the adapter must resync and place: %v", err)
	}
	if !strings.Contains(r.logs.String(), "resynchronised") {
		t.Fatal("no resync in the logs")
	}
	if len(r.fake.Placed()) != 1 {
		t.Fatalf("placed %v: the refused attempt must not count", r.fake.Placed())
	}
}

func TestBan_418KeepsTheAdapterAwayUntilRetryAfter(t *testing.T) {
	r := newRig(t, binancefake.Options{})
	ctx := context.Background()
	r.fake.Faults().Add(fakex.Fault{Kind: fakex.Banned, RetryAfter: 3 * time.Minute})
	_, err := r.v.Book(ctx, "BTCUSDT", 5)
	if !errors.Is(err, venues.ErrUnavailable) || !strings.Contains(err.Error(), "IP banned") {
		t.Fatalf("418: %v", err)
	}
	hits := r.fake.Faults().Hits(fakex.Banned)
	r.clk.Advance(2 * time.Minute)
	if _, err := r.v.Book(ctx, "BTCUSDT", 5); !errors.Is(err, venues.ErrUnavailable) {
		t.Fatalf("inside the ban: %v", err)
	}
	if r.fake.Faults().Hits(fakex.Banned) != hits {
		t.Fatal("the adapter called the venue during its ban")
	}
	r.clk.Advance(90 * time.Second)
	if _, err := r.v.Book(ctx, "BTCUSDT", 5); err != nil {
		t.Fatalf("after the ban: %v", err)
	}
}

func TestWeight_StopsBeforeTheLimitUntilTheNextMinute(t *testing.T) {
	r := newRig(t, binancefake.Options{})
	ctx := context.Background()
	// A 5000-level book weighs 250: after 22 (5,500, past 90 % of 6,000)
	// the adapter stops sending for the rest of the minute.
	var sent int
	for ; sent < 30; sent++ {
		if _, err := r.v.Book(ctx, "BTCUSDT", 5000); err != nil {
			if !errors.Is(err, venues.ErrUnavailable) || !strings.Contains(err.Error(), "request weight near the limit") {
				t.Fatalf("book %d: %v", sent, err)
			}
			break
		}
	}
	if sent == 30 || sent < 20 {
		t.Fatalf("%d heavy books in one minute: want a stop after about 22", sent)
	}
	if r.fake.Faults().Hits(fakex.RateLimited) != 0 || strings.Contains(r.logs.String(), "429") {
		t.Fatal("the adapter hit Binance's limit instead of stopping before it")
	}
	r.clk.Advance(time.Minute)
	if _, err := r.v.Book(ctx, "BTCUSDT", 5000); err != nil {
		t.Fatalf("the next minute: %v", err)
	}
}

func TestOrderCount_StopsPlacingBeforeTheTenSecondLimit(t *testing.T) {
	r := newRig(t, binancefake.Options{})
	ctx := context.Background()
	b, _ := r.v.Book(ctx, "BTCUSDT", 1)
	placed := 0
	var err error
	for ; placed < 100; placed++ {
		_, _, err = r.v.Place(ctx, market.OrderRequest{ClientID: fmt.Sprintf("oc-%d", placed), Symbol: "BTCUSDT",
			Side: market.Sell, Price: b.Bids[0].Price, Qty: venuetest.D("0.003"), TIF: market.IOC})
		if err != nil {
			break
		}
	}
	// 90 of 100 orders per 10 s: the 91st is held back by the adapter.
	if placed != 90 || !errors.Is(err, venues.ErrUnavailable) || !strings.Contains(err.Error(), "order count near the limit") {
		t.Fatalf("placed %d, then %v: want a stop at 90 of the 100 orders per 10 s", placed, err)
	}
	if _, err := r.v.Book(ctx, "BTCUSDT", 1); err != nil {
		t.Fatalf("reads go on while orders wait: %v", err)
	}
	r.clk.Advance(10 * time.Second)
	if _, _, err := r.v.Place(ctx, market.OrderRequest{ClientID: "oc-next", Symbol: "BTCUSDT", Side: market.Sell,
		Price: b.Bids[0].Price, Qty: venuetest.D("0.003"), TIF: market.IOC}); err != nil {
		t.Fatalf("the next window: %v", err)
	}
}

func TestPermissions_RefusesAKeyThatCanWithdrawAndWarnsWithoutIPRestriction(t *testing.T) {
	for _, tc := range []struct {
		name     string
		res      binancefake.Restrictions
		refused  bool
		warnings []string
	}{
		{"trading only, IP restricted", binancefake.Restrictions{EnableReading: true, EnableSpotAndMarginTrading: true, IPRestrict: true}, false, nil},
		{"no IP restriction", binancefake.Restrictions{EnableReading: true, EnableSpotAndMarginTrading: true}, false, []string{"IP restriction is off"}},
		{"withdrawals", binancefake.Restrictions{EnableReading: true, EnableSpotAndMarginTrading: true, EnableWithdrawals: true, IPRestrict: true}, true, nil},
		{"universal transfer", binancefake.Restrictions{EnableSpotAndMarginTrading: true, PermitsUniversalTransfer: true, IPRestrict: true}, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := tc.res
			r := newRig(t, binancefake.Options{Restrictions: &res})
			rep, err := r.v.CheckKey(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got := rep.Refusal() != nil; got != tc.refused || !rep.Reachable {
				t.Fatalf("refused %v (reachable %v), want %v: %+v", got, rep.Reachable, tc.refused, rep)
			}
			for _, w := range tc.warnings {
				if !strings.Contains(strings.Join(rep.Warnings, "; "), w) {
					t.Fatalf("warnings %v lack %q", rep.Warnings, w)
				}
			}
			if !strings.Contains(rep.RateLimit, "of 6000 per minute") || !strings.Contains(rep.RateLimit, "of 100 per 10 SECOND") {
				t.Fatalf("rate-limit headroom %q", rep.RateLimit)
			}
		})
	}
}

func TestFake_RefusesRequestsBinanceWouldRefuse(t *testing.T) {
	r := newRig(t, binancefake.Options{})
	ctx := context.Background()
	b, _ := r.v.Book(ctx, "BTCUSDT", 1)
	for _, tc := range []struct {
		name string
		req  market.OrderRequest
		code string
	}{
		{"too much precision", market.OrderRequest{ClientID: "p-1", Qty: venuetest.D("0.123456789"), Price: b.Bids[0].Price}, "FILTER"},
		{"price off the tick", market.OrderRequest{ClientID: "p-2", Qty: venuetest.D("0.3"), Price: b.Bids[0].Price.Add(venuetest.D("0.001"))}, "FILTER"},
		{"below min notional", market.OrderRequest{ClientID: "p-3", Qty: venuetest.D("0.003"), Price: venuetest.D("1")}, "FILTER"},
		{"client id charset", market.OrderRequest{ClientID: "bad id!", Qty: venuetest.D("0.3"), Price: b.Bids[0].Price}, "FILTER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			req.Symbol, req.Side, req.TIF = "BTCUSDT", market.Sell, market.IOC
			_, _, err := r.v.Place(ctx, req)
			var re *venues.RejectError
			if !errors.As(err, &re) || re.Code != tc.code {
				t.Fatalf("%v, want a %s rejection", err, tc.code)
			}
		})
	}
	if n := len(r.fake.Placed()); n != 0 {
		t.Fatalf("the fake placed %d refused orders", n)
	}
}

func TestErrors_NeverCarryTheSignedURL(t *testing.T) {
	r := newRig(t, binancefake.Options{})
	r.fake.Faults().Add(fakex.Fault{Kind: fakex.Timeout, Path: "/api/v3/order"})
	_, _, err := r.v.Place(context.Background(), market.OrderRequest{ClientID: "t-1", Symbol: "BTCUSDT",
		Side: market.Sell, Price: venuetest.D("60000"), Qty: venuetest.D("0.3"), TIF: market.IOC})
	if !errors.Is(err, venues.ErrUnavailable) {
		t.Fatalf("timeout: %v, want venues.ErrUnavailable (outcome unknown)", err)
	}
	if strings.Contains(err.Error(), "signature") || strings.Contains(err.Error(), "timestamp=") {
		t.Fatalf("the error carries the signed request: %v", err)
	}
}

func TestTape_FillsOfAnotherProcessKeepTheirClientIDs(t *testing.T) {
	r := newRig(t, binancefake.Options{})
	ctx := context.Background()
	b, _ := r.v.Book(ctx, "BTCUSDT", 1)
	if _, _, err := r.v.Place(ctx, market.OrderRequest{ClientID: "before-restart", Symbol: "BTCUSDT",
		Side: market.Sell, Price: b.Bids[0].Price, Qty: venuetest.D("0.3"), TIF: market.IOC}); err != nil {
		t.Fatal(err)
	}
	// A new adapter (a restarted engine) has never seen the order.
	fresh, err := New(Config{Name: "binance", BaseURL: r.fake.URL(), APIKey: venues.NewSecret(testKey),
		SecretKey: venues.NewSecret(testSecret)}, r.clk, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	r.clk.Advance(time.Second)
	fills, err := fresh.Fills(ctx, "BTCUSDT", venuetest.T0.Add(-time.Minute), r.clk.Now())
	if err != nil || len(fills) == 0 {
		t.Fatalf("fills %v %v", fills, err)
	}
	sum := decimal.Zero
	for _, f := range fills {
		if f.ClientID != "before-restart" {
			t.Fatalf("fill %+v lost its client id", f)
		}
		sum = sum.Add(f.Qty)
	}
	if !sum.Equal(venuetest.D("0.3")) {
		t.Fatalf("fills add to %s", sum)
	}
}

func TestStream_FillsComeFromTheUserStreamNotREST(t *testing.T) {
	r := newRig(t, binancefake.Options{})
	ctx := context.Background()
	if err := r.v.StartStream(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.v.Close() })
	r.clk.Advance(time.Second) // trade after the subscription
	b, _ := r.v.Book(ctx, "BTCUSDT", 1)
	_, placed, err := r.v.Place(ctx, market.OrderRequest{ClientID: "ws-1", Symbol: "BTCUSDT", Side: market.Sell,
		Price: b.Bids[0].Price, Qty: venuetest.D("0.3"), TIF: market.IOC})
	if err != nil || len(placed) == 0 {
		t.Fatalf("place: %v", err)
	}
	var got []market.Fill
	waitFor(t, "the fills on the stream", func() bool {
		got, err = r.v.Fills(ctx, "BTCUSDT", venuetest.T0, r.clk.Now())
		return err == nil && len(got) == len(placed)
	})
	for i, f := range got {
		if f.TradeID != placed[i].TradeID || f.ClientID != "ws-1" || !f.Qty.Equal(placed[i].Qty) ||
			!f.Fee.Equal(placed[i].Fee) || f.Venue != "binance" {
			t.Fatalf("stream fill %+v, placed %+v", f, placed[i])
		}
	}
	if n := r.fake.TradeQueries(); n != 0 {
		t.Fatalf("Fills asked REST %d times while the stream was complete", n)
	}
	// Before the stream started it is not complete: REST answers.
	if _, err := r.v.Fills(ctx, "BTCUSDT", venuetest.T0.Add(-time.Hour), r.clk.Now()); err != nil || r.fake.TradeQueries() != 1 {
		t.Fatalf("a window before the stream: %v, %d REST queries", err, r.fake.TradeQueries())
	}
}

func TestStream_ReconnectsAndFillsTheGapFromREST(t *testing.T) {
	r := newRig(t, binancefake.Options{})
	ctx := context.Background()
	if err := r.v.StartStream(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.v.Close() })
	r.fake.DropStreams()
	waitFor(t, "the adapter to notice the drop", func() bool {
		complete, _, _ := r.v.StreamStatus()
		return !complete
	})
	// Traded while the stream is down: only REST knows.
	r.clk.Advance(time.Second)
	b, _ := r.v.Book(ctx, "BTCUSDT", 1)
	_, placed, err := r.v.Place(ctx, market.OrderRequest{ClientID: "gap-1", Symbol: "BTCUSDT", Side: market.Sell,
		Price: b.Bids[0].Price, Qty: venuetest.D("0.3"), TIF: market.IOC})
	if err != nil || len(placed) == 0 {
		t.Fatalf("place: %v", err)
	}
	waitFor(t, "the stream to come back", func() bool {
		complete, reconnects, _ := r.v.StreamStatus()
		return complete && reconnects == 1
	})
	queries := r.fake.TradeQueries()
	if queries == 0 {
		t.Fatal("no REST backfill after the reconnect")
	}
	got, err := r.v.Fills(ctx, "BTCUSDT", venuetest.T0, r.clk.Now())
	if err != nil || len(got) != len(placed) || got[0].ClientID != "gap-1" {
		t.Fatalf("fills after the gap: %v %v", got, err)
	}
	if r.fake.TradeQueries() != queries {
		t.Fatal("Fills went to REST although the stream is complete again")
	}
	if !strings.Contains(r.logs.String(), "gap filled from REST") {
		t.Fatal("no log of the recovery")
	}
}

func TestStream_SilentConnectionIsDroppedAndRedialled(t *testing.T) {
	r := newRig(t, binancefake.Options{NoPings: true})
	v, err := New(Config{Name: "binance", BaseURL: r.fake.URL(), APIKey: venues.NewSecret(testKey),
		SecretKey: venues.NewSecret(testSecret), StreamIdle: 100 * time.Millisecond}, r.clk, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := v.StartStream(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	waitFor(t, "a silent connection to be taken for dead and redialled", func() bool {
		_, reconnects, _ := v.StreamStatus()
		return reconnects >= 1
	})
}

func TestStream_WrongSecretIsRefusedAndNamesNoSecret(t *testing.T) {
	r := newRig(t, binancefake.Options{})
	v, err := New(Config{Name: "binance", BaseURL: r.fake.URL(), APIKey: venues.NewSecret(testKey),
		SecretKey: venues.NewSecret("fake-but-wrong-secret-0123456789abcdef")}, r.clk, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	err = v.StartStream(context.Background())
	var re *venues.RejectError
	if !errors.As(err, &re) || re.Code != "AUTH" || strings.Contains(err.Error(), "wrong-secret") {
		t.Fatalf("subscription with a wrong secret: %v", err)
	}
	if r.fake.Subscribers() != 0 {
		t.Fatal("the fake took the subscription")
	}
}

// waitFor polls cond, for what a background goroutine does (bounded).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := (clock.Wall{}).Now().Add(10 * time.Second)
	for !cond() {
		if (clock.Wall{}).Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// An executionReport as Binance documents it: "E" and "W" have no field in
// go-binance's WsOrderUpdate and would fall into "e" and "w" by encoding/
// json's case-insensitive matching if execReport did not claim them.
const docExecutionReport = `{"e":"executionReport","E":1499405658658,"s":"ETHBTC","c":"mUvoqJxFIILMdfAW5iGSOW","S":"BUY",
"o":"LIMIT","f":"GTC","q":"1.00000000","p":"0.10264410","P":"0.00000000","F":"0.00000000","g":-1,"C":"","x":"TRADE",
"X":"PARTIALLY_FILLED","r":"NONE","i":4293153,"l":"0.40000000","z":"0.40000000","L":"0.10264410","n":"0.00040000",
"N":"ETH","T":1499405658657,"t":718,"I":8641984,"w":true,"m":false,"M":false,"O":1499405658657,"Z":"0.04105764",
"Y":"0.04105764","Q":"0.00000000","W":1499405658657,"V":"NONE"}`

func TestStream_DecodesBinancesDocumentedExecutionReport(t *testing.T) {
	var u execReport
	if err := json.Unmarshal([]byte(docExecutionReport), &u); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, binancefake.Options{})
	f, err := r.v.streamFill(u.WsOrderUpdate)
	if err != nil || u.Type != "executionReport" || f.TradeID != "718" || f.ClientID != "mUvoqJxFIILMdfAW5iGSOW" ||
		!f.Qty.Equal(venuetest.D("0.4")) || !f.Fee.Equal(venuetest.D("0.0004")) || f.FeeAsset != "ETH" ||
		f.Side != market.Buy || f.Liquidity != market.Taker {
		t.Fatalf("decoded %+v into %+v, %v", u, f, err)
	}
}

func TestClientID_ReuseIsRefusedByTheAdapterAsBinanceWouldTakeIt(t *testing.T) {
	r := newRig(t, binancefake.Options{})
	ctx := context.Background()
	b, _ := r.v.Book(ctx, "BTCUSDT", 1)
	req := market.OrderRequest{ClientID: "once-1", Symbol: "BTCUSDT", Side: market.Sell, Price: b.Bids[0].Price,
		Qty: venuetest.D("0.3"), TIF: market.IOC}
	if _, _, err := r.v.Place(ctx, req); err != nil {
		t.Fatal(err)
	}
	_, _, err := r.v.Place(ctx, req)
	if !errors.Is(err, venues.ErrDuplicateClientID) || len(r.fake.Placed()) != 1 {
		t.Fatalf("reuse through the adapter: %v, %d orders at the venue", err, len(r.fake.Placed()))
	}
	// Binance itself takes the id of a done order again: a second adapter
	// (a restarted process) that did not look first places a second order.
	// That is what the adapter's refusal, and the engine's lookup before
	// placing, protect against.
	fresh, err := New(Config{Name: "binance", BaseURL: r.fake.URL(), APIKey: venues.NewSecret(testKey),
		SecretKey: venues.NewSecret(testSecret)}, r.clk, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := fresh.Place(ctx, req); err != nil || len(r.fake.Placed()) != 2 {
		t.Fatalf("the fake must take a done order's id again, as Binance does: %v, %v", err, r.fake.Placed())
	}
	// While an order is open its id is refused by Binance.
	far := market.CeilToStep(b.Asks[0].Price.Mul(venuetest.D("1.05")), venuetest.Rules.Tick)
	open := market.OrderRequest{ClientID: "open-1", Symbol: "BTCUSDT", Side: market.Sell, Price: far,
		Qty: venuetest.D("0.3"), TIF: market.GTC}
	if _, _, err := r.v.Place(ctx, open); err != nil {
		t.Fatal(err)
	}
	if _, _, err := fresh.Place(ctx, open); !errors.Is(err, venues.ErrDuplicateClientID) {
		t.Fatalf("an open order's id again: %v, want Binance's -2010 Duplicate order sent", err)
	}
}

func TestTestnet_UsesTheTestnetAndSkipsWhatItDoesNotServe(t *testing.T) {
	v, err := New(Config{Name: "binance", Testnet: true, APIKey: venues.NewSecret(testKey),
		SecretKey: venues.NewSecret(testSecret)}, clock.NewVirtual(venuetest.T0), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if v.c.BaseURL != testnetURL {
		t.Fatalf("REST at %s, want the testnet", v.c.BaseURL)
	}
	if u, _ := v.wsURL(); u != wsAPITestnetURL {
		t.Fatalf("user stream at %s, want the testnet's", u)
	}
	// Against the fake (standing in for the testnet): no /sapi call, and a
	// report that says the permissions are not known.
	r := newRig(t, binancefake.Options{Restrictions: &binancefake.Restrictions{EnableWithdrawals: true}})
	tv, err := New(Config{Name: "binance", Testnet: true, BaseURL: r.fake.URL(), APIKey: venues.NewSecret(testKey),
		SecretKey: venues.NewSecret(testSecret)}, r.clk, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := tv.CheckKey(context.Background())
	if err != nil || !rep.Reachable || rep.CanWithdraw != nil || rep.Refusal() != nil ||
		!strings.Contains(strings.Join(rep.Warnings, ";"), "testnet does not report") {
		t.Fatalf("testnet key check: %+v %v", rep, err)
	}
}
