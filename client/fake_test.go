package client

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/api"
	"github.com/blockexec/blockexec/clock"
)

const (
	testKeyID  = "fund-a-2026-11"
	testSecret = "test-secret-not-real-0123456789abcdef"
)

// seen is one request as the fake server received it.
type seen struct {
	Method, Path, Query string
	Body                []byte
	Header              http.Header
}

// fake is the service's HTTP API as the client sees it: it authenticates
// every request as the real server does (api.Verify over api.Canonical,
// the timestamp window on the shared clock, nonces used once) and hands
// the authenticated ones to handle. A request that fails authentication
// fails the test: the client must sign everything right.
type fake struct {
	t   *testing.T
	srv *httptest.Server
	clk clock.Clock
	// refusals expected: a refused request does not fail the test.
	refusals bool

	mu     sync.Mutex
	reqs   []seen
	nonces map[string]bool
	handle func(n int, w http.ResponseWriter, r *http.Request, body []byte) // n: the request's index, from 0
}

func newFake(t *testing.T, clk clock.Clock, handle func(n int, w http.ResponseWriter, r *http.Request, body []byte)) *fake {
	t.Helper()
	f := &fake{t: t, clk: clk, nonces: map[string]bool{}, handle: handle}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		f.t.Errorf("read the body: %v", err)
		return
	}
	f.mu.Lock()
	n := len(f.reqs)
	f.reqs = append(f.reqs, seen{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Body: body,
		Header: r.Header.Clone()})
	f.mu.Unlock()
	if aerr := f.authenticate(r, body); aerr != nil {
		if f.refusals {
			writeError(w, aerr, "")
			return
		}
		f.t.Errorf("request %d %s %s refused: %v", n, r.Method, r.URL.Path, aerr)
		writeError(w, aerr, "")
		return
	}
	f.handle(n, w, r, body)
}

// authenticate is the server's check of a signed request.
func (f *fake) authenticate(r *http.Request, body []byte) *api.Error {
	unauthorized := func(format string, a ...any) *api.Error {
		return api.Errorf(http.StatusUnauthorized, api.CodeUnauthorized, format, a...)
	}
	h := r.Header
	if h.Get(api.HeaderKey) != testKeyID {
		return unauthorized("unknown key")
	}
	ms, err := strconv.ParseInt(h.Get(api.HeaderTimestamp), 10, 64)
	if err != nil {
		return unauthorized("timestamp not Unix ms")
	}
	if skew := f.clk.Now().Sub(time.UnixMilli(ms)); skew > api.Window || skew < -api.Window {
		return unauthorized("timestamp outside the window: skew %s", skew)
	}
	nonce := h.Get(api.HeaderNonce)
	if len(nonce) < 16 || len(nonce) > 64 {
		return unauthorized("nonce of %d characters", len(nonce))
	}
	// As service.server.authenticate: the decoded path, the raw query.
	canonical := api.Canonical(r.Method, r.URL.Path, r.URL.RawQuery, ms, nonce, body)
	if !api.Verify([]byte(testSecret), canonical, h.Get(api.HeaderSignature)) {
		return unauthorized("bad signature")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.nonces[nonce] {
		return unauthorized("nonce seen before")
	}
	f.nonces[nonce] = true
	return nil
}

// requests returns what the fake received so far.
func (f *fake) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

// client returns a client of the fake on clk.
func (f *fake) client(t *testing.T, tweak func(*Config)) *Client {
	t.Helper()
	cfg := Config{BaseURL: f.srv.URL, KeyID: testKeyID, Secret: []byte(testSecret), Clock: f.clk}
	if tweak != nil {
		tweak(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers an API error, as the server does; retryAfter is the
// Retry-After header ("" for none).
func writeError(w http.ResponseWriter, e *api.Error, retryAfter string) {
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	writeJSON(w, e.Status, api.ErrorBody{Error: e})
}

// drop closes the connection without an answer, after the request was
// read in full.
func drop(t *testing.T, w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	_ = conn.Close()
}

// order is a canned order as the server shows it.
func order(id, state string) api.Order {
	return api.Order{ID: id, ClientOrderID: id, Client: "fund-a", State: state, Side: "sell", Symbol: "BTCUSDT",
		Strategy: "twap", Quantity: decimal.RequireFromString("400"), MaxParticipation: decimal.RequireFromString("0.1"),
		SlippageBandBps: decimal.RequireFromString("50"), Venues: []string{"sim-a"},
		Start: time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC), End: time.Date(2026, 11, 2, 16, 0, 0, 0, time.UTC)}
}

// sseEvent writes one server-sent event as the server frames it.
func sseEvent(w io.Writer, ev api.Event) {
	b, _ := json.Marshal(ev)
	fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.Seq, ev.Kind, b)
}
