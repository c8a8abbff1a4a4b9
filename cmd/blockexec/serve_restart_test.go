package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/api"
	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/settlement"
)

// A restarted serve takes its orders back from their checkpoints: the
// working order goes on from what it had filled, stays its client's (a
// resubmission gets the same order, another client's is a conflict), and
// its fills are in the ledger once each.
func TestServe_ARestartTakesBackItsOrders(t *testing.T) {
	ctx := context.Background()
	cfg, secrets := servedConfig(t)
	clk := clock.NewManual(clock.Wall{}.Now().Truncate(time.Minute))
	sv := serveOn(t, cfg, secrets, clk)
	c := sv.client(t, "fund-a-1")
	if _, created, err := c.Submit(ctx, sellOrder("keep-1")); err != nil || !created {
		t.Fatalf("submit: created %v, %v", created, err)
	}
	var before api.Order
	for i := 0; i < 3; i++ {
		before = sv.minute(t, c, "keep-1")
	}
	if before.State != "working" || before.FilledQuantity.Sign() <= 0 {
		t.Fatalf("before the restart: %s, filled %s", before.State, before.FilledQuantity)
	}
	if err := sv.s.close(); err != nil {
		t.Fatal(err)
	}

	sv2 := serveOn(t, cfg, secrets, clk)
	c2 := sv2.client(t, "fund-a-1")
	got, err := c2.Get(ctx, "keep-1")
	if err != nil {
		t.Fatalf("the order after the restart: %v", err)
	}
	// The last status read may lag the loop by a slice; never ahead of it.
	if got.State != "working" || got.FilledQuantity.LessThan(before.FilledQuantity) {
		t.Fatalf("after the restart: %s, filled %s; before: %s, %s", got.State, got.FilledQuantity, before.State, before.FilledQuantity)
	}
	again, created, err := c2.Submit(ctx, sellOrder("keep-1"))
	if err != nil || created || again.ID != "keep-1" {
		t.Fatalf("the same request again: created %v, %+v, %v", created, again.ID, err)
	}
	var apiErr *api.Error
	if _, _, err := sv2.client(t, "fund-b-1").Submit(ctx, sellOrder("keep-1")); !errors.As(err, &apiErr) || apiErr.Status != http.StatusConflict {
		t.Fatalf("another client's use of the id: %v", err)
	}
	after := sv2.minute(t, c2, "keep-1")
	if after.State != "working" || !after.FilledQuantity.GreaterThan(got.FilledQuantity) {
		t.Fatalf("a minute after the restart: %s, filled %s (before: %s)", after.State, after.FilledQuantity, before.FilledQuantity)
	}
	// The ledger has each fill once, and they add up to what the order
	// says (a command first: the round's messages are flushed by its
	// answer).
	if after, err = c2.Pause(ctx, "keep-1"); err != nil {
		t.Fatal(err)
	}
	if err := sv2.s.j.rec.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	fills, err := c2.Fills(ctx, "keep-1")
	if err != nil {
		t.Fatal(err)
	}
	sum, ids := decimal.Zero, map[string]bool{}
	for _, f := range fills {
		if ids[f.MsgID()] {
			t.Fatalf("fill %s listed twice", f.MsgID())
		}
		ids[f.MsgID()] = true
		sum = sum.Add(f.Qty)
	}
	if !sum.Equal(after.FilledQuantity) {
		t.Fatalf("the ledger's fills add up to %s, the order says %s", sum, after.FilledQuantity)
	}
}

// Two engines on one NATS server: the owner of an order stops, and the
// other takes the order over when the owner's heartbeat is gone, from the
// owner's checkpoint, and goes on with it; the fills of both, together, are each
// recorded once and add up to what the order says.
func TestServe_AnotherEngineTakesOverAStoppedEnginesOrder(t *testing.T) {
	defer func(ttl time.Duration) { heartbeatTTL = ttl }(heartbeatTTL)
	heartbeatTTL = 1500 * time.Millisecond
	ctx := context.Background()
	ns := natsOn(t, t.TempDir(), -1)
	t.Cleanup(ns.Shutdown) // after the engines' own cleanups: they close first
	cfgA, secrets := servedConfig(t)
	cfgA.NATS.URL = ns.ClientURL()
	cfgB := *cfgA
	cfgB.SetDataDir(t.TempDir())
	clk := clock.NewManual(clock.Wall{}.Now().Truncate(time.Minute))
	a := serveOn(t, cfgA, secrets, clk)
	b := serveOn(t, &cfgB, secrets, clk)
	ca, cb := a.client(t, "fund-a-1"), b.client(t, "fund-a-1")
	if _, _, err := ca.Submit(ctx, sellOrder("moving-1")); err != nil {
		t.Fatal(err)
	}
	var before api.Order
	for i := 0; i < 2; i++ {
		before = a.minute(t, ca, "moving-1")
	}
	if _, err := cb.Get(ctx, "moving-1"); err == nil {
		t.Fatal("the other engine shows an order it does not work")
	}
	stopped := time.Now()
	if err := a.s.close(); err != nil {
		t.Fatal(err)
	}

	var got api.Order
	var err error
	for i := 0; ; i++ {
		if got, err = cb.Get(ctx, "moving-1"); err == nil {
			break
		}
		if i > 400 {
			t.Fatalf("the order was not taken over: %v", err)
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Logf("taken over %s after the owner stopped", time.Since(stopped).Round(time.Millisecond))
	if got.State != "working" || got.FilledQuantity.LessThan(before.FilledQuantity) {
		t.Fatalf("taken over: %s, filled %s; the owner had %s, %s", got.State, got.FilledQuantity, before.State, before.FilledQuantity)
	}
	// With a heartbeat of 1.5 s, a loaded machine may hold a slice or two
	// (the fence closes when a beat is late): a few minutes, bounded.
	var after api.Order
	for i := 0; ; i++ {
		after = b.minute(t, cb, "moving-1")
		if after.FilledQuantity.GreaterThan(got.FilledQuantity) {
			break
		}
		if i > 5 {
			t.Fatalf("minutes after the takeover: filled %s, before %s", after.FilledQuantity, got.FilledQuantity)
		}
	}
	// Both recorders consumed the shared durable into their own ledgers:
	// together they hold each fill once.
	// A command waits for the loop's round: its answer is the order as the
	// loop has it, everything published and flushed.
	if after, err = cb.Pause(ctx, "moving-1"); err != nil {
		t.Fatal(err)
	}
	if err := b.s.j.rec.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	sum, ids := decimal.Zero, map[string]bool{}
	for _, path := range []string{cfgA.LedgerDSN(), cfgB.LedgerDSN()} {
		l, err := settlement.OpenSQLite(path)
		if err != nil {
			t.Fatal(err)
		}
		fills, err := l.Fills(ctx, "moving-1")
		l.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fills {
			if ids[f.Venue+":"+f.TradeID] {
				t.Fatalf("fill %s:%s in both ledgers", f.Venue, f.TradeID)
			}
			ids[f.Venue+":"+f.TradeID] = true
			sum = sum.Add(f.Qty)
		}
	}
	if !sum.Equal(after.FilledQuantity) {
		t.Fatalf("the ledgers hold %s, the order says %s", sum, after.FilledQuantity)
	}
}

// The recorder stops mid-stream and starts again, then the NATS server
// stops and starts again under a working order: the engine places nothing
// while the bus is down and keeps what it published, the order is not
// failed for it, trading resumes when the bus is back, and the ledger ends
// with every fill once.
func TestServe_RecorderAndNATSRestartsLoseNoFill(t *testing.T) {
	ctx := context.Background()
	store := t.TempDir()
	ns := natsOn(t, store, -1)
	port := ns.Addr().(*net.TCPAddr).Port
	t.Cleanup(func() { ns.Shutdown() }) // the one running at the end, after the server closes
	cfg, secrets := servedConfig(t)
	cfg.NATS.URL = ns.ClientURL()
	clk := clock.NewManual(clock.Wall{}.Now().Truncate(time.Minute))
	sv := serveOn(t, cfg, secrets, clk)
	s := sv.s
	c := sv.client(t, "fund-a-1")
	if _, _, err := c.Submit(ctx, sellOrder("bus-1")); err != nil {
		t.Fatal(err)
	}
	sv.minute(t, c, "bus-1")

	// The recorder stops; fills go on being published; it starts again.
	s.j.rec.Stop()
	sv.minute(t, c, "bus-1")
	if err := s.j.rec.Start(ctx); err != nil {
		t.Fatal(err)
	}
	before := sv.minute(t, c, "bus-1")

	// The NATS server stops: nothing is placed, the order is not failed.
	ns.Shutdown()
	for i := 0; s.j.conn.NC.IsConnected(); i++ {
		if i > 1000 {
			t.Fatal("the engine's connection did not notice the server stopping")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := 0; i < 2; i++ {
		clk.Advance(time.Minute)
		time.Sleep(300 * time.Millisecond) // the loop's round, which places nothing
	}
	held, err := c.Get(ctx, "bus-1")
	if err != nil {
		t.Fatal(err)
	}
	if held.State != "working" || held.ChildOrders != before.ChildOrders {
		t.Fatalf("while the bus was down: %s, %d child orders (before: %d)", held.State, held.ChildOrders, before.ChildOrders)
	}

	// It starts again on the same port and store: trading resumes.
	ns = natsOn(t, store, port)
	for i := 0; !s.j.conn.NC.IsConnected(); i++ {
		if i > 2000 {
			t.Fatal("the engine did not reconnect")
		}
		time.Sleep(5 * time.Millisecond)
	}
	var after api.Order
	for i := 0; ; i++ {
		after = sv.minute(t, c, "bus-1")
		if after.FilledQuantity.GreaterThan(held.FilledQuantity) {
			break
		}
		if i > 5 {
			t.Fatalf("trading did not resume: %s, filled %s", after.State, after.FilledQuantity)
		}
	}
	if after.State != "working" {
		t.Fatalf("after the bus came back: %s (%s)", after.State, after.Reason)
	}
	// A command waits for the loop's round: its answer is the order as
	// the loop has it, everything published and flushed.
	if after, err = c.Pause(ctx, "bus-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.j.rec.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	fills, err := s.j.ledger.Fills(ctx, "bus-1")
	if err != nil {
		t.Fatal(err)
	}
	sum, ids := decimal.Zero, map[string]bool{}
	for _, f := range fills {
		if ids[f.Venue+":"+f.TradeID] {
			t.Fatalf("fill %s:%s twice in the ledger", f.Venue, f.TradeID)
		}
		ids[f.Venue+":"+f.TradeID] = true
		sum = sum.Add(f.Qty)
	}
	if !sum.Equal(after.FilledQuantity) || after.Fills != len(fills) {
		t.Fatalf("the ledger holds %s in %d fills, the order %s in %d", sum, len(fills), after.FilledQuantity, after.Fills)
	}
}

// natsOn starts a nats-server with JetStream on loopback (port -1: any),
// storing in store. The caller shuts it down (after the servers using it).
func natsOn(t *testing.T, store string, port int) *natsserver.Server {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: port, JetStream: true,
		StoreDir: store, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	return ns
}
