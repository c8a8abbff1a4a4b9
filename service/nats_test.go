package service

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/blockexec/blockexec/api"
	"github.com/blockexec/blockexec/bus"
)

func TestNATS_SubmitIsIdempotentByClientOrderID(t *testing.T) {
	r := newNATSRig(t)
	req := natsOrder("a-1")
	body, _ := json.Marshal(req)

	submit := func() (api.Order, string) {
		reply := r.send(t, SignedNATSMsg(NATSSubmit, natsTrader, natsSecret(natsTrader), body, r.clk.Now(), r.nonce()))
		if aerr := NATSReplyError(reply); aerr != nil {
			t.Fatalf("submit: %v", aerr)
		}
		var o api.Order
		if err := json.Unmarshal(reply.Data, &o); err != nil {
			t.Fatal(err)
		}
		return o, reply.Header.Get(NATSHeaderCreated)
	}
	first, created := submit()
	if created != "true" || first.ID != "a-1" || first.Client != "fund-a" || !first.Quantity.Equal(natsDecimal("2")) {
		t.Fatalf("first submit: created %q, %+v", created, first)
	}
	again, created := submit()
	if created != "false" || again.ID != first.ID || !again.Start.Equal(first.Start) {
		t.Fatalf("resubmit: created %q, %+v", created, again)
	}

	other := natsOrder("a-1")
	other.Quantity = natsDecimal("3")
	natsWantError(t, r.call(t, NATSSubmit, natsTrader, other, nil), http.StatusConflict, "", "used for another order")
	// The same body from another client is another order, not this one.
	natsWantError(t, r.call(t, NATSSubmit, natsOther, req, nil), http.StatusConflict, "", "used for another order")
	natsWantError(t, r.call(t, NATSSubmit, natsTrader, natsOrder("used-before"), nil), http.StatusConflict, "",
		"used before")

	// Events are not served by the API: they are on the stream. The
	// accepted event comes with the order's first slice, which the serving
	// loop runs on its own: wait for it (bounded).
	for i := 0; ; i++ {
		seen, err := bus.ParentSeen(context.Background(), r.js, "a-1")
		if err == nil && seen {
			break
		}
		if i == 2000 {
			t.Fatalf("no accepted event on %s: %v", bus.EventSubjectFor("a-1", bus.KindAccepted), err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// holdSubmit sends a submit of id whose id check waits (a slow ledger)
// until release is closed, and returns once it is waiting there: a test
// that went on before would pass vacuously. slow has the submit's answer.
func holdSubmit(t *testing.T, r *natsRig, id string) (release chan struct{}, slow chan error) {
	t.Helper()
	release = make(chan struct{})
	r.store.mu.Lock()
	r.store.hold = map[string]chan struct{}{id: release}
	r.store.held = make(chan string, 1)
	r.store.mu.Unlock()
	slow = make(chan error, 1)
	go func() { slow <- r.call(t, NATSSubmit, natsTrader, natsOrder(id), nil) }()
	select {
	case <-r.store.held:
	case <-time.After(5 * time.Second):
		t.Fatalf("the submit of %s never reached its id check", id)
	}
	return release, slow
}

// TestNATS_ASlowRequestDoesNotHoldUpTheOthers: a submit whose id check
// waits on a slow ledger leaves the endpoint free for the next submit.
func TestNATS_ASlowRequestDoesNotHoldUpTheOthers(t *testing.T) {
	r := newNATSRig(t)
	release, slow := holdSubmit(t, r, "slow-1")
	var o api.Order
	r.must(t, NATSSubmit, natsTrader, natsOrder("fast-1"), &o)
	if o.ID != "fast-1" {
		t.Fatalf("fast submit: %+v", o)
	}
	select {
	case err := <-slow:
		t.Fatalf("the slow submit ended before it was released: %v", err)
	default:
	}
	close(release)
	if err := <-slow; err != nil {
		t.Fatalf("slow submit: %v", err)
	}
}

// TestNATS_StopWaitsForTheRequestsBeingAnswered: a request in hand when
// the service stops is answered before Stop returns, so nothing answers on
// a connection, or asks an engine, being closed after it.
func TestNATS_StopWaitsForTheRequestsBeingAnswered(t *testing.T) {
	r := newNATSRig(t)
	release, slow := holdSubmit(t, r, "slow-1")
	stopped := make(chan error, 1)
	go func() { stopped <- r.svc.Stop() }()
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) with a request still being answered", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := <-slow; err != nil {
		t.Fatalf("the request in hand at Stop: %v", err)
	}
}

func TestNATS_ListGetFills(t *testing.T) {
	r := newNATSRig(t)
	r.must(t, NATSSubmit, natsTrader, natsOrder("a-1"), nil)
	r.must(t, NATSSubmit, natsOther, natsOrder("b-1"), nil)
	r.step(t, "a-1")
	r.step(t, "a-1")

	var list api.OrderList
	r.must(t, NATSList, natsReader, nil, &list) // an empty body lists every state
	if len(list.Orders) != 1 || list.Orders[0].ID != "a-1" {
		t.Fatalf("fund-a lists %+v, want its a-1 only", list.Orders)
	}
	r.must(t, NATSList, natsReader, NATSListRequest{State: "working"}, &list)
	if len(list.Orders) != 1 {
		t.Fatalf("working: %d orders", len(list.Orders))
	}
	r.must(t, NATSList, natsReader, NATSListRequest{State: "paused"}, &list)
	if len(list.Orders) != 0 {
		t.Fatalf("paused: %d orders", len(list.Orders))
	}
	r.must(t, NATSList, natsAdmin, NATSListRequest{}, &list)
	if len(list.Orders) != 2 {
		t.Fatalf("an admin lists %d orders, want both clients'", len(list.Orders))
	}

	var o api.Order
	r.must(t, NATSGet, natsReader, NATSOrderRef{ID: "a-1"}, &o)
	if o.ID != "a-1" || o.State != "working" || o.FilledQuantity.Sign() <= 0 || o.Fills == 0 {
		t.Fatalf("get after two slices: %+v", o)
	}
	natsWantError(t, r.call(t, NATSGet, natsOther, NATSOrderRef{ID: "a-1"}, nil), http.StatusNotFound, "", `no order "a-1"`)
	natsWantError(t, r.call(t, NATSGet, natsReader, NATSOrderRef{ID: "nope"}, nil), http.StatusNotFound, "", "no order")

	var fills api.FillList
	r.must(t, NATSFills, natsReader, NATSOrderRef{ID: "a-1"}, &fills)
	if len(fills.Fills) != o.Fills {
		t.Fatalf("%d fills listed, the order counts %d", len(fills.Fills), o.Fills)
	}
	sum := natsDecimal("0")
	for _, f := range fills.Fills {
		if f.ParentID != "a-1" || f.Schema != bus.FillSchema {
			t.Fatalf("fill %+v", f)
		}
		sum = sum.Add(f.Qty)
	}
	if !sum.Equal(o.FilledQuantity) {
		t.Fatalf("fills sum to %s, the order filled %s", sum, o.FilledQuantity)
	}
	natsWantError(t, r.call(t, NATSFills, natsOther, NATSOrderRef{ID: "a-1"}, nil), http.StatusNotFound, "", "no order")
}

func TestNATS_PauseResumeAmendCancel(t *testing.T) {
	r := newNATSRig(t)
	r.must(t, NATSSubmit, natsTrader, natsOrder("a-1"), nil)
	r.step(t, "a-1")
	ref := NATSOrderRef{ID: "a-1"}

	var o api.Order
	r.must(t, NATSPause, natsTrader, ref, &o)
	if o.State != "paused" {
		t.Fatalf("pause: %s", o.State)
	}
	r.must(t, NATSResume, natsTrader, ref, &o)
	if o.State != "working" {
		t.Fatalf("resume: %s", o.State)
	}
	end := r.clk.Now().Add(30 * time.Minute)
	band := natsDecimal("80")
	r.must(t, NATSAmend, natsTrader, NATSAmendRequest{ID: "a-1", Amendment: api.Amendment{SlippageBandBps: &band, End: &end}}, &o)
	if !o.SlippageBandBps.Equal(band) || !o.End.Equal(end) {
		t.Fatalf("amend: band %s, end %s", o.SlippageBandBps, o.End)
	}
	for _, c := range []struct {
		name, body, field, what string
	}{
		{"a ceiling on a sell", `{"id": "a-1", "amendment": {"ceiling_price": "70000"}}`, "amendment.ceiling_price", "not a ceiling"},
		{"nothing to amend", `{"id": "a-1", "amendment": {}}`, "amendment", "nothing to amend"},
		{"a band of zero", `{"id": "a-1", "amendment": {"slippage_band_bps": "0"}}`, "amendment.slippage_band_bps", "basis points"},
		{"a participation over 1", `{"id": "a-1", "amendment": {"max_participation": "1.5"}}`, "amendment.max_participation", "(0, 1]"},
		{"a floor that is not a decimal", `{"id": "a-1", "amendment": {"floor_price": "lots"}}`, "amendment.floor_price", "decimal"},
		{"no id", `{"amendment": {"slippage_band_bps": "10"}}`, "id", "missing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			natsWantError(t, r.call(t, NATSAmend, natsTrader, []byte(c.body), nil), http.StatusBadRequest, c.field, c.what)
		})
	}
	natsWantError(t, r.call(t, NATSPause, natsOther, ref, nil), http.StatusNotFound, "", "no order")

	r.must(t, NATSCancel, natsTrader, ref, &o)
	if o.State != "cancelled" {
		t.Fatalf("cancel: %s", o.State)
	}
	natsWantError(t, r.call(t, NATSPause, natsTrader, ref, nil), http.StatusConflict, "", "ended")
	natsWantError(t, r.call(t, NATSResume, natsTrader, NATSOrderRef{ID: "nope"}, nil), http.StatusNotFound, "", "no order")
}

func TestNATS_KillNeedsAdmin(t *testing.T) {
	r := newNATSRig(t)
	r.must(t, NATSSubmit, natsTrader, natsOrder("a-1"), nil)
	r.must(t, NATSSubmit, natsOther, natsOrder("b-1"), nil)

	natsWantError(t, r.call(t, NATSKill, natsTrader, api.KillRequest{Reason: "panic"}, nil), http.StatusForbidden, "", "admin")
	var res api.KillResult
	r.must(t, NATSKill, natsAdmin, api.KillRequest{Reason: "drill"}, &res)
	var ids []string
	for _, o := range res.Cancelled {
		if o.State != "cancelled" {
			t.Fatalf("%s is %s after the kill", o.ID, o.State)
		}
		ids = append(ids, o.ID)
	}
	sort.Strings(ids)
	if strings.Join(ids, ",") != "a-1,b-1" {
		t.Fatalf("the kill cancelled %v", ids)
	}
	// Admin implies the other scopes.
	var o api.Order
	r.must(t, NATSGet, natsAdmin, NATSOrderRef{ID: "b-1"}, &o)
	if o.State != "cancelled" || o.Client != "fund-b" {
		t.Fatalf("b-1 after the kill: %+v", o)
	}
	// The switch stays engaged: nothing new until an admin releases it.
	if !res.KillSwitch.Engaged || res.KillSwitch.Reason != "drill" || res.KillSwitch.Since == nil {
		t.Fatalf("kill switch after the kill: %+v", res.KillSwitch)
	}
	aerr := natsWantError(t, r.call(t, NATSSubmit, natsTrader, natsOrder("a-2"), nil), http.StatusServiceUnavailable, "", "kill switch")
	if aerr.Code != api.CodeKilled {
		t.Fatalf("code %s, want %s", aerr.Code, api.CodeKilled)
	}
	natsWantError(t, r.call(t, NATSKillRelease, natsTrader, nil, nil), http.StatusForbidden, "", "admin")
	var k api.KillState
	r.must(t, NATSKillRelease, natsAdmin, nil, &k)
	if k.Engaged {
		t.Fatalf("released, still %+v", k)
	}
	r.must(t, NATSSubmit, natsTrader, natsOrder("a-2"), nil)
}

func TestNATS_ScopesAreEnforced(t *testing.T) {
	r := newNATSRig(t)
	r.must(t, NATSSubmit, natsTrader, natsOrder("a-1"), nil)
	for _, c := range []struct {
		name, subject, key string
		body               any
		scope              string
	}{
		{"a read key submits", NATSSubmit, natsReader, natsOrder("a-2"), "trade"},
		{"a read key pauses", NATSPause, natsReader, NATSOrderRef{ID: "a-1"}, "trade"},
		{"a read key cancels", NATSCancel, natsReader, NATSOrderRef{ID: "a-1"}, "trade"},
		{"a read key amends", NATSAmend, natsReader, NATSAmendRequest{ID: "a-1"}, "trade"},
		{"a trade key without read gets", NATSGet, natsOnlyTr, NATSOrderRef{ID: "a-1"}, "read"},
		{"a trade key without read lists", NATSList, natsOnlyTr, NATSListRequest{}, "read"},
		{"a read key kills", NATSKill, natsReader, api.KillRequest{}, "admin"},
	} {
		t.Run(c.name, func(t *testing.T) {
			natsWantError(t, r.call(t, c.subject, c.key, c.body, nil), http.StatusForbidden, "", "lacks the "+c.scope+" scope")
		})
	}
	var o api.Order
	r.must(t, NATSGet, natsReader, NATSOrderRef{ID: "a-1"}, &o)
	if o.State != "working" && o.State != "accepted" {
		t.Fatalf("a-1 is %s after refused requests", o.State)
	}
	var list api.OrderList
	r.must(t, NATSList, natsReader, nil, &list)
	if len(list.Orders) != 1 {
		t.Fatalf("%d orders: a refused submit created one", len(list.Orders))
	}
}

func TestNATS_AuthFailuresSayWhy(t *testing.T) {
	r := newNATSRig(t)
	body := []byte(`{"id": "a-1"}`)
	signed := func(subject, key string, secret []byte, at time.Time, nonce string) *nats.Msg {
		return SignedNATSMsg(subject, key, secret, body, at, nonce)
	}
	for _, c := range []struct {
		name string
		msg  func() *nats.Msg
		what string
	}{
		{"unsigned", func() *nats.Msg { m := nats.NewMsg(NATSGet); m.Data = body; return m }, "not signed"},
		{"no signature", func() *nats.Msg {
			m := signed(NATSGet, natsReader, natsSecret(natsReader), r.clk.Now(), r.nonce())
			m.Header.Del(api.HeaderSignature)
			return m
		}, "not signed"},
		{"unknown key", func() *nats.Msg {
			return signed(NATSGet, "fund-z", natsSecret(natsReader), r.clk.Now(), r.nonce())
		}, `unknown key "fund-z"`},
		{"another key's secret", func() *nats.Msg {
			return signed(NATSGet, natsReader, natsSecret(natsTrader), r.clk.Now(), r.nonce())
		}, "bad signature"},
		{"signed for another subject", func() *nats.Msg {
			m := signed(NATSGet, natsTrader, natsSecret(natsTrader), r.clk.Now(), r.nonce())
			m.Subject = NATSCancel
			return m
		}, "bad signature"},
		{"body changed after signing", func() *nats.Msg {
			m := signed(NATSGet, natsReader, natsSecret(natsReader), r.clk.Now(), r.nonce())
			m.Data = []byte(`{"id": "a-2"}`)
			return m
		}, "bad signature"},
		{"stale timestamp", func() *nats.Msg {
			return signed(NATSGet, natsReader, natsSecret(natsReader), r.clk.Now().Add(-api.Window-time.Second), r.nonce())
		}, "timestamp outside"},
		{"timestamp ahead", func() *nats.Msg {
			return signed(NATSGet, natsReader, natsSecret(natsReader), r.clk.Now().Add(api.Window+time.Second), r.nonce())
		}, "timestamp outside"},
		{"timestamp in seconds", func() *nats.Msg {
			m := signed(NATSGet, natsReader, natsSecret(natsReader), r.clk.Now(), r.nonce())
			m.Header.Set(api.HeaderTimestamp, "soon")
			return m
		}, "Unix milliseconds"},
		{"short nonce", func() *nats.Msg {
			return signed(NATSGet, natsReader, natsSecret(natsReader), r.clk.Now(), "abc")
		}, "16 to 64"},
	} {
		t.Run(c.name, func(t *testing.T) {
			reply := r.send(t, c.msg())
			aerr := NATSReplyError(reply)
			if aerr == nil || aerr.Status != http.StatusUnauthorized || aerr.Code != api.CodeUnauthorized ||
				!strings.Contains(aerr.Message, c.what) {
				t.Fatalf("got %v (%+v), want 401 saying %q", aerr, aerr, c.what)
			}
			if code, desc := reply.Header.Get(micro.ErrorCodeHeader), reply.Header.Get(micro.ErrorHeader); code != "401" ||
				desc != api.CodeUnauthorized {
				t.Fatalf("%s %q, %s %q", micro.ErrorCodeHeader, code, micro.ErrorHeader, desc)
			}
		})
	}

	t.Run("reused nonce", func(t *testing.T) {
		m := SignedNATSMsg(NATSList, natsReader, natsSecret(natsReader), nil, r.clk.Now(), "replayed-nonce-0001")
		if aerr := NATSReplyError(r.send(t, m)); aerr != nil {
			t.Fatalf("first use: %v", aerr)
		}
		again := SignedNATSMsg(NATSList, natsReader, natsSecret(natsReader), nil, r.clk.Now(), "replayed-nonce-0001")
		aerr := NATSReplyError(r.send(t, again))
		if aerr == nil || aerr.Status != http.StatusUnauthorized || !strings.Contains(aerr.Message, "nonce seen before") {
			t.Fatalf("replay: %v", aerr)
		}
	})

	t.Run("header names in another case", func(t *testing.T) {
		m := SignedNATSMsg(NATSList, natsReader, natsSecret(natsReader), nil, r.clk.Now(), r.nonce())
		lower := nats.Header{}
		for k, v := range m.Header {
			lower[strings.ToLower(k)] = v
		}
		m.Header = lower
		if aerr := NATSReplyError(r.send(t, m)); aerr != nil {
			t.Fatalf("lower-case headers: %v", aerr)
		}
	})

	t.Run("rate limited", func(t *testing.T) {
		r.must(t, NATSList, natsSlow, nil, nil) // the burst of one
		reply := r.send(t, SignedNATSMsg(NATSList, natsSlow, natsSecret(natsSlow), nil, r.clk.Now(), r.nonce()))
		aerr := NATSReplyError(reply)
		if aerr == nil || aerr.Status != http.StatusTooManyRequests || aerr.Code != api.CodeRateLimited {
			t.Fatalf("over the rate: %v", aerr)
		}
		if got := reply.Header.Get(NATSHeaderRetryAfter); got != "2" { // 0.5 a second
			t.Fatalf("Retry-After %q, want 2", got)
		}
		r.clk.Advance(2 * time.Second)
		r.must(t, NATSList, natsSlow, nil, nil)
	})
	natsLogsSayNothingOfTheRequests(t, r, "fund-z", "a-2", "replayed-nonce")
}

// natsLogsSayNothingOfTheRequests checks the service logged its requests
// without a header value, a body or a signature.
func natsLogsSayNothingOfTheRequests(t *testing.T, r *natsRig, also ...string) {
	t.Helper()
	logs := r.logs.String()
	if !strings.Contains(logs, "nats api") {
		t.Fatal("nothing logged: the check would pass for nothing")
	}
	for _, s := range append([]string{"test-secret", "test-nonce", natsTrader, natsReader, natsSlow}, also...) {
		if strings.Contains(logs, s) {
			t.Fatalf("the log has %q:\n%s", s, logs)
		}
	}
	if sig := regexp.MustCompile(`[0-9a-f]{64}`).FindString(logs); sig != "" {
		t.Fatalf("the log has a signature %s", sig)
	}
}

func TestNATS_BadInputIs400WithTheField(t *testing.T) {
	r := newNATSRig(t)
	start := natsT0.Add(time.Hour).Format(time.RFC3339)
	for _, c := range []struct {
		name, subject, body, field, what string
	}{
		{"unknown field", NATSSubmit, `{"client_order_id": "x-1", "colour": "red"}`, "colour", "unknown field"},
		{"negative quantity", NATSSubmit, natsOrderJSON(`"quantity": "-1"`), "quantity", "> 0"},
		{"zero quantity", NATSSubmit, natsOrderJSON(`"quantity": "0"`), "quantity", "> 0"},
		{"quantity of the wrong type", NATSSubmit, natsOrderJSON(`"quantity": true`), "quantity", "decimal"},
		{"quantity with an exponent", NATSSubmit, natsOrderJSON(`"quantity": "1e3"`), "quantity", "plain digits"},
		{"side", NATSSubmit, natsOrderJSON(`"side": "hold"`), "side", "buy or sell"},
		{"end before start", NATSSubmit, natsOrderJSON(`"duration": "", "start": "` + start + `", "end": "` +
			natsT0.Format(time.RFC3339) + `"`), "end", "not after the start"},
		{"unknown venue", NATSSubmit, natsOrderJSON(`"venues": ["nowhere"]`), "venues", "nowhere"},
		{"unknown symbol", NATSSubmit, natsOrderJSON(`"symbol": "DOGEUSDT"`), "symbol", "DOGEUSDT"},
		{"bad client_order_id", NATSSubmit, natsOrderJSON(`"client_order_id": "a.b"`), "client_order_id", "letters"},
		{"not JSON", NATSSubmit, `{"client_order_id": `, "", "ends too soon"},
		{"two objects", NATSSubmit, `{} {}`, "", "one JSON object"},
		{"empty body", NATSSubmit, ``, "", "empty"},
		{"a list", NATSSubmit, `[]`, "", "JSON object"},
		{"get without an id", NATSGet, `{}`, "id", "missing"},
		{"get with a numeric id", NATSGet, `{"id": 7}`, "id", "string"},
		{"cancel with an unknown field", NATSCancel, `{"id": "a-1", "why": "no"}`, "why", "unknown field"},
		{"list a state that is not one", NATSList, `{"state": "sleeping"}`, "state", "not a state"},
	} {
		t.Run(c.name, func(t *testing.T) {
			natsWantError(t, r.call(t, c.subject, natsTrader, []byte(c.body), nil), http.StatusBadRequest, c.field, c.what)
		})
	}
	var list api.OrderList
	r.must(t, NATSList, natsTrader, nil, &list)
	if len(list.Orders) != 0 || r.store.eventCount() != 0 {
		t.Fatalf("refused requests created %d orders, %d events", len(list.Orders), r.store.eventCount())
	}
	natsLogsSayNothingOfTheRequests(t, r, "colour", "DOGEUSDT", "nowhere", "x-1")
}

// natsOrderJSON is natsOrder("x-1") as JSON with some fields replaced.
func natsOrderJSON(fields string) string {
	var m map[string]json.RawMessage
	b, _ := json.Marshal(natsOrder("x-1"))
	_ = json.Unmarshal(b, &m)
	var over map[string]json.RawMessage
	if err := json.Unmarshal([]byte("{"+fields+"}"), &over); err != nil {
		panic(err)
	}
	for k, v := range over {
		m[k] = v
	}
	if string(m["duration"]) == `""` {
		delete(m, "duration")
	}
	out, _ := json.Marshal(m)
	return string(out)
}

func TestNATS_OversizedBodyIs413BeforeAuthentication(t *testing.T) {
	r := newNATSRig(t)
	big := []byte(`{"client_order_id": "` + strings.Repeat("x", natsRigMaxBody) + `"}`)
	m := nats.NewMsg(NATSSubmit) // not even signed: the size is checked first
	m.Data = big
	reply := r.send(t, m)
	aerr := NATSReplyError(reply)
	if aerr == nil || aerr.Status != http.StatusRequestEntityTooLarge || aerr.Code != api.CodeTooLarge {
		t.Fatalf("got %v, want 413", aerr)
	}
	natsWantError(t, r.call(t, NATSSubmit, natsTrader, big, nil), http.StatusRequestEntityTooLarge, "", "at most 4096")
}

func TestNATS_DiscoveryDescribesTheService(t *testing.T) {
	r := newNATSRig(t)
	ask := func(subject string, out any) {
		t.Helper()
		reply, err := r.nc.Request(subject, nil, 10*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", subject, err)
		}
		if err := json.Unmarshal(reply.Data, out); err != nil {
			t.Fatalf("%s: %v", subject, err)
		}
	}
	var ping micro.Ping
	ask("$SRV.PING."+NATSServiceName, &ping)
	if ping.Name != NATSServiceName || ping.Type != micro.PingResponseType || ping.Version != "1.2.3" {
		t.Fatalf("ping %+v", ping)
	}

	var info micro.Info
	ask("$SRV.INFO."+NATSServiceName, &info)
	want := map[string]string{NATSSubmit: "trade", NATSList: "read", NATSGet: "read", NATSFills: "read",
		NATSPause: "trade", NATSResume: "trade", NATSCancel: "trade", NATSAmend: "trade", NATSKill: "admin", NATSKillRelease: "admin"}
	if len(info.Endpoints) != len(want) {
		t.Fatalf("%d endpoints, want %d: %+v", len(info.Endpoints), len(want), info.Endpoints)
	}
	for _, ep := range info.Endpoints {
		if scope, ok := want[ep.Subject]; !ok || ep.Metadata["scope"] != scope || ep.Metadata["request"] == "" {
			t.Fatalf("endpoint %+v", ep)
		}
	}
	if info.Metadata["events_stream"] != bus.EventsStream || !strings.Contains(info.Description, bus.EventsStream) ||
		!strings.Contains(info.Metadata["events_subjects"], "blockexec.events.<order id>.<kind>") {
		t.Fatalf("the info does not say where events are: %q %v", info.Description, info.Metadata)
	}

	// The statistics, which anyone on the account may read, count the
	// requests and never show a refusal's message (it quotes the id).
	if err := r.call(t, NATSGet, natsReader, NATSOrderRef{ID: "nope"}, nil); err == nil {
		t.Fatal("a get of no order succeeded")
	}
	// micro counts a request after its handler returns, which may be after
	// the reply reached us: ask again until the count shows, bounded.
	for i := 0; ; i++ {
		var stats micro.Stats
		ask("$SRV.STATS."+NATSServiceName, &stats)
		var got *micro.EndpointStats
		for _, ep := range stats.Endpoints {
			if ep.Subject == NATSGet {
				got = ep
			}
		}
		if got == nil {
			t.Fatalf("stats lack %s: %+v", NATSGet, stats.Endpoints)
		}
		if strings.Contains(got.LastError, "nope") || got.NumRequests > 1 {
			t.Fatalf("stats of %s: %+v", NATSGet, got)
		}
		if got.NumRequests == 1 {
			break
		}
		if i == 2000 {
			t.Fatalf("stats of %s never counted the request: %+v", NATSGet, got)
		}
		time.Sleep(time.Millisecond)
	}
	// The refusal is counted, with its status, in the Prometheus metrics
	// (the reply is sent before the count: wait for it, bounded).
	wantLine := promLine(`blockexec_http_requests_total{route="NATS ` + NATSGet + `",code="404"} 1`)
	for i := 0; !strings.Contains(scrape(t, r.metrics), wantLine); i++ {
		if i == 2000 {
			t.Fatalf("metrics lack %s:\n%s", wantLine, scrape(t, r.metrics))
		}
		time.Sleep(time.Millisecond)
	}
}

func TestNATS_VersionIsMadeSemantic(t *testing.T) {
	for _, c := range []struct{ in, version, build string }{
		{"1.4.0", "1.4.0", ""},
		{"v1.4.0-rc.1", "1.4.0-rc.1", ""},
		{"", "0.0.0", ""},
		{"dev", "0.0.0", "dev"},
		{"1925d3e", "0.0.0", "1925d3e"},
	} {
		v, meta := natsVersion(c.in)
		if v != c.version || meta["build"] != c.build {
			t.Errorf("natsVersion(%q) = %q, build %q; want %q, %q", c.in, v, meta["build"], c.version, c.build)
		}
	}
}

func TestNATS_RequestWithNoServiceIsNotAnAPIError(t *testing.T) {
	r := newNATSRig(t)
	err := NATSRequest(context.Background(), r.nc, NATSSubjectPrefix+".nothing", natsReader, natsSecret(natsReader), nil, nil,
		r.clk.Now(), "")
	var aerr *api.Error
	if err == nil || errors.As(err, &aerr) {
		t.Fatalf("got %v, want a transport error", err)
	}
}

// FuzzNATS_Bodies feeds the id-taking endpoints' bodies to the strict
// decoder: it never panics, and a refusal is a 400 or 413.
func FuzzNATS_Bodies(f *testing.F) {
	for _, s := range []string{`{"id": "a-1"}`, `{"state": ""}`, `{"id": "a-1", "amendment": {"floor_price": "1.5"}}`,
		`{"id": "a-1", "amendment": {"end": "2024-10-08T15:00:00Z", "max_participation": 0.2}}`, `{"id": 1}`, ``, `[`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, v := range []any{&NATSOrderRef{}, &NATSListRequest{}, &NATSAmendRequest{}} {
			if aerr := natsDecode(body, natsRigMaxBody, v, true); aerr != nil &&
				aerr.Status != http.StatusBadRequest && aerr.Status != http.StatusRequestEntityTooLarge {
				t.Fatalf("%T: %d %v", v, aerr.Status, aerr)
			}
		}
	})
}
