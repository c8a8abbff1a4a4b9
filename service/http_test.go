package service

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/api"
	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/engine"
)

func TestHTTP_SubmitIsIdempotentByClientOrderID(t *testing.T) {
	r := newHTTPRig(t)
	req := r.request(t, http.MethodPost, "/v1/orders", keyATrade, httpOrder("c-1"))
	status, h, b := r.send(t, req)
	var first api.Order
	if _, aerr := httpDecode(t, status, h, b, &first); status != http.StatusCreated {
		t.Fatalf("submit: %d %v", status, aerr)
	}
	if h.Get("Location") != "/v1/orders/c-1" || first.ID != "c-1" || first.Client != "fund-a" || first.State != "accepted" {
		t.Fatalf("created: Location %q, %+v", h.Get("Location"), first)
	}
	if !bytes.Contains(b, []byte(`"quantity":"1"`)) {
		t.Fatalf("decimals are not strings: %s", b)
	}
	var again api.Order
	r.must(t, http.StatusOK, http.MethodPost, "/v1/orders", keyATrade, httpOrder("c-1"), &again)
	if again.ID != first.ID || again.Client != first.Client || !again.Start.Equal(first.Start) || !again.End.Equal(first.End) {
		t.Fatalf("the same request again: %+v, want the order made first %+v", again, first)
	}
	// The same request written otherwise: the default strategy spelt out,
	// the quantity with a trailing zero.
	same := httpOrder("c-1")
	same.Strategy, same.Quantity = "twap", httpDec("1.0")
	r.must(t, http.StatusOK, http.MethodPost, "/v1/orders", keyATrade, same, &again)
	if again.ID != first.ID || !again.Start.Equal(first.Start) {
		t.Fatalf("the same request written otherwise: %+v", again)
	}
	other := httpOrder("c-1")
	other.Quantity = httpDec("2")
	status, aerr := r.call(t, http.MethodPost, "/v1/orders", keyATrade, other, nil)
	wantError(t, status, aerr, http.StatusConflict, "", "was used for another order")
	status, aerr = r.call(t, http.MethodPost, "/v1/orders", keyBTrade, httpOrder("c-1"), nil)
	wantError(t, status, aerr, http.StatusConflict, "", "was used for another order")
	status, aerr = r.call(t, http.MethodPost, "/v1/orders", keyATrade, httpOrder("used-before"), nil)
	wantError(t, status, aerr, http.StatusConflict, "", "used before")
	if n := len(r.eng.Statuses()); n != 1 {
		t.Fatalf("%d orders in the engine, want 1", n)
	}
}

func TestHTTP_AuthFailuresAre401WithTheReasonAndSpendNoNonce(t *testing.T) {
	r := newHTTPRig(t)
	now := r.clk.Now()
	for _, tc := range []struct {
		name, why string
		mutate    func(req *http.Request) // the request as signed, spoilt
	}{
		{"no headers", "not signed", func(req *http.Request) {
			for _, h := range []string{api.HeaderKey, api.HeaderTimestamp, api.HeaderNonce, api.HeaderSignature} {
				req.Header.Del(h)
			}
		}},
		{"unknown key", "unknown key", func(req *http.Request) { req.Header.Set(api.HeaderKey, "nobody") }},
		{"bad signature", "bad signature", func(req *http.Request) {
			sig := []byte(req.Header.Get(api.HeaderSignature))
			sig[0] ^= 1
			req.Header.Set(api.HeaderSignature, string(sig))
		}},
		{"signed by another key's secret", "bad signature", func(req *http.Request) {
			httpSign(req, keyARead, httpSecret(keyATrade), nil, now, req.Header.Get(api.HeaderNonce))
		}},
		{"another path signed", "bad signature", func(req *http.Request) {
			req.URL.Path = "/v1/orders/x"
			defer func() { req.URL.Path = "/v1/orders" }()
			httpSign(req, keyARead, httpSecret(keyARead), nil, now, req.Header.Get(api.HeaderNonce))
		}},
		{"timestamp 31 s old", "timestamp outside", func(req *http.Request) {
			httpSign(req, keyARead, httpSecret(keyARead), nil, now.Add(-31*time.Second), req.Header.Get(api.HeaderNonce))
		}},
		{"timestamp 31 s ahead", "timestamp outside", func(req *http.Request) {
			httpSign(req, keyARead, httpSecret(keyARead), nil, now.Add(31*time.Second), req.Header.Get(api.HeaderNonce))
		}},
		{"short nonce", "16 to 64 characters", func(req *http.Request) {
			httpSign(req, keyARead, httpSecret(keyARead), nil, now, "short")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := r.request(t, http.MethodGet, "/v1/orders", keyARead, nil)
			nonce := req.Header.Get(api.HeaderNonce)
			tc.mutate(req)
			status, h, b := r.send(t, req)
			_, aerr := httpDecode(t, status, h, b, nil)
			wantError(t, status, aerr, http.StatusUnauthorized, "", tc.why)
			if aerr.Code != api.CodeUnauthorized {
				t.Fatalf("code %s", aerr.Code)
			}
			// The refused request spent nothing: its nonce still works.
			again, _ := http.NewRequest(http.MethodGet, r.srv.URL+"/v1/orders", nil)
			httpSign(again, keyARead, httpSecret(keyARead), nil, now, nonce)
			if status, _, b := r.send(t, again); status != http.StatusOK {
				t.Fatalf("the nonce of a refused request was spent: %d %s", status, b)
			}
		})
	}
	t.Run("nonce reused", func(t *testing.T) {
		req := r.request(t, http.MethodGet, "/v1/orders", keyARead, nil)
		if status, _, b := r.send(t, req); status != http.StatusOK {
			t.Fatalf("first use: %d %s", status, b)
		}
		replay := r.request(t, http.MethodGet, "/v1/orders", keyARead, nil)
		replay.Header = req.Header.Clone()
		status, h, b := r.send(t, replay)
		_, aerr := httpDecode(t, status, h, b, nil)
		wantError(t, status, aerr, http.StatusUnauthorized, "", "nonce seen before")
	})
	t.Run("a body other than the one signed", func(t *testing.T) {
		req := r.request(t, http.MethodPost, "/v1/orders", keyATrade, httpOrder("c-1"))
		tampered := httpOrder("c-1")
		tampered.Quantity = httpDec("100")
		req.Body = io.NopCloser(bytes.NewReader(httpBody(t, tampered)))
		req.ContentLength = -1
		status, h, b := r.send(t, req)
		_, aerr := httpDecode(t, status, h, b, nil)
		wantError(t, status, aerr, http.StatusUnauthorized, "", "bad signature")
	})
	if n := len(r.eng.Statuses()); n != 0 {
		t.Fatalf("%d orders after refused requests", n)
	}
}

func TestHTTP_ScopesAreEnforced(t *testing.T) {
	r := newHTTPRig(t)
	status, aerr := r.call(t, http.MethodPost, "/v1/orders", keyARead, httpOrder("c-1"), nil)
	wantError(t, status, aerr, http.StatusForbidden, "", "lacks the trade scope")
	status, aerr = r.call(t, http.MethodPost, "/v1/kill", keyATrade, api.KillRequest{Reason: "test"}, nil)
	wantError(t, status, aerr, http.StatusForbidden, "", "lacks the admin scope")
	if n := len(r.eng.Statuses()); n != 0 {
		t.Fatalf("%d orders after refused requests", n)
	}
	r.must(t, http.StatusCreated, http.MethodPost, "/v1/orders", keyATrade, httpOrder("c-1"), nil)
	status, aerr = r.call(t, http.MethodPost, "/v1/orders/c-1/pause", keyARead, nil, nil)
	wantError(t, status, aerr, http.StatusForbidden, "", "lacks the trade scope")
	r.must(t, http.StatusOK, http.MethodGet, "/v1/orders/c-1", keyARead, nil, nil)
	// Admin implies trade and read.
	r.must(t, http.StatusCreated, http.MethodPost, "/v1/orders", keyAdmin, httpOrder("ops-1"), nil)
	r.must(t, http.StatusOK, http.MethodGet, "/v1/orders/c-1", keyAdmin, nil, nil)
	var killed api.KillResult
	r.must(t, http.StatusOK, http.MethodPost, "/v1/kill", keyAdmin, api.KillRequest{Reason: "test"}, &killed)
	if len(killed.Cancelled) != 2 {
		t.Fatalf("the kill cancelled %d orders, want 2", len(killed.Cancelled))
	}
}

func TestHTTP_RateLimitIs429WithRetryAfter(t *testing.T) {
	r := newHTTPRig(t)
	for range 2 {
		r.must(t, http.StatusOK, http.MethodGet, "/v1/orders", keyASlow, nil, nil)
	}
	status, h, b := r.send(t, r.request(t, http.MethodGet, "/v1/orders", keyASlow, nil))
	_, aerr := httpDecode(t, status, h, b, nil)
	wantError(t, status, aerr, http.StatusTooManyRequests, "", "over its rate")
	if ra := h.Get("Retry-After"); ra != "1" {
		t.Fatalf("Retry-After %q, want 1", ra)
	}
	r.must(t, http.StatusOK, http.MethodGet, "/v1/orders", keyARead, nil, nil) // another key is not held back
	r.clk.Advance(time.Second)
	r.must(t, http.StatusOK, http.MethodGet, "/v1/orders", keyASlow, nil, nil)
}

func TestHTTP_BodyOverTheLimitIs413AndCreatesNothing(t *testing.T) {
	r := newHTTPRig(t)
	big := append(httpBody(t, httpOrder("c-big")), bytes.Repeat([]byte(" "), httpRigMaxBody)...)
	for _, key := range []string{keyATrade, ""} { // signed or not: the size comes first
		status, h, b := r.send(t, r.request(t, http.MethodPost, "/v1/orders", key, big))
		_, aerr := httpDecode(t, status, h, b, nil)
		wantError(t, status, aerr, http.StatusRequestEntityTooLarge, "", "over the limit")
		if aerr.Code != api.CodeTooLarge {
			t.Fatalf("code %s", aerr.Code)
		}
	}
	// Without a Content-Length, the body is cut at the limit all the same.
	req := r.request(t, http.MethodPost, "/v1/orders", keyATrade, big)
	req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(big)), -1
	if status, _, b := r.send(t, req); status != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked: %d %s", status, b)
	}
	if n := len(r.eng.Statuses()); n != 0 {
		t.Fatalf("%d orders after a body over the limit", n)
	}
	// Just at the limit is fine.
	exact := append(httpBody(t, httpOrder("c-big")), ' ')
	exact = append(exact, bytes.Repeat([]byte(" "), httpRigMaxBody-len(exact))...)
	r.must(t, http.StatusCreated, http.MethodPost, "/v1/orders", keyATrade, exact, nil)
}

func TestHTTP_BadInputIs400WithTheFieldAndCreatesNothing(t *testing.T) {
	r := newHTTPRig(t)
	good := string(httpBody(t, httpOrder("c-1")))
	with := func(edit string) string { return strings.Replace(good, `{`, `{`+edit+`,`, 1) }
	// set gives fields (name, JSON value; null removes it) new values.
	set := func(pairs ...string) string {
		var m map[string]any
		if err := json.Unmarshal([]byte(good), &m); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(pairs); i += 2 {
			var v any
			if err := json.Unmarshal([]byte(pairs[i+1]), &v); err != nil {
				t.Fatal(err)
			}
			if v == nil {
				delete(m, pairs[i])
			} else {
				m[pairs[i]] = v
			}
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	at := func(d time.Duration) string { return `"` + httpT0.Add(d).Format(time.RFC3339) + `"` }
	for _, tc := range []struct {
		name, body, field, what string
	}{
		{"unknown field", with(`"colour":"red"`), "colour", "unknown field"},
		{"field name in another case", with(`"QUANTITY":"1000"`), "QUANTITY", "case-sensitive"},
		{"field name in another case, alone", strings.Replace(good, `"quantity":"1"`, `"Quantity":1000`, 1), "Quantity", "did you mean \"quantity\""},
		{"field given twice", with(`"quantity":"1000"`), "quantity", "appears twice"},
		{"nested field given twice", strings.Replace(set("strategy", `"pov"`, "pov", `{"rate":"0.05"}`), `"rate":"0.05"`, `"rate":"0.05","rate":"0.5"`, 1), "pov.rate", "appears twice"},
		{"wrong type", set("side", `5`), "side", "want a string"},
		{"wrong type of decimal", set("quantity", `true`), "quantity", "want a decimal"},
		{"negative quantity", set("quantity", `"-1"`), "quantity", "must be > 0"},
		{"zero quantity", set("quantity", `0`), "quantity", "must be > 0"},
		{"decimal with an exponent", set("quantity", `"1e3"`), "quantity", "no exponent"},
		{"number with an exponent", strings.Replace(good, `"quantity":"1"`, `"quantity":1E3`, 1), "quantity", "no exponent"},
		{"unknown venue", set("venues", `["alpha","nowhere"]`), "venues", "unknown venue"},
		{"empty venue name", set("venues", `["alpha",""]`), "venues[1]", "empty venue name"},
		{"venue twice", set("venues", `["alpha","beta","alpha"]`), "venues[2]", "listed twice"},
		{"unknown symbol", set("symbol", `"ETHUSDT"`), "symbol", "unknown symbol"},
		{"end before start", set("start", at(time.Hour), "end", at(30*time.Minute), "duration", `null`), "end", "is not after the start"},
		{"end in the past", set("start", at(-time.Hour), "end", at(-30*time.Minute), "duration", `null`), "end", "in the past"},
		{"end and duration", set("end", at(time.Hour)), "end", "not both"},
		{"no end", set("duration", `null`), "end", "missing"},
		{"floor on a buy", set("side", `"buy"`, "floor_price", `"60000"`), "floor_price", "not a floor"},
		{"participation over 1", set("max_participation", `"1.5"`), "max_participation", "(0, 1]"},
		{"bad nested decimal", set("pov", `{"rate":"x"}`), "pov.rate", "want a decimal"},
		{"bad time", set("start", `"tomorrow"`), "start", "RFC 3339"},
		{"bad id", set("client_order_id", `"no spaces"`), "client_order_id", "letters, digits"},
		{"not an object", `[1,2]`, "", "want a JSON object"},
		{"two objects", good + good, "", "one JSON object only"},
		{"empty body", ``, "", "empty"},
		{"not JSON", `{"side":`, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, aerr := r.call(t, http.MethodPost, "/v1/orders", keyATrade, []byte(tc.body), nil)
			wantError(t, status, aerr, http.StatusBadRequest, tc.field, tc.what)
			if aerr.Code != api.CodeBadRequest {
				t.Fatalf("code %s", aerr.Code)
			}
		})
	}
	if sts := r.eng.Statuses(); len(sts) != 0 {
		t.Fatalf("bad requests created %d orders", len(sts))
	}
	// Nothing was held either: the id is free for a good request.
	r.must(t, http.StatusCreated, http.MethodPost, "/v1/orders", keyATrade, good, nil)
}

func TestHTTP_PauseResumeAmendCancel(t *testing.T) {
	r := newHTTPRig(t)
	r.must(t, http.StatusCreated, http.MethodPost, "/v1/orders", keyATrade, httpOrder("c-1"), nil)
	r.step(t, "c-1")
	var o api.Order
	r.must(t, http.StatusOK, http.MethodPost, "/v1/orders/c-1/pause", keyATrade, nil, &o)
	if o.State != "paused" {
		t.Fatalf("pause: %s", o.State)
	}
	var list api.OrderList
	r.must(t, http.StatusOK, http.MethodGet, "/v1/orders?state=paused", keyARead, nil, &list)
	if len(list.Orders) != 1 || list.Orders[0].ID != "c-1" {
		t.Fatalf("paused orders: %+v", list.Orders)
	}
	r.must(t, http.StatusOK, http.MethodGet, "/v1/orders?state=working", keyARead, nil, &list)
	if len(list.Orders) != 0 {
		t.Fatalf("working orders: %+v", list.Orders)
	}
	r.must(t, http.StatusOK, http.MethodPost, "/v1/orders/c-1/resume", keyATrade, "{}", &o)
	if o.State != "working" {
		t.Fatalf("resume: %s", o.State)
	}
	status, aerr := r.call(t, http.MethodPost, "/v1/orders/c-1/pause", keyATrade, `{"now":true}`, nil)
	wantError(t, status, aerr, http.StatusBadRequest, "now", "unknown field")

	band, end := httpDec("60"), r.clk.Now().Add(20*time.Minute)
	r.must(t, http.StatusOK, http.MethodPatch, "/v1/orders/c-1", keyATrade, api.Amendment{SlippageBandBps: &band, End: &end}, &o)
	if !o.SlippageBandBps.Equal(band) || !o.End.Equal(end) {
		t.Fatalf("amend: band %s end %s", o.SlippageBandBps, o.End)
	}
	ceiling := httpDec("70000")
	status, aerr = r.call(t, http.MethodPatch, "/v1/orders/c-1", keyATrade, api.Amendment{CeilingPrice: &ceiling}, nil)
	wantError(t, status, aerr, http.StatusBadRequest, "ceiling_price", "a sell order has a floor_price")
	status, aerr = r.call(t, http.MethodPatch, "/v1/orders/c-1", keyATrade, `{}`, nil)
	wantError(t, status, aerr, http.StatusBadRequest, "", "nothing to amend")
	status, aerr = r.call(t, http.MethodPatch, "/v1/orders/c-1", keyATrade, `{"slippage_band_bps":"0"}`, nil)
	wantError(t, status, aerr, http.StatusBadRequest, "slippage_band_bps", "basis points")

	r.must(t, http.StatusOK, http.MethodPost, "/v1/orders/c-1/cancel", keyATrade, nil, &o)
	if o.State != "cancelled" {
		t.Fatalf("cancel: %s", o.State)
	}
	status, aerr = r.call(t, http.MethodPost, "/v1/orders/c-1/pause", keyATrade, nil, nil)
	wantError(t, status, aerr, http.StatusConflict, "", "has ended")
	status, aerr = r.call(t, http.MethodPost, "/v1/orders/nope/cancel", keyATrade, nil, nil)
	wantError(t, status, aerr, http.StatusNotFound, "", "no order")
}

func TestHTTP_KillCancelsEveryClientsOrders(t *testing.T) {
	r := newHTTPRig(t)
	r.must(t, http.StatusCreated, http.MethodPost, "/v1/orders", keyATrade, httpOrder("a-1"), nil)
	r.must(t, http.StatusCreated, http.MethodPost, "/v1/orders", keyBTrade, httpOrder("b-1"), nil)
	r.step(t, "a-1")
	var res api.KillResult
	r.must(t, http.StatusOK, http.MethodPost, "/v1/kill", keyAdmin, nil, &res) // the body may be left out
	if len(res.Cancelled) != 2 {
		t.Fatalf("cancelled %d", len(res.Cancelled))
	}
	for _, o := range res.Cancelled {
		if o.State != "cancelled" || !strings.Contains(o.Reason, "kill switch by ops") {
			t.Fatalf("%s: %s %q", o.ID, o.State, o.Reason)
		}
	}
	var list api.OrderList
	r.must(t, http.StatusOK, http.MethodGet, "/v1/orders?state=cancelled", keyAdmin, nil, &list)
	if len(list.Orders) != 2 {
		t.Fatalf("admin lists %d cancelled orders", len(list.Orders))
	}
	status, aerr := r.call(t, http.MethodPost, "/v1/kill", keyAdmin, `{"reason":1}`, nil)
	wantError(t, status, aerr, http.StatusBadRequest, "reason", "want a string")
}

func TestHTTP_FillsAreListed(t *testing.T) {
	r := newHTTPRig(t)
	r.must(t, http.StatusCreated, http.MethodPost, "/v1/orders", keyATrade, httpOrder("c-1"), nil)
	var fl api.FillList
	r.must(t, http.StatusOK, http.MethodGet, "/v1/orders/c-1/fills", keyARead, nil, &fl)
	if fl.Fills == nil {
		t.Fatal("no fills is an empty list, not null")
	}
	for range 3 {
		r.step(t, "c-1")
	}
	status, h, b := r.send(t, r.request(t, http.MethodGet, "/v1/orders/c-1/fills", keyARead, nil))
	httpDecode(t, status, h, b, &fl)
	if len(fl.Fills) == 0 {
		t.Fatal("no fills after three slices")
	}
	sum := decimal.Zero
	for _, f := range fl.Fills {
		if f.ParentID != "c-1" || f.Schema != bus.FillSchema || f.Qty.Sign() <= 0 {
			t.Fatalf("fill %+v", f)
		}
		sum = sum.Add(f.Qty)
	}
	var o api.Order
	r.must(t, http.StatusOK, http.MethodGet, "/v1/orders/c-1", keyARead, nil, &o)
	if !o.FilledQuantity.Equal(sum) || o.Fills != len(fl.Fills) {
		t.Fatalf("the order has %s in %d fills, the list %s in %d", o.FilledQuantity, o.Fills, sum, len(fl.Fills))
	}
	if !bytes.Contains(b, []byte(`"qty":"`)) || !bytes.Contains(b, []byte(`"price":"`)) {
		t.Fatalf("decimals are not strings: %s", b)
	}
}

func TestHTTP_EventsStreamInOrderAndResumeFromLastEventID(t *testing.T) {
	r := newHTTPRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r.must(t, http.StatusCreated, http.MethodPost, "/v1/orders", keyATrade, httpOrder("c-1"), nil)
	r.step(t, "c-1")
	storedEvs := r.store.eventsOf("c-1")
	stored := len(storedEvs)
	if stored < 2 {
		t.Fatalf("%d events after a slice", stored)
	}
	last := storedEvs[stored-1].Seq

	// Live: the stored events, a heartbeat, new events as they come, and
	// the end after done.
	live := r.openEvents(t, ctx, keyARead, "c-1", "")
	first := live.events(t, func(ev bus.EventMsg) bool { return ev.Seq == last })
	checkSeqs(t, first, seqsOf(storedEvs))
	if first[0].Kind != bus.KindAccepted {
		t.Fatalf("the first event is %s", first[0].Kind)
	}
	r.wall.Advance(Heartbeat)
	if f, err := live.next(); err != nil || f.comment != "heartbeat" {
		t.Fatalf("after %s of quiet: %+v %v, want a heartbeat", Heartbeat, f, err)
	}
	r.must(t, http.StatusOK, http.MethodPost, "/v1/orders/c-1/pause", keyATrade, nil, nil)
	r.must(t, http.StatusOK, http.MethodPost, "/v1/orders/c-1/cancel", keyATrade, nil, nil)
	rest := live.events(t, nil) // to the end of the stream
	checkSeqs(t, rest, seqsFrom(r.store.eventsOf("c-1"), last+1))
	if len(rest) != 2 || rest[0].Kind != bus.KindPaused || rest[1].Kind != bus.KindDone {
		t.Fatalf("after the stored events: %+v", rest)
	}
	total := stored + 2

	// From the start again: everything, then the end.
	all := r.openEvents(t, ctx, keyARead, "c-1", "").events(t, nil)
	checkSeqs(t, all, seqsOf(r.store.eventsOf("c-1")))
	if len(all) != total {
		t.Fatalf("%d events replayed, want %d", len(all), total)
	}
	// Resumed after the second event: from the third on.
	second := all[1].Seq
	resumed := r.openEvents(t, ctx, keyARead, "c-1", strconv.FormatInt(second, 10)).events(t, nil)
	checkSeqs(t, resumed, seqsFrom(all, second+1))
	if len(resumed) != total-2 {
		t.Fatalf("%d events after the second, want %d", len(resumed), total-2)
	}

	status, h, b := r.send(t, func() *http.Request {
		req := r.request(t, http.MethodGet, "/v1/orders/c-1/events", keyARead, nil)
		req.Header.Set("Last-Event-ID", "two")
		return req
	}())
	_, aerr := httpDecode(t, status, h, b, nil)
	wantError(t, status, aerr, http.StatusBadRequest, "Last-Event-ID", "seq")
}

func TestHTTP_EventStreamEndsWhenTheClientGoesAway(t *testing.T) {
	r := newHTTPRig(t)
	r.must(t, http.StatusCreated, http.MethodPost, "/v1/orders", keyATrade, httpOrder("c-1"), nil)
	ctx, cancel := context.WithCancel(context.Background())
	s := r.openEvents(t, ctx, keyARead, "c-1", "")
	httpEventually(t, "the stream counted", func() bool {
		return strings.Contains(r.scrape(t), "blockexec_event_streams 1\n")
	})
	cancel()
	s.resp.Body.Close()
	httpEventually(t, "the stream closed", func() bool {
		return strings.Contains(r.scrape(t), "blockexec_event_streams 0\n")
	})
}

func TestHTTP_ClientsSeeAndTouchOnlyTheirOwnOrders(t *testing.T) {
	r := newHTTPRig(t)
	r.must(t, http.StatusCreated, http.MethodPost, "/v1/orders", keyATrade, httpOrder("c-1"), nil)
	band := httpDec("60")
	for _, c := range []struct {
		method, target string
		body           any
	}{
		{http.MethodGet, "/v1/orders/c-1", nil},
		{http.MethodGet, "/v1/orders/c-1/fills", nil},
		{http.MethodGet, "/v1/orders/c-1/events", nil},
		{http.MethodPost, "/v1/orders/c-1/pause", nil},
		{http.MethodPost, "/v1/orders/c-1/resume", nil},
		{http.MethodPost, "/v1/orders/c-1/cancel", nil},
		{http.MethodPatch, "/v1/orders/c-1", api.Amendment{SlippageBandBps: &band}},
	} {
		status, aerr := r.call(t, c.method, c.target, keyBTrade, c.body, nil)
		wantError(t, status, aerr, http.StatusNotFound, "", `no order "c-1"`)
	}
	var list api.OrderList
	r.must(t, http.StatusOK, http.MethodGet, "/v1/orders", keyBTrade, nil, &list)
	if len(list.Orders) != 0 {
		t.Fatalf("fund-b lists %d orders", len(list.Orders))
	}
	if st, _ := r.eng.Status("c-1"); st.State.Terminal() || st.State == engine.Paused {
		t.Fatalf("another client's requests moved the order to %s", st.State)
	}
	var o api.Order
	r.must(t, http.StatusOK, http.MethodGet, "/v1/orders/c-1", keyAdmin, nil, &o)
	if o.Client != "fund-a" {
		t.Fatalf("client %q", o.Client)
	}
	r.must(t, http.StatusOK, http.MethodGet, "/v1/orders", keyAdmin, nil, &list)
	if len(list.Orders) != 1 {
		t.Fatalf("admin lists %d orders", len(list.Orders))
	}
	r.must(t, http.StatusOK, http.MethodPost, "/v1/orders/c-1/pause", keyAdmin, nil, &o)
	if o.State != "paused" {
		t.Fatalf("admin pause: %s", o.State)
	}
}

func TestHTTP_HealthzAndMetricsNeedNoKey(t *testing.T) {
	r := newHTTPRig(t)
	req, _ := http.NewRequest(http.MethodGet, r.srv.URL+"/healthz", nil)
	var h api.Health
	status, hdr, b := r.send(t, req)
	if _, aerr := httpDecode(t, status, hdr, b, &h); status != http.StatusOK || h.Status != "ok" || h.Checks["engine"] != "ok" {
		t.Fatalf("healthz: %d %+v %v", status, h, aerr)
	}
	r.health.Store(api.Health{Status: "degraded", Checks: map[string]string{"engine": "ok", "bus": "disconnected"}})
	req, _ = http.NewRequest(http.MethodGet, r.srv.URL+"/healthz", nil)
	status, _, b = r.send(t, req)
	if err := json.Unmarshal(b, &h); err != nil || status != http.StatusServiceUnavailable || h.Status != "degraded" ||
		h.Checks["bus"] != "disconnected" {
		t.Fatalf("degraded healthz: %d %s", status, b)
	}

	before := r.scrape(t)
	if strings.Contains(before, "blockexec_fills_total{") {
		t.Fatalf("fills before any order:\n%s", before)
	}
	r.must(t, http.StatusCreated, http.MethodPost, "/v1/orders", keyATrade, httpOrder("c-1"), nil)
	for range 2 {
		r.step(t, "c-1")
	}
	st, _ := r.eng.Status("c-1")
	after := r.scrape(t)
	fills := 0.0
	for _, v := range []string{"alpha", "beta"} {
		fills += metricValue(t, after, `blockexec_fills_total{venue="`+v+`"}`)
	}
	if fills == 0 || int(fills) != st.Fills {
		t.Fatalf("fills counted %g, the order has %d:\n%s", fills, st.Fills, after)
	}
	for _, want := range []string{
		`blockexec_child_orders_total{venue="alpha"}`,
		`blockexec_venue_call_seconds_count{venue="alpha",method="book"}`,
		`blockexec_venue_call_seconds_count{venue="alpha",method="place"}`,
		`blockexec_venue_call_seconds_count{venue="beta",method="book"}`,
		`blockexec_order_events_total{kind="accepted"} 1`,
		`blockexec_http_requests_total{route="POST /v1/orders",code="201"} 1`,
		`blockexec_http_requests_total{route="GET /healthz",code="503"} 1`,
	} {
		if !strings.Contains(after, promLine(want)) {
			t.Errorf("no %s in:\n%s", want, after)
		}
	}
}

func TestHTTP_UnknownRoutesAreJSON404And405(t *testing.T) {
	r := newHTTPRig(t)
	for _, c := range []struct {
		method, target string
		status         int
		allow          string
	}{
		{http.MethodGet, "/v1/nothing", http.StatusNotFound, ""},
		{http.MethodGet, "/v1/orders/c-1/pause", http.StatusMethodNotAllowed, "POST"},
		{http.MethodDelete, "/v1/orders/c-1", http.StatusMethodNotAllowed, "GET, PATCH"},
		{http.MethodPut, "/v1/orders", http.StatusMethodNotAllowed, "POST, GET"},
	} {
		status, h, b := r.send(t, r.request(t, c.method, c.target, keyARead, nil))
		if _, aerr := httpDecode(t, status, h, b, nil); status != c.status || h.Get("Allow") != c.allow || aerr == nil {
			t.Errorf("%s %s: %d Allow %q %v; want %d Allow %q", c.method, c.target, status, h.Get("Allow"), aerr, c.status, c.allow)
		}
	}
}

func TestHTTP_QueryParametersAreChecked(t *testing.T) {
	r := newHTTPRig(t)
	for target, field := range map[string]string{
		"/v1/orders?stat=working":               "stat",
		"/v1/orders?state=working&state=paused": "state",
		"/v1/orders?state=sleeping":             "state",
		"/v1/orders/c-1?verbose=1":              "verbose",
	} {
		status, aerr := r.call(t, http.MethodGet, target, keyARead, nil, nil)
		wantError(t, status, aerr, http.StatusBadRequest, field, "")
	}
	// The query is part of what is signed.
	req := r.request(t, http.MethodGet, "/v1/orders?state=working", keyARead, nil)
	req.URL.RawQuery = "state=paused"
	if status, _, b := r.send(t, req); status != http.StatusUnauthorized {
		t.Fatalf("a query other than the one signed: %d %s", status, b)
	}
}

func TestHTTP_LogsNeitherHeadersNorBodies(t *testing.T) {
	r := newHTTPRig(t)
	req := r.request(t, http.MethodPost, "/v1/orders", keyATrade, httpOrder("c-secretive"))
	sig, nonce := req.Header.Get(api.HeaderSignature), req.Header.Get(api.HeaderNonce)
	r.send(t, req)
	bad := r.request(t, http.MethodGet, "/v1/orders", keyARead, nil)
	bad.Header.Set(api.HeaderKey, "pasted-secret-by-mistake")
	r.send(t, bad)
	logs := r.logs.String()
	for _, leak := range []string{sig, nonce, "pasted-secret-by-mistake", "slippage_band_bps", "c-secretive", string(httpSecret(keyATrade))} {
		if strings.Contains(logs, leak) {
			t.Errorf("the log holds %q:\n%s", leak, logs)
		}
	}
	for _, want := range []string{`"method":"POST"`, `"path":"/v1/orders"`, `"status":201`, `"key":"fa-trade"`, `"latency"`, `"status":401`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %s:\n%s", want, logs)
		}
	}
}

func TestHTTP_PanicIs500WithoutDetails(t *testing.T) {
	clk := clock.NewManual(httpT0)
	logs := &syncBuffer{}
	desk := NewDesk(panickyEngine{}, httpTWAP{}, newHTTPStore(), newHTTPStore(), newHTTPStore(), clk)
	srv := httptest.NewServer(NewHTTP(desk, httpKeyring(t, clk), HTTPConfig{Clock: clk, Log: zerolog.New(logs)}))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/orders", nil)
	httpSign(req, keyARead, httpSecret(keyARead), nil, clk.Now(), "http-test-nonce-panic-1")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	_, aerr := httpDecode(t, resp.StatusCode, resp.Header, b, nil)
	wantError(t, resp.StatusCode, aerr, http.StatusInternalServerError, "", "internal error (ref ")
	if strings.Contains(string(b), "secret-ish") || strings.Contains(string(b), "goroutine") {
		t.Fatalf("the answer leaks the panic: %s", b)
	}
	if l := logs.String(); !strings.Contains(l, "handler panicked") || strings.Contains(l, "secret-ish") {
		t.Fatalf("log: %s", l)
	}
}

func TestDesk_ADuplicateWaitsForTheFirstSubmissionsAnswer(t *testing.T) {
	clk := clock.NewManual(httpT0)
	g := &gatedEngine{entered: make(chan struct{}), release: make(chan error), status: map[string]engine.Status{}}
	store := newHTTPStore()
	d := NewDesk(g, httpTWAP{}, store, store, store, clk)
	c := Caller{Client: "fund-a"}
	type result struct {
		o       api.Order
		created bool
		aerr    *api.Error
	}
	submit := func(ctx context.Context) <-chan result {
		out := make(chan result, 1)
		go func() {
			o, created, aerr := d.Submit(ctx, c, httpOrder("c-1"))
			out <- result{o, created, aerr}
		}()
		return out
	}
	// A first submission the engine refuses: a duplicate meanwhile is
	// tried afresh once it is answered.
	first := submit(context.Background())
	<-g.entered
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if res := <-submit(gone); res.aerr == nil || res.aerr.Status != http.StatusServiceUnavailable {
		t.Fatalf("a duplicate while the first is accepted, whose caller left: %+v", res)
	}
	second := submit(context.Background())
	g.release <- &engine.SpecError{ParentID: "c-1", Field: "symbol", Msg: "no market"}
	if res := <-first; res.aerr == nil || res.aerr.Field != "symbol" {
		t.Fatalf("first: %+v", res)
	}
	<-g.entered // the duplicate, afresh
	g.release <- nil
	if res := <-second; res.aerr != nil || !res.created || res.o.ID != "c-1" {
		t.Fatalf("the duplicate tried afresh: %+v", res)
	}
	// An accepted one: a duplicate during acceptance gets the same order.
	third := make(chan result, 1)
	go func() {
		o, created, aerr := d.Submit(context.Background(), c, httpOrder("c-2"))
		third <- result{o, created, aerr}
	}()
	<-g.entered
	dup := make(chan result, 1)
	go func() {
		o, created, aerr := d.Submit(context.Background(), c, httpOrder("c-2"))
		dup <- result{o, created, aerr}
	}()
	g.release <- nil
	a, b := <-third, <-dup
	if a.aerr != nil || b.aerr != nil || a.o.ID != "c-2" || b.o.ID != "c-2" || a.created == b.created {
		t.Fatalf("first %+v, duplicate %+v: want one created, both order c-2", a, b)
	}
}

func TestRequestHash_SameRequestWrittenOtherwiseIsTheSame(t *testing.T) {
	start := time.Date(2024, 10, 8, 14, 0, 0, 0, time.UTC)
	end := start.Add(time.Hour)
	base := httpOrder("c-1")
	base.Duration, base.Start, base.End = "", &start, &end
	h0, err := requestHash(base)
	if err != nil {
		t.Fatal(err)
	}
	cet := time.FixedZone("CET", 3600)
	s2, e2 := start.In(cet), end.In(cet)
	alt := base
	alt.Strategy, alt.Start, alt.End = "twap", &s2, &e2
	if h, _ := requestHash(alt); h != h0 {
		t.Fatal("the same instants in another offset, with the default strategy spelt out, hash differently")
	}
	later := start.Add(time.Second)
	alt.Start = &later
	if h, _ := requestHash(alt); h == h0 {
		t.Fatal("another start hashes the same")
	}
	if base.Start != &start || base.Start.Location() != time.UTC {
		t.Fatal("requestHash changed the request it was given")
	}
}
