package engine

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/risk"
	"github.com/blockexec/blockexec/strategies/pov"
)

// crashRun runs specs on a new engine over the venues, bus and journal
// given, and returns the summaries, or nil when the run's goroutine ended
// in the middle (a crash played by a hook calling runtime.Goexit).
func crashRun(t *testing.T, clk clock.Clock, vs []*fakeVenue, pub Publisher, j Journal, specs []ParentSpec) ([]Summary, error, bool) {
	t.Helper()
	list := make([]Venue, len(vs))
	for i, v := range vs {
		list[i] = v
	}
	kill := risk.NewKillSwitch(false)
	e, err := New(clk, list, risk.NewChecker(kill), kill, pub, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	e.UseJournal(j)
	type result struct {
		sum []Summary
		err error
	}
	out := make(chan result, 1)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		sum, err := e.Run(context.Background(), specs)
		out <- result{sum, err}
	}()
	<-exited
	select {
	case r := <-out:
		return r.sum, r.err, true
	default:
		return nil, nil, false
	}
}

// The engine is killed at several points of a run and started again on
// the same journal, bus and venues: the parent completes, never sells more
// than its quantity, no client id is sent twice, and the fills on the bus
// (as the ledger keeps them: once per trade id) are exactly the venues'.
func TestJournal_RestartAfterACrashCompletesExactlyOnce(t *testing.T) {
	cases := []struct {
		name  string
		arm   func(vs []*fakeVenue, pub *memPub, n int)
		queue bool
	}{
		{name: "before a place", arm: func(vs []*fakeVenue, _ *memPub, n int) { crashVenue(vs[0], "before", n) }},
		{name: "after a place, before its answer", arm: func(vs []*fakeVenue, _ *memPub, n int) { crashVenue(vs[1], "after", n) }},
		{name: "in the middle of a child's fills", arm: func(_ []*fakeVenue, pub *memPub, n int) {
			calls := 0
			pub.crashFill = func() {
				if calls++; calls == 3*n {
					runtime.Goexit()
				}
			}
		}},
		{name: "after a place, queued bus", queue: true, arm: func(vs []*fakeVenue, _ *memPub, n int) { crashVenue(vs[0], "after", n) }},
	}
	for _, c := range cases {
		for _, n := range []int{1, 7, 40} {
			t.Run(c.name, func(t *testing.T) {
				clk := clock.NewVirtual(t0)
				vs := []*fakeVenue{newFake("deep", clk, "2"), newFake("thin", clk, "1")}
				mem := &memPub{}
				var pub Publisher = mem
				if c.queue {
					pub = &queuePub{mem: mem}
				}
				j := newMemJournal()
				s := sellSpec()
				s.MaxParticipation = dec("1")

				c.arm(vs, mem, n)
				if _, _, finished := crashRun(t, clk, vs, pub, j, []ParentSpec{s}); finished {
					t.Fatal("the run finished; the crash point was never reached")
				}
				for _, v := range vs {
					v.mu.Lock()
					v.crash = nil
					v.mu.Unlock()
				}
				mem.mu.Lock()
				mem.crashFill = nil
				mem.mu.Unlock()
				if q, ok := pub.(*queuePub); ok {
					q.mu.Lock()
					q.queue = nil // what the crash lost
					q.mu.Unlock()
				}

				sum, err, finished := crashRun(t, clk, vs, pub, j, []ParentSpec{s})
				if !finished || err != nil {
					t.Fatalf("the restarted run: finished %v, %v", finished, err)
				}
				got := sum[0]
				if got.State != Done || !got.Filled.Equal(s.Qty) {
					t.Fatalf("after the restart: %s with %s of %s filled", got.State, got.Filled, s.Qty)
				}
				venueSold, stored := decimal.Zero, map[string]bus.FillMsg{}
				for _, v := range vs {
					if v.dupTries != 0 {
						t.Fatalf("%s was sent a used client id %d times", v.name, v.dupTries)
					}
					for _, f := range v.fills {
						venueSold = venueSold.Add(f.Qty)
					}
				}
				for _, f := range mem.fills {
					if prev, dup := stored[f.MsgID()]; dup && !prev.Qty.Equal(f.Qty) {
						t.Fatalf("trade %s published with two quantities", f.MsgID())
					}
					stored[f.MsgID()] = f
				}
				onBus := decimal.Zero
				for _, f := range stored {
					onBus = onBus.Add(f.Qty)
				}
				if !venueSold.Equal(s.Qty) || !onBus.Equal(venueSold) || !got.Filled.Equal(venueSold) {
					t.Fatalf("venues sold %s, the bus holds %s, the engine counts %s; the parent is %s",
						venueSold, onBus, got.Filled, s.Qty)
				}
				// Event sequence numbers are never reused for another event.
				bySeq := map[int64]string{}
				for _, ev := range mem.events {
					if k, ok := bySeq[ev.Seq]; ok && k != ev.Kind {
						t.Fatalf("event %d is both %s and %s", ev.Seq, k, ev.Kind)
					}
					bySeq[ev.Seq] = ev.Kind
				}
				// As the ledger keeps events (once per sequence number),
				// each child is placed once: the engine's count is the
				// ledger's.
				placedSeqs := map[string]map[int64]bool{}
				for _, ev := range mem.kinds(bus.KindChildPlaced) {
					if placedSeqs[ev.Child.ClientID] == nil {
						placedSeqs[ev.Child.ClientID] = map[int64]bool{}
					}
					placedSeqs[ev.Child.ClientID][ev.Seq] = true
				}
				for id, seqs := range placedSeqs {
					if len(seqs) != 1 {
						t.Fatalf("child %s placed under %d event numbers", id, len(seqs))
					}
				}
				if len(placedSeqs) != got.ChildOrders {
					t.Fatalf("%d children placed on the bus, the engine counts %d", len(placedSeqs), got.ChildOrders)
				}
				if len(mem.kinds(bus.KindAccepted)) == 0 || len(mem.kinds(bus.KindDone)) != 1 {
					t.Fatalf("%d accepted and %d done events", len(mem.kinds(bus.KindAccepted)), len(mem.kinds(bus.KindDone)))
				}
				// And once done, the same parent is refused.
				if _, err, _ := crashRun(t, clk, vs, pub, j, []ParentSpec{s}); err == nil {
					t.Fatal("a parent that ended was accepted again")
				}
			})
		}
	}
}

// crashVenue arms v to end the engine's goroutine at its n-th order, at
// stage.
func crashVenue(v *fakeVenue, stage string, n int) {
	calls := 0
	v.crash = func(s string) {
		if s != stage {
			return
		}
		if calls++; calls == n {
			runtime.Goexit()
		}
	}
}

// A serving engine checkpoints every parent; a second engine adopts them
// from the journal (a restarted service): the working one goes on from
// where it stood, the ended one is a status and a taken id.
func TestJournal_AServiceRestartAdoptsItsParents(t *testing.T) {
	j := newMemJournal()
	clk := clock.NewManual(t0)
	v := newFake("v", clk, "5")
	ctx := context.Background()
	e1, stop1 := serving(t, clk, v, &memPub{}, j)
	a, b := serveSpec("a"), serveSpec("b")
	a.Origin = []byte(`{"client":"fund-a"}`)
	for _, s := range []ParentSpec{a, b} {
		if _, err := e1.Submit(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	s1 := service{clk: clk, eng: e1, v: v}
	for i := 0; i < 3; i++ {
		s1.step(t, "a", "b")
	}
	if _, err := e1.Cancel(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	before, _ := e1.Status("a")
	stop1()
	if !before.Filled.Equal(dec("2")) { // 0.5 a minute, four slices
		t.Fatalf("a filled %s before the restart", before.Filled)
	}

	e2, _ := serving(t, clk, v, &memPub{}, j)
	for _, id := range []string{"a", "b"} {
		cp, found, err := j.Load(ctx, id)
		if err != nil || !found {
			t.Fatalf("checkpoint of %s: %v %v", id, found, err)
		}
		if id == "a" && string(cp.Origin) != `{"client":"fund-a"}` {
			t.Fatalf("origin %q", cp.Origin)
		}
		spec := serveSpec(id)
		spec.Origin = cp.Origin
		if _, err := e2.Adopt(ctx, spec, cp); err != nil {
			t.Fatalf("adopt %s: %v", id, err)
		}
	}
	if st, _ := e2.Status("b"); st.State != Cancelled || !st.Filled.Equal(dec("2")) {
		t.Fatalf("b after the restart: %s, filled %s", st.State, st.Filled)
	}
	if _, err := e2.Submit(ctx, serveSpec("b")); !errors.Is(err, ErrDuplicateParent) {
		t.Fatalf("b's id again after the restart: %v", err)
	}
	s2 := service{clk: clk, eng: e2, v: v}
	s2.step(t, "a")
	st, _ := e2.Status("a")
	// A minute later: the schedule releases 0.5 more.
	if st.State != Working || !st.Filled.Equal(dec("2.5")) || st.ChildOrders <= before.ChildOrders {
		t.Fatalf("a after the restart: %s, filled %s, %d children (before: %d)", st.State, st.Filled, st.ChildOrders, before.ChildOrders)
	}
	if v.dupTries != 0 {
		t.Fatalf("a used client id was sent %d times", v.dupTries)
	}
}

// A restarted parent counts the fills it made before the crash against
// its participation windows, on its venue and in the engine's total.
func TestJournal_RestoredParentKeepsItsParticipationWindow(t *testing.T) {
	clk := clock.NewVirtual(t0)
	v := newFake("v", clk, "2")
	j := newMemJournal()
	s := sellSpec()
	s.MaxParticipation = dec("1")
	crashVenue(v, "after", 12)
	if _, _, finished := crashRun(t, clk, []*fakeVenue{v}, &memPub{}, j, []ParentSpec{s}); finished {
		t.Fatal("the run finished before the crash point")
	}
	v.crash = nil
	cp, found, err := j.Load(context.Background(), s.ID)
	if err != nil || !found || len(cp.Recent) == 0 {
		t.Fatalf("checkpoint: found %v, %d recent fills, %v", found, len(cp.Recent), err)
	}
	kill := risk.NewKillSwitch(false)
	e, err := New(clk, []Venue{v}, risk.NewChecker(kill), kill, &memPub{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	e.UseJournal(j)
	p, err := e.restore(context.Background(), s, cp, true)
	if err != nil {
		t.Fatal(err)
	}
	last := cp.Recent[len(cp.Recent)-1].Time
	from := last.Add(-s.window())
	want := decimal.Zero
	for _, f := range cp.Recent {
		if f.Time.After(from) {
			want = want.Add(f.Qty)
		}
	}
	if got := p.ours["v"].sum(from, last); !got.Equal(want) || !want.IsPositive() {
		t.Fatalf("the parent's window after the restart holds %s, the checkpoint %s", got, want)
	}
	if got := e.ours["v"].sum(from, last); !got.Equal(want) {
		t.Fatalf("the engine's window after the restart holds %s, want %s", got, want)
	}
}

// A cancel whose checkpoint the bus does not take says so, and the
// checkpoint is written as soon as the bus takes it again, with no other
// command: a restart never finds a cancelled order working.
func TestJournal_ACancelNotCheckpointedIsWrittenWhenTheBusIsBack(t *testing.T) {
	j := newMemJournal()
	clk := clock.NewManual(t0)
	v := newFake("v", clk, "5")
	e, _ := serving(t, clk, v, &memPub{}, j)
	if _, err := e.Submit(context.Background(), serveSpec("a")); err != nil {
		t.Fatal(err)
	}
	s := service{clk: clk, eng: e, v: v}
	s.step(t, "a")

	j.mu.Lock()
	j.down = true
	j.mu.Unlock()
	st, err := e.Cancel(context.Background(), "a")
	if err == nil || !strings.Contains(err.Error(), "not durable yet") || st.State != Cancelled {
		t.Fatalf("cancel with the bus down: %s, %v", st.State, err)
	}
	if cp, _, _ := j.Load(context.Background(), "a"); cp.State != "working" {
		t.Fatalf("the checkpoint says %s while the bus is down", cp.State)
	}
	j.mu.Lock()
	j.down = false
	j.mu.Unlock()
	for i := 0; ; i++ {
		clk.Advance(time.Minute)
		if err := e.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
		if cp, _, _ := j.Load(context.Background(), "a"); cp.State == "cancelled" {
			break
		}
		if i > 100 {
			t.Fatal("the cancel was never written")
		}
		time.Sleep(time.Millisecond)
	}
}

// A venue that holds an open child and does not answer at the restart
// stops the restore rather than letting the parent sell that child's
// quantity again elsewhere; once it answers, the parent completes, and the
// venues sold exactly its quantity.
func TestJournal_RestoreWaitsForTheVenueOfAnOpenChild(t *testing.T) {
	clk := clock.NewVirtual(t0)
	vs := []*fakeVenue{newFake("deep", clk, "2"), newFake("thin", clk, "1")}
	mem, j := &memPub{}, newMemJournal()
	s := sellSpec()
	s.MaxParticipation = dec("1")
	crashVenue(vs[1], "after", 5)
	if _, _, finished := crashRun(t, clk, vs, mem, j, []ParentSpec{s}); finished {
		t.Fatal("the run finished before the crash point")
	}
	vs[1].mu.Lock()
	vs[1].crash = nil
	vs[1].rulesUntil = clk.Now().Add(time.Hour) // thin does not answer at the restart
	vs[1].mu.Unlock()
	_, err, finished := crashRun(t, clk, vs, mem, j, []ParentSpec{s})
	if !finished || err == nil || !strings.Contains(err.Error(), "thin holds the open child") {
		t.Fatalf("a restart without the open child's venue: %v", err)
	}
	vs[1].mu.Lock()
	vs[1].rulesUntil = time.Time{}
	vs[1].mu.Unlock()
	sum, err, finished := crashRun(t, clk, vs, mem, j, []ParentSpec{s})
	if !finished || err != nil || sum[0].State != Done {
		t.Fatalf("once thin answers: %v, %v", sum, err)
	}
	sold := decimal.Zero
	for _, v := range vs {
		for _, f := range v.fills {
			sold = sold.Add(f.Qty)
		}
	}
	if !sold.Equal(s.Qty) || !sum[0].Filled.Equal(s.Qty) {
		t.Fatalf("the venues sold %s, the engine counts %s, the parent is %s", sold, sum[0].Filled, s.Qty)
	}
}

// A POV parent killed in the middle of its hour and restarted goes on at
// its rate: its checkpoint keeps the volume the schedule had observed and
// the target it had promised, so the restarted schedule neither starts
// from nothing (and stalls, the parent far ahead of a target rebuilt from
// zero) nor loses its max-rate step. It ends where a run without the crash
// ends.
func TestJournal_RestartedPOVParentKeepsItsSchedule(t *testing.T) {
	povSpec := func(t *testing.T, clk clock.Clock) ParentSpec {
		s := sellSpec()
		s.Qty, s.Strategy, s.MaxParticipation, s.LimitPrice = dec("1000"), "pov", dec("0.5"), decimal.Zero
		sched, err := pov.New(s.Qty, s.Start, s.End, pov.Params{Rate: dec("0.2")})
		if err != nil {
			t.Fatal(err)
		}
		s.Schedule = sched
		return s
	}
	// Without a crash.
	clk := clock.NewVirtual(t0)
	v := newFake("v", clk, "50")
	whole, err, finished := crashRun(t, clk, []*fakeVenue{v}, &memPub{}, newMemJournal(), []ParentSpec{povSpec(t, clk)})
	if !finished || err != nil {
		t.Fatalf("the run without a crash: finished %v, %v", finished, err)
	}

	// Killed after its 25th child is placed, then started again with a
	// schedule built afresh from the order, as run and serve do.
	clk = clock.NewVirtual(t0)
	v = newFake("v", clk, "50")
	j := newMemJournal()
	crashVenue(v, "after", 25)
	if _, _, finished := crashRun(t, clk, []*fakeVenue{v}, &memPub{}, j, []ParentSpec{povSpec(t, clk)}); finished {
		t.Fatal("the run finished before the crash point")
	}
	v.crash = nil
	cp, found, err := j.Load(context.Background(), "p1")
	if err != nil || !found || len(cp.Schedule) == 0 {
		t.Fatalf("checkpoint: found %v, schedule state %q, %v", found, cp.Schedule, err)
	}
	sums, err, finished := crashRun(t, clk, []*fakeVenue{v}, &memPub{}, j, []ParentSpec{povSpec(t, clk)})
	if !finished || err != nil {
		t.Fatalf("the restarted run: finished %v, %v", finished, err)
	}
	got, want := sums[0].Filled, whole[0].Filled
	if got.Sub(want).Abs().GreaterThan(want.Mul(dec("0.02"))) {
		t.Fatalf("restarted POV parent filled %s, the same parent without a crash %s", got, want)
	}
}
