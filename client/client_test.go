package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/api"
	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/clock"
)

var t0 = time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)

func sellOrder(id string) api.OrderRequest {
	floor := decimal.RequireFromString("61000")
	return api.OrderRequest{ClientOrderID: id, Side: "sell", Symbol: "BTCUSDT", Quantity: decimal.RequireFromString("400"),
		Duration: "8h", MaxParticipation: decimal.RequireFromString("0.1"), SlippageBandBps: decimal.RequireFromString("50"),
		FloorPrice: &floor, Venues: []string{"sim-a", "sim-b"}}
}

// TestClient_SignsEveryCallAsTheServerVerifies: every call reaches its
// route with the four headers, the timestamp from the injected clock, a
// fresh 16-byte hex nonce, and a signature over the path, query and body
// sent (the fake refuses anything else).
func TestClient_SignsEveryCallAsTheServerVerifies(t *testing.T) {
	clk := clock.NewVirtual(t0)
	f := newFake(t, clk, func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) {
		switch {
		case r.URL.Path == "/v1/orders" && r.Method == http.MethodPost:
			writeJSON(w, http.StatusCreated, order("o-1", "accepted"))
		case r.URL.Path == "/v1/orders":
			writeJSON(w, http.StatusOK, api.OrderList{Orders: []api.Order{order("o-1", "working")}})
		case strings.HasSuffix(r.URL.Path, "/fills"):
			writeJSON(w, http.StatusOK, api.FillList{Fills: []bus.FillMsg{{ParentID: "o-1", Venue: "sim-a", TradeID: "t1"}}})
		case r.URL.Path == "/v1/kill" && r.Method == http.MethodDelete:
			writeJSON(w, http.StatusOK, api.KillState{})
		case r.URL.Path == "/v1/kill":
			writeJSON(w, http.StatusOK, api.KillResult{Cancelled: []api.Order{order("o-1", "cancelled")}, KillSwitch: api.KillState{Engaged: true}})
		case r.URL.Path == "/healthz":
			writeJSON(w, http.StatusOK, api.Health{Status: "ok", Checks: map[string]string{"engine": "ok"}})
		default:
			writeJSON(w, http.StatusOK, order("o-1", "working"))
		}
	})
	c := f.client(t, nil)
	ctx := context.Background()
	band := decimal.RequireFromString("40")
	submitBody, _ := json.Marshal(sellOrder("o-1"))
	amendBody, _ := json.Marshal(api.Amendment{SlippageBandBps: &band})
	for _, tc := range []struct {
		name, method, path, query string
		body                      []byte
		call                      func() error
	}{
		{"submit", "POST", "/v1/orders", "", submitBody, func() error {
			o, created, err := c.Submit(ctx, sellOrder("o-1"))
			if err == nil && (!created || o.ID != "o-1") {
				err = fmt.Errorf("created %v, order %q", created, o.ID)
			}
			return err
		}},
		{"get", "GET", "/v1/orders/o-1", "", nil, func() error { _, err := c.Get(ctx, "o-1"); return err }},
		{"list", "GET", "/v1/orders", "state=working", nil, func() error {
			l, err := c.List(ctx, "working")
			if err == nil && len(l) != 1 {
				err = fmt.Errorf("%d orders", len(l))
			}
			return err
		}},
		{"list all", "GET", "/v1/orders", "", nil, func() error { _, err := c.List(ctx, ""); return err }},
		{"pause", "POST", "/v1/orders/o-1/pause", "", nil, func() error { _, err := c.Pause(ctx, "o-1"); return err }},
		{"resume", "POST", "/v1/orders/o-1/resume", "", nil, func() error { _, err := c.Resume(ctx, "o-1"); return err }},
		{"cancel", "POST", "/v1/orders/o-1/cancel", "", nil, func() error { _, err := c.Cancel(ctx, "o-1"); return err }},
		{"amend", "PATCH", "/v1/orders/o-1", "", amendBody, func() error {
			_, err := c.Amend(ctx, "o-1", api.Amendment{SlippageBandBps: &band})
			return err
		}},
		{"fills", "GET", "/v1/orders/o-1/fills", "", nil, func() error {
			fs, err := c.Fills(ctx, "o-1")
			if err == nil && (len(fs) != 1 || fs[0].TradeID != "t1") {
				err = fmt.Errorf("fills %+v", fs)
			}
			return err
		}},
		{"kill", "POST", "/v1/kill", "", []byte(`{"reason":"desk closing"}`), func() error {
			k, err := c.Kill(ctx, "desk closing")
			if err == nil && (len(k.Cancelled) != 1 || !k.KillSwitch.Engaged) {
				err = fmt.Errorf("kill %+v", k)
			}
			return err
		}},
		{"release the kill switch", "DELETE", "/v1/kill", "", nil, func() error {
			k, err := c.ReleaseKill(ctx)
			if err == nil && k.Engaged {
				err = fmt.Errorf("release %+v", k)
			}
			return err
		}},
		{"health", "GET", "/healthz", "", nil, func() error {
			h, err := c.Health(ctx)
			if err == nil && h.Status != "ok" {
				err = fmt.Errorf("health %+v", h)
			}
			return err
		}},
		{"id escaped as one segment", "GET", "/v1/orders/a%2Fb", "", nil, func() error { _, err := c.Get(ctx, "a/b"); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(f.requests())
			clk.Advance(time.Second)
			if err := tc.call(); err != nil {
				t.Fatal(err)
			}
			reqs := f.requests()[before:]
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != tc.method || r.Path != tc.path || r.Query != tc.query || !bytes.Equal(r.Body, tc.body) {
				t.Fatalf("sent %s %s?%s %s, want %s %s?%s %s", r.Method, r.Path, r.Query, r.Body, tc.method, tc.path, tc.query, tc.body)
			}
			if got, want := r.Header.Get(api.HeaderTimestamp), fmt.Sprint(clk.Now().UnixMilli()); got != want {
				t.Errorf("timestamp %s, want the clock's %s", got, want)
			}
			if n, err := hex.DecodeString(r.Header.Get(api.HeaderNonce)); err != nil || len(n) != 16 {
				t.Errorf("nonce %q is not 16 bytes in hex", r.Header.Get(api.HeaderNonce))
			}
			if len(r.Header.Get(api.HeaderSignature)) != 64 {
				t.Errorf("signature %q is not hex SHA-256", r.Header.Get(api.HeaderSignature))
			}
		})
	}
	if _, err := c.Get(ctx, ""); !errors.Is(err, ErrNoID) {
		t.Fatalf("empty id: %v", err)
	}
}

// TestSubmit_RetriesWithTheSameIDAndBodyAndTakesA200AsTheOrder: a 503,
// then a connection dropped after the request arrived, then the existing
// order (200): one Submit, three attempts with the same body and fresh
// nonces, created false; the waits are the doubling backoff on the
// injected clock.
func TestSubmit_RetriesWithTheSameIDAndBodyAndTakesA200AsTheOrder(t *testing.T) {
	clk := clock.NewVirtual(t0)
	f := newFake(t, clk, func(n int, w http.ResponseWriter, _ *http.Request, _ []byte) {
		switch n {
		case 0:
			writeError(w, api.Errorf(http.StatusServiceUnavailable, api.CodeUnavailable, "the engine is not serving"), "")
		case 1:
			drop(t, w)
		default:
			writeJSON(w, http.StatusOK, order("o-7", "working"))
		}
	})
	c := f.client(t, nil)
	o, created, err := c.Submit(context.Background(), sellOrder("o-7"))
	if err != nil {
		t.Fatal(err)
	}
	if created || o.ID != "o-7" {
		t.Fatalf("created %v, order %q; want the existing order, created false", created, o.ID)
	}
	reqs := f.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d attempts, want 3", len(reqs))
	}
	nonces := map[string]bool{}
	for i, r := range reqs {
		if !bytes.Equal(r.Body, reqs[0].Body) {
			t.Errorf("attempt %d sent another body:\n%s\n%s", i, r.Body, reqs[0].Body)
		}
		var req api.OrderRequest
		if err := json.Unmarshal(r.Body, &req); err != nil || req.ClientOrderID != "o-7" {
			t.Errorf("attempt %d: client_order_id %q (%v)", i, req.ClientOrderID, err)
		}
		nonces[r.Header.Get(api.HeaderNonce)] = true
	}
	if len(nonces) != 3 {
		t.Errorf("%d nonces for 3 attempts", len(nonces))
	}
	if waited := clk.Now().Sub(t0); waited != DefaultBackoff+2*DefaultBackoff {
		t.Errorf("waited %s on the clock, want %s then %s", waited, DefaultBackoff, 2*DefaultBackoff)
	}
}

// TestRetries_AfterTheRequestWasSent: what each call does when the
// connection drops after the server read the request (it may have acted).
// Idempotent calls retry; a kill does not.
func TestRetries_AfterTheRequestWasSent(t *testing.T) {
	for _, tc := range []struct {
		name      string
		call      func(*Client) error
		attempts  int
		wantError bool
	}{
		{"get retries", func(c *Client) error { _, err := c.Get(context.Background(), "o-1"); return err }, 2, false},
		{"pause retries", func(c *Client) error { _, err := c.Pause(context.Background(), "o-1"); return err }, 2, false},
		{"resume retries", func(c *Client) error { _, err := c.Resume(context.Background(), "o-1"); return err }, 2, false},
		{"amend retries", func(c *Client) error {
			band := decimal.RequireFromString("40")
			_, err := c.Amend(context.Background(), "o-1", api.Amendment{SlippageBandBps: &band})
			return err
		}, 2, false},
		{"kill does not", func(c *Client) error { _, err := c.Kill(context.Background(), "x"); return err }, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var first atomic.Bool
			f := newFake(t, clock.NewVirtual(t0), func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) {
				// Drop the first request of the call under test only.
				if !first.Swap(true) {
					drop(t, w)
					return
				}
				writeJSON(w, http.StatusOK, order("o-1", "working"))
			})
			err := tc.call(f.client(t, nil))
			if (err != nil) != tc.wantError {
				t.Fatalf("error %v, want error: %v", err, tc.wantError)
			}
			if n := len(f.requests()); n != tc.attempts {
				t.Fatalf("%d attempts, want %d", n, tc.attempts)
			}
		})
	}
}

// TestKill_RetriedWhenTheConnectionWasRefused: a kill whose connection is
// refused never reached the server, so it is sent again.
func TestKill_RetriedWhenTheConnectionWasRefused(t *testing.T) {
	clk := clock.NewVirtual(t0)
	f := newFake(t, clk, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) {
		writeJSON(w, http.StatusOK, api.KillResult{Cancelled: []api.Order{}})
	})
	var dials atomic.Int32
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dials.Add(1) == 1 {
			return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	c := f.client(t, func(cfg *Config) { cfg.HTTPClient = &http.Client{Transport: tr} })
	if _, err := c.Kill(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	if n := len(f.requests()); n != 1 || dials.Load() != 2 {
		t.Fatalf("%d requests after %d dials; want 1 after 2", n, dials.Load())
	}
}

// TestKill_NotRetriedOn5xx: a 503 to a kill leaves it unknown whether
// it ran; the caller is told, once.
func TestKill_NotRetriedOn5xx(t *testing.T) {
	f := newFake(t, clock.NewVirtual(t0), func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) {
		writeError(w, api.Errorf(http.StatusServiceUnavailable, api.CodeUnavailable, "timed out"), "")
	})
	_, err := f.client(t, nil).Kill(context.Background(), "test")
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || len(f.requests()) != 1 {
		t.Fatalf("%v after %d attempts", err, len(f.requests()))
	}
}

// TestCancel_ARetryToldTheOrderEndedChecksItWasCancelled: the first
// cancel went through but its answer was lost; the retry gets 409 (ended),
// and the client finds the order cancelled: success.
func TestCancel_ARetryToldTheOrderEndedChecksItWasCancelled(t *testing.T) {
	for _, tc := range []struct {
		name, state string
		wantErr     bool
	}{
		{"cancelled by the lost attempt", "cancelled", false},
		{"done before the cancel", "done", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, clock.NewVirtual(t0), func(n int, w http.ResponseWriter, r *http.Request, _ []byte) {
				switch {
				case n == 0:
					drop(t, w)
				case r.Method == http.MethodPost:
					writeError(w, api.Errorf(http.StatusConflict, api.CodeConflict, "parent ended: o-1 is %s", tc.state), "")
				default:
					writeJSON(w, http.StatusOK, order("o-1", tc.state))
				}
			})
			o, err := f.client(t, nil).Cancel(context.Background(), "o-1")
			var ae *api.Error
			switch {
			case tc.wantErr && (!errors.As(err, &ae) || ae.Status != http.StatusConflict):
				t.Fatalf("want the 409, got %v", err)
			case !tc.wantErr && (err != nil || o.State != "cancelled"):
				t.Fatalf("order %+v, %v", o.State, err)
			}
			if n := len(f.requests()); n != 3 {
				t.Fatalf("%d requests, want cancel, cancel, get", n)
			}
		})
	}
}

// TestCancel_A409OnTheFirstAttemptIsTheAnswer: no earlier attempt can have
// cancelled it, so the conflict stands.
func TestCancel_A409OnTheFirstAttemptIsTheAnswer(t *testing.T) {
	f := newFake(t, clock.NewVirtual(t0), func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) {
		writeError(w, api.Errorf(http.StatusConflict, api.CodeConflict, "parent ended: o-1 is cancelled"), "")
	})
	_, err := f.client(t, nil).Cancel(context.Background(), "o-1")
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeConflict || len(f.requests()) != 1 {
		t.Fatalf("%v after %d requests", err, len(f.requests()))
	}
}

// TestRateLimit_RetryAfterIsWaitedOnTheClock: a 429 is retried by every
// call, kill too, after the Retry-After seconds on the injected clock.
func TestRateLimit_RetryAfterIsWaitedOnTheClock(t *testing.T) {
	for _, tc := range []struct {
		name string
		call func(*Client) error
	}{
		{"submit", func(c *Client) error { _, _, err := c.Submit(context.Background(), sellOrder("o-1")); return err }},
		{"get", func(c *Client) error { _, err := c.Get(context.Background(), "o-1"); return err }},
		{"kill", func(c *Client) error { _, err := c.Kill(context.Background(), "x"); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewVirtual(t0)
			f := newFake(t, clk, func(n int, w http.ResponseWriter, _ *http.Request, _ []byte) {
				if n == 0 {
					writeError(w, api.Errorf(http.StatusTooManyRequests, api.CodeRateLimited, "key over its rate"), "7")
					return
				}
				writeJSON(w, http.StatusCreated, api.KillResult{})
			})
			start := time.Now()
			if err := tc.call(f.client(t, nil)); err != nil {
				t.Fatal(err)
			}
			if waited := clk.Now().Sub(t0); waited != 7*time.Second {
				t.Fatalf("waited %s on the clock, want the Retry-After's 7s", waited)
			}
			if real := time.Since(start); real > 5*time.Second {
				t.Fatalf("took %s of real time: the wait is not on the injected clock", real)
			}
			if n := len(f.requests()); n != 2 {
				t.Fatalf("%d attempts, want 2", n)
			}
		})
	}
}

// TestRetries_GiveUpAfterConfigRetriesWithTheLastError: 5xx every time;
// Retries more attempts, backoff doubling, then the server's error.
func TestRetries_GiveUpAfterConfigRetriesWithTheLastError(t *testing.T) {
	clk := clock.NewVirtual(t0)
	f := newFake(t, clk, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) {
		writeError(w, api.Errorf(http.StatusInternalServerError, api.CodeInternal, "boom"), "")
	})
	_, err := f.client(t, func(c *Config) { c.Backoff = time.Second }).List(context.Background(), "")
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusInternalServerError || ae.Message != "boom" {
		t.Fatalf("want the 500, got %v", err)
	}
	if n := len(f.requests()); n != 1+DefaultRetries {
		t.Fatalf("%d attempts, want %d", n, 1+DefaultRetries)
	}
	if waited := clk.Now().Sub(t0); waited != (1+2+4)*time.Second {
		t.Fatalf("waited %s, want 1s + 2s + 4s", waited)
	}
	f2 := newFake(t, clk, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) {
		writeError(w, api.Errorf(http.StatusServiceUnavailable, api.CodeUnavailable, "down"), "")
	})
	if _, err := f2.client(t, func(c *Config) { c.Retries = -1 }).List(context.Background(), ""); err == nil || len(f2.requests()) != 1 {
		t.Fatalf("Retries -1: %d attempts (%v)", len(f2.requests()), err)
	}
}

// TestErrors_DecodeToAPIErrorWithTheField: 4xx answers are not retried and
// come back as *api.Error with status, code and field; an answer that is
// not the API's becomes one of its status.
func TestErrors_DecodeToAPIErrorWithTheField(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func(w http.ResponseWriter)
		want   api.Error
	}{
		{"400 with a field", func(w http.ResponseWriter) {
			writeError(w, api.BadField("quantity", "must be > 0, got -1"), "")
		}, api.Error{Status: 400, Code: api.CodeBadRequest, Field: "quantity", Message: "must be > 0, got -1"}},
		{"409", func(w http.ResponseWriter) {
			writeError(w, api.Errorf(http.StatusConflict, api.CodeConflict, "client_order_id used for another order"), "")
		}, api.Error{Status: 409, Code: api.CodeConflict, Message: "client_order_id used for another order"}},
		{"403", func(w http.ResponseWriter) {
			writeError(w, api.Errorf(http.StatusForbidden, api.CodeForbidden, "needs trade"), "")
		}, api.Error{Status: 403, Code: api.CodeForbidden, Message: "needs trade"}},
		{"a proxy's page", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte("<html>nginx</html>"))
		}, api.Error{Status: 404, Code: api.CodeNotFound}},
		{"a redirect is not followed", func(w http.ResponseWriter) {
			w.Header().Set("Location", "http://elsewhere.invalid/v1/orders")
			w.WriteHeader(http.StatusTemporaryRedirect)
		}, api.Error{Status: 307, Code: api.CodeInternal}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, clock.NewVirtual(t0), func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) { tc.answer(w) })
			_, _, err := f.client(t, nil).Submit(context.Background(), sellOrder("o-1"))
			var ae *api.Error
			if !errors.As(err, &ae) {
				t.Fatalf("%v is not an *api.Error", err)
			}
			if ae.Status != tc.want.Status || ae.Code != tc.want.Code || ae.Field != tc.want.Field ||
				(tc.want.Message != "" && ae.Message != tc.want.Message) {
				t.Fatalf("got %+v, want %+v", *ae, tc.want)
			}
			if strings.Contains(err.Error(), "nginx") {
				t.Fatalf("the error repeats a foreign body: %v", err)
			}
			if n := len(f.requests()); n != 1 {
				t.Fatalf("%d attempts, want 1", n)
			}
		})
	}
}

// TestClock_SkewedBeyondTheWindowIsRefused: the fake checks the window
// against its clock, so the client's timestamps come from its Clock.
func TestClock_SkewedBeyondTheWindowIsRefused(t *testing.T) {
	server := clock.NewVirtual(t0)
	f := newFake(t, server, func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) {})
	f.refusals = true
	skewed := clock.NewVirtual(t0.Add(api.Window + time.Second))
	_, err := f.client(t, func(c *Config) { c.Clock = skewed }).Get(context.Background(), "o-1")
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized || len(f.requests()) != 1 {
		t.Fatalf("%v after %d attempts; want one 401", err, len(f.requests()))
	}
}

// TestHealth_DegradedIsAnAnswer: a 503 with the checks is the health, not
// an error.
func TestHealth_DegradedIsAnAnswer(t *testing.T) {
	f := newFake(t, clock.NewVirtual(t0), func(_ int, w http.ResponseWriter, _ *http.Request, _ []byte) {
		writeJSON(w, http.StatusServiceUnavailable, api.Health{Status: "degraded", Checks: map[string]string{"nats": "disconnected"}})
	})
	h, err := f.client(t, nil).Health(context.Background())
	if err != nil || h.Status != "degraded" || h.Checks["nats"] != "disconnected" || len(f.requests()) != 1 {
		t.Fatalf("%+v, %v after %d attempts", h, err, len(f.requests()))
	}
}

// TestSecret_NeverPrinted: the config and client print, encode and log
// without the secret, and errors carry no secret, signature or nonce.
func TestSecret_NeverPrinted(t *testing.T) {
	var sig, nonce atomic.Value
	f := newFake(t, clock.NewVirtual(t0), func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) {
		sig.Store(r.Header.Get(api.HeaderSignature))
		nonce.Store(r.Header.Get(api.HeaderNonce))
		writeError(w, api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "no"), "")
	})
	cfg := Config{BaseURL: "http://user:hunter2@127.0.0.1:1", KeyID: testKeyID, Secret: []byte(testSecret)}
	c := f.client(t, nil)
	_, err := c.Get(context.Background(), "o-1")
	if err == nil {
		t.Fatal("want an error")
	}
	js, _ := json.Marshal(cfg)
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "cfg", cfg)
	var outputs []string
	for _, v := range []any{cfg, &cfg, c, *c, struct{ C Config }{cfg}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
			outputs = append(outputs, fmt.Sprintf(verb, v))
		}
	}
	outputs = append(outputs, string(js), logged.String(), err.Error())
	for _, out := range outputs {
		for _, secret := range []string{testSecret, hex.EncodeToString([]byte(testSecret)), "hunter2",
			sig.Load().(string), nonce.Load().(string)} {
			if strings.Contains(out, secret) {
				t.Errorf("%q shows a secret", out)
			}
		}
	}
	// New copies the secret: the caller may clear its own.
	clear(cfg.Secret)
	if _, err := New(Config{BaseURL: "127.0.0.1:8480", KeyID: "k", Secret: []byte("s")}); !errors.Is(err, ErrConfig) {
		t.Errorf("a URL without scheme: %v", err)
	}
}

// TestGet_ReplayedByNetHTTPIsRetriedWithAFreshNonce: net/http resends a
// GET by itself, same headers, when a reused connection drops after the
// write; the server refuses that copy as a nonce replay (401). The client
// tells it from a real 401 and retries with a fresh nonce.
func TestGet_ReplayedByNetHTTPIsRetriedWithAFreshNonce(t *testing.T) {
	f := newFake(t, clock.NewVirtual(t0), func(n int, w http.ResponseWriter, _ *http.Request, _ []byte) {
		if n == 1 {
			drop(t, w)
			return
		}
		writeJSON(w, http.StatusOK, order("o-1", "working"))
	})
	f.refusals = true
	c := f.client(t, nil)
	for i := range 2 { // the second runs on the first's idle connection
		if _, err := c.Get(context.Background(), "o-1"); err != nil {
			t.Fatalf("get %d: %v", i, err)
		}
	}
	reqs := f.requests()
	if len(reqs) != 4 {
		t.Fatalf("%d requests, want get; get, its replay by net/http, get", len(reqs))
	}
	if reqs[1].Header.Get(api.HeaderNonce) != reqs[2].Header.Get(api.HeaderNonce) {
		t.Fatal("net/http did not replay the request: the test no longer shows what it is for")
	}
	if reqs[3].Header.Get(api.HeaderNonce) == reqs[2].Header.Get(api.HeaderNonce) {
		t.Fatal("the retry reused the nonce")
	}
}
