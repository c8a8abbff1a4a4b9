package service

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/api"
	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/engine"
	"github.com/blockexec/blockexec/risk"
	"github.com/blockexec/blockexec/venues/sim"
)

var httpT0 = time.Date(2024, 10, 8, 14, 0, 0, 0, time.UTC)

// The rig's keys: fund-a reads and trades, fund-b too, ops is admin.
const (
	keyARead  = "fa-read"
	keyATrade = "fa-trade"
	keyASlow  = "fa-slow" // read, 1 a second, burst 2
	keyBTrade = "fb-trade"
	keyAdmin  = "ops-admin"
)

func httpSecret(key string) []byte {
	return []byte("test-secret-not-real-" + key + "-0123456789abcdef")
}

func httpKeysYAML() string {
	var b strings.Builder
	b.WriteString("keys:\n")
	for _, k := range []struct{ id, client, scopes, rate string }{
		{keyARead, "fund-a", "[read]", "1000"},
		{keyATrade, "fund-a", "[read, trade]", "1000"},
		{keyASlow, "fund-a", "[read]", "1"},
		{keyBTrade, "fund-b", "[read, trade]", "1000"},
		{keyAdmin, "ops", "[admin]", "1000"},
	} {
		burst := k.rate
		if k.rate == "1" {
			burst = "2"
		}
		fmt.Fprintf(&b, "  - id: %s\n    client: %s\n    secret: %q\n    scopes: %s\n    rate_per_second: %s\n    burst: %s\n",
			k.id, k.client, httpSecret(k.id), k.scopes, k.rate, burst)
	}
	return b.String()
}

func httpKeyring(t *testing.T, clk clock.Clock) *Keyring {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.yaml")
	if err := os.WriteFile(path, []byte(httpKeysYAML()), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := LoadKeys(path, clk)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// httpRig is the HTTP API over a desk over an engine serving on a manual
// clock over two sim venues.
type httpRig struct {
	clk     *clock.Manual // the engine's and the keys'
	wall    *clock.Manual // the API's: latencies, heartbeats
	eng     *engine.Engine
	store   *httpStore
	metrics *Metrics
	srv     *httptest.Server
	handler http.Handler // srv's
	logs    *syncBuffer
	health  atomic.Value // api.Health
	nonces  atomic.Int64
}

const httpRigMaxBody = 4096

// httpRigOptions adjust a rig's API: its config, and its server before it
// starts.
type httpRigOptions struct {
	config func(*HTTPConfig)
	server func(*http.Server)
}

func newHTTPRig(t *testing.T) *httpRig {
	t.Helper()
	return newHTTPRigWith(t, httpRigOptions{})
}

func newHTTPRigWith(t *testing.T, o httpRigOptions) *httpRig {
	t.Helper()
	r := &httpRig{clk: clock.NewManual(httpT0), wall: clock.NewManual(httpT0), store: newHTTPStore(), logs: &syncBuffer{}}
	r.health.Store(api.Health{Status: "ok", Checks: map[string]string{"engine": "ok", "bus": "ok"}})
	r.metrics = NewMetricsOn(r.wall)
	r.eng = servingEngine(t, r.clk, 7, r.metrics.WrapVenue, r.metrics.WrapPublisher(r.store))
	desk := NewDesk(r.eng, httpTWAP{}, r.store, r.store, r.store, r.clk)
	cfg := HTTPConfig{MaxBody: httpRigMaxBody, Metrics: r.metrics, Clock: r.wall,
		Log: zerolog.New(r.logs).Level(zerolog.DebugLevel), Health: func() api.Health { return r.health.Load().(api.Health) }}
	if o.config != nil {
		o.config(&cfg)
	}
	r.handler = NewHTTP(desk, httpKeyring(t, r.clk), cfg)
	r.srv = httptest.NewUnstartedServer(r.handler)
	if o.server != nil {
		o.server(r.srv.Config)
	}
	r.srv.Start()
	t.Cleanup(r.srv.Close)
	return r
}

// servingEngine is an engine serving on clk over two sim venues, alpha
// and beta, of a market seeded with seed (each venue passed through wrap),
// publishing to pub; it stops with the test.
func servingEngine(t *testing.T, clk *clock.Manual, seed int64, wrap func(engine.Venue) engine.Venue,
	pub engine.Publisher) *engine.Engine {
	t.Helper()
	m, err := sim.NewMarket(sim.MarketConfig{Seed: seed, Symbol: "BTCUSDT", Base: "BTC", Quote: "USDT",
		StartPrice: decimal.NewFromInt(63_000), Start: clk.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var vs []engine.Venue
	for _, vc := range []sim.Config{{Name: "alpha", Share: 0.6, IDPrefix: "alpha"}, {Name: "beta", Share: 0.4, IDPrefix: "beta"}} {
		v, err := sim.New(m, clk, vc)
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, wrap(v))
	}
	kill := risk.NewKillSwitch(false)
	eng, err := engine.New(clk, vs, risk.NewChecker(kill), kill, pub, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- eng.Serve(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; !errors.Is(err, context.Canceled) {
			t.Errorf("Serve returned %v", err)
		}
	})
	// Until the loop runs a command is ErrNotServing.
	httpEventually(t, "the engine serving", func() bool {
		_, err := eng.Pause(context.Background(), "probe")
		return !errors.Is(err, engine.ErrNotServing)
	})
	return eng
}

// httpEventually polls cond, with a bound that is patience, not an
// assertion on time.
func httpEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// step moves the engine's clock a minute and waits for the order's slice.
// It waits for the order's first slice (at its start, now) before: a slice
// still running when the clock moves would publish a status that looks
// like the next one's.
func (r *httpRig) step(t *testing.T, id string) {
	t.Helper()
	httpEventually(t, id+"'s first slice", func() bool {
		st, _ := r.eng.Status(id)
		return st.State != engine.Accepted
	})
	r.clk.Advance(time.Minute)
	now := r.clk.Now()
	httpEventually(t, id+"'s slice", func() bool {
		st, _ := r.eng.Status(id)
		return st.State != engine.Working && st.State != engine.Accepted || !st.Updated.Before(now)
	})
}

func (r *httpRig) nonce() string { return fmt.Sprintf("http-test-nonce-%08d", r.nonces.Add(1)) }

// request builds a request to target ("/v1/orders?state=working") signed
// by key now; body is raw bytes, a string, or a value to encode.
func (r *httpRig) request(t *testing.T, method, target, key string, body any) *http.Request {
	t.Helper()
	raw := httpBody(t, body)
	req, err := http.NewRequest(method, r.srv.URL+target, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		httpSign(req, key, httpSecret(key), raw, r.clk.Now(), r.nonce())
	}
	return req
}

func httpBody(t *testing.T, body any) []byte {
	switch b := body.(type) {
	case nil:
		return nil
	case []byte:
		return b
	case string:
		return []byte(b)
	}
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// httpSign signs req as a client does: api.Canonical of the method, the
// path, the raw query, the timestamp, the nonce and the body.
func httpSign(req *http.Request, key string, secret, body []byte, now time.Time, nonce string) {
	ts := now.UnixMilli()
	req.Header.Set(api.HeaderKey, key)
	req.Header.Set(api.HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(api.HeaderNonce, nonce)
	req.Header.Set(api.HeaderSignature, api.Sign(secret, api.Canonical(req.Method, req.URL.Path, req.URL.RawQuery, ts, nonce, body)))
}

// send sends req and returns the status, the headers and the body.
func (r *httpRig) send(t *testing.T, req *http.Request) (int, http.Header, []byte) {
	t.Helper()
	resp, err := r.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// call sends a signed request and decodes a 2xx answer into out; an
// error answer is returned as the *api.Error, with its status.
func (r *httpRig) call(t *testing.T, method, target, key string, body, out any) (int, *api.Error) {
	t.Helper()
	status, h, b := r.send(t, r.request(t, method, target, key, body))
	return httpDecode(t, status, h, b, out)
}

func httpDecode(t *testing.T, status int, h http.Header, b []byte, out any) (int, *api.Error) {
	t.Helper()
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("status %d with Content-Type %q: %s", status, ct, b)
	}
	if status >= 300 {
		var eb api.ErrorBody
		if err := json.Unmarshal(b, &eb); err != nil || eb.Error == nil {
			t.Fatalf("status %d, not an error body: %s", status, b)
		}
		eb.Error.Status = status
		return status, eb.Error
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("status %d: %v: %s", status, err, b)
		}
	}
	return status, nil
}

// must is call that must answer want.
func (r *httpRig) must(t *testing.T, want int, method, target, key string, body, out any) {
	t.Helper()
	if status, aerr := r.call(t, method, target, key, body, out); status != want {
		t.Fatalf("%s %s as %s: %d %v, want %d", method, target, key, status, aerr, want)
	}
}

// wantError checks an answer is an error of status on field, saying what.
func wantError(t *testing.T, status int, aerr *api.Error, wantStatus int, field, what string) {
	t.Helper()
	if status != wantStatus || aerr == nil || aerr.Field != field || !strings.Contains(aerr.Message, what) {
		t.Fatalf("got %d %+v; want %d on field %q saying %q", status, aerr, wantStatus, field, what)
	}
}

func httpDec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// httpOrder is a sell of 1 BTC over 10 minutes.
func httpOrder(id string) api.OrderRequest {
	return api.OrderRequest{ClientOrderID: id, Side: "sell", Symbol: "BTCUSDT", Quantity: httpDec("1"),
		Duration: "10m", MaxParticipation: httpDec("0.1"), SlippageBandBps: httpDec("50")}
}

// httpTWAP leaves every order to the engine's own TWAP (the NATS tests use it too).
type httpTWAP struct{}

func (httpTWAP) Schedule(api.OrderRequest, engine.ParentSpec) (engine.Schedule, error) {
	return nil, nil
}

// httpStore is what the engine publishes, kept in memory: the desk's
// fills and events (followed live) and its used ids.
type httpStore struct {
	mu      sync.Mutex
	fills   []bus.FillMsg
	events  []bus.EventMsg
	changed chan struct{} // closed and replaced at every event
	used    map[string]bool
}

var (
	_ engine.Publisher = (*httpStore)(nil)
	_ Fills            = (*httpStore)(nil)
	_ Events           = (*httpStore)(nil)
	_ IDs              = (*httpStore)(nil)
)

func newHTTPStore() *httpStore {
	return &httpStore{changed: make(chan struct{}), used: map[string]bool{"used-before": true}}
}

func (s *httpStore) PublishFill(_ context.Context, m bus.FillMsg) error {
	s.mu.Lock()
	s.fills = append(s.fills, m)
	s.mu.Unlock()
	return nil
}

func (s *httpStore) PublishEvent(_ context.Context, m bus.EventMsg) error {
	s.mu.Lock()
	s.events = append(s.events, m)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return nil
}

func (s *httpStore) FillMsgs(_ context.Context, parentID string) ([]bus.FillMsg, error) {
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

// Follow delivers the stored events of the parent from fromSeq, then the
// new ones, until ctx ends.
func (s *httpStore) Follow(ctx context.Context, parentID string, fromSeq int64) (<-chan bus.EventMsg, error) {
	out := make(chan bus.EventMsg)
	go func() {
		defer close(out)
		next := 0
		for {
			s.mu.Lock()
			var batch []bus.EventMsg
			for ; next < len(s.events); next++ {
				if ev := s.events[next]; ev.ParentID == parentID && ev.Seq >= fromSeq {
					batch = append(batch, ev)
				}
			}
			changed := s.changed
			s.mu.Unlock()
			for _, ev := range batch {
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			}
			select {
			case <-changed:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func (s *httpStore) Used(_ context.Context, id string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used[id], nil
}

func (s *httpStore) eventsOf(id string) []bus.EventMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []bus.EventMsg
	for _, ev := range s.events {
		if ev.ParentID == id {
			out = append(out, ev)
		}
	}
	return out
}

// syncBuffer is a log sink safe for the handlers' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// sseFrame is one message of an event stream, or a comment.
type sseFrame struct {
	id, event, data, comment string
}

// sseStream reads an event stream.
type sseStream struct {
	resp *http.Response
	rd   *bufio.Reader
}

func (r *httpRig) openEvents(t *testing.T, ctx context.Context, key, id, lastEventID string) *sseStream {
	t.Helper()
	req := r.request(t, http.MethodGet, "/v1/orders/"+id+"/events", key, nil).WithContext(ctx)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := r.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("events: %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	return &sseStream{resp: resp, rd: bufio.NewReader(resp.Body)}
}

// next reads a frame; io.EOF when the stream ended.
func (s *sseStream) next() (sseFrame, error) {
	var f sseFrame
	started := false
	for {
		line, err := s.rd.ReadString('\n')
		if err != nil {
			if started {
				return f, io.ErrUnexpectedEOF
			}
			return f, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if started {
				return f, nil
			}
			continue
		}
		started = true
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "":
			f.comment = value
		case "id":
			f.id = value
		case "event":
			f.event = value
		case "data":
			f.data += value
		}
	}
}

// events reads event frames until the stream ends, checking each.
func (s *sseStream) events(t *testing.T, until func(bus.EventMsg) bool) []bus.EventMsg {
	t.Helper()
	var out []bus.EventMsg
	for {
		f, err := s.next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("read the stream: %v", err)
		}
		if f.comment != "" {
			continue
		}
		var ev bus.EventMsg
		if err := json.Unmarshal([]byte(f.data), &ev); err != nil {
			t.Fatalf("data %q: %v", f.data, err)
		}
		if f.id != strconv.FormatInt(ev.Seq, 10) || f.event != ev.Kind {
			t.Fatalf("frame id %s event %s for an event %d %s", f.id, f.event, ev.Seq, ev.Kind)
		}
		out = append(out, ev)
		if until != nil && until(ev) {
			return out
		}
	}
}

// checkSeqs checks that evs are c-1's events with exactly the sequence
// numbers want, in order. Numbers have gaps: a child's event numbers are
// reserved at its intent, whether or not each is used.
func checkSeqs(t *testing.T, evs []bus.EventMsg, want []int64) {
	t.Helper()
	if len(evs) != len(want) {
		t.Fatalf("%d events %v, want %d: %v", len(evs), seqsOf(evs), len(want), want)
	}
	for i, ev := range evs {
		if ev.Seq != want[i] || ev.ParentID != "c-1" {
			t.Fatalf("event %d: %s seq %d of %s, want seq %d of c-1", i, ev.Kind, ev.Seq, ev.ParentID, want[i])
		}
	}
}

func seqsOf(evs []bus.EventMsg) []int64 {
	out := make([]int64, len(evs))
	for i, ev := range evs {
		out[i] = ev.Seq
	}
	return out
}

// seqsFrom is the sequence numbers of evs from from on.
func seqsFrom(evs []bus.EventMsg, from int64) []int64 {
	var out []int64
	for _, ev := range evs {
		if ev.Seq >= from {
			out = append(out, ev.Seq)
		}
	}
	return out
}

func (r *httpRig) scrape(t *testing.T) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.srv.URL+"/metrics", nil)
	status, h, b := r.send(t, req)
	if status != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("metrics: %d %s", status, h.Get("Content-Type"))
	}
	return string(b)
}

// metricValue reads one sample's value from the text format.
func metricValue(t *testing.T, text, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return 0
}

// panickyEngine panics on every call: its other methods are nil.
type panickyEngine struct{ Engine }

func (panickyEngine) Statuses() []engine.Status { panic("the details of the crash, secret-ish") }

// gatedEngine accepts an order only when told to; the rest is nil.
type gatedEngine struct {
	Engine
	entered chan struct{}
	release chan error
	mu      sync.Mutex
	status  map[string]engine.Status
}

func (g *gatedEngine) Submit(_ context.Context, s engine.ParentSpec) (engine.Status, error) {
	g.entered <- struct{}{}
	if err := <-g.release; err != nil {
		return engine.Status{}, err
	}
	st := engine.Status{Summary: engine.Summary{ParentID: s.ID, State: engine.Accepted, Side: s.Side, Symbol: s.Symbol, Qty: s.Qty}}
	g.mu.Lock()
	g.status[s.ID] = st
	g.mu.Unlock()
	return st, nil
}

func (g *gatedEngine) Status(id string) (engine.Status, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	st, ok := g.status[id]
	return st, ok
}
