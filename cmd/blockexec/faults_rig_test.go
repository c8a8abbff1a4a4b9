//go:build unix

package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/engine/failpoint"
	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/settlement"
	"github.com/blockexec/blockexec/venues"
	"github.com/blockexec/blockexec/venues/binance"
	"github.com/blockexec/blockexec/venues/binance/binancefake"
)

// buildBlockexec builds this command into a temporary directory, with the
// race detector when the test binary has it, and returns its path: a kill
// -9 must kill a process of its own.
func buildBlockexec(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to build blockexec with")
	}
	bin := filepath.Join(t.TempDir(), "blockexec")
	args := []string{"build", "-o", bin}
	if raceEnabled() {
		args = append(args, "-race")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, goTool, append(args, ".")...).CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built %s in %s (race %v)", bin, time.Since(start).Round(time.Millisecond), raceEnabled())
	return bin
}

func raceEnabled() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// faultRig is one scenario's world: two Binance fakes behind order taps,
// the config that names them, and the data directory the runs share.
type faultRig struct {
	bin      string        // blockexec
	duration time.Duration // the parent's
	venues   []faultVenue
	yaml     string // the venues' part of the config
	config   string
	dataDir  string
	report   string
	env      []string // the keys' variables
	start    time.Time
}

type faultVenue struct {
	name string
	live liveBinance
	tap  *orderTap
}

func newFaultRig(t *testing.T, bin string, duration time.Duration) *faultRig {
	t.Helper()
	r := &faultRig{bin: bin, duration: duration, dataDir: t.TempDir(), config: filepath.Join(t.TempDir(), "crash.yaml")}
	r.report = filepath.Join(r.dataDir, "report.json")
	var venueYAML strings.Builder
	for i, name := range []string{"bnA", "bnB"} {
		l := startLiveBinance(t, &binancefake.Restrictions{EnableReading: true, EnableSpotAndMarginTrading: true, IPRestrict: true})
		v := faultVenue{name: name, live: l, tap: newOrderTap(t, l.fake.URL())}
		r.venues = append(r.venues, v)
		env := fmt.Sprintf("BLOCKEXEC_FAULT_KEY_%d", i)
		r.env = append(r.env, env+"="+l.key)
		fmt.Fprintf(&venueYAML, "  - name: %s\n    kind: binance\n    base_url: %q\n    api_key_env: %s\n    api_secret_file: %q\n",
			name, v.tap.srv.URL, env, writeSecret(t, l.secret, 0o600))
	}
	r.yaml = venueYAML.String()
	// The parent starts a little after the config is written, so the first
	// run's start-up (a few hundred ms under -race) is not counted against
	// its schedule.
	r.start = clock.Wall{}.Now().Add(time.Second)
	r.writeConfig(t, r.start)
	return r
}

// writeConfig writes the rig's config: the parent sells faultQuantity on
// both venues over the rig's duration from start, a slice every
// faultSlice.
func (r *faultRig) writeConfig(t *testing.T, start time.Time) {
	t.Helper()
	src := fmt.Sprintf(`run: {clock: wall, log_level: info}
market:
  symbol: BTCUSDT
  base: BTC
  quote: USDT
  start_price: "63000"
  start: %s
  daily_volume: "29700"
  daily_volatility: 0.0275
venues:
%sparents:
  - id: %s
    side: sell
    symbol: BTCUSDT
    quantity: %q
    start: %s
    duration: %s
    slice_interval: %s
    participation_window: 1m
    max_participation: 1
    slippage_band_bps: 100
`, r.start.Add(-time.Hour).Format(time.RFC3339), r.yaml, faultParent, faultQuantity, start.Format(time.RFC3339Nano),
		r.duration, faultSlice)
	if err := os.WriteFile(r.config, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
}

// faultOutcome is how a blockexec process ended.
type faultOutcome struct {
	code           int
	killed         bool // by SIGKILL
	stdout, stderr string
}

// run starts blockexec run on the rig's config and data directory, with
// the fail point armed when point is not empty, and waits for it. A
// process still running after faultProcessLimit gets SIGQUIT (its
// goroutines go to stderr) and fails the test.
func (r *faultRig) run(t *testing.T, point string) faultOutcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), faultProcessLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.bin, "run", "-c", r.config, "--data-dir", r.dataDir,
		"--report-json", r.report, "--quiet")
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
	cmd.WaitDelay = 10 * time.Second
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, failpoint.Env+"=") })
	env = append(env, r.env...)
	if point != "" {
		env = append(env, failpoint.Env+"="+point)
	}
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	began := time.Now()
	err := cmd.Run()
	out := faultOutcome{stdout: stdout.String(), stderr: stderr.String()}
	if ctx.Err() != nil {
		t.Fatalf("blockexec run (fail point %q) still running after %s:\n%s", point, faultProcessLimit, out.stderr)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		out.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			out.killed = ws.Signal() == syscall.SIGKILL
			out.code = -1
		}
	default:
		t.Fatalf("blockexec run: %v", err)
	}
	t.Logf("run (fail point %q): exit %d, killed %v, after %s", point, out.code, out.killed,
		time.Since(began).Round(time.Millisecond))
	return out
}

// placedAtVenues counts the orders the fakes accepted.
func (r *faultRig) placedAtVenues() int {
	n := 0
	for _, v := range r.venues {
		n += len(v.live.fake.Placed())
	}
	return n
}

// checkExactlyOnce checks the accounts of a parent that ended after kills
// or venue faults, against the venues' own records.
func (r *faultRig) checkExactlyOnce(t *testing.T) {
	t.Helper()
	qty := decimal.RequireFromString(faultQuantity)

	// The report, from the ledger.
	b, err := os.ReadFile(r.report)
	if err != nil {
		t.Fatal(err)
	}
	var reps []settlement.Report
	if err := json.Unmarshal(b, &reps); err != nil {
		t.Fatal(err)
	}
	if len(reps) != 1 || reps[0].ParentID != faultParent {
		t.Fatalf("report: %s", b)
	}
	rep := reps[0]
	if rep.State != "done" || !rep.FilledQuantity.Equal(qty) {
		t.Fatalf("report: state %s, filled %s of %s", rep.State, rep.FilledQuantity, qty)
	}

	// Every client id reached a venue at most once.
	for _, v := range r.venues {
		sent, dupes := v.tap.submissions()
		for cid, n := range sent {
			if n != 1 {
				t.Errorf("%s: client id %s sent %d times", v.name, cid, n)
			}
		}
		if len(dupes) > 0 {
			t.Errorf("%s: %d orders refused as \"Duplicate order sent.\": %v", v.name, len(dupes), dupes)
		}
		placed := v.live.fake.Placed()
		seen := map[string]bool{}
		for _, cid := range placed {
			if seen[cid] {
				t.Errorf("%s: the fake accepted client id %s twice", v.name, cid)
			}
			seen[cid] = true
		}
		t.Logf("%s: %d orders sent, %d accepted", v.name, len(sent), len(placed))
	}

	sold, n, diffs := r.compareFills(t)
	for _, d := range diffs {
		t.Error(d)
	}
	if sold.GreaterThan(qty) {
		t.Errorf("the venues sold %s, more than the parent's %s", sold, qty)
	}
	if !sold.Equal(rep.FilledQuantity) {
		t.Errorf("the venues sold %s, the ledger reports %s filled", sold, rep.FilledQuantity)
	}
	if n != rep.Fills {
		t.Errorf("ledger: %d fills, the report counts %d", n, rep.Fills)
	}
	for _, d := range r.placedTwice(t) {
		t.Errorf("ledger: %s", d)
	}
	t.Logf("%d fills, %d child orders, %s sold", n, rep.ChildOrders, sold)
}

// compareFills matches the ledger's fills with the venues' trade by trade:
// it returns what the venues sold, how many fills the ledger holds, and
// every difference.
func (r *faultRig) compareFills(t *testing.T) (sold decimal.Decimal, recorded int, diffs []string) {
	t.Helper()
	atVenue := map[string]market.Fill{} // venue/trade id
	sold = decimal.Zero
	for _, v := range r.venues {
		for _, f := range r.venueFills(t, v) {
			atVenue[f.Venue+"/"+f.TradeID] = f
			sold = sold.Add(f.Qty)
		}
	}
	l, err := settlement.OpenSQLite(filepath.Join(r.dataDir, "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fills, err := l.Fills(context.Background(), faultParent)
	if err != nil {
		t.Fatal(err)
	}
	inLedger := map[string]bool{}
	for _, f := range fills {
		k := f.Venue + "/" + f.TradeID
		if inLedger[k] {
			diffs = append(diffs, fmt.Sprintf("ledger: trade %s recorded twice", k))
		}
		inLedger[k] = true
		vf, ok := atVenue[k]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("ledger: trade %s (child %s, %s) is not at the venue", k, f.ClientID, f.Qty))
		case !vf.Qty.Equal(f.Qty) || !vf.Price.Equal(f.Price) || vf.ClientID != f.ClientID:
			diffs = append(diffs, fmt.Sprintf("ledger: trade %s is %s at %s for %s, the venue says %s at %s for %s", k,
				f.Qty, f.Price, f.ClientID, vf.Qty, vf.Price, vf.ClientID))
		}
	}
	for k, f := range atVenue {
		if !inLedger[k] {
			diffs = append(diffs, fmt.Sprintf("venue: trade %s (child %s, %s at %s) is not in the ledger", k, f.ClientID,
				f.Qty, f.Time.Format(time.TimeOnly)))
		}
	}
	slices.Sort(diffs)
	return sold, len(fills), diffs
}

// accounts describes what the venues and the ledger hold, for a failure
// message.
func (r *faultRig) accounts(t *testing.T) string {
	t.Helper()
	sold, n, diffs := r.compareFills(t)
	return fmt.Sprintf("the venues sold %s; the ledger holds %d fills; differences:\n%s", sold, n,
		strings.Join(append(diffs, r.placedTwice(t)...), "\n"))
}

// placedTwice returns the children with more than one child_placed event
// in the ledger (the ledger counts child orders by these events), each
// with the events' sequence numbers.
func (r *faultRig) placedTwice(t *testing.T) []string {
	t.Helper()
	seqs := map[string][]int64{}
	for _, m := range r.events(t, bus.KindChildPlaced) {
		if m.Child == nil {
			t.Fatalf("ledger: child_placed event %d without its child", m.Seq)
		}
		seqs[m.Child.ClientID] = append(seqs[m.Child.ClientID], m.Seq)
	}
	var out []string
	for cid, s := range seqs {
		if len(s) > 1 {
			out = append(out, fmt.Sprintf("%s placed at event seqs %v", cid, s))
		}
	}
	slices.Sort(out)
	return out
}

// childrenPlaced returns the venue of each child_placed event in the
// ledger, by client id.
func (r *faultRig) childrenPlaced(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range r.events(t, bus.KindChildPlaced) {
		if m.Child != nil {
			out[m.Child.ClientID] = m.Child.Venue
		}
	}
	return out
}

// events returns the parent's events of kind in the ledger, in order.
func (r *faultRig) events(t *testing.T, kind string) []bus.EventMsg {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(r.dataDir, "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT seq, body FROM events WHERE parent_id = ? AND kind = ? ORDER BY seq`, faultParent, kind)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []bus.EventMsg
	for rows.Next() {
		var seq int64
		var body string
		var m bus.EventMsg
		if err := rows.Scan(&seq, &body); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatalf("ledger: %s event %d: %v", kind, seq, err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// metFaults returns the ledger's signs that the engine met trouble at
// venue: a slice_short naming it, a child_unknown or child_rejected there.
func (r *faultRig) metFaults(t *testing.T, venue string) []string {
	t.Helper()
	var out []string
	for _, m := range r.events(t, bus.KindSliceShort) {
		for _, v := range m.Short.Venues {
			if v.Venue == venue {
				out = append(out, fmt.Sprintf("slice_short %d: %s", m.Seq, v.Reason))
			}
		}
	}
	for _, m := range r.events(t, bus.KindChildUnknown) {
		if m.Child.Venue == venue {
			out = append(out, fmt.Sprintf("child_unknown %d: %s", m.Seq, m.Child.ClientID))
		}
	}
	for _, m := range r.events(t, bus.KindChildRejected) {
		if m.Rejection.Venue == venue {
			out = append(out, fmt.Sprintf("child_rejected %d: %s", m.Seq, m.Rejection.Reason))
		}
	}
	return out
}

// venueFills lists our trades at a fake since the market's start, read by
// the Binance adapter from the fake's trade history (myTrades): what the
// exchange would say it did.
func (r *faultRig) venueFills(t *testing.T, v faultVenue) []market.Fill {
	t.Helper()
	a, err := binance.New(binance.Config{Name: v.name, BaseURL: v.live.fake.URL(), APIKey: venues.NewSecret(v.live.key),
		SecretKey: venues.NewSecret(v.live.secret)}, clock.Wall{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fills, err := a.Fills(ctx, "BTCUSDT", r.start.Add(-time.Hour), clock.Wall{}.Now().Add(time.Second))
	if err != nil {
		t.Fatalf("%s: fills: %v", v.name, err)
	}
	return fills
}

// orderTap stands between the engine and a fake on loopback, passing
// everything through and noting each request and its answer: the client
// id of each order submission, the client ids the fake refused as
// duplicates, and the status of every answer (none when the fake dropped
// the connection, which the tap passes on as a dropped connection too).
type orderTap struct {
	srv    *httptest.Server
	mu     sync.Mutex
	sent   map[string]int // client id → submissions
	dupes  []string
	calls  []tapCall
	orders int            // order submissions answered or dropped
	arms   map[int]func() // by order submission: run once it has its answer
}

// tapCall is one request the tap passed on (the user data stream's
// WebSocket aside).
type tapCall struct {
	arrived, ended time.Time
	method, path   string
	status         int    // 0: the connection was dropped, no answer
	clientID       string // order submissions only
}

// orderPath is Binance's order endpoint; a POST to it places an order.
const orderPath = "/api/v3/order"

func newOrderTap(t *testing.T, target string) *orderTap {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	// A connection the fake dropped, or a request it held until the
	// engine gave up, reaches the engine as such, not as the proxy's 502.
	proxy.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(http.ErrAbortHandler) // net/http closes the connection
		}
		_ = conn.Close()
	}
	tap := &orderTap{sent: map[string]int{}, arms: map[int]func(){}}
	tap.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == binancefake.WSPath {
			proxy.ServeHTTP(w, r) // the user data stream: one long-lived connection
			return
		}
		call := tapCall{arrived: time.Now(), method: r.Method, path: r.URL.Path}
		order := r.Method == http.MethodPost && r.URL.Path == orderPath
		if order {
			body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			form, _ := url.ParseQuery(string(body))
			call.clientID = r.URL.Query().Get("newClientOrderId")
			if call.clientID == "" {
				call.clientID = form.Get("newClientOrderId")
			}
			tap.mu.Lock()
			tap.sent[call.clientID]++ // sent, whatever comes back
			tap.mu.Unlock()
		}
		rec := &teeWriter{ResponseWriter: w}
		proxy.ServeHTTP(rec, r)
		call.ended, call.status = time.Now(), rec.status
		var answer struct {
			Code int    `json:"code"`
			Msg  string `json:"msg"`
		}
		_ = json.Unmarshal(rec.body.Bytes(), &answer)
		tap.mu.Lock()
		tap.calls = append(tap.calls, call)
		var arm func()
		if order {
			if answer.Code == -2010 && strings.Contains(answer.Msg, "Duplicate order") {
				tap.dupes = append(tap.dupes, call.clientID)
			}
			tap.orders++
			arm = tap.arms[tap.orders]
			delete(tap.arms, tap.orders)
		}
		tap.mu.Unlock()
		if arm != nil {
			arm() // before the handler returns: the engine has not read the answer yet
		}
	}))
	t.Cleanup(tap.srv.Close)
	return tap
}

// afterOrder runs f when the n-th order submission through the tap has
// its answer, before the engine reads it: faults armed by f meet the
// engine's next request to the venue, whatever the timing of the run.
func (o *orderTap) afterOrder(n int, f func()) {
	o.mu.Lock()
	o.arms[n] = f
	o.mu.Unlock()
}

// submissions returns the client ids sent in orders with their counts, and
// those refused as duplicates.
func (o *orderTap) submissions() (map[string]int, []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	sent := make(map[string]int, len(o.sent))
	for k, n := range o.sent {
		sent[k] = n
	}
	return sent, slices.Clone(o.dupes)
}

// answered returns the requests answered with status (0: dropped), order
// submissions only when orders is set.
func (o *orderTap) answered(status int, orders bool) []tapCall {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []tapCall
	for _, c := range o.calls {
		if c.status == status && (!orders || c.clientID != "") {
			out = append(out, c)
		}
	}
	return out
}

// sentDuring returns the requests that reached the venue less than wait
// after an answer of status: a client that honours Retry-After sends
// none. The adapter sends one request at a time, so any request that
// arrived after such an answer was sent after the engine read it.
func (o *orderTap) sentDuring(status int, wait time.Duration) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for _, c := range o.calls {
		if c.status != status {
			continue
		}
		for _, d := range o.calls {
			if d.arrived.After(c.ended) && d.arrived.Before(c.ended.Add(wait)) {
				out = append(out, fmt.Sprintf("%s %s %s after a %d answered at %s", d.method, d.path,
					d.arrived.Sub(c.ended).Round(time.Millisecond), status, c.ended.Format("15:04:05.000")))
			}
		}
	}
	return out
}

// teeWriter keeps a copy of a response's status and body.
type teeWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (w *teeWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

func (w *teeWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body.Write(p)
	return w.ResponseWriter.Write(p)
}

func (w *teeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
