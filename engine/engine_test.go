package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/risk"
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
		{"zero quantity", func(s *ParentSpec) { s.Qty = decimal.Zero }, "parent"},
		{"end before start", func(s *ParentSpec) { s.End = s.Start.Add(-time.Hour) }, "parent"},
		{"participation above one", func(s *ParentSpec) { s.MaxParticipation = dec("1.5") }, "parent"},
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
	a := ChildID("unwind-btc", 17, "sim-deep", 0, 36)
	if a != "unwind-btc-17-sim-deep-0" || ChildID("unwind-btc", 17, "sim-deep", 0, 36) != a {
		t.Fatalf("readable id = %q", a)
	}
	long := ChildID("a-very-long-parent-identifier-from-treasury", 479, "coinbase_adv", 1, 18)
	if len(long) != 18 || !plain(long) || long != ChildID("a-very-long-parent-identifier-from-treasury", 479, "coinbase_adv", 1, 18) {
		t.Fatalf("hashed id = %q", long)
	}
	if ChildID("p", 1, "v", 0, 36) == ChildID("p", 1, "v", 1, 36) || ChildID("p", 1, "v", 0, 36) == ChildID("p", 2, "v", 0, 36) {
		t.Fatal("distinct (slice, attempt) share an id")
	}
}

func TestSplit_ProportionalToDepthAndRefillsFromCappedVenues(t *testing.T) {
	qs := []venueQuote{
		{venue: "a", depth: dec("30"), room: dec("1"), capped: true},
		{venue: "b", depth: dec("10"), room: dec("100"), capped: true},
		{venue: "c", depth: dec("10"), capped: false},
	}
	got := split(dec("5"), qs)
	// a would get 3 but holds 1; the 2 left go to b and c by depth, 1 each.
	want := []string{"1", "2", "2"}
	for i := range got {
		if !got[i].Equal(dec(want[i])) {
			t.Fatalf("split = %v, want %v", got, want)
		}
	}
	got = split(dec("100"), qs)
	total := got[0].Add(got[1]).Add(got[2])
	if !total.Equal(dec("21")) {
		t.Fatalf("over capacity: split %v totals %s, want the 21 available", got, total)
	}
}
