package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/risk"
	"github.com/blockexec/blockexec/strategies/pov"
)

var t0 = time.Date(2024, 10, 1, 8, 0, 0, 0, time.UTC)

func sellSpec() ParentSpec {
	return ParentSpec{ID: "p1", Side: market.Sell, Symbol: "BTCUSDT", Qty: dec("30"), Strategy: "twap",
		Start: t0, End: t0.Add(time.Hour), SliceInterval: time.Minute, MaxParticipation: dec("0.1"),
		BandBps: dec("50"), LimitPrice: dec("59800")}
}

type rig struct {
	clk  *clock.Virtual
	eng  *Engine
	pub  *memPub
	kill *risk.KillSwitch
}

func newRig(t *testing.T, vs ...*fakeVenue) rig {
	t.Helper()
	list := make([]Venue, len(vs))
	for i, v := range vs {
		list[i] = v
	}
	pub := &memPub{}
	kill := risk.NewKillSwitch(false)
	e, err := New(vs[0].clk, list, risk.NewChecker(kill), kill, pub, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return rig{clk: vs[0].clk.(*clock.Virtual), eng: e, pub: pub, kill: kill}
}

// assertChildrenInsideLimits checks every order a venue received against the
// band around the arrival price and the parent's limit.
func assertChildrenInsideLimits(t *testing.T, s ParentSpec, arrival decimal.Decimal, vs ...*fakeVenue) {
	t.Helper()
	l := s.limits(arrival)
	worst := l.WorstPrice()
	for _, v := range vs {
		for _, r := range v.placed {
			if !market.Within(s.Side, r.Price, worst) {
				t.Errorf("%s child %s priced %s beyond worst %s", v.name, r.ClientID, r.Price, worst)
			}
		}
	}
}

func TestEngine_TWAPFillsOnScheduleSplitByDepth(t *testing.T) {
	clk := clock.NewVirtual(t0)
	deep, thin := newFake("deep", clk, "2"), newFake("thin", clk, "1")
	r := newRig(t, deep, thin)
	s := sellSpec()
	s.MaxParticipation = dec("1") // uncapped: the split follows depth alone
	sum, err := r.eng.Run(context.Background(), []ParentSpec{s})
	if err != nil {
		t.Fatal(err)
	}
	got := sum[0]
	if got.State != Done || !got.Filled.Equal(s.Qty) || !got.Unfilled().IsZero() {
		t.Fatalf("state %s filled %s unfilled %s, want done with all %s", got.State, got.Filled, got.Unfilled(), s.Qty)
	}
	// 30 BTC over 60 one-minute slices: 0.5 per slice; deep shows twice thin's depth.
	for _, v := range got.Venues {
		want := dec("20")
		if v.Venue == "thin" {
			want = dec("10")
		}
		if v.Filled.Sub(want).Abs().GreaterThan(dec("0.1")) {
			t.Errorf("%s filled %s, want about %s", v.Venue, v.Filled, want)
		}
	}
	// Cumulative fills track the schedule: after slice k, filled = 0.5·(k+1).
	for i, ev := range r.pub.kinds("slice") {
		want := dec("0.5").Mul(decimal.NewFromInt(int64(i)))
		if ev.Slice.Filled.Sub(want).Abs().GreaterThan(dec("0.002")) {
			t.Fatalf("slice %d started with %s filled, schedule says %s", i, ev.Slice.Filled, want)
		}
	}
	assertChildrenInsideLimits(t, s, got.ArrivalPrice, deep, thin)
	// Slices carry the realised participation so far, for live views: it
	// never decreases, and ends where the summary does.
	prevPart := decimal.Zero
	for _, ev := range r.pub.kinds(bus.KindSlice) {
		if ev.Slice.MaxParticipation.LessThan(prevPart) {
			t.Fatalf("slice %d: participation %s after %s", ev.Slice.Seq, ev.Slice.MaxParticipation, prevPart)
		}
		prevPart = ev.Slice.MaxParticipation
	}
	if !prevPart.IsPositive() || prevPart.GreaterThan(got.MaxParticipation) {
		t.Fatalf("the last slice's participation %s, the summary's %s", prevPart, got.MaxParticipation)
	}
	// Each child carries the mid of the book it was priced on: the market
	// price the post-trade chart draws fills against.
	for _, ev := range r.pub.kinds(bus.KindChildPlaced) {
		if m := ev.Child.Mid; m.Sign() <= 0 || m.Sub(got.ArrivalPrice).Abs().GreaterThan(dec("100")) {
			t.Fatalf("child %s: mid %s, arrival %s", ev.Child.ClientID, m, got.ArrivalPrice)
		}
	}
	if shorts := r.pub.kinds(bus.KindSliceShort); len(shorts) != 0 {
		t.Fatalf("%d slice_short events on an unconstrained schedule, first %+v", len(shorts), shorts[0].Short)
	}
}

func TestEngine_CatchUpAfterUnderfillNeverExceedsParticipationCap(t *testing.T) {
	clk := clock.NewVirtual(t0)
	v := newFake("v", clk, "5")
	// No market volume in the first 20 minutes, then 20 BTC/min.
	v.ratePerMin = func(at time.Time) decimal.Decimal {
		if at.Before(t0.Add(20 * time.Minute)) {
			return decimal.Zero
		}
		return dec("20")
	}
	r := newRig(t, v)
	s := sellSpec()
	s.Qty = dec("40")
	sum, err := r.eng.Run(context.Background(), []ParentSpec{s})
	if err != nil {
		t.Fatal(err)
	}
	if sum[0].MaxParticipation.GreaterThan(s.MaxParticipation) {
		t.Fatalf("max participation %s above cap %s", sum[0].MaxParticipation, s.MaxParticipation)
	}
	// Recompute independently: at every placement, our fills over the
	// trailing window against the venue's tape.
	ctx := context.Background()
	for i, at := range v.placedAt {
		tape, _ := v.Tape(ctx, "BTCUSDT", at.Add(-time.Minute), at)
		ours := decimal.Zero
		for _, f := range v.fills {
			if f.Time.After(at.Add(-time.Minute)) && !f.Time.After(at) {
				ours = ours.Add(f.Qty)
			}
		}
		if ours.Div(tape.Volume).GreaterThan(s.MaxParticipation) {
			t.Fatalf("child %d at %s: ours %s of %s is above the cap", i, at.Format("15:04"), ours, tape.Volume)
		}
	}
	if len(v.placed) == 0 || v.placedAt[0].Before(t0.Add(20*time.Minute)) {
		t.Fatalf("children placed while the market printed nothing: %v", v.placedAt)
	}
	// The catch-up slices are bigger than the schedule's own 40/60 per minute.
	if v.placed[0].Qty.LessThanOrEqual(dec("0.667")) {
		t.Fatalf("first child after the dry spell is %s: no catch-up", v.placed[0].Qty)
	}
	// 20 BTC/min at 10 % allows 20/9 per minute for 40 minutes: all of it.
	if !sum[0].Filled.Equal(s.Qty) {
		t.Fatalf("filled %s of %s", sum[0].Filled, s.Qty)
	}
	// The dry spell is explained, slice by slice, not skipped in silence.
	shorts := r.pub.kinds(bus.KindSliceShort)
	if len(shorts) < 20 {
		t.Fatalf("%d slice_short events for a 20-minute dry spell", len(shorts))
	}
	first := shorts[0].Short
	if first.Placed.Sign() != 0 || len(first.Venues) != 1 || !strings.Contains(first.Venues[0].Reason, "participation cap: room 0") {
		t.Fatalf("first slice_short %+v, want nothing placed for want of participation room", first)
	}
}

func TestEngine_ParticipationCapBoundsEveryParentTogether(t *testing.T) {
	clk := clock.NewVirtual(t0)
	v := newFake("v", clk, "5")
	r := newRig(t, v)
	a, b := sellSpec(), sellSpec()
	b.ID = "p2"
	// Each wants more than 10 % of the flow (200 an hour of 20 a minute);
	// each alone could take 10 %, together they may not.
	a.Qty, b.Qty = dec("200"), dec("200")
	sums, err := r.eng.Run(context.Background(), []ParentSpec{a, b})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, at := range v.placedAt {
		tape, _ := v.Tape(ctx, "BTCUSDT", at.Add(-time.Minute), at)
		ours := decimal.Zero
		for _, f := range v.fills {
			if f.Time.After(at.Add(-time.Minute)) && !f.Time.After(at) {
				ours = ours.Add(f.Qty)
			}
		}
		if ours.Div(tape.Volume).GreaterThan(a.MaxParticipation) {
			t.Fatalf("child %d at %s: both parents' %s of %s is above the 10 %% cap", i, at.Format("15:04"), ours, tape.Volume)
		}
	}
	// They take turns at the room: neither starves.
	f0, f1 := sums[0].Filled, sums[1].Filled
	if f0.Sub(f1).Abs().GreaterThan(f0.Add(f1).Div(dec("10"))) {
		t.Fatalf("filled %s and %s: both parents must share the room", f0, f1)
	}
}

func TestEngine_RemainderIsNotSweptBeyondLimits(t *testing.T) {
	clk := clock.NewVirtual(t0)
	v := newFake("v", clk, "0.01") // 0.33 BTC inside the floor per slice: thin
	r := newRig(t, v)
	s := sellSpec()
	s.MaxParticipation = dec("1")
	sum, err := r.eng.Run(context.Background(), []ParentSpec{s})
	if err != nil {
		t.Fatal(err)
	}
	got := sum[0]
	if got.State != Done || got.Unfilled().Sign() <= 0 {
		t.Fatalf("state %s unfilled %s: a thin book inside the floor cannot absorb 30 BTC", got.State, got.Unfilled())
	}
	if !got.Filled.Add(got.Unfilled()).Equal(s.Qty) {
		t.Fatalf("filled %s + unfilled %s != %s", got.Filled, got.Unfilled(), s.Qty)
	}
	assertChildrenInsideLimits(t, s, got.ArrivalPrice, v)
	for _, f := range v.fills {
		if f.Price.LessThan(s.LimitPrice) {
			t.Fatalf("fill at %s below floor %s", f.Price, s.LimitPrice)
		}
	}
}

func TestEngine_BuyMirrorsSellWithCeilingAndAsks(t *testing.T) {
	clk := clock.NewVirtual(t0)
	v := newFake("v", clk, "0.01")
	r := newRig(t, v)
	s := sellSpec()
	s.Side, s.LimitPrice, s.MaxParticipation = market.Buy, dec("60200"), dec("1")
	sum, err := r.eng.Run(context.Background(), []ParentSpec{s})
	if err != nil {
		t.Fatal(err)
	}
	got := sum[0]
	if got.Filled.Sign() <= 0 || got.Unfilled().Sign() <= 0 {
		t.Fatalf("filled %s unfilled %s: want a partial buy under the ceiling", got.Filled, got.Unfilled())
	}
	for _, f := range v.fills {
		if f.Side != market.Buy || f.Price.LessThanOrEqual(v.mid) || f.Price.GreaterThan(s.LimitPrice) {
			t.Fatalf("buy fill %s at %s: want asks above mid %s and at most ceiling %s", f.Side, f.Price, v.mid, s.LimitPrice)
		}
	}
	if got.ShortfallBps().Sign() <= 0 {
		t.Fatalf("buying above arrival must show a positive shortfall, got %s", got.ShortfallBps())
	}
	assertChildrenInsideLimits(t, s, got.ArrivalPrice, v)
}

func TestEngine_UnknownPlaceOutcomeIsLookedUpNotPlacedTwice(t *testing.T) {
	clk := clock.NewVirtual(t0)
	v := newFake("v", clk, "5")
	v.loseNextAck = true
	r := newRig(t, v)
	s := sellSpec()
	s.End = t0.Add(2 * time.Minute)
	s.MaxParticipation = dec("1")
	sum, err := r.eng.Run(context.Background(), []ParentSpec{s})
	if err != nil {
		t.Fatal(err)
	}
	// Slice 0's order was placed and filled but its answer lost: the engine
	// must find it, publish its fills once, and not place attempt 1.
	for _, req := range v.placed {
		if strings.HasSuffix(req.ClientID, "-1") {
			t.Fatalf("retry placed %s although the first attempt existed", req.ClientID)
		}
	}
	if len(r.pub.fills) != len(v.fills) {
		t.Fatalf("published %d fills, venue made %d", len(r.pub.fills), len(v.fills))
	}
	if !sum[0].Filled.Equal(s.Qty) {
		t.Fatalf("filled %s, want %s", sum[0].Filled, s.Qty)
	}
}

// sold is what the fake venue executed for us.
func (f *fakeVenue) sold() decimal.Decimal {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := decimal.Zero
	for _, fl := range f.fills {
		q = q.Add(fl.Qty)
	}
	return q
}

func TestEngine_UnknownOutcomeIsHeldBackUntilTheVenueAnswers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(v *fakeVenue)
	}{
		{"answer lost, lookup fails twice", func(v *fakeVenue) { v.loseNextAck, v.lookupFails = true, 2 }},
		{"answer lost, a fill not listed yet", func(v *fakeVenue) { v.loseNextAck, v.hideFills = true, 2 }},
		{"request lost, never placed", func(v *fakeVenue) { v.dropNext = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewVirtual(t0)
			v := newFake("v", clk, "5")
			tc.setup(v)
			r := newRig(t, v)
			s := sellSpec()
			s.MaxParticipation = dec("1")
			sums, err := r.eng.Run(context.Background(), []ParentSpec{s})
			if err != nil {
				t.Fatal(err)
			}
			got := sums[0]
			// What the venue sold is what the engine recorded, and never more
			// than the parent, however the answers went missing.
			if !v.sold().Equal(got.Filled) || got.Filled.GreaterThan(s.Qty) || got.State != Done || !got.Filled.Equal(s.Qty) {
				t.Fatalf("venue sold %s, engine recorded %s of %s, state %s (%s)", v.sold(), got.Filled, s.Qty, got.State, got.Reason)
			}
			seen := map[string]bool{}
			for _, req := range v.placed {
				if seen[req.ClientID] {
					t.Fatalf("%s placed twice", req.ClientID)
				}
				seen[req.ClientID] = true
			}
			if len(r.pub.kinds(bus.KindChildUnknown)) != 1 || len(r.pub.fills) != len(v.fills) {
				t.Fatalf("%d child_unknown events, %d fills published of %d", len(r.pub.kinds(bus.KindChildUnknown)),
					len(r.pub.fills), len(v.fills))
			}
		})
	}
}

func TestEngine_ParentWithAnUnsettledChildEndsFailedAndNeverOversells(t *testing.T) {
	clk := clock.NewVirtual(t0)
	v := newFake("v", clk, "5")
	v.loseNextAck, v.lookupFails = true, 1_000_000 // the venue never answers a lookup again
	r := newRig(t, v)
	s := sellSpec()
	s.MaxParticipation = dec("1")
	sums, err := r.eng.Run(context.Background(), []ParentSpec{s})
	if err != nil {
		t.Fatal(err)
	}
	got := sums[0]
	if got.State != Failed || !strings.Contains(got.Reason, "outcome of 1 child orders") {
		t.Fatalf("state %s (%s): a parent whose sales are not known cannot be done", got.State, got.Reason)
	}
	if v.sold().GreaterThan(s.Qty) {
		t.Fatalf("the venue sold %s of a %s parent", v.sold(), s.Qty)
	}
}

func TestEngine_FeesInAnotherAssetAreNotCountedAsQuote(t *testing.T) {
	clk := clock.NewVirtual(t0)
	a, b := newFake("a", clk, "5"), newFake("b", clk, "5")
	b.feeAsset = "BNB"
	r := newRig(t, a, b)
	s := sellSpec()
	s.MaxParticipation = dec("1")
	sums, err := r.eng.Run(context.Background(), []ParentSpec{s})
	if err != nil {
		t.Fatal(err)
	}
	got := sums[0]
	var fa, fb decimal.Decimal
	for _, v := range got.Venues {
		if v.Venue == "a" {
			fa = v.Fees
		} else {
			fb = v.Fees
		}
	}
	if !got.OtherFees["BNB"].IsPositive() || !fb.IsZero() || !got.Fees.Equal(fa) || !fa.IsPositive() {
		t.Fatalf("fees %s (a %s, b %s), other %v: BNB fees must be kept apart from USDT", got.Fees, fa, fb, got.OtherFees)
	}
}

func TestEngine_KillSwitchCancelsParentAndPlacesNothingMore(t *testing.T) {
	clk := clock.NewVirtual(t0)
	v := newFake("v", clk, "5")
	r := newRig(t, v)
	r.kill.SetParent("p1", true)
	sum, err := r.eng.Run(context.Background(), []ParentSpec{sellSpec()})
	if err != nil {
		t.Fatal(err)
	}
	if sum[0].State != Cancelled || len(v.placed) != 0 {
		t.Fatalf("state %s with %d orders placed; want cancelled with none", sum[0].State, len(v.placed))
	}
	if done := r.pub.kinds("done"); len(done) != 1 || done[0].Summary.State != "cancelled" {
		t.Fatalf("done events: %+v", done)
	}
}

func TestEngine_BadParentsRefusedBeforeAnythingIsPlaced(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(*ParentSpec)
		field string
	}{
		{"floor above the market", func(s *ParentSpec) { s.LimitPrice = dec("61000") }, "floor_price"},
		{"ceiling below the market", func(s *ParentSpec) { s.Side, s.LimitPrice = market.Buy, dec("59000") }, "ceiling_price"},
		{"unknown venue", func(s *ParentSpec) { s.Venues = []string{"nowhere"} }, "venues"},
		{"venue listed twice", func(s *ParentSpec) { s.Venues = []string{"v", "v"} }, "venues"},
		{"zero quantity", func(s *ParentSpec) { s.Qty = decimal.Zero }, "quantity"},
		{"end before start", func(s *ParentSpec) { s.End = s.Start.Add(-time.Hour) }, "end"},
		{"participation above one", func(s *ParentSpec) { s.MaxParticipation = dec("1.5") }, "max_participation"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewVirtual(t0)
			v := newFake("v", clk, "5")
			r := newRig(t, v)
			good := sellSpec()
			good.ID = "p0"
			bad := sellSpec()
			tc.edit(&bad)
			_, err := r.eng.Run(context.Background(), []ParentSpec{good, bad})
			var se *SpecError
			if !errors.As(err, &se) || se.Field != tc.field || se.ParentID != "p1" {
				t.Fatalf("err = %v, want SpecError on p1.%s", err, tc.field)
			}
			if len(v.placed) != 0 || len(r.pub.events) != 0 {
				t.Fatalf("%d orders and %d events after a refused run", len(v.placed), len(r.pub.events))
			}
		})
	}
}

func TestChildID_DeterministicAndWithinVenueRules(t *testing.T) {
	a := ChildID("unwind-btc", 17, "sim-deep", 0, IDRule{MaxLen: 36})
	if a != "unwind-btc-17-sim-deep-0" || ChildID("unwind-btc", 17, "sim-deep", 0, IDRule{MaxLen: 36}) != a {
		t.Fatalf("readable id = %q", a)
	}
	long := ChildID("a-very-long-parent-identifier-from-treasury", 479, "coinbase_adv", 1, IDRule{MaxLen: 18})
	if len(long) != 18 || !plain(long) || long != ChildID("a-very-long-parent-identifier-from-treasury", 479, "coinbase_adv", 1, IDRule{MaxLen: 18}) {
		t.Fatalf("hashed id = %q", long)
	}
	if ChildID("p", 1, "v", 0, IDRule{MaxLen: 36}) == ChildID("p", 1, "v", 1, IDRule{MaxLen: 36}) || ChildID("p", 1, "v", 0, IDRule{MaxLen: 36}) == ChildID("p", 2, "v", 0, IDRule{MaxLen: 36}) {
		t.Fatal("distinct (slice, attempt) share an id")
	}
	// A venue that takes only lower-case letters and digits gets the hash.
	lower := IDRule{MaxLen: 18, Allowed: func(r rune) bool { return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' }}
	id := ChildID("P1", 3, "kraken", 0, lower)
	if strings.IndexFunc(id, func(r rune) bool { return !lower.Allowed(r) }) >= 0 || len(id) > 18 {
		t.Fatalf("id %q breaks the venue's alphabet", id)
	}
}

// ladder is a bid book from top down by gap, qty per level.
func ladder(top, gap, qty string, n int) market.Book {
	var b market.Book
	p := dec(top)
	for i := 0; i < n; i++ {
		b.Bids = append(b.Bids, market.Level{Price: p, Qty: dec(qty)})
		p = p.Sub(dec(gap))
	}
	return b
}

func TestSplit_TakesCheapestNetPriceFirstAcrossVenues(t *testing.T) {
	cheapFee := market.Instrument{TakerFee: dec("0.0001")}
	dearFee := market.Instrument{TakerFee: dec("0.0010")}
	qs := []venueQuote{
		// Same prices; b's fee is 9 bps dearer, worth more than one 1-unit level.
		{venue: "a", inst: cheapFee, book: ladder("100", "0.01", "1", 10), limit: dec("99"), capped: false},
		{venue: "b", inst: dearFee, book: ladder("100", "0.01", "1", 10), limit: dec("99"), capped: false},
	}
	for i := range qs {
		qs[i].depth = qs[i].book.DepthWithin(market.Sell, qs[i].limit)
	}
	got := split(market.Sell, dec("5"), decimal.Zero, qs)
	if !got[0].Equal(dec("5")) || !got[1].IsZero() {
		t.Fatalf("split = %v, want all 5 on the cheaper venue", got)
	}
	// Participation headroom caps a; the rest walks b.
	qs[0].capped, qs[0].room = true, dec("2")
	got = split(market.Sell, dec("5"), decimal.Zero, qs)
	if !got[0].Equal(dec("2")) || !got[1].Equal(dec("3")) {
		t.Fatalf("split with a capped at 2 = %v, want [2 3]", got)
	}
	// A max venue share of 60 % caps a at 3.
	qs[0].capped = false
	got = split(market.Sell, dec("5"), dec("0.6"), qs)
	if !got[0].Equal(dec("3")) || !got[1].Equal(dec("2")) {
		t.Fatalf("split with max share 0.6 = %v, want [3 2]", got)
	}
	// Rounding leftovers never push a venue past its share either.
	qs[0].inst.Step, qs[1].inst.Step = dec("0.01"), dec("1")
	got = roundAlloc(market.Sell, dec("5.5"), dec("0.6"), qs, split(market.Sell, dec("5.5"), dec("0.6"), qs))
	if got[0].GreaterThan(dec("3.3")) || got[1].GreaterThan(dec("3.3")) {
		t.Fatalf("rounded split with max share 0.6 of 5.5 = %v: a venue above 3.3", got)
	}
	// Nothing beyond the limit price: 10 levels of 1 between 100 and 99.91.
	got = split(market.Sell, dec("100"), decimal.Zero, qs)
	if total := got[0].Add(got[1]); !total.Equal(dec("20")) {
		t.Fatalf("over capacity: %v totals %s, want the 20 inside the limit", got, total)
	}
}

func TestSplit_EqualPricesShareByAvailableDepth(t *testing.T) {
	in := market.Instrument{TakerFee: dec("0.001")}
	qs := []venueQuote{
		{venue: "deep", inst: in, book: ladder("100", "0.01", "2", 5), limit: dec("99")},
		{venue: "thin", inst: in, book: ladder("100", "0.01", "1", 5), limit: dec("99")},
	}
	for i := range qs {
		qs[i].depth = qs[i].book.DepthWithin(market.Sell, qs[i].limit)
	}
	got := split(market.Sell, dec("1.5"), decimal.Zero, qs)
	if !got[0].Equal(dec("1")) || !got[1].Equal(dec("0.5")) {
		t.Fatalf("split = %v, want [1 0.5] (2:1 at the touch)", got)
	}
}

// stepInst is an instrument with just a step (also the minimum quantity)
// and a minimum notional.
func stepInst(step, minNotional string) market.Instrument {
	return market.Instrument{Step: dec(step), MinQty: dec(step), MinNotional: dec(minNotional)}
}

func TestRoundAlloc_RoundingRemainderAndDustMoveToVenuesThatCanTakeThem(t *testing.T) {
	book := market.Book{Bids: []market.Level{{Price: dec("60000"), Qty: dec("100")}}}
	qs := []venueQuote{
		{venue: "coarse", inst: stepInst("0.001", "10"), book: book, depth: dec("50"), capped: false},
		{venue: "fine", inst: stepInst("0.00001", "5"), book: book, depth: dec("50"), room: dec("0.0003"), capped: true},
	}
	// 0.00023 split evenly: coarse rounds to 0, fine to 0.00011; the rest
	// goes to fine, which has the room.
	got := roundAlloc(market.Sell, dec("0.00023"), decimal.Zero, qs, split(market.Sell, dec("0.00023"), decimal.Zero, qs))
	if !got[0].IsZero() || !got[1].Equal(dec("0.00023")) {
		t.Fatalf("roundAlloc = %v, want [0 0.00023]", got)
	}
	// Never above a venue's capacity, never above the total.
	got = roundAlloc(market.Sell, dec("1.0005"), decimal.Zero, qs, split(market.Sell, dec("1.0005"), decimal.Zero, qs))
	sum := got[0].Add(got[1])
	if sum.GreaterThan(dec("1.0005")) || got[1].GreaterThan(dec("0.0003")) || !got[0].Equal(dec("1")) {
		t.Fatalf("roundAlloc = %v (sum %s)", got, sum)
	}
	// Dust below every venue's minimum notional is not placed.
	got = roundAlloc(market.Sell, dec("0.00005"), decimal.Zero, qs, split(market.Sell, dec("0.00005"), decimal.Zero, qs))
	if !got[0].IsZero() || !got[1].IsZero() {
		t.Fatalf("dust placed: %v", got)
	}
}

func TestAvoidDust_NeverLeavesTheParentARemainderNoVenueTakes(t *testing.T) {
	book := market.Book{Bids: []market.Level{{Price: dec("63000"), Qty: dec("100")}}}
	qs := []venueQuote{
		{venue: "fine", inst: stepInst("0.00001", "5"), book: book}, // takes ≥ 0.00008 at 63,000
		{venue: "mid", inst: stepInst("0.0001", "10"), book: book},
		{venue: "coarse", inst: stepInst("0.001", "1"), book: book},
	}
	// The fine venue is capped; the others leave 0.00007 of the parent:
	// 4.41 USDT, below the fine venue's minimum and off the others' steps.
	got := avoidDust(market.Sell, dec("1.06617"), qs, []decimal.Decimal{dec("0"), dec("0.0661"), dec("1")})
	rest := dec("1.06617").Sub(got[0].Add(got[1]).Add(got[2]))
	if !rest.Equal(dec("0.00107")) || !got[2].Equal(dec("0.999")) {
		t.Fatalf("avoidDust = %v, rest %s: want the coarse venue to give back one step (rest 0.00107)", got, rest)
	}
	// A remainder some venue accepts is left alone.
	in := []decimal.Decimal{dec("0"), dec("0.0661"), dec("1")}
	if got := avoidDust(market.Sell, dec("1.06627"), qs, in); !got[1].Equal(in[1]) || !got[2].Equal(in[2]) {
		t.Fatalf("avoidDust changed a sellable remainder: %v", got)
	}
	// Nothing left: nothing changes.
	if got := avoidDust(market.Sell, dec("1.0661"), qs, in); !got[2].Equal(dec("1")) {
		t.Fatalf("avoidDust changed a complete slice: %v", got)
	}
}

// recordingSchedule is a volume-following schedule that targets half of
// the observed volume and remembers what it was told.
type recordingSchedule struct {
	volume  decimal.Decimal
	windows int
	lastTo  time.Time
	gapFree bool
}

func (r *recordingSchedule) Observe(from, to time.Time, v decimal.Decimal) {
	if r.windows > 0 && !from.Equal(r.lastTo) {
		r.gapFree = false
	}
	r.windows++
	r.lastTo = to
	r.volume = r.volume.Add(v)
}

func (r *recordingSchedule) Target(time.Time) decimal.Decimal { return r.volume.Div(dec("20")) }

func TestEngine_VolumeFollowingScheduleIsFedTheMarketTape(t *testing.T) {
	clk := clock.NewVirtual(t0)
	a, b := newFake("a", clk, "5"), newFake("b", clk, "5")
	r := newRig(t, a, b)
	s := sellSpec()
	s.Strategy = "pov"
	s.Qty = dec("1000")
	sched := &recordingSchedule{gapFree: true}
	s.Schedule = sched
	sums, err := r.eng.Run(context.Background(), []ParentSpec{s})
	if err != nil {
		t.Fatal(err)
	}
	// Two venues print 20/min each for the hour, plus our own fills.
	if sched.windows < 59 || !sched.gapFree {
		t.Fatalf("schedule observed %d windows (gap-free %v)", sched.windows, sched.gapFree)
	}
	background := dec("2400")
	if sched.volume.LessThan(background.Mul(dec("0.98"))) || sched.volume.GreaterThan(background.Add(sums[0].Filled)) {
		t.Fatalf("observed volume %s, want about %s plus ours %s", sched.volume, background, sums[0].Filled)
	}
	// The target (5 % of volume) is what was sold, not the TWAP's 30.
	if sums[0].Filled.GreaterThan(sched.volume.Div(dec("20")).Add(dec("0.01"))) || sums[0].Filled.LessThan(dec("100")) {
		t.Fatalf("filled %s for a target of %s", sums[0].Filled, sched.volume.Div(dec("20")))
	}
}

func TestEngine_POVTakesItsRateOfAllTheVolume(t *testing.T) {
	clk := clock.NewVirtual(t0)
	v := newFake("v", clk, "50")
	r := newRig(t, v)
	s := sellSpec()
	s.Qty, s.Strategy, s.MaxParticipation, s.LimitPrice = dec("1000"), "pov", dec("0.5"), decimal.Zero
	sched, err := pov.New(s.Qty, s.Start, s.End, pov.Params{Rate: dec("0.2")})
	if err != nil {
		t.Fatal(err)
	}
	s.Schedule = sched
	sums, err := r.eng.Run(context.Background(), []ParentSpec{s})
	if err != nil {
		t.Fatal(err)
	}
	// 20 a minute by the others for an hour: a 20 % share is 300.
	tape, _ := v.Tape(context.Background(), "BTCUSDT", t0, t0.Add(time.Hour))
	share := sums[0].Filled.Div(tape.Volume)
	if share.Sub(dec("0.2")).Abs().GreaterThan(dec("0.01")) {
		t.Fatalf("filled %s of %s traded: a share of %s, want the rate 0.2", sums[0].Filled, tape.Volume, share.StringFixed(4))
	}
}

func TestEngine_StrategyOtherThanTWAPNeedsItsSchedule(t *testing.T) {
	clk := clock.NewVirtual(t0)
	r := newRig(t, newFake("a", clk, "5"))
	s := sellSpec()
	s.Strategy = "vwap"
	if _, err := r.eng.Run(context.Background(), []ParentSpec{s}); err == nil || !strings.Contains(err.Error(), "needs its schedule") {
		t.Fatalf("err = %v", err)
	}
}

// overSchedule asks for twice the parent.
type overSchedule struct{ q decimal.Decimal }

func (o overSchedule) Target(time.Time) decimal.Decimal { return o.q.Mul(dec("2")) }

func TestEngine_NeverTradesMoreThanTheParentWhateverTheSchedule(t *testing.T) {
	clk := clock.NewVirtual(t0)
	r := newRig(t, newFake("a", clk, "50"))
	s := sellSpec()
	s.Strategy, s.Schedule = "ac", overSchedule{s.Qty}
	s.MaxParticipation = dec("1")
	sums, err := r.eng.Run(context.Background(), []ParentSpec{s})
	if err != nil {
		t.Fatal(err)
	}
	if !sums[0].Filled.Equal(s.Qty) {
		t.Fatalf("filled %s of %s", sums[0].Filled, s.Qty)
	}
}

func TestEngine_DarkVenueSitsOutWithBackoffAndOthersTakeItsShare(t *testing.T) {
	clk := clock.NewVirtual(t0)
	a, b := newFake("a", clk, "5"), newFake("b", clk, "5")
	a.darkUntil = t0.Add(20 * time.Minute)
	r := newRig(t, a, b)
	s := sellSpec()
	s.MaxParticipation = dec("1")
	sums, err := r.eng.Run(context.Background(), []ParentSpec{s})
	if err != nil {
		t.Fatal(err)
	}
	got := sums[0]
	if !got.Filled.Equal(s.Qty) {
		t.Fatalf("filled %s of %s with one venue dark for 20 minutes", got.Filled, s.Qty)
	}
	// Back-off: failures at 08:00, :01, :03, :07 and :15 put it out until
	// 08:31; then once per slice: about 2 + 5 + 29 asks, not 62.
	if a.bookCalls > 40 || a.bookCalls < 30 {
		t.Fatalf("a was asked for its book %d times", a.bookCalls)
	}
	var fa, fb decimal.Decimal
	for _, v := range got.Venues {
		if v.Venue == "a" {
			fa = v.Filled
		} else {
			fb = v.Filled
		}
	}
	// Dark for about a third of the hour: b took its share then, and a came back.
	if !fa.IsPositive() || fb.LessThanOrEqual(fa) {
		t.Fatalf("a filled %s, b %s: want a back after the outage and b ahead", fa, fb)
	}
}

func TestEngine_AcceptanceWaitsOutAnUnavailableVenue(t *testing.T) {
	clk := clock.NewVirtual(t0)
	a := newFake("a", clk, "5")
	a.rulesUntil = t0.Add(5 * time.Minute) // rate limited at the start
	r := newRig(t, a)
	s := sellSpec()
	s.MaxParticipation = dec("1")
	sums, err := r.eng.Run(context.Background(), []ParentSpec{s})
	if err != nil {
		t.Fatalf("an unavailable venue at acceptance must be waited for, not fail the parent: %v", err)
	}
	if got := sums[0]; got.State != Done || !got.Filled.Equal(s.Qty) {
		t.Fatalf("%s, filled %s of %s", got.State, got.Filled, s.Qty)
	}
	if len(a.placedAt) == 0 || a.placedAt[0].Before(a.rulesUntil) {
		t.Fatal("placed before the venue was back")
	}
}

func TestEngine_AcceptanceLeavesOutAVenueThatStaysUnavailable(t *testing.T) {
	clk := clock.NewVirtual(t0)
	a, b := newFake("a", clk, "5"), newFake("b", clk, "5")
	a.rulesUntil = t0.Add(24 * time.Hour)
	r := newRig(t, a, b)
	s := sellSpec()
	s.MaxParticipation = dec("1")
	sums, err := r.eng.Run(context.Background(), []ParentSpec{s})
	if err != nil {
		t.Fatal(err)
	}
	got := sums[0]
	if got.State != Done || !got.Filled.Equal(s.Qty) || len(got.Venues) != 1 || got.Venues[0].Venue != "b" {
		t.Fatalf("%s, filled %s, venues %+v: want b alone to fill it", got.State, got.Filled, got.Venues)
	}
	if len(a.placed) != 0 {
		t.Fatalf("a got %d orders", len(a.placed))
	}
	if !clk.Now().Before(t0.Add(time.Hour + acceptPatience + time.Minute)) {
		t.Fatalf("acceptance waited until %s", clk.Now())
	}
	// A venue that cannot be reached at all, with no other: a clear error.
	clk2 := clock.NewVirtual(t0)
	c := newFake("c", clk2, "5")
	c.rulesUntil = t0.Add(24 * time.Hour)
	_, err = newRig(t, c).eng.Run(context.Background(), []ParentSpec{sellSpec()})
	var se *SpecError
	if !errors.As(err, &se) || se.Field != "symbol" {
		t.Fatalf("err %v, want a SpecError on symbol", err)
	}
}

func TestEngine_MaxVenueShareHoldsForEveryChild(t *testing.T) {
	clk := clock.NewVirtual(t0)
	a, b := newFake("a", clk, "5"), newFake("b", clk, "5")
	r := newRig(t, a, b)
	s := sellSpec()
	// Two venues at 40 % each can never take a whole slice: what is left
	// must stay unplaced, not go to a venue beyond its share.
	s.MaxParticipation, s.MaxVenueShare = dec("1"), dec("0.4")
	if _, err := r.eng.Run(context.Background(), []ParentSpec{s}); err != nil {
		t.Fatal(err)
	}
	shortfall := map[time.Time]decimal.Decimal{}
	for _, e := range r.pub.kinds(bus.KindSlice) {
		shortfall[e.Time] = e.Slice.Shortfall
	}
	for _, v := range []*fakeVenue{a, b} {
		if len(v.placed) == 0 {
			t.Fatalf("%s got nothing", v.name)
		}
		for i, req := range v.placed {
			if most := shortfall[v.placedAt[i]].Mul(s.MaxVenueShare); req.Qty.GreaterThan(most) {
				t.Fatalf("%s child of %s at %s: above 40 %% of the slice (%s)", v.name, req.Qty,
					v.placedAt[i].Format(time.Kitchen), most)
			}
		}
	}
}

// refuseNotional is a checker that refuses every child above a notional.
type refuseNotional struct{ max decimal.Decimal }

func (c refuseNotional) Check(_ risk.Limits, ch risk.Child) *risk.Rejection {
	if n := ch.Req.Notional(); n.GreaterThan(c.max) {
		return &risk.Rejection{Check: risk.CheckNotional, Reason: "NOTIONAL_EXCEEDS_MAX: max=" + c.max.String() + ", notional=" + n.String()}
	}
	return nil
}

func TestEngine_RiskRefusalIsAnEventWithTheNumbersAndNothingPlaced(t *testing.T) {
	clk := clock.NewVirtual(t0)
	v := newFake("v", clk, "5")
	pub := &memPub{}
	kill := risk.NewKillSwitch(false)
	e, err := New(clk, []Venue{v}, refuseNotional{max: dec("20000")}, kill, pub, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	s := sellSpec() // 0.5 a slice at about 60,000: 30,000 a child
	sums, err := e.Run(context.Background(), []ParentSpec{s})
	if err != nil {
		t.Fatal(err)
	}
	rej := pub.kinds(bus.KindChildRejected)
	if len(v.placed) != 0 || len(rej) == 0 || sums[0].Rejections != len(rej) || !sums[0].Filled.IsZero() {
		t.Fatalf("%d placed, %d rejection events, summary %d rejections, filled %s", len(v.placed), len(rej),
			sums[0].Rejections, sums[0].Filled)
	}
	r := rej[0].Rejection
	if r.Check != risk.CheckNotional || !strings.Contains(r.Reason, "max=20000") || r.Venue != "v" || r.Qty.Sign() <= 0 {
		t.Fatalf("rejection %+v: want the check, the numbers, the venue and the child", r)
	}
}

func TestEngine_StaleBookSkipsTheVenue(t *testing.T) {
	clk := clock.NewVirtual(t0)
	a, b := newFake("a", clk, "5"), newFake("b", clk, "5")
	a.staleBy = time.Minute
	r := newRig(t, a, b)
	s := sellSpec()
	s.MaxParticipation = dec("1")
	sums, err := r.eng.Run(context.Background(), []ParentSpec{s})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range sums[0].Venues {
		if v.Venue == "a" && v.Filled.IsPositive() {
			t.Fatalf("a traded %s on a book a minute old", v.Filled)
		}
	}
	if !sums[0].Filled.Equal(s.Qty) {
		t.Fatalf("filled %s", sums[0].Filled)
	}
}

func TestEngine_TouchStyleTakesOnlyTheBestLevelUntilTheEnd(t *testing.T) {
	clk := clock.NewVirtual(t0)
	a := newFake("a", clk, "0.2") // 0.2 at the touch, less than a 0.5 slice
	r := newRig(t, a)
	s := sellSpec()
	s.Style, s.MaxParticipation, s.BandBps, s.LimitPrice = StyleTouch, dec("1"), dec("10000"), decimal.Zero
	sums, err := r.eng.Run(context.Background(), []ParentSpec{s})
	if err != nil {
		t.Fatal(err)
	}
	touch := a.mid.Sub(a.levelGap)
	var last int
	for i, req := range a.placed {
		if a.placedAt[i].Before(s.End) && !req.Price.Equal(touch) {
			t.Fatalf("child %s at %s before the end, want the touch %s", req.ClientID, req.Price, touch)
		}
		last = i
	}
	// Fixed slices: what one slice leaves is not carried into the next.
	for _, ev := range r.pub.kinds(bus.KindSlice) {
		if ev.Time.Before(s.End) && ev.Slice.Shortfall.GreaterThan(dec("0.5")) {
			t.Fatalf("slice %d asks for %s: fixed slices of 0.5, no catch-up", ev.Slice.Seq, ev.Slice.Shortfall)
		}
	}
	// 60 slices × 0.2 at the touch = 12; the other 18 go in the sweep at the end.
	if !a.placedAt[last].Equal(s.End) || !a.placed[last].Price.LessThan(touch) || !sums[0].Filled.Equal(s.Qty) {
		t.Fatalf("last child %+v at %s; filled %s", a.placed[last], a.placedAt[last], sums[0].Filled)
	}
}

// Run over a queuing bus stores the same record as over a synchronous one,
// flushed round by round; a message that cannot be stored fails the run.
func TestEngine_RunOverAQueuingBusStoresTheSameRecord(t *testing.T) {
	run := func(pub Publisher) ([]Summary, error) {
		clk := clock.NewVirtual(t0)
		v := newFake("v", clk, "2")
		kill := risk.NewKillSwitch(false)
		e, err := New(clk, []Venue{v}, risk.NewChecker(kill), kill, pub, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		s := sellSpec()
		s.MaxParticipation = dec("1")
		return e.Run(context.Background(), []ParentSpec{s})
	}
	sync := &memPub{}
	want, err := run(sync)
	if err != nil {
		t.Fatal(err)
	}
	q := &queuePub{mem: &memPub{}}
	got, err := run(q)
	if err != nil {
		t.Fatal(err)
	}
	if q.queued() != 0 || q.flushes < 60 {
		t.Fatalf("%d left queued after %d flushes; want none, flushed each round", q.queued(), q.flushes)
	}
	if !got[0].Filled.Equal(want[0].Filled) || len(q.mem.fills) != len(sync.fills) || len(q.mem.events) != len(sync.events) {
		t.Fatalf("queued: filled %s, %d fills, %d events; synchronous: %s, %d, %d",
			got[0].Filled, len(q.mem.fills), len(q.mem.events), want[0].Filled, len(sync.fills), len(sync.events))
	}

	// A bus that stores nothing from the first round on: the run places
	// nothing more (held, not failed, while the bus might come back),
	// keeps every message, and ends failed at the end time, saying the bus
	// did not store them.
	bad := &queuePub{mem: &memPub{}, failFor: sellSpec().ID}
	sum, err := run(bad)
	if err == nil || !strings.Contains(err.Error(), "bus down") {
		t.Fatalf("a bus that stores nothing: err %v", err)
	}
	if sum[0].State != Failed || !strings.Contains(sum[0].Reason, "bus was down until the end time") {
		t.Fatalf("state %s (%s), want failed for the bus", sum[0].State, sum[0].Reason)
	}
	if first := want[0].Fills; sum[0].Fills == 0 || sum[0].Fills*10 > first {
		t.Fatalf("%d fills with the bus down from the first round (%d with it up): trading went on", sum[0].Fills, first)
	}
	if kept := bad.queued(); kept == 0 || len(bad.mem.fills) != 0 {
		t.Fatalf("%d messages kept, %d stored: want all kept, none stored", kept, len(bad.mem.fills))
	}
}
