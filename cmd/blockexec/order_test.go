package main

import (
	"bytes"
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
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/api"
	"github.com/blockexec/blockexec/bus"
)

const (
	orderTestKey    = "fund-a-test"
	orderTestSecret = "order-test-secret-not-real-0123456789"
)

// orderSeen is a request the test service received, signature checked.
type orderSeen struct {
	method, path, query string
	body                []byte
}

// orderService is the HTTP API as blockexec order meets it: it checks
// every signature (api.Verify, the window) and answers what answer says.
type orderService struct {
	url  string
	mu   sync.Mutex
	reqs []orderSeen
}

func newOrderService(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, body []byte)) *orderService {
	t.Helper()
	s := &orderService{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ms, _ := strconv.ParseInt(r.Header.Get(api.HeaderTimestamp), 10, 64)
		canonical := api.Canonical(r.Method, r.URL.Path, r.URL.RawQuery, ms, r.Header.Get(api.HeaderNonce), body)
		skew := time.Since(time.UnixMilli(ms))
		if r.Header.Get(api.HeaderKey) != orderTestKey || skew > api.Window || skew < -api.Window ||
			!api.Verify([]byte(orderTestSecret), canonical, r.Header.Get(api.HeaderSignature)) {
			t.Errorf("%s %s: not signed with the test key", r.Method, r.URL.Path)
			orderAnswer(w, http.StatusUnauthorized, api.ErrorBody{Error: api.Errorf(401, api.CodeUnauthorized, "bad signature")})
			return
		}
		s.mu.Lock()
		s.reqs = append(s.reqs, orderSeen{r.Method, r.URL.Path, r.URL.RawQuery, body})
		s.mu.Unlock()
		answer(w, r, body)
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func (s *orderService) requests() []orderSeen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]orderSeen(nil), s.reqs...)
}

func orderAnswer(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// secretFile writes the test secret to a file of mode perm.
func secretFile(t *testing.T, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(orderTestSecret+"\n"), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil { // past the umask
		t.Fatal(err)
	}
	return p
}

// runOrder runs blockexec order with args against url, with a 0600 secret
// file, and returns stdout and the error.
func runOrder(t *testing.T, url string, args ...string) (string, error) {
	t.Helper()
	t.Setenv(envSecret, "")
	t.Setenv(envKeyID, "")
	t.Setenv(envURL, "")
	var out bytes.Buffer
	root := newRoot()
	root.SetOut(&out)
	root.SetErr(io.Discard)
	root.SetArgs(append([]string{"order", "--url", url, "--key-id", orderTestKey, "--secret-file", secretFile(t, 0o600)}, args...))
	err := root.Execute()
	return out.String(), err
}

func exitCode(err error) int {
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	}
	return 1
}

func testOrder(id, state string) api.Order {
	return api.Order{ID: id, ClientOrderID: id, Client: "fund-a", State: state, Side: "sell", Symbol: "BTCUSDT",
		Strategy: "twap", Quantity: decimal.RequireFromString("400"), FilledQuantity: decimal.RequireFromString("12.5"),
		LimitPrice: decimal.RequireFromString("61000"), Venues: []string{"sim-a", "sim-b"},
		Start: time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC), End: time.Date(2026, 11, 2, 16, 0, 0, 0, time.UTC)}
}

// TestOrderSubmit_FlagsBuildTheRequestBody: each flag lands in its field
// of the API's body; -f sends the file's request, --id overriding.
func TestOrderSubmit_FlagsBuildTheRequestBody(t *testing.T) {
	end := time.Date(2026, 11, 2, 16, 0, 0, 0, time.UTC)
	dec := decimal.RequireFromString
	ptr := func(d decimal.Decimal) *decimal.Decimal { return &d }
	file := filepath.Join(t.TempDir(), "order.json")
	if err := os.WriteFile(file, []byte(`{"client_order_id":"from-file","side":"buy","symbol":"ETHUSDT",
		"quantity":"50","duration":"2h","max_participation":"0.05","slippage_band_bps":"20","ceiling_price":"3000"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want api.OrderRequest
	}{
		{"sell with a floor", []string{"--id", "o-1", "--side", "sell", "--symbol", "BTCUSDT", "--qty", "400", "--duration", "8h",
			"--strategy", "twap", "--max-participation", "0.1", "--band-bps", "50", "--floor", "61000", "--venues", "sim-a,sim-b"},
			api.OrderRequest{ClientOrderID: "o-1", Side: "sell", Symbol: "BTCUSDT", Quantity: dec("400"), Duration: "8h",
				Strategy: "twap", MaxParticipation: dec("0.1"), SlippageBandBps: dec("50"), FloorPrice: ptr(dec("61000")),
				Venues: []string{"sim-a", "sim-b"}}},
		{"buy with a ceiling and an end", []string{"--id", "o-2", "--side", "buy", "--symbol", "BTCUSDT", "--qty", "0.5",
			"--end", "2026-11-02T16:00:00Z", "--max-participation", "0.2", "--band-bps", "25", "--ceiling", "65000.5"},
			api.OrderRequest{ClientOrderID: "o-2", Side: "buy", Symbol: "BTCUSDT", Quantity: dec("0.5"), End: &end,
				MaxParticipation: dec("0.2"), SlippageBandBps: dec("25"), CeilingPrice: ptr(dec("65000.5"))}},
		{"a file", []string{"-f", file},
			api.OrderRequest{ClientOrderID: "from-file", Side: "buy", Symbol: "ETHUSDT", Quantity: dec("50"), Duration: "2h",
				MaxParticipation: dec("0.05"), SlippageBandBps: dec("20"), CeilingPrice: ptr(dec("3000"))}},
		{"a file with --id", []string{"-f", file, "--id", "o-3"},
			api.OrderRequest{ClientOrderID: "o-3", Side: "buy", Symbol: "ETHUSDT", Quantity: dec("50"), Duration: "2h",
				MaxParticipation: dec("0.05"), SlippageBandBps: dec("20"), CeilingPrice: ptr(dec("3000"))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := newOrderService(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
				orderAnswer(w, http.StatusCreated, testOrder(tc.want.ClientOrderID, "accepted"))
			})
			out, err := runOrder(t, svc.url, append([]string{"submit"}, tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			reqs := svc.requests()
			if len(reqs) != 1 || reqs[0].method != http.MethodPost || reqs[0].path != "/v1/orders" {
				t.Fatalf("requests %+v", reqs)
			}
			var got api.OrderRequest
			d := json.NewDecoder(bytes.NewReader(reqs[0].body))
			d.DisallowUnknownFields()
			if err := d.Decode(&got); err != nil {
				t.Fatal(err)
			}
			want, _ := json.Marshal(tc.want)
			if have, _ := json.Marshal(got); !bytes.Equal(have, want) {
				t.Fatalf("body\n%s\nwant\n%s", have, want)
			}
			if !strings.Contains(out, "created") || !strings.Contains(out, tc.want.ClientOrderID) {
				t.Fatalf("output:\n%s", out)
			}
		})
	}
}

// TestOrderSubmit_BadInputExitsTwoBeforeAnyRequest: what the command can
// tell is wrong is refused without calling the service.
func TestOrderSubmit_BadInputExitsTwoBeforeAnyRequest(t *testing.T) {
	file := filepath.Join(t.TempDir(), "order.json")
	if err := os.WriteFile(file, []byte(`{"client_order_id":"x","sdie":"sell"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"no id":               {"submit", "--side", "sell"},
		"a bad decimal":       {"submit", "--id", "o-1", "--qty", "4OO"},
		"a bad end":           {"submit", "--id", "o-1", "--end", "tomorrow"},
		"file and flags":      {"submit", "-f", file, "--side", "buy"},
		"a misspelt field":    {"submit", "-f", file},
		"amend with nothing":  {"amend", "o-1"},
		"amend a bad decimal": {"amend", "o-1", "--floor", "60k"},
	} {
		t.Run(name, func(t *testing.T) {
			svc := newOrderService(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
				t.Error("the service was called")
			})
			if _, err := runOrder(t, svc.url, args...); exitCode(err) != exitBadInput {
				t.Fatalf("exit %d (%v), want %d", exitCode(err), err, exitBadInput)
			}
		})
	}
}

// TestOrder_SecretFromA0600FileOrTheEnvironmentOnly: a secret file others
// can read is refused (exit 2, nothing sent, the secret not repeated);
// $BLOCKEXEC_SECRET works without a file; no secret at all is exit 2.
func TestOrder_SecretFromA0600FileOrTheEnvironmentOnly(t *testing.T) {
	svc := newOrderService(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		orderAnswer(w, http.StatusOK, testOrder("o-1", "working"))
	})
	run := func(args ...string) error {
		var out bytes.Buffer
		root := newRoot()
		root.SetOut(&out)
		root.SetArgs(append([]string{"order", "status", "o-1", "--url", svc.url, "--key-id", orderTestKey}, args...))
		return root.Execute()
	}
	t.Setenv(envSecret, "")
	err := run("--secret-file", secretFile(t, 0o644))
	if exitCode(err) != exitBadInput || !strings.Contains(err.Error(), "chmod 600") || strings.Contains(err.Error(), orderTestSecret) {
		t.Fatalf("a 0644 file: exit %d, %v", exitCode(err), err)
	}
	if n := len(svc.requests()); n != 0 {
		t.Fatalf("%d requests with a refused secret", n)
	}
	if err := run("--secret-file", secretFile(t, 0o600)); err != nil {
		t.Fatalf("a 0600 file: %v", err)
	}
	if err := run(); exitCode(err) != exitBadInput || !strings.Contains(err.Error(), envSecret) {
		t.Fatalf("no secret: exit %d, %v", exitCode(err), err)
	}
	t.Setenv(envSecret, orderTestSecret)
	if err := run(); err != nil {
		t.Fatalf("$%s: %v", envSecret, err)
	}
	if n := len(svc.requests()); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
}

// TestOrder_RefusalsPrintTheFieldAndExitByKind: 400 and 409 are the
// caller's to fix (exit 2, the field named); 404 and 401 exit 1.
func TestOrder_RefusalsPrintTheFieldAndExitByKind(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		err   *api.Error
		code  int
		texts []string
	}{
		{"400 on a field", []string{"submit", "--id", "o-1", "--side", "sell", "--qty", "-1"},
			api.BadField("quantity", "must be > 0, got -1"), exitBadInput, []string{`field "quantity"`, "must be > 0, got -1", "400"}},
		{"409 on a reused id", []string{"submit", "--id", "o-1", "--side", "buy"},
			api.Errorf(http.StatusConflict, api.CodeConflict, "client_order_id \"o-1\" was used for another order"), exitBadInput,
			[]string{"409", "used for another order"}},
		{"400 on an amendment", []string{"amend", "o-1", "--floor", "70000"},
			api.BadField("floor_price", "a buy order has a ceiling_price, not a floor"), exitBadInput, []string{`field "floor_price"`}},
		{"404", []string{"status", "nope"}, api.Errorf(http.StatusNotFound, api.CodeNotFound, "no order \"nope\""), exitFailed,
			[]string{"404", "no order"}},
		{"401", []string{"pause", "o-1"}, api.Errorf(http.StatusUnauthorized, api.CodeUnauthorized, "timestamp outside the window"),
			exitFailed, []string{"401", "timestamp"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := newOrderService(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
				orderAnswer(w, tc.err.Status, api.ErrorBody{Error: tc.err})
			})
			_, err := runOrder(t, svc.url, tc.args...)
			if exitCode(err) != tc.code {
				t.Fatalf("exit %d (%v), want %d", exitCode(err), err, tc.code)
			}
			for _, s := range tc.texts {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%q lacks %q", err, s)
				}
			}
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Status != tc.err.Status {
				t.Errorf("the *api.Error is not kept: %v", err)
			}
		})
	}
}

// TestOrder_JSONPrintsTheAPIValues: --json prints the order (or list, or
// fills) as the API sends it; the text form names the order's fields.
func TestOrder_JSONPrintsTheAPIValues(t *testing.T) {
	fill := bus.FillMsg{Schema: bus.FillSchema, ParentID: "o-1", Venue: "sim-a", TradeID: "t-9", Side: "sell",
		Price: decimal.RequireFromString("63000.5"), Qty: decimal.RequireFromString("1.5"), Time: time.Date(2026, 11, 2, 8, 1, 0, 0, time.UTC)}
	svc := newOrderService(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		switch {
		case r.URL.Path == "/v1/orders":
			orderAnswer(w, http.StatusOK, api.OrderList{Orders: []api.Order{testOrder("o-1", r.URL.Query().Get("state"))}})
		case strings.HasSuffix(r.URL.Path, "/fills"):
			orderAnswer(w, http.StatusOK, api.FillList{Fills: []bus.FillMsg{fill}})
		case strings.HasSuffix(r.URL.Path, "/pause"):
			orderAnswer(w, http.StatusOK, testOrder("o-1", "paused"))
		default:
			orderAnswer(w, http.StatusOK, testOrder("o-1", "working"))
		}
	})
	out, err := runOrder(t, svc.url, "status", "o-1", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got api.Order
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.ID != "o-1" || got.State != "working" ||
		!got.FilledQuantity.Equal(decimal.RequireFromString("12.5")) {
		t.Fatalf("--json printed %s (%v)", out, err)
	}
	out, err = runOrder(t, svc.url, "list", "--state", "working", "--json")
	var list []api.Order
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0].State != "working" {
		t.Fatalf("list --json: %s (%v)", out, err)
	}
	if q := svc.requests()[1].query; q != "state=working" {
		t.Fatalf("list sent the query %q", q)
	}
	out, err = runOrder(t, svc.url, "fills", "o-1", "--json")
	var fills []bus.FillMsg
	if err != nil || json.Unmarshal([]byte(out), &fills) != nil || len(fills) != 1 || fills[0].TradeID != "t-9" {
		t.Fatalf("fills --json: %s (%v)", out, err)
	}
	for args, want := range map[string][]string{
		"status o-1": {"working", "sell 400 BTCUSDT", "floor 61000", "sim-a, sim-b"},
		"pause o-1":  {"paused"},
		"list":       {"ID", "o-1", "BTCUSDT"},
		"fills o-1":  {"sim-a", "63000.5", "t-9"},
	} {
		out, err := runOrder(t, svc.url, strings.Fields(args)...)
		if err != nil {
			t.Fatalf("%s: %v", args, err)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s printed\n%s\nwithout %q", args, out, w)
			}
		}
	}
	paths := map[string]bool{}
	for _, r := range svc.requests() {
		paths[r.method+" "+r.path] = true
	}
	for _, p := range []string{"GET /v1/orders/o-1", "GET /v1/orders", "GET /v1/orders/o-1/fills", "POST /v1/orders/o-1/pause"} {
		if !paths[p] {
			t.Errorf("no %s among %v", p, paths)
		}
	}
}

// TestOrderAmend_SendsOnlyTheFlagsGiven: the amendment holds the flags
// given and nothing else.
func TestOrderAmend_SendsOnlyTheFlagsGiven(t *testing.T) {
	svc := newOrderService(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		orderAnswer(w, http.StatusOK, testOrder("o-1", "working"))
	})
	if _, err := runOrder(t, svc.url, "amend", "o-1", "--floor", "0", "--band-bps", "30"); err != nil {
		t.Fatal(err)
	}
	r := svc.requests()[0]
	if r.method != http.MethodPatch || r.path != "/v1/orders/o-1" || string(r.body) != `{"floor_price":"0","slippage_band_bps":"30"}` {
		t.Fatalf("sent %s %s %s", r.method, r.path, r.body)
	}
}

// TestOrderWatch_PrintsEachEventUntilDone: one line per event, one JSON
// object per line with --json, and the command ends at done.
func TestOrderWatch_PrintsEachEventUntilDone(t *testing.T) {
	svc := newOrderService(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		if got := r.Header.Get("Last-Event-ID"); got != "4" {
			t.Errorf("Last-Event-ID %q, want 4 from --after", got)
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		for _, ev := range []api.Event{
			{Schema: bus.EventSchema, ParentID: "o-1", Kind: bus.KindSlice, Seq: 5, Slice: &bus.SliceInfo{Seq: 3,
				Target: decimal.RequireFromString("30"), Filled: decimal.RequireFromString("25"), Shortfall: decimal.RequireFromString("5")}},
			{Schema: bus.EventSchema, ParentID: "o-1", Kind: bus.KindChildRejected, Seq: 6, Rejection: &bus.RejectionInfo{
				Venue: "sim-b", Check: "band", Reason: "price 60000 outside the band [62685, 63315]"}},
			{Schema: bus.EventSchema, ParentID: "o-1", Kind: bus.KindDone, Seq: 7, Summary: &bus.SummaryInfo{State: "done",
				Filled: decimal.RequireFromString("400")}},
		} {
			b, _ := json.Marshal(ev)
			fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.Seq, ev.Kind, b)
		}
	})
	out, err := runOrder(t, svc.url, "watch", "o-1", "--after", "4")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "shortfall 5") || !strings.Contains(lines[1], "refused by band") ||
		!strings.Contains(lines[2], "done: filled 400") {
		t.Fatalf("watch printed:\n%s", out)
	}
	out, err = runOrder(t, svc.url, "watch", "o-1", "--after", "4", "--json")
	if err != nil {
		t.Fatal(err)
	}
	lines = strings.Split(strings.TrimSpace(out), "\n")
	var last api.Event
	if len(lines) != 3 || json.Unmarshal([]byte(lines[2]), &last) != nil || last.Kind != bus.KindDone {
		t.Fatalf("watch --json printed:\n%s", out)
	}
}

func TestOrderKill_EngagesAndReleasesTheSwitch(t *testing.T) {
	since := time.Date(2026, 11, 23, 15, 0, 0, 0, time.UTC)
	svc := newOrderService(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		if r.Method == http.MethodDelete {
			orderAnswer(w, http.StatusOK, api.KillState{})
			return
		}
		orderAnswer(w, http.StatusOK, api.KillResult{Cancelled: []api.Order{testOrder("o-1", "cancelled")},
			KillSwitch: api.KillState{Engaged: true, Reason: "halt", Since: &since}})
	})
	out, err := runOrder(t, svc.url, "kill", "--reason", "halt")
	if err != nil || !strings.Contains(out, "kill switch engaged: 1 orders cancelled") || !strings.Contains(out, "o-1") {
		t.Fatalf("kill: %v\n%s", err, out)
	}
	if out, err = runOrder(t, svc.url, "kill", "--release"); err != nil || !strings.Contains(out, "released") {
		t.Fatalf("release: %v\n%s", err, out)
	}
	rs := svc.requests()
	if len(rs) != 2 || rs[0].method != http.MethodPost || rs[0].path != "/v1/kill" || string(rs[0].body) != `{"reason":"halt"}` ||
		rs[1].method != http.MethodDelete || rs[1].path != "/v1/kill" {
		t.Fatalf("sent %+v", rs)
	}
	if _, err := runOrder(t, svc.url, "kill", "--release", "--reason", "x"); exitCode(err) != exitBadInput {
		t.Fatalf("--release with --reason: %v", err)
	}
	if len(svc.requests()) != 2 {
		t.Fatal("a refused kill command sent a request")
	}
}
