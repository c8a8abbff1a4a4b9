package service

import (
	"context"
	"net/http"
	"time"

	"github.com/blockexec/blockexec/api"
)

// submit is POST /v1/orders: 201 with the new order, or 200 with the one
// the same client_order_id and body made before.
func (s *server) submit(w http.ResponseWriter, rq *request) (int, any, *api.Error) {
	var req api.OrderRequest
	if aerr := Decode(rq.body, s.max, &req); aerr != nil {
		return 0, nil, aerr
	}
	o, created, aerr := s.desk.Submit(rq.r.Context(), rq.caller, req)
	switch {
	case aerr != nil:
		return 0, nil, aerr
	case created:
		w.Header().Set("Location", "/v1/orders/"+o.ID)
		return http.StatusCreated, o, nil
	}
	return http.StatusOK, o, nil
}

// list is GET /v1/orders?state=.
func (s *server) list(_ http.ResponseWriter, rq *request) (int, any, *api.Error) {
	l, aerr := s.desk.List(rq.caller, rq.r.URL.Query().Get("state"))
	return http.StatusOK, l, aerr
}

// get is GET /v1/orders/{id}.
func (s *server) get(_ http.ResponseWriter, rq *request) (int, any, *api.Error) {
	o, aerr := s.desk.Get(rq.caller, rq.r.PathValue("id"))
	return http.StatusOK, o, aerr
}

// amend is PATCH /v1/orders/{id}.
func (s *server) amend(_ http.ResponseWriter, rq *request) (int, any, *api.Error) {
	var a api.Amendment
	if aerr := Decode(rq.body, s.max, &a); aerr != nil {
		return 0, nil, aerr
	}
	o, aerr := s.desk.Amend(rq.r.Context(), rq.caller, rq.r.PathValue("id"), a)
	return http.StatusOK, o, aerr
}

// pause, resume and cancel are POST /v1/orders/{id}/…, with no body or {}.
func (s *server) pause(_ http.ResponseWriter, rq *request) (int, any, *api.Error) {
	return s.act(rq, s.desk.Pause)
}

func (s *server) resume(_ http.ResponseWriter, rq *request) (int, any, *api.Error) {
	return s.act(rq, s.desk.Resume)
}

func (s *server) cancel(_ http.ResponseWriter, rq *request) (int, any, *api.Error) {
	return s.act(rq, s.desk.Cancel)
}

func (s *server) act(rq *request, fn func(context.Context, Caller, string) (api.Order, *api.Error)) (int, any, *api.Error) {
	var none struct{}
	if aerr := decodeOptional(rq.body, s.max, &none); aerr != nil {
		return 0, nil, aerr
	}
	o, aerr := fn(rq.r.Context(), rq.caller, rq.r.PathValue("id"))
	return http.StatusOK, o, aerr
}

// fills is GET /v1/orders/{id}/fills.
func (s *server) fills(_ http.ResponseWriter, rq *request) (int, any, *api.Error) {
	l, aerr := s.desk.FillsOf(rq.r.Context(), rq.caller, rq.r.PathValue("id"))
	return http.StatusOK, l, aerr
}

// kill is POST /v1/kill; the body (a reason) may be left out.
func (s *server) kill(_ http.ResponseWriter, rq *request) (int, any, *api.Error) {
	var k api.KillRequest
	if aerr := decodeOptional(rq.body, s.max, &k); aerr != nil {
		return 0, nil, aerr
	}
	res, aerr := s.desk.Kill(rq.r.Context(), rq.caller, k.Reason)
	return http.StatusOK, res, aerr
}

// releaseKill is DELETE /v1/kill, with no body or {}: orders may be
// submitted again; those the kill cancelled stay cancelled.
func (s *server) releaseKill(_ http.ResponseWriter, rq *request) (int, any, *api.Error) {
	var none struct{}
	if aerr := decodeOptional(rq.body, s.max, &none); aerr != nil {
		return 0, nil, aerr
	}
	k, aerr := s.desk.ReleaseKill(rq.r.Context(), rq.caller)
	return http.StatusOK, k, aerr
}

// healthz is GET /healthz: 200 when ok, 503 when degraded. An engaged
// kill switch is shown but is no fault: the desk chose it.
func (s *server) healthz(_ http.ResponseWriter, _ *request) (int, any, *api.Error) {
	h := api.Health{Status: "ok"}
	if s.health != nil {
		h = s.health()
	}
	checks := make(map[string]string, len(h.Checks)+1) // the reporter's map stays its own
	for k, v := range h.Checks {
		checks[k] = v
	}
	checks["kill_switch"] = killCheck(s.desk.KillState())
	h.Checks = checks
	if h.Status != "ok" {
		return http.StatusServiceUnavailable, h, nil
	}
	return http.StatusOK, h, nil
}

// killCheck is the kill switch as /healthz shows it, without the reason:
// /healthz is not signed.
func killCheck(k api.KillState) string {
	switch {
	case !k.Engaged:
		return "released"
	case k.Since != nil:
		return "engaged since " + k.Since.UTC().Format(time.RFC3339)
	}
	return "engaged"
}
