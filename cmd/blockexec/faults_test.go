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

// Bounds of the crash scenarios: a parent of faultDuration on the wall
// clock, each blockexec process given at most faultProcessLimit.
const (
	faultParent       = "crash-1"
	faultQuantity     = "12"
	faultDuration     = 15 * time.Second
	faultProcessLimit = 2 * time.Minute
)

// TestFaults_KilledRunResumesAndPlacesNoClientIDTwice kills a real
// blockexec run process with SIGKILL at a fail point, starts it again on
// the same config and --data-dir, and checks that the parent completes
// exactly once: the venues sold its quantity and no more, every client id
// reached a venue at most once, the ledger holds the venues' fills one for
// one (and each child is counted once), and a third start is refused
// because the parent ended. The two Binance fakes (and their matching
// cores) live in this test process, so what they hold survives the
// engine's kill -9. A resumed run lasts about 30 s whatever the kill's
// point: its recorder waits for the messages the killed one had been
// handed and not acked, which the server hands out again after the
// consumer's AckWait.
func TestFaults_KilledRunResumesAndPlacesNoClientIDTwice(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts blockexec processes on the wall clock, about 40 s a scenario")
	}
	bin := buildBlockexec(t)
	for _, sc := range []struct {
		name, point string
		n           int
		// afterEnd restarts the killed run only once the parent's end has
		// passed.
		afterEnd bool
		// proves is what the scenario adds to the checks every one makes.
		proves string
	}{
		{name: "before-place 3", point: "before-place", n: 3,
			proves: "a child whose intent was checkpointed but never sent is looked up by client id, found " +
				"missing, given up as never placed, and its quantity sold under new client ids"},
		{name: "after-place 3", point: "after-place", n: 3,
			proves: "a child the venue took and filled, with nothing of it recorded, is found at the venue by " +
				"client id and its fills are recorded once, without sending the order again"},
		{name: "mid-fill 2", point: "mid-fill", n: 2,
			proves: "a child killed between two of its fills (the first walking more than one level) is " +
				"recorded whole: no fill counted twice, none lost"},
		{name: "after-place 12", point: "after-place", n: 12,
			proves: "a kill in the second half, after many rounds were flushed to the bus and the ledger, " +
				"resumes from the latest checkpoint and not from the parent's start"},
		{name: "after-place 3, restarted after the end", point: "after-place", n: 3, afterEnd: true,
			proves: "a run restarted only after its parent's end still settles the child the venue filled " +
				"before the kill, and ends the parent"},
	} {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			t.Logf("proves: %s", sc.proves)
			r := newFaultRig(t, bin)

			first := r.run(t, fmt.Sprintf("%s:%d", sc.point, sc.n))
			if !first.killed {
				t.Fatalf("first run was not killed at %s:%d: exit %d\n%s", sc.point, sc.n, first.code, first.stderr)
			}
			if sc.afterEnd {
				time.Sleep(time.Until(r.start.Add(faultDuration + time.Second)))
			}

			second := r.run(t, "")
			if second.killed || second.code != 0 {
				sold, n, diffs := r.compareFills(t)
				t.Fatalf("resumed run: exit %d (killed %v)\nstdout:\n%s\nstderr:\n%s\nfirst run's stderr:\n%s\n"+
					"the venues sold %s; the ledger holds %d fills; differences:\n%s", second.code, second.killed,
					second.stdout, second.stderr, first.stderr, sold, n, strings.Join(append(diffs, r.placedTwice(t)...), "\n"))
			}
			if !strings.Contains(second.stderr, "resuming an interrupted parent") {
				t.Fatalf("the second run did not resume from the checkpoint:\n%s", second.stderr)
			}
			r.checkExactlyOnce(t)

			// Started again, the ended parent is refused and nothing is
			// placed: as the config stands (its window now past), and with
			// its window moved ahead, which only the checkpoint's terminal
			// state can refuse.
			placed := r.placedAtVenues()
			third := r.run(t, "")
			if third.killed || third.code != exitBadConfig {
				t.Fatalf("third run: exit %d (killed %v), want %d\n%s", third.code, third.killed, exitBadConfig, third.stderr)
			}
			r.writeConfig(t, clock.Wall{}.Now().Add(5*time.Second).Truncate(time.Second))
			fourth := r.run(t, "")
			if fourth.killed || fourth.code != exitBadConfig || !strings.Contains(fourth.stderr, "already ended") {
				t.Fatalf("run with the window moved ahead: exit %d (killed %v), want %d and \"already ended\"\n%s",
					fourth.code, fourth.killed, exitBadConfig, fourth.stderr)
			}
			if n := r.placedAtVenues(); n != placed {
				t.Fatalf("%d orders placed by runs of a parent that had ended", n-placed)
			}
		})
	}
}

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
	bin     string // blockexec
	venues  []faultVenue
	yaml    string // the venues' part of the config
	config  string
	dataDir string
	report  string
	env     []string // the keys' variables
	start   time.Time
}

type faultVenue struct {
	name string
	live liveBinance
	tap  *orderTap
}

func newFaultRig(t *testing.T, bin string) *faultRig {
	t.Helper()
	r := &faultRig{bin: bin, dataDir: t.TempDir(), config: filepath.Join(t.TempDir(), "crash.yaml")}
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
	// run's start-up is not counted against its schedule.
	r.start = clock.Wall{}.Now().Add(2 * time.Second).Truncate(time.Second)
	r.writeConfig(t, r.start)
	return r
}

// writeConfig writes the rig's config: the parent sells faultQuantity on
// both venues over faultDuration from start, a slice a second.
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
    slice_interval: 1s
    participation_window: 1m
    max_participation: 1
    slippage_band_bps: 100
`, r.start.Add(-time.Hour).Format(time.RFC3339), r.yaml, faultParent, faultQuantity, start.Format(time.RFC3339), faultDuration)
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

// checkExactlyOnce checks the accounts of a parent that was killed and
// resumed, against the venues' own records.
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

// placedTwice returns the children with more than one child_placed event
// in the ledger (the ledger counts child orders by these events), each
// with the events' sequence numbers.
func (r *faultRig) placedTwice(t *testing.T) []string {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(r.dataDir, "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT seq, body FROM events WHERE parent_id = ? AND kind = ? ORDER BY seq`, faultParent,
		bus.KindChildPlaced)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seqs := map[string][]int64{}
	for rows.Next() {
		var seq int64
		var body string
		var m bus.EventMsg
		if err := rows.Scan(&seq, &body); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(body), &m); err != nil || m.Child == nil {
			t.Fatalf("ledger: child_placed event %d: %v", seq, err)
		}
		seqs[m.Child.ClientID] = append(seqs[m.Child.ClientID], seq)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
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
// everything through and noting each order submission's client id, and
// the client ids the fake refused as duplicates.
type orderTap struct {
	srv   *httptest.Server
	mu    sync.Mutex
	sent  map[string]int // client id → submissions
	dupes []string
}

func newOrderTap(t *testing.T, target string) *orderTap {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	tap := &orderTap{sent: map[string]int{}}
	tap.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v3/order" {
			proxy.ServeHTTP(w, r) // the user data stream's WebSocket too
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		cid := r.URL.Query().Get("newClientOrderId")
		if cid == "" {
			cid = form.Get("newClientOrderId")
		}
		rec := &teeWriter{ResponseWriter: w}
		proxy.ServeHTTP(rec, r)
		var answer struct {
			Code int    `json:"code"`
			Msg  string `json:"msg"`
		}
		_ = json.Unmarshal(rec.body.Bytes(), &answer)
		tap.mu.Lock()
		tap.sent[cid]++
		if answer.Code == -2010 && strings.Contains(answer.Msg, "Duplicate order") {
			tap.dupes = append(tap.dupes, cid)
		}
		tap.mu.Unlock()
	}))
	t.Cleanup(tap.srv.Close)
	return tap
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

// teeWriter keeps a copy of a response's body.
type teeWriter struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (w *teeWriter) Write(p []byte) (int, error) {
	w.body.Write(p)
	return w.ResponseWriter.Write(p)
}

func (w *teeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
