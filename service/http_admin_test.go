package service

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/blockexec/blockexec/api"
)

// countingBody gives left bytes of spaces and counts what is read of it.
type countingBody struct {
	left int64
	read atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.EOF
	}
	n := min(int64(len(p)), b.left)
	for i := range p[:n] {
		p[i] = ' '
	}
	b.left -= n
	b.read.Add(n)
	return int(n), nil
}

func (b *countingBody) Close() error { return nil }

func TestHTTP_BodyLimitIsEnforcedWhileReading(t *testing.T) {
	r := newHTTPRig(t)
	const size = 10 << 20
	body := &countingBody{left: size}
	req := httptest.NewRequest(http.MethodPost, "/v1/orders", body)
	req.ContentLength = -1 // no length to refuse it by: only reading tells
	httpSign(req, keyATrade, httpSecret(keyATrade), nil, r.clk.Now(), r.nonce())
	rec := httptest.NewRecorder()
	r.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("a body of %d bytes: %d %s", size, rec.Code, rec.Body)
	}
	if n := body.read.Load(); n > 64<<10 {
		t.Fatalf("read %d bytes of a %d-byte body to refuse it over a limit of %d", n, size, httpRigMaxBody)
	}
}

// healthz answers GET /healthz, unsigned.
func (r *httpRig) healthz(t *testing.T) (int, api.Health) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.srv.URL+"/healthz", nil)
	status, h, b := r.send(t, req)
	var out api.Health
	if status == http.StatusOK {
		httpDecode(t, status, h, b, &out)
	}
	return status, out
}

func TestHTTP_KillSwitchLatchesUntilAnAdminReleasesIt(t *testing.T) {
	r := newHTTPRig(t)
	if status, h := r.healthz(t); status != http.StatusOK || h.Checks["kill_switch"] != "released" {
		t.Fatalf("healthz before the kill: %d %+v", status, h)
	}
	var res api.KillResult
	r.must(t, http.StatusOK, http.MethodPost, "/v1/kill", keyAdmin, api.KillRequest{Reason: "desk closing"}, &res)
	if !res.KillSwitch.Engaged || res.KillSwitch.Reason != "desk closing" || res.KillSwitch.Since == nil {
		t.Fatalf("the kill's switch: %+v", res.KillSwitch)
	}
	status, aerr := r.call(t, http.MethodPost, "/v1/orders", keyATrade, httpOrder("c-1"), nil)
	wantError(t, status, aerr, http.StatusServiceUnavailable, "", "kill switch")
	if aerr.Code != api.CodeKilled {
		t.Fatalf("a submit while killed: code %s", aerr.Code)
	}
	// Engaged is shown, and is no fault; its reason is not for an unsigned
	// route.
	status, h := r.healthz(t)
	if status != http.StatusOK || h.Status != "ok" || h.Checks["kill_switch"] != "engaged since 2024-10-08T14:00:00Z" {
		t.Fatalf("healthz while killed: %d %+v", status, h)
	}
	for _, v := range h.Checks {
		if strings.Contains(v, "desk closing") {
			t.Fatalf("healthz shows the kill's reason: %+v", h)
		}
	}

	status, aerr = r.call(t, http.MethodDelete, "/v1/kill", keyATrade, nil, nil)
	wantError(t, status, aerr, http.StatusForbidden, "", "admin")
	status, aerr = r.call(t, http.MethodDelete, "/v1/kill", keyAdmin, `{"reason":"x"}`, nil)
	wantError(t, status, aerr, http.StatusBadRequest, "reason", "unknown field")
	var k api.KillState
	r.must(t, http.StatusOK, http.MethodDelete, "/v1/kill", keyAdmin, nil, &k)
	if k.Engaged || k.Since != nil {
		t.Fatalf("released: %+v", k)
	}
	r.must(t, http.StatusOK, http.MethodDelete, "/v1/kill", keyAdmin, `{}`, &k) // again: no change, no error
	r.must(t, http.StatusCreated, http.MethodPost, "/v1/orders", keyATrade, httpOrder("c-1"), nil)
	if status, h := r.healthz(t); status != http.StatusOK || h.Checks["kill_switch"] != "released" {
		t.Fatalf("healthz after the release: %d %+v", status, h)
	}
}

func TestHTTP_MetricsServedElsewhereAreNotOnTheAPI(t *testing.T) {
	r := newHTTPRigWith(t, httpRigOptions{config: func(c *HTTPConfig) { c.SeparateMetrics = true }})
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		req, _ := http.NewRequest(method, r.srv.URL+"/metrics", nil)
		status, h, b := r.send(t, req)
		_, aerr := httpDecode(t, status, h, b, nil)
		wantError(t, status, aerr, http.StatusNotFound, "", "no such route")
	}
	if status, _ := r.healthz(t); status != http.StatusOK {
		t.Fatalf("healthz: %d", status)
	}
}
