package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/api"
	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/client"
	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/configs"
	"github.com/blockexec/blockexec/engine"
	"github.com/blockexec/blockexec/venues/venuetest"
)

// served is blockexec serve on the example's sim venues, its engine on a
// manual clock, with keys for two funds, a read-only key and an admin.
type served struct {
	s       *server
	clk     *clock.Manual
	url     string
	secrets map[string][]byte // key id → secret
	logs    *venuetest.LogBuffer
}

func startServed(t testing.TB) served {
	t.Helper()
	return startServedWith(t, nil)
}

// startServedWith is startServed with the config changed by edit first.
func startServedWith(t testing.TB, edit func(*configs.Config)) served {
	t.Helper()
	cfg, secrets := servedConfig(t)
	if edit != nil {
		edit(cfg)
	}
	return serveOn(t, cfg, secrets, clock.NewManual(clock.Wall{}.Now().Truncate(time.Minute)))
}

// serveOn starts serve on cfg and clk, closed at the test's end, with the
// keys' secrets for its clients.
func serveOn(t testing.TB, cfg *configs.Config, secrets map[string][]byte, clk *clock.Manual, tune ...func(*engine.Engine)) served {
	t.Helper()
	logs := &venuetest.LogBuffer{}
	s, err := startServer(context.Background(), cfg, logs, clk, tune...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.close(); err != nil {
			t.Error(err)
		}
	})
	scheme := "http://"
	if cfg.Service.TLSCert != "" {
		scheme = "https://"
	}
	return served{s: s, clk: clk, url: scheme + s.addr, secrets: secrets, logs: logs}
}

// servedConfig is the example's config in a temporary data directory, on
// a free port, with a keys file; it returns the keys' secrets by id.
func servedConfig(t testing.TB) (*configs.Config, map[string][]byte) {
	t.Helper()
	cfg, err := configs.Load("../../configs/examples/serve-btc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg.SetDataDir(dir)
	cfg.Run.LogLevel = "warn"
	cfg.Service.Listen = "127.0.0.1:0"
	cfg.Service.KeysFile = filepath.Join(dir, "keys.yaml")
	secrets := map[string][]byte{}
	var keys strings.Builder
	keys.WriteString("keys:\n")
	for _, k := range []struct{ id, client, scopes string }{
		{"fund-a-1", "fund-a", "[read, trade]"}, {"fund-a-2", "fund-a", "[read, trade]"}, // a rotation in progress
		{"fund-b-1", "fund-b", "[read, trade]"}, {"viewer-1", "fund-a", "[read]"}, {"ops-1", "ops", "[admin]"},
	} {
		secret := "test-secret-" + randomToken() + randomToken()
		secrets[k.id] = []byte(secret)
		fmt.Fprintf(&keys, "  - {id: %s, client: %s, secret: %q, scopes: %s, rate_per_second: 100000, burst: 100000}\n",
			k.id, k.client, secret, k.scopes)
	}
	if err := os.WriteFile(cfg.Service.KeysFile, []byte(keys.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg, secrets
}

func (sv served) client(t testing.TB, keyID string) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{BaseURL: sv.url, KeyID: keyID, Secret: sv.secrets[keyID]})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// minute moves the engine's clock a minute and waits until the order has
// had its slice.
func (sv served) minute(t *testing.T, c *client.Client, id string) api.Order {
	t.Helper()
	sv.clk.Advance(time.Minute)
	now := sv.clk.Now()
	for i := 0; ; i++ {
		o, err := c.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if !o.Updated.Before(now) || o.State != "working" && o.State != "accepted" {
			return o
		}
		if i > 2000 {
			t.Fatalf("%s had no slice at %s", id, now.Format(time.Kitchen))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func sellOrder(id string) api.OrderRequest {
	return api.OrderRequest{ClientOrderID: id, Side: "sell", Symbol: "BTCUSDT", Quantity: decimal.RequireFromString("6"),
		Duration: "30m", MaxParticipation: decimal.RequireFromString("0.5"), SlippageBandBps: decimal.RequireFromString("100")}
}

func TestServe_AnOrderThroughTheGoClient(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the service")
	}
	sv := startServed(t)
	ctx := context.Background()
	a := sv.client(t, "fund-a-1")
	o, created, err := a.Submit(ctx, sellOrder("sell-1"))
	if err != nil || !created || o.ID != "sell-1" || o.Client != "fund-a" {
		t.Fatalf("submit: %+v %v %v", o, created, err)
	}
	// Idempotent: the same body again (with the other key of the same
	// client) is the same order; another body is a conflict.
	again, created, err := sv.client(t, "fund-a-2").Submit(ctx, sellOrder("sell-1"))
	if err != nil || created || again.ID != "sell-1" {
		t.Fatalf("resubmit: %+v %v %v", again, created, err)
	}
	other := sellOrder("sell-1")
	other.Quantity = decimal.RequireFromString("7")
	var ae *api.Error
	if _, _, err := a.Submit(ctx, other); !errors.As(err, &ae) || ae.Status != http.StatusConflict {
		t.Fatalf("another body under the same id: %v", err)
	}
	evCtx, stopEvents := context.WithCancel(ctx)
	defer stopEvents()
	events, evErr := a.Events(evCtx, "sell-1", 0)
	for i := 0; i < 3; i++ {
		o = sv.minute(t, a, "sell-1")
	}
	if !o.FilledQuantity.IsPositive() || o.State != "working" {
		t.Fatalf("after 3 minutes: %s filled %s", o.State, o.FilledQuantity)
	}
	if o, err = a.Pause(ctx, "sell-1"); err != nil || o.State != "paused" {
		t.Fatalf("pause: %s %v", o.State, err)
	}
	filled := o.FilledQuantity
	sv.clk.Advance(3 * time.Minute)
	if o, err = a.Get(ctx, "sell-1"); err != nil || !o.FilledQuantity.Equal(filled) {
		t.Fatalf("paused, yet filled %s (was %s)", o.FilledQuantity, filled)
	}
	if o, err = a.Resume(ctx, "sell-1"); err != nil || o.State != "working" {
		t.Fatalf("resume: %s %v", o.State, err)
	}
	band := decimal.RequireFromString("80")
	if _, err := a.Amend(ctx, "sell-1", api.Amendment{SlippageBandBps: &decimal.Zero}); !errors.As(err, &ae) ||
		ae.Status != http.StatusBadRequest || ae.Field != "slippage_band_bps" {
		t.Fatalf("a band of zero: %v", err)
	}
	if o, err = a.Amend(ctx, "sell-1", api.Amendment{SlippageBandBps: &band}); err != nil || !o.SlippageBandBps.Equal(band) {
		t.Fatalf("amend: %+v %v", o, err)
	}
	o = sv.minute(t, a, "sell-1")
	if o, err = a.Cancel(ctx, "sell-1"); err != nil || o.State != "cancelled" {
		t.Fatalf("cancel: %s %v", o.State, err)
	}
	kinds := map[string]bool{}
	var last int64
	for ev := range events {
		if ev.Seq <= last {
			t.Fatalf("event %d after %d", ev.Seq, last)
		}
		last = ev.Seq
		kinds[ev.Kind] = true
		if ev.Kind == bus.KindDone {
			break
		}
	}
	select {
	case err := <-evErr:
		if err != nil {
			t.Fatalf("events: %v", err)
		}
	default:
	}
	for _, k := range []string{bus.KindAccepted, bus.KindChildPlaced, bus.KindPaused, bus.KindResumed, bus.KindAmended, bus.KindDone} {
		if !kinds[k] {
			t.Fatalf("no %s event in the stream (%v)", k, kinds)
		}
	}
	// The fills the API lists are the ledger's, and add up to the order.
	var fills []bus.FillMsg
	for i := 0; i < 2000; i++ {
		if fills, err = a.Fills(ctx, "sell-1"); err == nil && len(fills) == o.Fills {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	sum := decimal.Zero
	for _, f := range fills {
		sum = sum.Add(f.Qty)
	}
	if len(fills) != o.Fills || !sum.Equal(o.FilledQuantity) {
		t.Fatalf("%d fills adding to %s; the order says %d and %s", len(fills), sum, o.Fills, o.FilledQuantity)
	}
}

func TestServe_ClientsAndScopes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the service")
	}
	sv := startServed(t)
	ctx := context.Background()
	a, b := sv.client(t, "fund-a-1"), sv.client(t, "fund-b-1")
	if _, _, err := b.Submit(ctx, sellOrder("b-1")); err != nil {
		t.Fatal(err)
	}
	var ae *api.Error
	// Another fund neither sees nor touches it, nor takes its id.
	if _, err := a.Get(ctx, "b-1"); !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
		t.Fatalf("fund a reads fund b's order: %v", err)
	}
	if _, err := a.Cancel(ctx, "b-1"); !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
		t.Fatalf("fund a cancels fund b's order: %v", err)
	}
	if _, _, err := a.Submit(ctx, sellOrder("b-1")); !errors.As(err, &ae) || ae.Status != http.StatusConflict {
		t.Fatalf("fund a takes fund b's id: %v", err)
	}
	if list, err := a.List(ctx, ""); err != nil || len(list) != 0 {
		t.Fatalf("fund a lists %d orders: %v", len(list), err)
	}
	// Scopes: a read key cannot trade, a trade key cannot kill.
	if _, _, err := sv.client(t, "viewer-1").Submit(ctx, sellOrder("v-1")); !errors.As(err, &ae) || ae.Status != http.StatusForbidden {
		t.Fatalf("a read key submits: %v", err)
	}
	if _, err := a.Kill(ctx, "no"); !errors.As(err, &ae) || ae.Status != http.StatusForbidden {
		t.Fatalf("a trade key kills: %v", err)
	}
	ops := sv.client(t, "ops-1")
	if o, err := ops.Get(ctx, "b-1"); err != nil || o.Client != "fund-b" {
		t.Fatalf("admin reads any order: %+v %v", o, err)
	}
	res, err := ops.Kill(ctx, "test")
	if err != nil || len(res.Cancelled) != 1 || res.Cancelled[0].State != "cancelled" {
		t.Fatalf("kill: %+v %v", res, err)
	}
	// The switch stays engaged: a new order is refused until an admin
	// releases it.
	if _, _, err := a.Submit(ctx, sellOrder("after-kill")); !errors.As(err, &ae) ||
		ae.Status != http.StatusServiceUnavailable || ae.Code != api.CodeKilled {
		t.Fatalf("a submit while the kill switch is engaged: %v", err)
	}
	if _, err := a.ReleaseKill(ctx); !errors.As(err, &ae) || ae.Status != http.StatusForbidden {
		t.Fatalf("a trade key releases the kill switch: %v", err)
	}
	if k, err := ops.ReleaseKill(ctx); err != nil || k.Engaged {
		t.Fatalf("release: %+v %v", k, err)
	}
	if o, _, err := a.Submit(ctx, sellOrder("after-release")); err != nil || o.State != "accepted" && o.State != "working" {
		t.Fatalf("a submit after the release: %+v %v", o, err)
	}
	// Bad input: a field-level 400 and nothing created.
	bad := sellOrder("bad-1")
	bad.Venues = []string{"simA", "nowhere"}
	if _, _, err := a.Submit(ctx, bad); !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.Field != "venues" {
		t.Fatalf("an unknown venue: %v", err)
	}
	if _, err := ops.Get(ctx, "bad-1"); !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
		t.Fatalf("a refused order exists: %v", err)
	}
}

// replayer keeps a copy of the last request the client sent, to send it
// again as an attacker would.
type replayer struct {
	mu   sync.Mutex
	last *http.Request
	body []byte
}

func (r *replayer) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	r.mu.Lock()
	r.last, r.body = req.Clone(req.Context()), body
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

func TestServe_EveryAuthFailureThroughTheClient(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the service")
	}
	sv := startServed(t)
	ctx := context.Background()
	var ae *api.Error
	for _, tc := range []struct {
		name string
		cfg  client.Config
		want string
	}{
		{"unknown key", client.Config{KeyID: "nobody-1", Secret: sv.secrets["fund-a-1"]}, "unknown key"},
		{"bad signature", client.Config{KeyID: "fund-a-1", Secret: []byte("not-the-secret-not-the-secret-00")}, "bad signature"},
		{"timestamp 31 s old", client.Config{KeyID: "fund-a-1", Secret: sv.secrets["fund-a-1"],
			Clock: clock.NewVirtual(clock.Wall{}.Now().Add(-31 * time.Second))}, "timestamp outside"},
		{"timestamp 31 s ahead", client.Config{KeyID: "fund-a-1", Secret: sv.secrets["fund-a-1"],
			Clock: clock.NewVirtual(clock.Wall{}.Now().Add(31 * time.Second))}, "timestamp outside"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.BaseURL, tc.cfg.Retries = sv.url, -1
			c, err := client.New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.List(ctx, ""); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized ||
				!strings.Contains(ae.Message, tc.want) {
				t.Fatalf("%v, want 401 %q", err, tc.want)
			}
		})
	}
	// A replayed request (same nonce) is refused; the original worked.
	rp := &replayer{}
	c, err := client.New(client.Config{BaseURL: sv.url, KeyID: "fund-a-1", Secret: sv.secrets["fund-a-1"],
		HTTPClient: &http.Client{Transport: rp}, Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.List(ctx, ""); err != nil {
		t.Fatal(err)
	}
	rp.mu.Lock()
	replay := rp.last.Clone(ctx)
	replay.Body = io.NopCloser(bytes.NewReader(rp.body))
	rp.mu.Unlock()
	res, err := http.DefaultTransport.RoundTrip(replay)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "nonce seen before") {
		t.Fatalf("replay: %d %s", res.StatusCode, body)
	}
}
