//go:build unix

package main

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/venues/fakex"
)

// Bounds of the fault scenarios: a parent of faultDuration on the wall
// clock (16 slices of faultSlice, two orders each: enough for a kill in
// either half and for a venue to fail and come back), each blockexec
// process given at most faultProcessLimit.
const (
	faultParent       = "crash-1"
	faultQuantity     = "12"
	faultDuration     = 8 * time.Second
	faultSlice        = 500 * time.Millisecond
	faultProcessLimit = 2 * time.Minute
)

// TestFaults_KilledRunResumesAndPlacesNoClientIDTwice kills a real
// blockexec run process with SIGKILL at a fail point, starts it again on
// the same config and --data-dir, and checks that the parent completes
// exactly once: the venues sold its quantity and no more, every client id
// reached a venue at most once, the ledger holds the venues' fills one for
// one (and each child is counted once), and a third start is refused
// because the parent ended. The two Binance fakes (and their matching
// cores) live in this test process, so what they hold survives the
// engine's kill -9. A resumed run lasts at least the recorder's AckWait
// whatever the kill's point: its recorder waits for the messages the
// killed one had been handed and not acked, which the server hands out
// again after the consumer's AckWait.
func TestFaults_KilledRunResumesAndPlacesNoClientIDTwice(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts blockexec processes on the wall clock, about 15 s a scenario plus the recorder's AckWait")
	}
	t.Parallel() // with the venue fault scenarios: both mostly wait on the wall clock
	bin := buildBlockexec(t)
	for _, sc := range []struct {
		name, point string
		n           int
		// afterEnd restarts the killed run only once the parent's end has
		// passed.
		afterEnd bool
		// edited first restarts the killed run with its quantity edited,
		// which is refused, then as it was.
		edited bool
		// proves is what the scenario adds to the checks every one makes.
		proves string
	}{
		{name: "before-place 3", point: "before-place", n: 3,
			proves: "a child whose intent was checkpointed but never sent is looked up by client id, found " +
				"missing, given up as never placed, and its quantity sold under new client ids"},
		{name: "after-place 3", point: "after-place", n: 3, edited: true,
			proves: "a restart with the parent's quantity edited is refused without placing anything; and a child the venue took and filled, with nothing of it recorded, is found at the venue by " +
				"client id and its fills are recorded once, without sending the order again"},
		{name: "mid-fill 2", point: "mid-fill", n: 2,
			proves: "a child killed between two of its fills (the first walking more than one level) is " +
				"recorded whole: no fill counted twice, none lost"},
		{name: "after-place 24", point: "after-place", n: 24,
			proves: "a kill in the second half, after many rounds were flushed to the bus and the ledger, " +
				"resumes from the latest checkpoint and not from the parent's start"},
		{name: "after-place 3, restarted after the end", point: "after-place", n: 3, afterEnd: true,
			proves: "a run restarted only after its parent's end still settles the child the venue filled " +
				"before the kill, and ends the parent"},
	} {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			t.Logf("proves: %s", sc.proves)
			r := newFaultRig(t, bin, faultDuration)

			first := r.run(t, fmt.Sprintf("%s:%d", sc.point, sc.n))
			if !first.killed {
				t.Fatalf("first run was not killed at %s:%d: exit %d\n%s", sc.point, sc.n, first.code, first.stderr)
			}
			if sc.afterEnd {
				time.Sleep(time.Until(r.start.Add(r.duration + time.Second)))
			}
			if sc.edited {
				orig, err := os.ReadFile(r.config)
				if err != nil {
					t.Fatal(err)
				}
				was := fmt.Sprintf("quantity: %q", faultQuantity)
				if err := os.WriteFile(r.config, []byte(strings.Replace(string(orig), was, `quantity: "9"`, 1)), 0o600); err != nil {
					t.Fatal(err)
				}
				placed := r.placedAtVenues()
				edited := r.run(t, "")
				if edited.killed || edited.code != exitBadConfig || !strings.Contains(edited.stderr, "parents[0].quantity") ||
					!strings.Contains(edited.stderr, "differs from") {
					t.Fatalf("run with the quantity edited: exit %d (killed %v), want %d and the field named\n%s",
						edited.code, edited.killed, exitBadConfig, edited.stderr)
				}
				if n := r.placedAtVenues(); n != placed {
					t.Fatalf("the refused run placed %d orders", n-placed)
				}
				if err := os.WriteFile(r.config, orig, 0o600); err != nil {
					t.Fatal(err)
				}
			}

			second := r.run(t, "")
			if second.killed || second.code != 0 {
				t.Fatalf("resumed run: exit %d (killed %v)\nstdout:\n%s\nstderr:\n%s\nfirst run's stderr:\n%s\n%s",
					second.code, second.killed, second.stdout, second.stderr, first.stderr, r.accounts(t))
			}
			if !strings.Contains(second.stderr, "resuming an interrupted parent") {
				t.Fatalf("the second run did not resume from the checkpoint:\n%s", second.stderr)
			}
			r.checkExactlyOnce(t)

			// Started again, the ended parent is refused and nothing is
			// placed: as the config stands (its window now past), and with
			// its window moved ahead, which only the checkpoint's terminal
			// state can refuse.
			placed := r.placedAtVenues()
			third := r.run(t, "")
			if third.killed || third.code != exitBadConfig {
				t.Fatalf("third run: exit %d (killed %v), want %d\n%s", third.code, third.killed, exitBadConfig, third.stderr)
			}
			r.writeConfig(t, clock.Wall{}.Now().Add(5*time.Second).Truncate(time.Second))
			fourth := r.run(t, "")
			if fourth.killed || fourth.code != exitBadConfig || !strings.Contains(fourth.stderr, "already ended") {
				t.Fatalf("run with the window moved ahead: exit %d (killed %v), want %d and \"already ended\"\n%s",
					fourth.code, fourth.killed, exitBadConfig, fourth.stderr)
			}
			if n := r.placedAtVenues(); n != placed {
				t.Fatalf("%d orders placed by runs of a parent that had ended", n-placed)
			}
		})
	}
}

// TestFaults_VenueFaultsDuringARunNeitherFailTheParentNorPlaceTwice runs a
// parent while the Binance fakes fail under it as exchanges do: answers
// lost after the order was taken, requests held past the client's
// timeout, a 429 storm, a 418 ban, a venue gone dark. The faults are the
// fakes' own (venues/fakex, as the conformance suite in venues/venuetest
// injects them), armed from the tap when a venue has answered its
// armAt-th order, so they meet a parent at work whatever the timing. Each
// scenario checks what the kill scenarios check (the parent done, the
// venues' fills the ledger's trade for trade, no client id sent twice, one
// child_placed per client id) and that the engine did meet its faults.
func TestFaults_VenueFaultsDuringARunNeitherFailTheParentNorPlaceTwice(t *testing.T) {
	if testing.Short() {
		t.Skip("runs blockexec processes on the wall clock against failing fakes, 10 to 30 s a scenario")
	}
	t.Parallel() // with the kill scenarios: both mostly wait on the wall clock
	bin := buildBlockexec(t)
	const armAt = 2
	for _, sc := range []struct {
		name string
		// arm sets the faults up before the run; check looks for the
		// engine's meeting with them after it.
		arm, check func(t *testing.T, r *faultRig)
		duration   time.Duration // the parent's; zero is faultDuration
		proves     string
	}{
		{
			name: "accept-then-5xx",
			proves: "three orders the venue took and answered with a 503 are each looked up by client id, found " +
				"and recorded with their fills, never sent again",
			arm: func(t *testing.T, r *faultRig) {
				a := r.venues[0]
				a.tap.afterOrder(armAt, func() {
					a.live.fake.Faults().Add(fakex.Fault{Kind: fakex.AcceptThen5xx, Times: 3, Method: http.MethodPost, Path: orderPath})
				})
			},
			check: func(t *testing.T, r *faultRig) {
				a := r.venues[0]
				lost := a.tap.answered(http.StatusServiceUnavailable, true)
				if hits := a.live.fake.Faults().Hits(fakex.AcceptThen5xx); hits != 3 || len(lost) != 3 {
					t.Fatalf("%s: %d answers lost by the fake, %d 503s to orders at the tap; want 3", a.name, hits, len(lost))
				}
				placed := r.childrenPlaced(t)
				for _, c := range lost {
					if !slices.Contains(a.live.fake.Placed(), c.clientID) || placed[c.clientID] != a.name {
						t.Errorf("%s: order %s answered 503: at the venue %v, child_placed in the ledger at %q", a.name,
							c.clientID, slices.Contains(a.live.fake.Placed(), c.clientID), placed[c.clientID])
					}
				}
			},
		},
		{
			name: "timeouts",
			proves: "an order held unprocessed past the client's timeout is child_unknown, then, not at the venue, " +
				"given up as never placed and its quantity sold under new client ids; an order taken and then held " +
				"is found by client id and recorded, never sent again",
			arm: func(t *testing.T, r *faultRig) {
				for i, kind := range []fakex.Kind{fakex.Timeout, fakex.AcceptThenTimeout} {
					v := r.venues[i]
					v.tap.afterOrder(armAt, func() {
						v.live.fake.Faults().Add(fakex.Fault{Kind: kind, Method: http.MethodPost, Path: orderPath})
					})
				}
			},
			check: func(t *testing.T, r *faultRig) {
				placed := r.childrenPlaced(t)
				unknown := map[string]string{} // client id → venue
				for _, m := range r.events(t, bus.KindChildUnknown) {
					unknown[m.Child.ClientID] = m.Child.Venue
				}
				for i, kind := range []fakex.Kind{fakex.Timeout, fakex.AcceptThenTimeout} {
					v := r.venues[i]
					held := v.tap.answered(0, true)
					if hits := v.live.fake.Faults().Hits(kind); hits != 1 || len(held) != 1 {
						t.Fatalf("%s: %s hit %d orders, %d orders unanswered at the tap; want 1", v.name, kind, hits, len(held))
					}
					cid := held[0].clientID
					atVenue := slices.Contains(v.live.fake.Placed(), cid)
					switch {
					case kind == fakex.Timeout && (atVenue || placed[cid] != "" || unknown[cid] != v.name):
						t.Errorf("%s: order %s held unprocessed: at the venue %v, child_placed at %q, child_unknown at %q",
							v.name, cid, atVenue, placed[cid], unknown[cid])
					case kind == fakex.AcceptThenTimeout && (!atVenue || placed[cid] != v.name):
						t.Errorf("%s: order %s taken and held: at the venue %v, child_placed at %q", v.name, cid, atVenue,
							placed[cid])
					}
				}
				if !slices.ContainsFunc(r.metFaults(t, r.venues[0].name), func(s string) bool {
					return strings.Contains(s, "never placed")
				}) {
					t.Errorf("%s: no child given up as never placed: %v", r.venues[0].name, r.metFaults(t, r.venues[0].name))
				}
			},
		},
		{
			name: "429 storm",
			proves: "three 429s with Retry-After 1 s in a row slow a venue down without failing the parent: nothing " +
				"is sent to it before each Retry-After has passed, and it trades again after the storm",
			// The engine's back-off (1, 2, 4, 8 slices) brings the venue
			// back some 8 s after the storm's start: 3 s more than the rest.
			duration: faultDuration + 3*time.Second,
			arm: func(t *testing.T, r *faultRig) {
				a := r.venues[0]
				a.tap.afterOrder(armAt, func() {
					a.live.fake.Faults().Add(fakex.Fault{Kind: fakex.RateLimited, Times: 3, RetryAfter: time.Second})
				})
			},
			check: func(t *testing.T, r *faultRig) {
				a := r.venues[0]
				limited := a.tap.answered(http.StatusTooManyRequests, false)
				if hits := a.live.fake.Faults().Hits(fakex.RateLimited); hits != 3 || len(limited) != 3 {
					t.Fatalf("%s: the storm hit %d requests, the tap saw %d 429s; want 3", a.name, hits, len(limited))
				}
				for _, s := range a.tap.sentDuring(http.StatusTooManyRequests, time.Second) {
					t.Errorf("%s: sent inside Retry-After: %s", a.name, s)
				}
				if ordersAfter(a.tap, limited[len(limited)-1].ended) == 0 {
					t.Errorf("%s: no order after the storm", a.name)
				}
			},
		},
		{
			name: "418 ban",
			proves: "a 418 ban with Retry-After 3 s is waited out: the venue sees no request while it lasts (one " +
				"418 in all), and trades again after",
			arm: func(t *testing.T, r *faultRig) {
				b := r.venues[1]
				b.tap.afterOrder(armAt, func() {
					b.live.fake.Faults().Add(fakex.Fault{Kind: fakex.Banned, RetryAfter: 3 * time.Second})
				})
			},
			check: func(t *testing.T, r *faultRig) {
				b := r.venues[1]
				banned := b.tap.answered(http.StatusTeapot, false)
				if hits := b.live.fake.Faults().Hits(fakex.Banned); hits != 1 || len(banned) != 1 {
					t.Fatalf("%s: %d bans, %d 418s at the tap; want 1", b.name, hits, len(banned))
				}
				for _, s := range b.tap.sentDuring(http.StatusTeapot, 3*time.Second) {
					t.Errorf("%s: sent during the ban: %s", b.name, s)
				}
				if after := ordersAfter(b.tap, banned[0].ended.Add(3*time.Second)); after == 0 {
					t.Errorf("%s: no order after the ban", b.name)
				}
			},
		},
		{
			name:   "dark for 2 s",
			proves: "a venue that drops every connection for 2 s sits out, its share goes to the other, and it trades again once back",
			arm: func(t *testing.T, r *faultRig) {
				a := r.venues[0]
				a.tap.afterOrder(armAt, func() {
					a.live.fake.Server().SetDark(true)
					time.AfterFunc(2*time.Second, func() { a.live.fake.Server().SetDark(false) })
				})
			},
			check: func(t *testing.T, r *faultRig) {
				a := r.venues[0]
				dropped := a.tap.answered(0, false)
				if len(dropped) == 0 {
					t.Fatalf("%s: no request met the dark venue", a.name)
				}
				if after := ordersAfter(a.tap, dropped[len(dropped)-1].ended); after == 0 {
					t.Errorf("%s: no order after it came back", a.name)
				}
			},
		},
		{
			name:   "dark to the end",
			proves: "a venue that goes dark for good after two orders gets no more, and the other venue sells the rest of the parent",
			arm: func(t *testing.T, r *faultRig) {
				b := r.venues[1]
				b.tap.afterOrder(armAt, func() { b.live.fake.Server().SetDark(true) })
			},
			check: func(t *testing.T, r *faultRig) {
				b := r.venues[1]
				if n := len(b.live.fake.Placed()); n != armAt {
					t.Errorf("%s: %d orders at the dark venue, want the %d before it went dark", b.name, n, armAt)
				}
				if len(b.tap.answered(0, false)) == 0 {
					t.Errorf("%s: no request met the dark venue", b.name)
				}
			},
		},
	} {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			t.Logf("proves: %s", sc.proves)
			d := sc.duration
			if d == 0 {
				d = faultDuration
			}
			r := newFaultRig(t, bin, d)
			sc.arm(t, r)
			out := r.run(t, "")
			for _, v := range r.venues { // the checks read the venues' trades
				v.live.fake.Server().SetDark(false)
				v.live.fake.Faults().Clear()
			}
			if out.killed || out.code != 0 {
				t.Fatalf("run: exit %d (killed %v)\nstdout:\n%s\nstderr:\n%s\n%s", out.code, out.killed, out.stdout,
					out.stderr, r.accounts(t))
			}
			r.checkExactlyOnce(t)
			sc.check(t, r)
			for _, v := range r.venues {
				if met := r.metFaults(t, v.name); len(met) > 0 {
					t.Logf("%s: %d signs of faults in the ledger, first %s", v.name, len(met), met[0])
				}
			}
		})
	}
}

// ordersAfter counts the order submissions that reached a venue after t
// and were answered 200.
func ordersAfter(o *orderTap, t time.Time) int {
	n := 0
	for _, c := range o.answered(http.StatusOK, true) {
		if c.arrived.After(t) {
			n++
		}
	}
	return n
}
