package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/api"
	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/engine"
)

// natsT0 is a Tuesday's busiest hour on the sim market.
var natsT0 = time.Date(2024, 10, 8, 14, 0, 0, 0, time.UTC)

// The rig's keys. Secrets are test values, at least 32 characters.
const (
	natsTrader = "fund-a-trade" // fund-a: read, trade
	natsReader = "fund-a-read"  // fund-a: read
	natsOnlyTr = "fund-a-only"  // fund-a: trade
	natsOther  = "fund-b-trade" // fund-b: read, trade
	natsAdmin  = "ops-admin"    // ops: admin
	natsSlow   = "fund-a-slow"  // fund-a: read, 0.5 a second, burst 1
)

// natsKeysYAML is the rig's keys file; natsSecret gives each key's secret.
func natsKeysYAML() string {
	var b strings.Builder
	b.WriteString("keys:\n")
	for _, k := range []struct{ id, client, scopes, rate string }{
		{natsTrader, "fund-a", "read, trade", "burst: 1000"},
		{natsReader, "fund-a", "read", "burst: 1000"},
		{natsOnlyTr, "fund-a", "trade", "burst: 1000"},
		{natsOther, "fund-b", "read, trade", "burst: 1000"},
		{natsAdmin, "ops", "admin", "burst: 1000"},
		{natsSlow, "fund-a", "read", "rate_per_second: 0.5, burst: 1"},
	} {
		fmt.Fprintf(&b, "  - {id: %s, client: %s, secret: %q, scopes: [%s], %s}\n", k.id, k.client, natsSecret(k.id), k.scopes, k.rate)
	}
	return b.String()
}

func natsSecret(key string) []byte { return []byte("test-secret-not-real-" + key + "-0123456789") }

// natsRig is the NATS API over an embedded nats-server and an engine
// serving two sim venues on a manual clock.
type natsRig struct {
	clk     *clock.Manual
	nc      *nats.Conn // the client's connection
	js      jetstream.JetStream
	store   *natsStore
	metrics *Metrics
	eng     *engine.Engine
	svc     micro.Service
	logs    *natsLogs
	nonces  atomic.Int64
}

// natsLogs is the service's log, kept to check what it never says.
type natsLogs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *natsLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *natsLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

const natsRigMaxBody = 4096

func newNATSRig(t *testing.T) *natsRig {
	t.Helper()
	ctx := context.Background()
	r := &natsRig{clk: clock.NewManual(natsT0), logs: &natsLogs{}}

	srv, err := bus.StartEmbedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	connect := func(name string) *nats.Conn {
		nc, err := nats.Connect("", nats.InProcessServer(srv), nats.Name(name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	serverNC, clientNC := connect("blockexec"), connect("fund")
	r.nc = clientNC
	if r.js, err = jetstream.New(serverNC); err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureStreams(ctx, r.js, 1); err != nil {
		t.Fatal(err)
	}
	r.store = &natsStore{pub: bus.NewPublisher(r.js), used: map[string]bool{"used-before": true}}

	r.eng = servingEngine(t, r.clk, 5, func(v engine.Venue) engine.Venue { return v }, r.store)

	path := filepath.Join(t.TempDir(), "keys.yaml")
	if err := os.WriteFile(path, []byte(natsKeysYAML()), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := LoadKeys(path, r.clk)
	if err != nil {
		t.Fatal(err)
	}
	desk := NewDesk(r.eng, httpTWAP{}, r.store, r.store, r.store, r.clk)
	r.metrics = NewMetricsOn(r.clk)
	if r.svc, err = StartNATS(serverNC, desk, keys, NATSConfig{MaxBody: natsRigMaxBody,
		Log: zerolog.New(r.logs).Level(zerolog.DebugLevel), Version: "v1.2.3", Metrics: r.metrics}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.svc.Stop(); err != nil {
			t.Errorf("stop the service: %v", err)
		}
	})
	return r
}

func (r *natsRig) nonce() string { return fmt.Sprintf("test-nonce-%08d", r.nonces.Add(1)) }

// call signs body with key and calls subject now.
func (r *natsRig) call(t *testing.T, subject, key string, body, out any) error {
	t.Helper()
	return NATSRequest(context.Background(), r.nc, subject, key, natsSecret(key), body, out, r.clk.Now(), r.nonce())
}

// must is call that must succeed.
func (r *natsRig) must(t *testing.T, subject, key string, body, out any) {
	t.Helper()
	if err := r.call(t, subject, key, body, out); err != nil {
		t.Fatalf("%s as %s: %v", subject, key, err)
	}
}

// send sends a message as it is and returns the reply.
func (r *natsRig) send(t *testing.T, m *nats.Msg) *nats.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reply, err := r.nc.RequestMsgWithContext(ctx, m)
	if err != nil {
		t.Fatalf("request %s: %v", m.Subject, err)
	}
	return reply
}

// step moves the clock a minute and waits until the order has had its
// slice (the wait is patience, not an assertion on time).
func (r *natsRig) step(t *testing.T, id string) {
	t.Helper()
	r.clk.Advance(time.Minute)
	now := r.clk.Now()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _ := r.eng.Status(id)
		if st.State != engine.Working && st.State != engine.Accepted || !st.Updated.Before(now) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s had no slice at %s", id, now.Format(time.Kitchen))
		}
		time.Sleep(time.Millisecond)
	}
}

// natsWantError checks err is an *api.Error of status, on field, saying
// what (a part of the message).
func natsWantError(t *testing.T, err error, status int, field, what string) *api.Error {
	t.Helper()
	var aerr *api.Error
	if !errors.As(err, &aerr) {
		t.Fatalf("got %v, want an *api.Error %d", err, status)
	}
	if aerr.Status != status || aerr.Field != field || !strings.Contains(aerr.Message, what) {
		t.Fatalf("got %d %s field %q: %q; want %d field %q saying %q", aerr.Status, aerr.Code, aerr.Field, aerr.Message,
			status, field, what)
	}
	return aerr
}

func natsDecimal(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// natsOrder is a sell of 2 BTC over an hour.
func natsOrder(id string) api.OrderRequest {
	return api.OrderRequest{ClientOrderID: id, Side: "sell", Symbol: "BTCUSDT", Quantity: natsDecimal("2"),
		Duration: "1h", MaxParticipation: natsDecimal("0.1"), SlippageBandBps: natsDecimal("50")}
}

// natsStore is the engine's publisher, kept in memory and forwarded to
// the bus (so events are on BLOCKEXEC_EVENTS as in production), and the
// desk's fills, events and used ids.
type natsStore struct {
	pub *bus.Publisher

	mu     sync.Mutex
	fills  []bus.FillMsg
	events []bus.EventMsg
	used   map[string]bool
	// hold makes the id check of an order wait until its channel closes,
	// as a slow ledger would.
	hold map[string]chan struct{}
	held chan string // told each id that is being held
}

var (
	_ engine.Publisher = (*natsStore)(nil)
	_ Fills            = (*natsStore)(nil)
	_ Events           = (*natsStore)(nil)
	_ IDs              = (*natsStore)(nil)
)

func (s *natsStore) PublishFill(ctx context.Context, m bus.FillMsg) error {
	s.mu.Lock()
	s.fills = append(s.fills, m)
	s.mu.Unlock()
	return s.pub.PublishFill(ctx, m)
}

func (s *natsStore) PublishEvent(ctx context.Context, m bus.EventMsg) error {
	s.mu.Lock()
	s.events = append(s.events, m)
	s.mu.Unlock()
	return s.pub.PublishEvent(ctx, m)
}

func (s *natsStore) FillMsgs(_ context.Context, parentID string) ([]bus.FillMsg, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []bus.FillMsg
	for _, f := range s.fills {
		if f.ParentID == parentID {
			out = append(out, f)
		}
	}
	return out, nil
}

func (s *natsStore) Follow(_ context.Context, parentID string, fromSeq int64) (<-chan bus.EventMsg, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(chan bus.EventMsg, len(s.events))
	for _, ev := range s.events {
		if ev.ParentID == parentID && ev.Seq >= fromSeq {
			out <- ev
		}
	}
	close(out)
	return out, nil
}

func (s *natsStore) Used(ctx context.Context, id string) (bool, error) {
	s.mu.Lock()
	hold := s.hold[id]
	s.mu.Unlock()
	if hold != nil {
		s.held <- id
		select {
		case <-hold:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used[id], nil
}

func (s *natsStore) eventCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events)
}
