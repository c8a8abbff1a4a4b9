package venuetest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/engine"
	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/venues"
	"github.com/blockexec/blockexec/venues/fakex"
	"github.com/blockexec/blockexec/venues/sim"
)

func instrument(t *testing.T, x fixture) {
	r := x.r
	in, err := r.Venue.Instrument(context.Background(), Symbol)
	if err != nil {
		t.Fatal(err)
	}
	rules := x.rules
	if !in.Tick.Equal(rules.Tick) || !in.Step.Equal(rules.Step) || !in.MinQty.Equal(rules.MinQty) ||
		!in.MinNotional.Equal(rules.MinNotional) {
		t.Fatalf("instrument %+v, want tick %s step %s min qty %s min notional %s", in, rules.Tick, rules.Step,
			rules.MinQty, rules.MinNotional)
	}
	if in.Symbol != Symbol || in.Base != "BTC" || in.Quote != "USDT" {
		t.Fatalf("instrument names %s %s/%s, want %s BTC/USDT", in.Symbol, in.Base, in.Quote, Symbol)
	}
	three := rules.Step.Mul(D("3"))
	if got := in.Quantity(rules.Step.Mul(D("3.5"))); !got.Equal(three) {
		t.Fatalf("3.5 steps round to %s on a %s step, want %s", got, rules.Step, three)
	}
	base := D("63000")
	half := base.Add(rules.Tick.Div(D("2")))
	if got := in.LimitPrice(market.Sell, half); !got.Equal(base.Add(rules.Tick)) {
		t.Fatalf("a sell limit of %s rounds to %s, want %s (up, never below the limit)", half, got, base.Add(rules.Tick))
	}
	if got := in.LimitPrice(market.Buy, half); !got.Equal(base) {
		t.Fatalf("a buy limit of %s rounds to %s, want %s (down)", half, got, base)
	}
	if _, err := r.Venue.Instrument(context.Background(), "DOGEUSDT"); !errors.Is(err, venues.ErrUnknownSymbol) {
		t.Fatalf("unknown symbol: %v, want venues.ErrUnknownSymbol", err)
	}
}

func book(t *testing.T, x fixture) {
	r, sv := x.r, x.sim
	ctx := context.Background()
	got, err := r.Venue.Book(ctx, Symbol, 5)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := sv.Book(ctx, Symbol, 5)
	if len(got.Bids) != 5 || len(got.Asks) != 5 {
		t.Fatalf("book has %d bids and %d asks, want 5 each", len(got.Bids), len(got.Asks))
	}
	for i := range want.Bids {
		if !got.Bids[i].Price.Equal(want.Bids[i].Price) || !got.Bids[i].Qty.Equal(want.Bids[i].Qty) ||
			!got.Asks[i].Price.Equal(want.Asks[i].Price) || !got.Asks[i].Qty.Equal(want.Asks[i].Qty) {
			t.Fatalf("level %d: got bid %v ask %v, the exchange has bid %v ask %v", i, got.Bids[i], got.Asks[i],
				want.Bids[i], want.Asks[i])
		}
	}
	if got.Time.IsZero() {
		t.Fatal("book without a time: the engine cannot tell a stale book")
	}
}

func tape(t *testing.T, x fixture) {
	r, sv, clk := x.r, x.sim, x.clk
	ctx := context.Background()
	// Trade first, so our own volume is in the window too.
	b, _ := sv.Book(ctx, Symbol, 1)
	if _, _, err := r.Venue.Place(ctx, market.OrderRequest{ClientID: "tape-1", Symbol: Symbol, Side: market.Sell,
		Price: b.Bids[0].Price, Qty: D("0.3"), TIF: market.IOC}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	for _, w := range []struct{ from, to time.Time }{
		{T0.Add(-time.Minute), T0},
		{T0.Add(-90 * time.Minute), T0.Add(time.Minute)}, // more than an hour, and more than a page of trades
	} {
		got, err := r.Venue.Tape(ctx, Symbol, w.from, w.to)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := sv.Tape(ctx, Symbol, w.from, w.to)
		if !got.Volume.Equal(want.Volume) {
			t.Fatalf("tape (%s, %s]: volume %s, the exchange traded %s", w.from.Format(time.Kitchen),
				w.to.Format(time.Kitchen), got.Volume, want.Volume)
		}
		if got.Volume.IsZero() {
			t.Fatal("empty tape")
		}
		// Prices print on the tick, so the notional may differ by rounding
		// only: well under a basis point.
		diff := got.Notional.Sub(want.Notional).Abs().Div(want.Notional)
		if diff.GreaterThan(D("0.0001")) {
			t.Fatalf("tape notional %s vs %s", got.Notional, want.Notional)
		}
	}
}

func place(t *testing.T, x fixture) {
	r, sv, clk := x.r, x.sim, x.clk
	ctx := context.Background()
	b, _ := sv.Book(ctx, Symbol, 2)
	req := market.OrderRequest{ClientID: "p1-0-x-0", Symbol: Symbol, Side: market.Sell, Price: b.Bids[1].Price,
		Qty: D("0.51"), TIF: market.IOC}
	o, fills, err := r.Venue.Place(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if o.ClientID != req.ClientID || !o.Filled.IsPositive() || len(fills) == 0 || o.VenueOrderID == "" {
		t.Fatalf("order %+v fills %v", o, fills)
	}
	sum := decimal.Zero
	for _, fl := range fills {
		sum = sum.Add(fl.Qty)
		fee := fl.Price.Mul(fl.Qty).Mul(x.rules.TakerFee)
		if fl.Price.LessThan(req.Price) || fl.FeeAsset != "USDT" || fl.Fee.Sub(fee).Abs().GreaterThan(D("0.00000001")) ||
			fl.ClientID != req.ClientID || fl.TradeID == "" || fl.Venue != r.Venue.Name() || fl.Symbol != Symbol ||
			fl.Side != market.Sell || fl.Liquidity != market.Taker {
			t.Errorf("fill %+v: want price ≥ %s, fee %s USDT, our client id, the venue's name", fl, req.Price, fee)
		}
	}
	if !sum.Equal(o.Filled) {
		t.Fatalf("fills add to %s, the order filled %s", sum, o.Filled)
	}
	got, err := r.Venue.Order(ctx, Symbol, req.ClientID)
	if err != nil || !got.Filled.Equal(o.Filled) || !got.Status.Done() || got.ClientID != req.ClientID {
		t.Fatalf("lookup by client id: %+v %v", got, err)
	}
	if _, err := r.Venue.Order(ctx, Symbol, "never-placed"); !errors.Is(err, venues.ErrUnknownOrder) {
		t.Fatalf("unknown order: %v, want venues.ErrUnknownOrder", err)
	}
	clk.Advance(time.Second)
	fl, ok := r.Venue.(engine.FillLister)
	if !ok {
		t.Fatal("adapter cannot list its fills: the engine cannot recover an order whose answer was lost")
	}
	listed, err := fl.Fills(ctx, Symbol, T0.Add(-time.Minute), T0.Add(time.Minute))
	if err != nil || len(listed) != len(fills) {
		t.Fatalf("own trades: %d %v, want %d", len(listed), err, len(fills))
	}
	for i, l := range listed {
		if l.ClientID != req.ClientID || l.TradeID != fills[i].TradeID || !l.Qty.Equal(fills[i].Qty) {
			t.Fatalf("own trade %d %+v, placed %+v", i, l, fills[i])
		}
	}
}

// partial: an IOC larger than the book inside its limit fills in part and
// expires the rest, and the fills add up to what the order reports.
func partial(t *testing.T, x fixture) {
	r, sv := x.r, x.sim
	ctx := context.Background()
	b, _ := sv.Book(ctx, Symbol, 1)
	top := b.Bids[0]
	want := market.CeilToStep(top.Qty.Mul(D("3")), x.rules.Step) // three times the touch, priced at the touch
	o, fills, err := r.Venue.Place(ctx, market.OrderRequest{ClientID: "part-1", Symbol: Symbol, Side: market.Sell,
		Price: top.Price, Qty: want, TIF: market.IOC})
	if err != nil {
		t.Fatal(err)
	}
	sum := decimal.Zero
	for _, f := range fills {
		sum = sum.Add(f.Qty)
	}
	if !o.Filled.IsPositive() || !o.Filled.LessThan(want) || !sum.Equal(o.Filled) || o.Status != market.Expired {
		t.Fatalf("IOC of %s at the touch (%s there): %s filled, fills add to %s, status %s; want a partial fill, the rest expired",
			want, top.Qty, o.Filled, sum, o.Status)
	}
	got, err := r.Venue.Order(ctx, Symbol, "part-1")
	if err != nil || !got.Filled.Equal(o.Filled) || got.Status != market.Expired {
		t.Fatalf("lookup of the partial IOC: %+v %v", got, err)
	}
}

func refusals(t *testing.T, x fixture) {
	r, sv := x.r, x.sim
	ctx := context.Background()
	b, _ := sv.Book(ctx, Symbol, 1)
	_, _, err := r.Venue.Place(ctx, market.OrderRequest{ClientID: "pm-1", Symbol: Symbol, Side: market.Sell,
		Price: b.Bids[0].Price, Qty: D("0.3"), TIF: market.PostOnly})
	if !errors.Is(err, venues.ErrWouldTake) || !venues.IsReject(err) {
		t.Fatalf("crossing post-only: %v, want venues.ErrWouldTake", err)
	}
	least := market.OrderRequest{ClientID: "tiny-1", Symbol: Symbol, Side: market.Sell, Price: b.Bids[0].Price,
		Qty: x.rules.MinQty, TIF: market.IOC}
	first, _, err := r.Venue.Place(ctx, least)
	if err != nil {
		t.Fatalf("an order of the minimum quantity: %v", err)
	}
	offStep := x.rules.MinQty.Add(x.rules.Step.Div(D("2")))
	_, _, err = r.Venue.Place(ctx, market.OrderRequest{ClientID: "step-1", Symbol: Symbol, Side: market.Sell,
		Price: b.Bids[0].Price, Qty: offStep, TIF: market.IOC})
	if !venues.IsReject(err) {
		t.Fatalf("quantity %s off the %s step: %v, want a rejection", offStep, x.rules.Step, err)
	}
	// A reused client id never makes a second order: the venue refuses it,
	// or (as some do) answers with the first order and nothing new.
	placed := len(r.Placed())
	again, fills, err := r.Venue.Place(ctx, least)
	switch {
	case len(r.Placed()) != placed:
		t.Fatalf("a reused client id placed a second order: %v", r.Placed())
	case err != nil && (!errors.Is(err, venues.ErrDuplicateClientID) || !venues.IsReject(err)):
		t.Fatalf("reused client id: %v, want venues.ErrDuplicateClientID", err)
	case err == nil && (again.VenueOrderID != first.VenueOrderID || len(fills) != 0):
		t.Fatalf("reused client id answered order %s with %d fills; the first was %s", again.VenueOrderID, len(fills),
			first.VenueOrderID)
	}
	if _, _, err := r.Venue.Place(ctx, market.OrderRequest{ClientID: "sym-1", Symbol: "DOGEUSDT", Side: market.Sell,
		Price: D("0.1"), Qty: D("100"), TIF: market.IOC}); err == nil {
		t.Fatal("an unknown symbol was accepted")
	}
}

func cancel(t *testing.T, x fixture) {
	r, sv := x.r, x.sim
	ctx := context.Background()
	b, _ := sv.Book(ctx, Symbol, 1)
	far := market.CeilToStep(b.Asks[0].Price.Mul(D("1.05")), x.rules.Tick)
	o, fills, err := r.Venue.Place(ctx, market.OrderRequest{ClientID: "rest-1", Symbol: Symbol, Side: market.Sell,
		Price: far, Qty: D("0.3"), TIF: market.GTC})
	if err != nil || len(fills) != 0 || o.Status != market.New {
		t.Fatalf("resting order: %+v %v %v", o, fills, err)
	}
	c, err := r.Venue.Cancel(ctx, Symbol, "rest-1")
	if err != nil || c.Status != market.Canceled || !c.Filled.IsZero() {
		t.Fatalf("cancel: %+v %v", c, err)
	}
	got, err := r.Venue.Order(ctx, Symbol, "rest-1")
	if err != nil || got.Status != market.Canceled {
		t.Fatalf("after cancel: %+v %v", got, err)
	}
}

func wrongSecret(t *testing.T, x fixture) {
	r, sv, logs := x.r, x.sim, x.logs
	ctx := context.Background()
	b, _ := sv.Book(ctx, Symbol, 1)
	_, _, err := r.Venue.Place(ctx, market.OrderRequest{ClientID: "x-1", Symbol: Symbol, Side: market.Sell,
		Price: b.Bids[0].Price, Qty: D("0.3"), TIF: market.IOC})
	var re *venues.RejectError
	if !errors.As(err, &re) || re.Code != "AUTH" {
		t.Fatalf("wrong secret: %v, want a *venues.RejectError with code AUTH", err)
	}
	if len(r.Placed()) != 0 {
		t.Fatalf("the fake placed %v with a bad signature", r.Placed())
	}
	leaks(t, r, "error", err.Error())
	leaks(t, r, "logs", logs.String())
}

// lostAck: the exchange takes three orders and the answers are lost; the
// engine must find each by client id instead of placing it again.
func lostAck(t *testing.T, x fixture, kind fakex.Kind) {
	r, clk, logs := x.r, x.clk, x.logs
	r.Faults.Add(fakex.Fault{Kind: kind, Times: 3, Method: r.PlaceMethod, Path: r.PlacePath})
	sum, _ := runParent(t, clk, []engine.Venue{r.Venue}, "2.001", logs)
	if r.Faults.Hits(kind) != 3 {
		t.Fatalf("%d lost answers, want 3", r.Faults.Hits(kind))
	}
	seen := map[string]int{}
	for _, id := range r.Placed() {
		seen[id]++
		if seen[id] > 1 {
			t.Errorf("client id %s placed %d times", id, seen[id])
		}
	}
	if !sum.Filled.Equal(D("2.001")) || sum.State != engine.Done {
		t.Fatalf("%s %s of 2.001 after three lost answers", sum.State, sum.Filled)
	}
	if len(seen) != sum.ChildOrders {
		t.Fatalf("the exchange has %d orders, the engine counted %d children", len(seen), sum.ChildOrders)
	}
	// What the exchange sold is what the engine recorded: no fill of a
	// found order is lost.
	fills, err := x.sim.Fills(context.Background(), Symbol, T0.Add(-time.Minute), T0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	sold := decimal.Zero
	for _, f := range fills {
		sold = sold.Add(f.Qty)
	}
	if !sold.Equal(sum.Filled) {
		t.Fatalf("the exchange sold %s, the engine recorded %s", sold, sum.Filled)
	}
}

func storm(t *testing.T, x fixture) {
	r, clk, logs := x.r, x.clk, x.logs
	r.Faults.Add(fakex.Fault{Kind: fakex.RateLimited, Times: 6, RetryAfter: 2 * time.Minute})
	sum, _ := runParent(t, clk, []engine.Venue{r.Venue}, "2.001", logs)
	if r.Faults.Hits(fakex.RateLimited) != 6 {
		t.Fatalf("the storm hit %d requests of 6", r.Faults.Hits(fakex.RateLimited))
	}
	if sum.State != engine.Done || !sum.Filled.Equal(D("2.001")) {
		t.Fatalf("%s, filled %s of 2.001 after a 429 storm: it must slow down, not fail", sum.State, sum.Filled)
	}
	if !strings.Contains(logs.String(), "rate limit") {
		t.Fatal("no rate-limit warning in the logs")
	}
}

func dark(t *testing.T, x fixture) {
	r, clk, logs := x.r, x.clk, x.logs
	// The other venue trades the same market through the sim directly.
	other, err := sim.New(x.market, clk, sim.Config{Name: "other", Share: 0.5, Instrument: x.rules})
	if err != nil {
		t.Fatal(err)
	}
	// The exchange goes dark five minutes in, seen first by a book request.
	darkAt := &darkening{Venue: r.Venue, at: T0.Add(5 * time.Minute), clk: clk, srv: r.Server}
	sum, _ := runParent(t, clk, []engine.Venue{darkAt, other}, "6", logs)
	if sum.State != engine.Done || !sum.Filled.Equal(D("6")) {
		t.Fatalf("%s, filled %s of 6 with one venue dark", sum.State, sum.Filled)
	}
	if !darkAt.went {
		t.Fatal("the venue never went dark")
	}
	var dark, lit engine.VenueTally
	for _, v := range sum.Venues {
		if v.Venue == "other" {
			lit = v
		} else {
			dark = v
		}
	}
	if !lit.Filled.GreaterThan(dark.Filled) {
		t.Fatalf("the dark venue filled %s and the other %s: its share must move", dark.Filled, lit.Filled)
	}
}

func noSecrets(t *testing.T, x fixture) {
	r, clk, logs := x.r, x.clk, x.logs
	r.Faults.Add(fakex.Fault{Kind: fakex.AcceptThen5xx, Method: r.PlaceMethod, Path: r.PlacePath})
	r.Faults.Add(fakex.Fault{Kind: fakex.RateLimited})
	_, pub := runParent(t, clk, []engine.Venue{r.Venue}, "1.002", logs)
	if logs.String() == "" || pub.fills == 0 {
		t.Fatalf("nothing to check: %d bytes of logs, %d fills", len(logs.String()), pub.fills)
	}
	leaks(t, r, "debug logs", logs.String())
	leaks(t, r, "published fills and events", pub.raw.String())
}

// leaks fails when any of the rig's credentials (or a 12-character piece
// of one) appears in text, or anything shaped like a signed request: a
// JWT, a bearer header, a signature parameter or header.
func leaks(t *testing.T, r Rig, where, text string) {
	t.Helper()
	if len(r.Secrets) == 0 {
		t.Fatal("the rig names no secrets to look for")
	}
	for _, s := range r.Secrets {
		for _, line := range strings.Split(s, "\n") {
			line = strings.TrimSpace(line)
			if len(line) < 12 || strings.HasPrefix(line, "-----") {
				continue
			}
			for i := 0; i+12 <= len(line); i += 12 {
				if strings.Contains(text, line[i:i+12]) {
					t.Fatalf("a credential reached the %s", where)
				}
			}
		}
	}
	for _, shape := range []string{"eyJhbGciOi", "Bearer ", "signature=", "API-Sign", "X-MBX-APIKEY", "PRIVATE KEY"} {
		if strings.Contains(text, shape) {
			t.Fatalf("%q appears in the %s", shape, where)
		}
	}
}

// darkening turns its fake dark at a time of the market clock, before the
// first book request from then on.
type darkening struct {
	engine.Venue
	at   time.Time
	clk  interface{ Now() time.Time }
	srv  *fakex.Server
	went bool
}

func (d *darkening) Book(ctx context.Context, symbol string, depth int) (market.Book, error) {
	if !d.went && !d.clk.Now().Before(d.at) {
		d.srv.SetDark(true)
		d.went = true
	}
	return d.Venue.Book(ctx, symbol, depth)
}
