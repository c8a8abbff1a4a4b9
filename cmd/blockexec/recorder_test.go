package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/bus/bustest"
	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/settlement"
)

// recorderConfig writes the serve example with nats.url and the ledger
// replaced, and returns its path.
func recorderConfig(t *testing.T, natsURL, driver, dsn string) string {
	t.Helper()
	src, err := os.ReadFile("../../configs/examples/serve-btc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	yaml := string(src)
	for old, repl := range map[string]string{
		`url: ""`:        fmt.Sprintf("url: %q", natsURL),
		"driver: sqlite": "driver: " + driver,
		`dsn: ""`:        fmt.Sprintf("dsn: %q", dsn),
	} {
		if !strings.Contains(yaml, old) {
			t.Fatalf("the serve example no longer has %q", old)
		}
		yaml = strings.Replace(yaml, old, repl, 1)
	}
	path := filepath.Join(t.TempDir(), "recorder.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Two recorder processes' worth of recorders on one shared NATS server
// and one ledger (PostgreSQL when BLOCKEXEC_TEST_PG_DSN is set, a SQLite
// file otherwise) share the durable: every fill published is in the
// ledger once, and both stop in good order on their context's end.
func TestRecorderCommand_RecordersShareTheWorkExactlyOnce(t *testing.T) {
	srv := bustest.StartServer(t)
	driver, dsn := settlement.DriverSQLite, filepath.Join(t.TempDir(), "ledger.db")
	if pg := os.Getenv("BLOCKEXEC_TEST_PG_DSN"); pg != "" {
		driver, dsn = settlement.DriverPostgres, pgTestSchema(t, pg)
	} else {
		t.Log("BLOCKEXEC_TEST_PG_DSN not set: the two recorders share a SQLite file")
	}
	cfg := recorderConfig(t, srv.ClientURL(), driver, dsn)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := bus.Connect(ctx, bus.Options{URL: srv.ClientURL()}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 3000
	pub := bus.NewPublisher(c.JS).Async()
	at := time.Date(2026, 12, 8, 9, 0, 0, 0, time.UTC)
	for i := range n {
		f := bus.FillMsg{Schema: bus.FillSchema, ParentID: "rec-1", ClientID: fmt.Sprintf("rec-1-%d-simA-0", i/3),
			OrderID: fmt.Sprint(i / 3), Venue: "simA", TradeID: fmt.Sprint(i), Symbol: "BTCUSDT", Side: "sell",
			Price: decimal.RequireFromString("63000.5"), Qty: decimal.RequireFromString("0.001"),
			Fee: decimal.RequireFromString("0.063"), FeeAsset: "USDT", Liquidity: "taker", Time: at.Add(time.Duration(i) * time.Millisecond)}
		if err := pub.PublishFill(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	if failed := pub.Flush(ctx); len(failed) > 0 {
		t.Fatalf("publish: %+v", failed)
	}

	rctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	logs := make([]bytes.Buffer, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = recorderCommand(rctx, recorderFlags{config: cfg, every: 100 * time.Millisecond}, &logs[i])
		}()
	}
	waitSettled(t, ctx, c, n)
	stop()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("recorder %d: %v\n%s", i, err, logs[i].String())
		}
		if !strings.Contains(logs[i].String(), "settled_through") {
			t.Errorf("recorder %d logged no progress:\n%s", i, logs[i].String())
		}
	}
	l, err := settlement.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fills, err := l.Fills(ctx, "rec-1")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range fills {
		seen[f.TradeID] = true
	}
	if len(fills) != n || len(seen) != n {
		t.Fatalf("the ledger holds %d fills (%d trade ids), published %d", len(fills), len(seen), n)
	}
}

// waitSettled waits (bounded by ctx) until the shared durable on the fills
// stream has settled n messages.
func waitSettled(t *testing.T, ctx context.Context, c *bus.Conn, n uint64) {
	t.Helper()
	for {
		if cons, err := c.JS.Consumer(ctx, bus.FillsStream, settlement.DefaultDurable); err == nil {
			if info, err := cons.Info(ctx); err == nil && info.AckFloor.Stream >= n {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the recorders did not settle %d fills: %v", n, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// The recorder refuses the embedded server: nothing else could reach it.
func TestRecorderCommand_NeedsASharedNATSServer(t *testing.T) {
	cfg := recorderConfig(t, "", settlement.DriverSQLite, filepath.Join(t.TempDir(), "ledger.db"))
	err := recorderCommand(context.Background(), recorderFlags{config: cfg, every: time.Second}, &bytes.Buffer{})
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitBadConfig || !strings.Contains(err.Error(), "nats.url") ||
		!strings.Contains(err.Error(), "recorder.yaml:") {
		t.Fatalf("err = %v, want exit %d naming the file and nats.url", err, exitBadConfig)
	}
}

// serve with service.record: false on a shared NATS server records
// nothing itself (it never even creates the recorders' durable); a
// recorder on the same server and ledger then records the order's fills,
// each once, adding up to what the order says it filled.
func TestServe_RecordFalseLeavesTheLedgerToRecorders(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the service")
	}
	srv := bustest.StartServer(t)
	cfg, secrets := servedConfig(t)
	cfg.NATS.URL, cfg.Service.Record = srv.ClientURL(), false
	sv := serveOn(t, cfg, secrets, clock.NewManual(clock.Wall{}.Now().Truncate(time.Minute)))
	ctx := context.Background()
	c := sv.client(t, "fund-a-1")
	if _, _, err := c.Submit(ctx, sellOrder("unrecorded-1")); err != nil {
		t.Fatal(err)
	}
	sv.minute(t, c, "unrecorded-1")
	o, err := c.Pause(ctx, "unrecorded-1") // its answer flushes the round's messages
	if err != nil || o.FilledQuantity.Sign() <= 0 {
		t.Fatalf("pause: filled %s, %v", o.FilledQuantity, err)
	}
	js := sv.s.j.conn.JS
	if _, err := js.Consumer(ctx, bus.FillsStream, settlement.DefaultDurable); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("serve made the recorders' durable: %v", err)
	}
	if fills, err := c.Fills(ctx, "unrecorded-1"); err != nil || len(fills) != 0 {
		t.Fatalf("fills in the ledger before any recorder ran: %d, %v", len(fills), err)
	}

	rec := settlement.NewRecorder(js, sv.s.j.ledger, zerolog.Nop(), "")
	if err := rec.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer rec.Stop()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := rec.WaitIdle(wctx); err != nil {
		t.Fatal(err)
	}
	fills, err := c.Fills(ctx, "unrecorded-1")
	if err != nil {
		t.Fatal(err)
	}
	sum, ids := decimal.Zero, map[string]bool{}
	for _, f := range fills {
		ids[f.MsgID()] = true
		sum = sum.Add(f.Qty)
	}
	if len(ids) != len(fills) || !sum.Equal(o.FilledQuantity) {
		t.Fatalf("the recorder wrote %d fills (%d ids) of %s, the order filled %s", len(fills), len(ids), sum, o.FilledQuantity)
	}
}
