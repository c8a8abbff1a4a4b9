package kvjournal

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/bus/bustest"
	"github.com/blockexec/blockexec/engine"
)

func TestJournal_SavesLoadsAndRefusesASecondWriter(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c, err := bus.Connect(ctx, bus.Options{StoreDir: dir}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(ctx, c.JS, 1, "engine-a")
	if err != nil {
		t.Fatal(err)
	}
	id := "unwind btc.1/*>" // not a valid key as it stands
	cp := engine.Checkpoint{ParentID: id, State: "working", Slice: 7, SeqReserved: 300,
		Filled: decimal.RequireFromString("12.345678901"), Saved: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC),
		Open: []engine.OpenChild{{Venue: "simA", ClientID: "c-7-simA", Qty: decimal.RequireFromString("0.5"), Side: "sell"}}}
	if err := a.Save(ctx, cp); err != nil {
		t.Fatal(err)
	}
	cp.Slice = 8
	if err := a.Save(ctx, cp); err != nil {
		t.Fatalf("a second save from the same writer: %v", err)
	}

	// Another engine that read the checkpoint may take over; the first can
	// then no longer write.
	b, err := New(ctx, c.JS, 1, "engine-b")
	if err != nil {
		t.Fatal(err)
	}
	got, found, err := b.Load(ctx, id)
	if err != nil || !found {
		t.Fatalf("load: found %v, %v", found, err)
	}
	if got.Slice != 8 || got.Owner != "engine-a" || !got.Filled.Equal(cp.Filled) || len(got.Open) != 1 || got.Open[0].ClientID != "c-7-simA" {
		t.Fatalf("loaded %+v", got)
	}
	got.Slice = 9
	if err := b.Save(ctx, got); err != nil {
		t.Fatal(err)
	}
	if err := a.Save(ctx, cp); !errors.Is(err, engine.ErrJournalConflict) {
		t.Fatalf("the first writer after a takeover: %v, want a conflict", err)
	}
	// A write of b's that landed though b did not learn its revision (a
	// timeout): b's next save writes over its own checkpoint, not a
	// conflict. Played by a second journal of the same engine name.
	b2, err := New(ctx, c.JS, 1, "engine-b")
	if err != nil {
		t.Fatal(err)
	}
	got.Slice = 10
	if err := b2.Save(ctx, got); err != nil {
		t.Fatalf("the same engine without the revision: %v", err)
	}
	// A writer that never read the key cannot create it over another's.
	fresh, err := New(ctx, c.JS, 1, "engine-c")
	if err != nil {
		t.Fatal(err)
	}
	if err := fresh.Save(ctx, cp); !errors.Is(err, engine.ErrJournalConflict) {
		t.Fatalf("a blind create: %v, want a conflict", err)
	}
	if _, found, err := b.Load(ctx, "never saved"); found || err != nil {
		t.Fatalf("a missing key: found %v, %v", found, err)
	}
	all, err := fresh.List(ctx)
	if err != nil || len(all) != 1 || all[0].ParentID != id {
		t.Fatalf("list: %+v, %v", all, err)
	}
	// A parent that ends leaves the working list, and stays readable.
	done := engine.Checkpoint{ParentID: "done-1", State: "working"}
	if err := b.Save(ctx, done); err != nil {
		t.Fatal(err)
	}
	done.State = "done"
	if err := b.Save(ctx, done); err != nil {
		t.Fatal(err)
	}
	if all, err := b.List(ctx); err != nil || len(all) != 2 {
		t.Fatalf("list with an ended parent: %d, %v", len(all), err)
	}
	if working, err := b.Working(ctx); err != nil || len(working) != 1 || working[0].ParentID != id {
		t.Fatalf("working: %+v, %v", working, err)
	}
	if got, found, err := fresh.Load(ctx, "done-1"); err != nil || !found || got.State != "done" {
		t.Fatalf("the ended parent: %+v, %v, %v", got, found, err)
	}
	c.Close()

	// The bucket is on file: a restarted server still has it.
	c2, err := bus.Connect(ctx, bus.Options{StoreDir: dir}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	j, err := New(ctx, c2.JS, 1, "engine-d")
	if err != nil {
		t.Fatal(err)
	}
	if got, found, err := j.Load(ctx, id); err != nil || !found || got.Slice != 10 {
		t.Fatalf("after a restart: %+v, %v, %v", got, found, err)
	}
}

func TestHeartbeat_LivesWhileBeatingAndGoesAtStop(t *testing.T) {
	ctx := context.Background()
	c, err := bus.Connect(ctx, bus.Options{StoreDir: t.TempDir()}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const ttl = 1500 * time.Millisecond
	a, err := NewHeartbeat(ctx, c.JS, "engine-a", ttl, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewHeartbeat(ctx, c.JS, "engine-b", ttl, 1)
	if err != nil {
		t.Fatal(err)
	}
	if alive, err := b.Alive(ctx, "engine-a"); err != nil || !alive {
		t.Fatalf("a after its first beat: alive %v, %v", alive, err)
	}
	if alive, err := b.Alive(ctx, "engine-never"); err != nil || alive {
		t.Fatalf("an engine that never beat: alive %v, %v", alive, err)
	}
	// Beating, a outlives its time to live.
	kctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); a.Keep(kctx, func(err error) { t.Error(err) }) }()
	time.Sleep(2 * ttl)
	if alive, err := b.Alive(ctx, "engine-a"); err != nil || !alive {
		t.Fatalf("a while beating: alive %v, %v", alive, err)
	}
	if err := a.Fence(); err != nil {
		t.Fatalf("a's fence while beating: %v", err)
	}
	// No longer beating, it expires; its fence closes before that.
	stop()
	<-done
	time.Sleep(ttl / 2)
	if err := a.Fence(); err == nil {
		t.Fatal("a's fence is open half a time to live after its last beat")
	}
	for i := 0; ; i++ {
		alive, err := b.Alive(ctx, "engine-a")
		if err != nil {
			t.Fatal(err)
		}
		if !alive {
			break
		}
		if i > 100 {
			t.Fatal("a's heartbeat never expired")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A stop in good order removes it at once.
	if err := b.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	if alive, _ := a.Alive(ctx, "engine-b"); !alive {
		t.Fatal("b is not alive after a beat")
	}
	if err := b.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if alive, err := a.Alive(ctx, "engine-b"); err != nil || alive {
		t.Fatalf("b after its stop: alive %v, %v", alive, err)
	}
}

// On a cluster, the checkpoint and heartbeat buckets are kept by as many
// servers as the bus's streams (nats.replicas): a checkpoint written
// before the bucket's leader dies is read back after it.
func TestBuckets_KeptByTheReplicasAsked(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-server JetStream cluster")
	}
	srvs := bustest.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var c *bus.Conn
	err := bustest.Retry(30*time.Second, func() (err error) {
		c, err = bus.Connect(ctx, bus.Options{URL: bustest.ClientURLs(srvs), Replicas: 3}, zerolog.Nop())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	j, err := New(ctx, c.JS, c.Replicas(), "engine-a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewHeartbeat(ctx, c.JS, "engine-a", time.Minute, c.Replicas()); err != nil {
		t.Fatal(err)
	}
	// An engine or recorder whose config leaves replicas out opens them
	// too: they stay at 3.
	if _, err := New(ctx, c.JS, 1, "engine-b"); err != nil {
		t.Fatal(err)
	}
	if _, err := NewHeartbeat(ctx, c.JS, "engine-b", time.Minute, 1); err != nil {
		t.Fatal(err)
	}
	var leader string
	for _, bucket := range []string{Bucket, HeartbeatBucket} {
		kv, err := c.JS.KeyValue(ctx, bucket)
		if err != nil {
			t.Fatal(err)
		}
		st, err := kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		info := st.(*jetstream.KeyValueBucketStatus).StreamInfo()
		if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Fatalf("bucket %s: %d replicas, cluster %+v", bucket, info.Config.Replicas, info.Cluster)
		}
		if bucket == Bucket {
			leader = info.Cluster.Leader
		}
	}
	cp := engine.Checkpoint{ParentID: "p1", State: "working", Slice: 7, Filled: decimal.RequireFromString("1.5")}
	if err := j.Save(ctx, cp); err != nil {
		t.Fatal(err)
	}
	for _, s := range srvs {
		if s.Name() == leader {
			s.Shutdown()
			s.WaitForShutdown()
		}
	}
	var got engine.Checkpoint
	var found bool
	err = bustest.Retry(time.Minute, func() (err error) {
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second) // a read sent to the dead server is never answered
		defer cancel()
		got, found, err = j.Load(tctx, "p1")
		return err
	})
	if err != nil || !found || got.Slice != 7 || !got.Filled.Equal(cp.Filled) {
		t.Fatalf("after losing %s: found %v, %+v, %v", leader, found, got, err)
	}
}
