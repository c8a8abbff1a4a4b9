package main

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/api"
	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/venues/venuetest"
)

// A restarted serve takes its orders back from their checkpoints: the
// working order goes on from what it had filled, stays its client's (a
// resubmission gets the same order, another client's is a conflict), and
// its fills are in the ledger once each.
func TestServe_ARestartTakesBackItsOrders(t *testing.T) {
	ctx := context.Background()
	cfg, secrets := servedConfig(t)
	clk := clock.NewManual(clock.Wall{}.Now().Truncate(time.Minute))
	start := func() (served, *server) {
		logs := &venuetest.LogBuffer{}
		s, err := startServer(ctx, cfg, logs, clk)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.close() })
		return served{s: s, clk: clk, url: "http://" + s.addr, secrets: secrets, logs: logs}, s
	}

	sv, first := start()
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
	if err := first.close(); err != nil {
		t.Fatal(err)
	}

	sv2, _ := start()
	c2 := sv2.client(t, "fund-a-1")
	got, err := c2.Get(ctx, "keep-1")
	if err != nil {
		t.Fatalf("the order after the restart: %v", err)
	}
	if got.State != "working" || !got.FilledQuantity.Equal(before.FilledQuantity) {
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
	if after.State != "working" || !after.FilledQuantity.GreaterThan(before.FilledQuantity) {
		t.Fatalf("a minute after the restart: %s, filled %s (before: %s)", after.State, after.FilledQuantity, before.FilledQuantity)
	}
	// The ledger has each fill once, and they add up to what the order says.
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
