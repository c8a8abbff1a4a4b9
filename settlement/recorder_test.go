package settlement

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/blockexec/blockexec/bus"
)

// startRecorder starts a recorder on store and stops it at the end.
func startRecorder(t *testing.T, c *bus.Conn, store Store, nakDelay time.Duration) *Recorder {
	t.Helper()
	rec := NewRecorder(c.JS, store, zerolog.Nop(), "")
	rec.nakDelay = nakDelay
	if err := rec.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rec.Stop)
	return rec
}

// waitCtx bounds a test's waits: a timeout here is a failure (a wait that
// never ends), never the synchronisation.
func waitCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func accepted(parent string) bus.EventMsg {
	ev := bus.EventMsg{ParentID: parent, Kind: bus.KindAccepted, Seq: 1, Time: t0}
	ev.Parent = &bus.ParentInfo{Side: "sell", Symbol: "BTCUSDT", Quantity: d("1"), Strategy: "twap",
		Start: t0, End: t0.Add(time.Hour), ArrivalPrice: d("63000")}
	return ev
}

// TestRecorder_WaitReturnsOnlyAfterTheLedgerHasCaughtUp publishes a parent
// and its fill and waits at once, many times over, with the recorder
// running: the wait must never return before both are in the ledger. The
// consumer's pending counts lag a publish by a moment, so a wait that
// trusted them returned early now and then (report: unknown parent).
// Duplicates under a fresh Msg-Id and undecodable messages are mixed in:
// they must not hold the wait up. 400 rounds failed the old wait in ten
// runs out of ten.
func TestRecorder_WaitReturnsOnlyAfterTheLedgerHasCaughtUp(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		for _, tc := range []struct {
			name string
			wait func(ctx context.Context, rec *Recorder, pub *bus.Publisher) error
		}{
			{"WaitIdle", func(ctx context.Context, rec *Recorder, _ *bus.Publisher) error { return rec.WaitIdle(ctx) }},
			{"WaitFor publisher marks", func(ctx context.Context, rec *Recorder, pub *bus.Publisher) error {
				return rec.WaitFor(ctx, pub.Marks())
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c, l, pub := setup(t, b)
				rec := startRecorder(t, c, l, defaultNakDelay)
				ctx := waitCtx(t)
				for i := range 400 {
					parent := fmt.Sprintf("race-%d", i)
					if err := pub.PublishEvent(ctx, accepted(parent)); err != nil {
						t.Fatal(err)
					}
					f := testFill("simA", parent, "63000", "0.5", "0.1", time.Minute)
					f.ParentID = parent
					if err := pub.PublishFill(ctx, f); err != nil {
						t.Fatal(err)
					}
					if i%10 == 9 { // the same fill again under a fresh Msg-Id, then garbage
						body, _ := json.Marshal(f)
						if _, err := c.JS.Publish(ctx, bus.FillSubjectFor(parent, "simA"), body, jetstream.WithMsgID(parent+"-again")); err != nil {
							t.Fatal(err)
						}
						if _, err := c.JS.Publish(ctx, bus.FillSubjectFor(parent, "simA"), []byte("{not json")); err != nil {
							t.Fatal(err)
						}
					}
					if err := tc.wait(ctx, rec, pub); err != nil {
						t.Fatalf("iteration %d: %v", i, err)
					}
					rep, err := l.Report(ctx, parent)
					if err != nil {
						t.Fatalf("iteration %d: wait returned before the ledger caught up: %v", i, err)
					}
					if rep.Fills != 1 || !rep.FilledQuantity.Equal(d("0.5")) {
						t.Fatalf("iteration %d: wait returned before the fill was recorded: %d fills, filled %s", i, rep.Fills, rep.FilledQuantity)
					}
				}
			})
		}
	})
}

// TestRecorder_WaitWithNothingPublishedReturnsAtOnce: with nothing to wait
// for, the wait does not even need a live context.
func TestRecorder_WaitWithNothingPublishedReturnsAtOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		c, l, pub := setup(t, b)
		rec := startRecorder(t, c, l, defaultNakDelay)
		done, cancel := context.WithCancel(context.Background())
		cancel()
		for name, marks := range map[string]bus.Marks{"publisher": pub.Marks(), "nil": nil, "zero": {bus.FillsStream: 0}} {
			if err := rec.WaitFor(done, marks); err != nil {
				t.Errorf("%s marks %v: %v", name, marks, err)
			}
		}
		if err := rec.WaitIdle(waitCtx(t)); err != nil {
			t.Errorf("WaitIdle on an empty bus: %v", err)
		}
		if err := rec.WaitFor(done, bus.Marks{"OTHER": 1}); err == nil {
			t.Error("a wait on a stream the recorder does not consume succeeded")
		}
	})
}

var errDiskFull = errors.New("disk I/O error: database or disk is full")

// flakyStore is the ledger with a database that fails the first few fill
// batches, and a record of every fill attempted and of the batches.
type flakyStore struct {
	Store
	commitFirst bool // the failing writes commit, then report an error (a lost commit reply)

	mu       sync.Mutex
	failures int
	attempts []string
	batches  [][]string
	added    int
}

func (s *flakyStore) RecordFills(ctx context.Context, ms []bus.FillMsg) (int, error) {
	s.mu.Lock()
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.MsgID())
	}
	s.attempts = append(s.attempts, ids...)
	s.batches = append(s.batches, ids)
	fail := s.failures > 0
	if fail {
		s.failures--
	}
	s.mu.Unlock()
	if !fail {
		n, err := s.Store.RecordFills(ctx, ms)
		s.mu.Lock()
		s.added += n
		s.mu.Unlock()
		return n, err
	}
	if s.commitFirst {
		if _, err := s.Store.RecordFills(ctx, ms); err != nil {
			return 0, err
		}
	}
	return 0, errDiskFull
}

func (s *flakyStore) written() (batches [][]string, added int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]string(nil), s.batches...), s.added
}

func (s *flakyStore) tries() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.attempts...)
}

// TestRecorder_FailedWriteIsRedeliveredAndStoredOnce: a fill whose write
// fails is not acknowledged, comes back, and is in the ledger exactly once
// when the database recovers; the wait covers the outage.
func TestRecorder_FailedWriteIsRedeliveredAndStoredOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		for _, tc := range []struct {
			name        string
			commitFirst bool
		}{
			{"write fails", false},
			{"write commits but reports failure", true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c, l, pub := setup(t, b)
				store := &flakyStore{Store: l, commitFirst: tc.commitFirst, failures: 3}
				rec := startRecorder(t, c, store, 0) // redeliver at once
				ctx := waitCtx(t)
				if err := pub.PublishEvent(ctx, accepted("p1")); err != nil {
					t.Fatal(err)
				}
				f := testFill("simA", "7", "63000", "0.25", "0.05", time.Minute)
				if err := pub.PublishFill(ctx, f); err != nil {
					t.Fatal(err)
				}
				if err := rec.WaitFor(ctx, pub.Marks()); err != nil {
					t.Fatalf("%v (attempts %v)", err, store.tries())
				}
				if got := store.tries(); len(got) != 4 {
					t.Fatalf("fill written %d times %v, want 3 failures then a success", len(got), got)
				}
				fills, err := l.Fills(ctx, "p1")
				if err != nil {
					t.Fatal(err)
				}
				if len(fills) != 1 || fills[0].TradeID != "7" || !fills[0].Qty.Equal(d("0.25")) {
					t.Fatalf("ledger holds %+v, want the fill once", fills)
				}
				// Settled for good: a second recorder on the durable gets nothing.
				rec.Stop()
				again := &flakyStore{Store: l}
				if err := startRecorder(t, c, again, 0).WaitIdle(ctx); err != nil {
					t.Fatal(err)
				}
				if got := again.tries(); len(got) != 0 {
					t.Fatalf("after recovery the fill came back %v", got)
				}
			})
		}
	})
}

// TestRecorder_WaitEndsWhenTheRecorderStops: a wait on a ledger that never
// recovers ends with ErrStopped when the recorder stops.
func TestRecorder_WaitEndsWhenTheRecorderStops(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		c, l, pub := setup(t, b)
		store := &flakyStore{Store: l, failures: 1 << 30}
		rec := startRecorder(t, c, store, time.Hour)
		ctx := waitCtx(t)
		if err := pub.PublishFill(ctx, testFill("simA", "1", "1", "1", "0", 0)); err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- rec.WaitFor(ctx, pub.Marks()) }()
		rec.Stop()
		if err := <-errc; !errors.Is(err, ErrStopped) {
			t.Fatalf("wait after stop: %v, want ErrStopped", err)
		}
		if n, err := l.Fills(ctx, ""); err != nil || len(n) != 0 {
			t.Fatalf("ledger %v %v, want no fill", n, err)
		}
	})
}

// startBatchRecorder starts a recorder that writes batches of exactly n
// messages when that many are waiting (the events stream, with fewer,
// waits the 2s linger), redelivering failures at once.
func startBatchRecorder(t *testing.T, c *bus.Conn, store Store, n int) *Recorder {
	t.Helper()
	rec := NewRecorder(c.JS, store, zerolog.Nop(), "")
	rec.nakDelay, rec.batchSize, rec.linger = 0, n, 2*time.Second
	if err := rec.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rec.Stop)
	return rec
}

// publishBatch publishes fills for parent p1 before any recorder runs, so
// that the recorder's first fetch finds them all waiting: one batch.
func publishBatch(t *testing.T, c *bus.Conn, pub *bus.Publisher, fills []bus.FillMsg) {
	t.Helper()
	ctx := waitCtx(t)
	if err := pub.PublishEvent(ctx, accepted("p1")); err != nil {
		t.Fatal(err)
	}
	for _, f := range fills {
		if err := pub.PublishFill(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
}

func tradeIDs(t *testing.T, l *Ledger) map[string]int {
	t.Helper()
	fills, err := l.Fills(context.Background(), "p1")
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, f := range fills {
		n[f.TradeID]++
	}
	return n
}

// TestRecorder_DuplicateInsideABatchIsStoredOnce: the same fill twice in
// one batch (a venue's trade republished under a fresh Msg-Id, which
// JetStream cannot drop) is one row, and the whole batch is acknowledged.
func TestRecorder_DuplicateInsideABatchIsStoredOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		c, l, pub := setup(t, b)
		fills := []bus.FillMsg{testFill("simA", "1", "63000", "0.1", "0", time.Minute),
			testFill("simA", "2", "63001", "0.2", "0", 2*time.Minute)}
		publishBatch(t, c, pub, fills)
		body, _ := json.Marshal(fills[0])
		ctx := waitCtx(t)
		if _, err := c.JS.Publish(ctx, bus.FillSubjectFor("p1", "simA"), body, jetstream.WithMsgID("simA:1-again")); err != nil {
			t.Fatal(err)
		}
		if err := pub.PublishFill(ctx, testFill("simA", "3", "63002", "0.3", "0", 3*time.Minute)); err != nil {
			t.Fatal(err)
		}
		store := &flakyStore{Store: l}
		rec := startBatchRecorder(t, c, store, 4)
		if err := rec.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
		batches, added := store.written()
		if len(batches) != 1 || len(batches[0]) != 4 {
			t.Fatalf("batches %v, want the four fills in one", batches)
		}
		if got := tradeIDs(t, l); len(got) != 3 || got["1"] != 1 || added != 3 {
			t.Fatalf("ledger trade ids %v, %d added, want 1, 2 and 3 once each", got, added)
		}
		rec.Stop()
		again := &flakyStore{Store: l}
		if err := startRecorder(t, c, again, 0).WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
		if got := again.tries(); len(got) != 0 {
			t.Fatalf("the batch was not acknowledged: %v came back", got)
		}
	})
}

// TestRecorder_FailureInMidBatchRollsBackAndRedeliversAll: the ledger
// fails a batch after its inserts, inside the transaction. Nothing of it
// is committed nor acknowledged; every message comes back and is stored
// once.
func TestRecorder_FailureInMidBatchRollsBackAndRedeliversAll(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		c, l, pub := setup(t, b)
		var fills []bus.FillMsg
		for i := range 20 {
			fills = append(fills, testFill("simA", fmt.Sprint(i), "63000", "0.01", "0", time.Duration(i)*time.Second))
		}
		publishBatch(t, c, pub, fills)
		var mu sync.Mutex
		failed := 0
		l.failAfterFills = func(ms []bus.FillMsg) error {
			mu.Lock()
			defer mu.Unlock()
			if failed == 0 && len(ms) > 1 {
				failed = len(ms)
				return errDiskFull
			}
			return nil
		}
		store := &flakyStore{Store: l}
		rec := startBatchRecorder(t, c, store, 20)
		ctx := waitCtx(t)
		if err := rec.WaitFor(ctx, pub.Marks()); err != nil {
			t.Fatalf("%v (batches %v)", err, store.tries())
		}
		batches, added := store.written()
		if failed != 20 || len(batches) < 2 {
			t.Fatalf("failed batch of %d, batches %v: want a batch of 20 failed, then written again", failed, batches)
		}
		// Each fill tried twice: no part of the failed batch was acknowledged.
		tries := map[string]int{}
		for _, id := range store.tries() {
			tries[id]++
		}
		for _, f := range fills {
			if tries[f.MsgID()] != 2 {
				t.Errorf("fill %s tried %d times, want 2 (failed, redelivered)", f.MsgID(), tries[f.MsgID()])
			}
		}
		// added counts the retry's new rows: 20 means the failed
		// transaction left none behind.
		if got := tradeIDs(t, l); len(got) != 20 || added != 20 {
			t.Fatalf("ledger holds %d trades, the retry added %d; want 20 and 20", len(got), added)
		}
	})
}

// gatedStore holds its first RecordFills until release is closed.
type gatedStore struct {
	*flakyStore
	entered, release chan struct{}
	once             sync.Once
}

func (s *gatedStore) RecordFills(ctx context.Context, ms []bus.FillMsg) (int, error) {
	first := false
	s.once.Do(func() { first = true })
	if first {
		close(s.entered)
		<-s.release
	}
	return s.flakyStore.RecordFills(ctx, ms)
}

// TestRecorder_BatchGrowsWhileTheWriterIsBusy: fills arriving, a linger
// apart, while the ledger still writes the batch before are written
// together in one transaction, not one each.
func TestRecorder_BatchGrowsWhileTheWriterIsBusy(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		c, l, pub := setup(t, b)
		ctx := waitCtx(t)
		store := &gatedStore{flakyStore: &flakyStore{Store: l}, entered: make(chan struct{}), release: make(chan struct{})}
		rec := NewRecorder(c.JS, store, zerolog.Nop(), "")
		rec.linger = 10 * time.Millisecond
		if err := rec.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(rec.Stop)
		if err := pub.PublishFill(ctx, testFill("simA", "1", "63000", "0.1", "0", 0)); err != nil {
			t.Fatal(err)
		}
		<-store.entered
		for i := 2; i <= 4; i++ {
			if err := pub.PublishFill(ctx, testFill("simA", strconv.Itoa(i), "63000", "0.1", "0", time.Duration(i)*time.Second)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(3 * rec.linger)
		}
		close(store.release)
		if err := rec.WaitFor(ctx, pub.Marks()); err != nil {
			t.Fatal(err)
		}
		if batches, added := store.written(); len(batches) != 2 || len(batches[1]) != 3 || added != 4 {
			t.Fatalf("batches %v (%d added), want the first fill, then the three that came while it was written", batches, added)
		}
	})
}

// twoWriters is a gatedStore that takes two transactions at once, as
// PostgreSQL does.
type twoWriters struct{ *gatedStore }

func (twoWriters) Writers() int { return 2 }

// TestRecorder_TwoWritersAckInTheOrderCollected: with two writers, a
// batch written while the one before is still in its transaction is not
// acknowledged before it (the ack floor would claim the earlier one
// recorded); once the earlier commits, both are, each fill once.
func TestRecorder_TwoWritersAckInTheOrderCollected(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		c, l, pub := setup(t, b)
		ctx := waitCtx(t)
		gate := &gatedStore{flakyStore: &flakyStore{Store: l}, entered: make(chan struct{}), release: make(chan struct{})}
		rec := NewRecorder(c.JS, twoWriters{gate}, zerolog.Nop(), "")
		if err := rec.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(rec.Stop)
		var release sync.Once
		letGo := func() { release.Do(func() { close(gate.release) }) }
		t.Cleanup(letGo) // before rec.Stop, which waits for the held writer
		if err := pub.PublishFill(ctx, testFill("simA", "1", "63000", "0.1", "0", 0)); err != nil {
			t.Fatal(err)
		}
		<-gate.entered // the first batch is in its transaction, held
		if err := pub.PublishFill(ctx, testFill("simA", "2", "63000", "0.1", "0", time.Second)); err != nil {
			t.Fatal(err)
		}
		// The second writer takes the second fill and commits it (the
		// held first batch is counted once it is let go).
		for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if batches, _ := gate.written(); len(batches) == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the second writer did not write while the first was held")
			}
		}
		time.Sleep(50 * time.Millisecond) // room for a wrong ack to land
		cons, err := c.JS.Consumer(ctx, bus.FillsStream, DefaultDurable)
		if err != nil {
			t.Fatal(err)
		}
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.AckFloor.Stream != 0 || info.NumAckPending != 2 {
			t.Fatalf("with the first batch still writing: ack floor %d, %d awaiting ack; want 0 and 2",
				info.AckFloor.Stream, info.NumAckPending)
		}
		letGo()
		if err := rec.WaitFor(ctx, pub.Marks()); err != nil {
			t.Fatal(err)
		}
		if batches, added := gate.written(); len(batches) != 2 || added != 2 || batches[0][0] != "simA:2" {
			t.Fatalf("batches %v, %d added; want the second fill's, then the first's", batches, added)
		}
	})
}
