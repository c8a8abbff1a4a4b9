package engine

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/risk"
)

// service is an engine serving on a manual clock, and its venue.
type service struct {
	clk *clock.Manual
	eng *Engine
	v   *fakeVenue
	pub *memPub
}

func serveRig(t *testing.T) service {
	t.Helper()
	clk := clock.NewManual(t0)
	v := newFake("v", clk, "5")
	pub := &memPub{}
	e, _ := serving(t, clk, v, pub, nil)
	return service{clk: clk, eng: e, v: v, pub: pub}
}

// serving starts an engine serving on clk over v and pub, checkpointing
// in j when it is not nil. The returned stop (also run at the test's
// cleanup) ends Serve and checks that it ended for the cancel.
func serving(t *testing.T, clk *clock.Manual, v *fakeVenue, pub Publisher, j Journal) (*Engine, func()) {
	t.Helper()
	kill := risk.NewKillSwitch(false)
	e, err := New(clk, []Venue{v}, risk.NewChecker(kill), kill, pub, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if j != nil {
		e.UseJournal(j)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Serve(ctx) }()
	stop := sync.OnceFunc(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Serve returned %v", err)
		}
	})
	t.Cleanup(stop)
	waitServing(t, e)
	return e, stop
}

func waitServing(t *testing.T, e *Engine) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		e.desk.mu.Lock()
		ok := e.desk.serving
		e.desk.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("Serve did not start")
}

// step moves the clock a minute and waits until every parent that is
// working has had its slice.
func (s service) step(t *testing.T, ids ...string) {
	t.Helper()
	s.clk.Advance(time.Minute)
	now := s.clk.Now()
	for _, id := range ids {
		deadline := time.Now().Add(5 * time.Second) //nolint:forbidigo // a test's patience is wall time
		for {
			st, _ := s.eng.Status(id)
			if st.State != Working && st.State != Accepted || !st.Updated.Before(now) {
				break
			}
			if time.Now().After(deadline) { //nolint:forbidigo
				t.Fatalf("%s had no slice at %s", id, now.Format(time.Kitchen))
			}
			time.Sleep(time.Millisecond)
		}
	}
}

func serveSpec(id string) ParentSpec {
	s := sellSpec()
	s.ID, s.MaxParticipation = id, dec("1")
	return s
}

func TestServe_SubmitPauseResumeCancel(t *testing.T) {
	s := serveRig(t)
	ctx := context.Background()
	if _, err := s.eng.Submit(ctx, serveSpec("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.eng.Submit(ctx, serveSpec("a")); !errors.Is(err, ErrDuplicateParent) {
		t.Fatalf("a second parent a: %v", err)
	}
	bad := serveSpec("bad")
	bad.Qty = dec("-1")
	var se *SpecError
	if _, err := s.eng.Submit(ctx, bad); !errors.As(err, &se) {
		t.Fatalf("a negative quantity: %v", err)
	}
	for i := 0; i < 5; i++ {
		s.step(t, "a")
	}
	st, _ := s.eng.Status("a")
	if st.State != Working || !st.Filled.Equal(dec("3")) { // 0.5 a minute for six slices (t0 … t0+5m)
		t.Fatalf("after 5 minutes: %s, filled %s", st.State, st.Filled)
	}
	if st, err := s.eng.Pause(ctx, "a"); err != nil || st.State != Paused {
		t.Fatalf("pause: %s %v", st.State, err)
	}
	placed := len(s.v.placed)
	for i := 0; i < 4; i++ {
		s.clk.Advance(time.Minute)
	}
	// A command is a barrier: anything the loop did meanwhile is done.
	if st, err := s.eng.Pause(ctx, "a"); err != nil || st.State != Paused {
		t.Fatalf("pause again: %s %v", st.State, err)
	}
	if n := len(s.v.placed); n != placed {
		t.Fatalf("%d children placed while paused", n-placed)
	}
	if st, err := s.eng.Resume(ctx, "a"); err != nil || st.State != Working {
		t.Fatalf("resume: %s %v", st.State, err)
	}
	s.step(t, "a")
	st, _ = s.eng.Status("a")
	// Paused for four minutes: the next slice catches up to the schedule.
	if !st.Filled.Equal(dec("5.5")) {
		t.Fatalf("after resuming: filled %s, want the schedule's 5.5", st.Filled)
	}
	if st, err := s.eng.Cancel(ctx, "a"); err != nil || st.State != Cancelled {
		t.Fatalf("cancel: %s %v", st.State, err)
	}
	if _, err := s.eng.Pause(ctx, "a"); !errors.Is(err, ErrParentEnded) {
		t.Fatalf("pause after cancel: %v", err)
	}
	if _, err := s.eng.Submit(ctx, serveSpec("a")); !errors.Is(err, ErrDuplicateParent) {
		t.Fatalf("an ended parent's id again: %v", err)
	}
	kinds := map[string]int{}
	for _, ev := range s.pub.events {
		kinds[ev.Kind]++
	}
	if kinds[bus.KindPaused] != 1 || kinds[bus.KindResumed] != 1 || kinds[bus.KindDone] != 1 {
		t.Fatalf("events %v", kinds)
	}
}

func TestServe_AmendIsCheckedAndApplied(t *testing.T) {
	s := serveRig(t)
	ctx := context.Background()
	if _, err := s.eng.Submit(ctx, serveSpec("a")); err != nil {
		t.Fatal(err)
	}
	s.step(t, "a")
	before, _ := s.eng.Status("a")
	zero, high := dec("0"), dec("70000")
	for name, a := range map[string]Amendment{
		"a band of zero":          {BandBps: &zero},
		"a participation of zero": {MaxParticipation: &zero},
		"a floor above the bids":  {LimitPrice: &high},
		"an end in the past":      {End: &t0},
	} {
		var se *SpecError
		if _, err := s.eng.Amend(ctx, "a", a); !errors.As(err, &se) {
			t.Fatalf("%s: %v, want a *SpecError", name, err)
		}
	}
	if after, _ := s.eng.Status("a"); !after.BandBps.Equal(before.BandBps) || !after.LimitPrice.Equal(before.LimitPrice) ||
		!after.End.Equal(before.End) {
		t.Fatalf("a refused amendment changed the parent: %+v", after)
	}
	// Raise the floor to just under the touch and end in 10 minutes.
	floor, end := dec("59990"), s.clk.Now().Add(10*time.Minute)
	st, err := s.eng.Amend(ctx, "a", Amendment{LimitPrice: &floor, End: &end})
	if err != nil || !st.LimitPrice.Equal(floor) || !st.End.Equal(end) {
		t.Fatalf("amend: %+v %v", st, err)
	}
	for i := 0; i < 10; i++ {
		s.step(t, "a")
	}
	st, _ = s.eng.Status("a")
	if st.State != Done {
		t.Fatalf("the parent did not end at its new end time: %s", st.State)
	}
	for i, req := range s.v.placed {
		if s.v.placedAt[i].After(t0.Add(time.Minute)) && req.Price.LessThan(floor) {
			t.Fatalf("child %s at %s below the amended floor %s", req.ClientID, req.Price, floor)
		}
	}
	if len(s.pub.kinds(bus.KindAmended)) != 1 {
		t.Fatalf("%d amended events", len(s.pub.kinds(bus.KindAmended)))
	}
}

func TestServe_KillAllCancelsEveryParent(t *testing.T) {
	s := serveRig(t)
	ctx := context.Background()
	for _, id := range []string{"a", "b"} {
		if _, err := s.eng.Submit(ctx, serveSpec(id)); err != nil {
			t.Fatal(err)
		}
	}
	s.step(t, "a", "b")
	killed, err := s.eng.KillAll(ctx, "test")
	if err != nil || len(killed) != 2 {
		t.Fatalf("kill: %d %v", len(killed), err)
	}
	for _, st := range s.eng.Statuses() {
		if st.State != Cancelled {
			t.Fatalf("%s is %s after the kill", st.ParentID, st.State)
		}
	}
	placed := len(s.v.placed)
	s.clk.Advance(5 * time.Minute)
	// A command is a barrier: the loop has nothing left to tick.
	if _, err := s.eng.Pause(ctx, "a"); !errors.Is(err, ErrParentEnded) {
		t.Fatalf("pause of a killed parent: %v", err)
	}
	if len(s.v.placed) != placed {
		t.Fatal("children placed after the kill")
	}
}

func TestServe_KillCancelsEveryParentEvenWhenOneCannotBePublished(t *testing.T) {
	s := serveRig(t)
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		if _, err := s.eng.Submit(ctx, serveSpec(id)); err != nil {
			t.Fatal(err)
		}
	}
	s.step(t, "a", "b", "c")
	s.pub.mu.Lock()
	s.pub.failFor = "a" // the first in line
	s.pub.mu.Unlock()
	killed, err := s.eng.KillAll(ctx, "test")
	if err == nil || !strings.Contains(err.Error(), "parent a") {
		t.Fatalf("kill with a's events failing: %v, want an error naming a", err)
	}
	if len(killed) != 3 {
		t.Fatalf("kill cancelled %d parents, want all 3", len(killed))
	}
	for _, st := range s.eng.Statuses() {
		if st.State != Cancelled {
			t.Fatalf("%s is %s after the kill", st.ParentID, st.State)
		}
	}
	placed := len(s.v.placed)
	s.clk.Advance(5 * time.Minute)
	if _, err := s.eng.Pause(ctx, "b"); !errors.Is(err, ErrParentEnded) {
		t.Fatalf("pause of a killed parent: %v", err)
	}
	if len(s.v.placed) != placed {
		t.Fatal("children placed after the kill")
	}
}

func TestServe_KillStaysEngagedUntilReleased(t *testing.T) {
	s := serveRig(t)
	ctx := context.Background()
	if _, err := s.eng.Submit(ctx, serveSpec("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.eng.KillAll(ctx, "desk halt"); err != nil {
		t.Fatal(err)
	}
	k := s.eng.KillState()
	if !k.Engaged || k.Reason != "desk halt" || !k.Since.Equal(s.clk.Now()) {
		t.Fatalf("kill state %+v", k)
	}
	if _, err := s.eng.Submit(ctx, serveSpec("b")); !errors.Is(err, ErrKilled) {
		t.Fatalf("submit while killed: %v, want ErrKilled", err)
	}
	if _, ok := s.eng.Status("b"); ok {
		t.Fatal("a parent refused by the kill switch exists")
	}
	if k := s.eng.ReleaseKill(); k.Engaged {
		t.Fatalf("released, still %+v", k)
	}
	if _, err := s.eng.Submit(ctx, serveSpec("b")); err != nil {
		t.Fatalf("submit after release: %v", err)
	}
	if st, _ := s.eng.Status("a"); st.State != Cancelled {
		t.Fatalf("a is %s after the release; what the kill cancelled stays cancelled", st.State)
	}
}

func TestServe_APausedParentEndsAtItsEndTimeInsteadOfCatchingUp(t *testing.T) {
	s := serveRig(t)
	ctx := context.Background()
	spec := serveSpec("a")
	if _, err := s.eng.Submit(ctx, spec); err != nil {
		t.Fatal(err)
	}
	s.step(t, "a")
	if _, err := s.eng.Pause(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	placed := len(s.v.placed)
	s.clk.Set(spec.End.Add(time.Minute))
	deadline := time.Now().Add(5 * time.Second) //nolint:forbidigo // a test's patience is wall time
	for {
		st, _ := s.eng.Status("a")
		if st.State.Terminal() {
			if st.State != Done || !strings.Contains(st.Reason, "paused") {
				t.Fatalf("a paused parent past its end is %s (%s)", st.State, st.Reason)
			}
			break
		}
		if time.Now().After(deadline) { //nolint:forbidigo
			t.Fatalf("a paused parent past its end is still %s", st.State)
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := s.eng.Resume(ctx, "a"); !errors.Is(err, ErrParentEnded) {
		t.Fatalf("resume after the end: %v", err)
	}
	if len(s.v.placed) != placed {
		t.Fatalf("%d children placed after the pause", len(s.v.placed)-placed)
	}
}

// TestServe_AKillWhoseCancelPassDidNotRunStillStopsEverything: the switch
// is engaged before the loop is asked; a parent the pass did not reach is
// cancelled at its next slice instead of trading.
func TestServe_AKillWhoseCancelPassDidNotRunStillStopsEverything(t *testing.T) {
	clk := clock.NewManual(t0)
	kill := risk.NewKillSwitch(false)
	e, err := New(clk, []Venue{newFake("v", clk, "5")}, risk.NewChecker(kill), kill, &memPub{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.KillAll(context.Background(), "loop unreachable"); !errors.Is(err, ErrNotServing) {
		t.Fatalf("kill without the loop: %v", err)
	}
	if k := e.KillState(); !k.Engaged {
		t.Fatal("a kill the loop did not take left the switch released")
	}

	s := serveRig(t)
	ctx := context.Background()
	if _, err := s.eng.Submit(ctx, serveSpec("a")); err != nil {
		t.Fatal(err)
	}
	s.step(t, "a")
	placed := len(s.v.placed)
	// As if KillAll had engaged the switch and its pass had not run.
	s.eng.desk.mu.Lock()
	s.eng.desk.kill = KillState{Engaged: true, Reason: "stuck loop", Since: s.clk.Now()}
	s.eng.desk.mu.Unlock()
	s.step(t, "a")
	if st, _ := s.eng.Status("a"); st.State != Cancelled || !strings.Contains(st.Reason, "stuck loop") {
		t.Fatalf("a is %s (%s) at its first slice under the switch", st.State, st.Reason)
	}
	if len(s.v.placed) != placed {
		t.Fatal("a child was placed under the kill switch")
	}
}

func TestServe_NotServing(t *testing.T) {
	clk := clock.NewManual(t0)
	kill := risk.NewKillSwitch(false)
	e, err := New(clk, []Venue{newFake("v", clk, "5")}, risk.NewChecker(kill), kill, &memPub{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Submit(context.Background(), serveSpec("a")); !errors.Is(err, ErrNotServing) {
		t.Fatalf("submit without Serve: %v", err)
	}
	if err := e.Ping(context.Background()); !errors.Is(err, ErrNotServing) {
		t.Fatalf("ping without Serve: %v", err)
	}
}

func TestServe_PingAnswersWhileServing(t *testing.T) {
	s := serveRig(t)
	if err := s.eng.Ping(context.Background()); err != nil {
		t.Fatalf("ping: %v", err)
	}
}

func TestServe_BehindCountsWorkingParentsNotYetSliced(t *testing.T) {
	s := serveRig(t)
	ctx := context.Background()
	for _, id := range []string{"a", "b"} {
		if _, err := s.eng.Submit(ctx, serveSpec(id)); err != nil {
			t.Fatal(err)
		}
	}
	s.step(t, "a", "b")
	now := s.clk.Now()
	if n := s.eng.Behind(now); n != 0 {
		t.Fatalf("both sliced at %s, yet %d behind", now.Format(time.Kitchen), n)
	}
	if n := s.eng.Behind(now.Add(time.Second)); n != 2 {
		t.Fatalf("a second later: %d behind, want 2", n)
	}
	if _, err := s.eng.Pause(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	// A paused parent is not behind, and neither is an ended one.
	if n := s.eng.Behind(now.Add(time.Hour)); n != 1 {
		t.Fatalf("b paused: %d behind, want 1", n)
	}
	if _, err := s.eng.Cancel(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if n := s.eng.Behind(now.Add(time.Hour)); n != 0 {
		t.Fatalf("a cancelled, b paused: %d behind, want 0", n)
	}
}

// With a queuing bus, what a slice or a command published is stored by the
// end of its round or before the command is answered. While the bus is
// down the engine places nothing and keeps what it published; no parent
// fails for it, and when the bus is back, everything is stored and
// trading resumes.
func TestServe_AQueuingBusIsFlushedAndHeldWhileDown(t *testing.T) {
	clk := clock.NewManual(t0)
	v := newFake("v", clk, "5")
	q := &queuePub{mem: &memPub{}}
	e, _ := serving(t, clk, v, q, nil)
	s := service{clk: clk, eng: e, v: v, pub: q.mem}
	for _, id := range []string{"a", "b"} {
		if _, err := e.Submit(context.Background(), serveSpec(id)); err != nil {
			t.Fatal(err)
		}
	}
	s.step(t, "a", "b")
	// A command is a barrier: the rounds before it and the command itself
	// are flushed by the time it is answered.
	if _, err := e.Pause(context.Background(), "b"); err != nil {
		t.Fatal(err)
	}
	if n := q.queued(); n != 0 {
		t.Fatalf("%d messages still queued after a command", n)
	}
	if len(q.mem.fills) == 0 || len(q.mem.kinds(bus.KindPaused)) != 1 {
		t.Fatalf("stored %d fills and %d paused events", len(q.mem.fills), len(q.mem.kinds(bus.KindPaused)))
	}
	if _, err := e.Resume(context.Background(), "b"); err != nil {
		t.Fatal(err)
	}

	// The bus goes down: the round's messages are kept, nothing more is
	// placed, and no parent fails for it.
	q.mu.Lock()
	q.down = true
	q.mu.Unlock()
	advanceFlushed(t, s.clk, q)
	v.mu.Lock()
	placed := len(v.placed)
	v.mu.Unlock()
	for i := 0; i < 3; i++ {
		advanceFlushed(t, s.clk, q)
	}
	v.mu.Lock()
	if n := len(v.placed); n != placed {
		t.Fatalf("%d children placed while the bus was down", n-placed)
	}
	v.mu.Unlock()
	for _, id := range []string{"a", "b"} {
		if st, _ := e.Status(id); st.State != Working {
			t.Fatalf("%s is %s while the bus is down", id, st.State)
		}
	}
	kept := q.queued()
	if kept == 0 {
		t.Fatal("nothing kept while the bus was down")
	}

	// Back: what was kept is stored, and trading resumes.
	q.mu.Lock()
	q.down = false
	q.mu.Unlock()
	s.step(t, "a", "b")
	if err := e.Ping(context.Background()); err != nil { // after the round's flush
		t.Fatal(err)
	}
	if n := q.queued(); n != 0 {
		t.Fatalf("%d messages still kept after the bus came back", n)
	}
	v.mu.Lock()
	if len(v.placed) == placed {
		t.Fatal("nothing placed after the bus came back")
	}
	v.mu.Unlock()
	stored := decimal.Zero
	for _, f := range q.mem.fills {
		stored = stored.Add(f.Qty)
	}
	a, _ := e.Status("a")
	b, _ := e.Status("b")
	if !stored.Equal(a.Filled.Add(b.Filled)) {
		t.Fatalf("stored fills add up to %s, the parents filled %s", stored, a.Filled.Add(b.Filled))
	}
}

// advanceFlushed moves the clock a minute and waits (bounded) until the
// loop's round at the new time has flushed.
func advanceFlushed(t *testing.T, clk *clock.Manual, q *queuePub) {
	t.Helper()
	q.mu.Lock()
	want := q.flushes + 1
	q.mu.Unlock()
	clk.Advance(time.Minute)
	for i := 0; ; i++ {
		q.mu.Lock()
		got := q.flushes
		q.mu.Unlock()
		if got >= want {
			return
		}
		if i > 5000 {
			t.Fatalf("%d flushes, want %d", got, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// A closed fence (the engine's heartbeat may have expired) holds trading
// as a bus outage does: nothing placed, no parent failed, and trading
// resumes when it opens.
func TestServe_AClosedFencePlacesNothing(t *testing.T) {
	s := serveRig(t)
	var closed atomic.Bool
	s.eng.UseFence(func() error {
		if closed.Load() {
			return errors.New("heartbeat stale")
		}
		return nil
	})
	if _, err := s.eng.Submit(context.Background(), serveSpec("a")); err != nil {
		t.Fatal(err)
	}
	s.step(t, "a")
	closed.Store(true)
	s.v.mu.Lock()
	placed := len(s.v.placed)
	s.v.mu.Unlock()
	for i := 0; i < 3; i++ {
		s.clk.Advance(time.Minute)
		if err := s.eng.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	s.v.mu.Lock()
	n := len(s.v.placed)
	s.v.mu.Unlock()
	if n != placed {
		t.Fatalf("%d children placed with the fence closed", n-placed)
	}
	if st, _ := s.eng.Status("a"); st.State != Working {
		t.Fatalf("a is %s with the fence closed", st.State)
	}
	closed.Store(false)
	for i := 0; ; i++ {
		s.step(t, "a")
		s.v.mu.Lock()
		n = len(s.v.placed)
		s.v.mu.Unlock()
		if n > placed {
			break
		}
		if i > 5 {
			t.Fatal("nothing placed after the fence opened")
		}
	}
}
