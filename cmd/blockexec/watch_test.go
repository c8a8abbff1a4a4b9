package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/settlement"
)

var watchT0 = time.Date(2024, 10, 1, 8, 0, 0, 0, time.UTC)

// recorded is one message of a recorded stream: a fill or an event.
type recorded struct {
	fill  *bus.FillMsg
	event *bus.EventMsg
}

// recordedStream is two parents as an engine would publish them: a sell
// over two venues with a slice short, a rejection and an unfilled end, and
// a buy that is paused, resumed and cancelled by the kill switch. Events
// come first, then fills, as two publishers might leave them; the watcher
// puts the history in time order.
func recordedStream() []recorded {
	dec := decimal.RequireFromString
	at := func(sec int) time.Time { return watchT0.Add(time.Duration(sec) * time.Second) }
	var out []recorded
	seqs := map[string]int64{}
	ev := func(parent, kind string, sec int, set func(*bus.EventMsg)) {
		seqs[parent]++
		m := bus.EventMsg{Schema: bus.EventSchema, ParentID: parent, Kind: kind, Seq: seqs[parent], Time: at(sec)}
		if set != nil {
			set(&m)
		}
		out = append(out, recorded{event: &m})
	}
	child := func(parent string, slice int, venue, side, qty, price string) func(*bus.EventMsg) {
		return func(m *bus.EventMsg) {
			m.Child = &bus.ChildInfo{ClientID: fmt.Sprintf("%s-%d-%s-0", parent, slice, venue), Venue: venue, Side: side,
				Price: dec(price), Qty: dec(qty), TIF: "IOC", Filled: dec(qty), Status: "filled"}
		}
	}
	ev("unwind-1", bus.KindAccepted, 0, func(m *bus.EventMsg) {
		m.Parent = &bus.ParentInfo{Side: "sell", Symbol: "BTCUSDT", QuoteAsset: "USDT", Quantity: dec("3"), Strategy: "twap",
			Start: at(0), End: at(240), ArrivalPrice: dec("63000"), LimitPrice: dec("61000"), SlippageBandBps: dec("75"),
			MaxParticipation: dec("0.1"), Venues: []string{"simA", "simB"}}
	})
	ev("unwind-1", bus.KindSlice, 60, func(m *bus.EventMsg) {
		m.Slice = &bus.SliceInfo{Seq: 1, Target: dec("1.75"), Filled: dec("0"), Shortfall: dec("1.75")}
	})
	ev("unwind-1", bus.KindChildPlaced, 60, child("unwind-1", 1, "simA", "sell", "1.25", "62990"))
	ev("unwind-1", bus.KindChildPlaced, 60, child("unwind-1", 1, "simB", "sell", "0.5", "62980"))
	ev("unwind-1", bus.KindSlice, 120, func(m *bus.EventMsg) {
		m.Slice = &bus.SliceInfo{Seq: 2, Target: dec("3"), Filled: dec("1.75"), Shortfall: dec("1.25"), MaxParticipation: dec("0.0875")}
	})
	ev("unwind-1", bus.KindChildPlaced, 120, child("unwind-1", 2, "simA", "sell", "0.75", "62970"))
	ev("unwind-1", bus.KindChildRejected, 120, func(m *bus.EventMsg) {
		m.Rejection = &bus.RejectionInfo{Venue: "simB", Check: "participation", Reason: "room 0.00 of cap 0.10",
			Price: dec("62970"), Qty: dec("0.5")}
	})
	ev("unwind-1", bus.KindSliceShort, 120, func(m *bus.EventMsg) {
		m.Short = &bus.ShortInfo{Shortfall: dec("1.25"), Placed: dec("0.75"),
			Venues: []bus.VenueShort{{Venue: "simB", Reason: "no participation headroom"}}}
	})
	ev("unwind-1", bus.KindDone, 240, func(m *bus.EventMsg) {
		m.Summary = &bus.SummaryInfo{State: "done", Filled: dec("2.5"), Unfilled: dec("0.5"), MarketVWAP: dec("62985.1"),
			MaxParticipation: dec("0.0912"), ChildOrders: 3, Fills: 3, Rejections: 1, Reason: "end of window"}
	})
	ev("accumulate-1", bus.KindAccepted, 30, func(m *bus.EventMsg) {
		m.Parent = &bus.ParentInfo{Side: "buy", Symbol: "ETHUSDT", QuoteAsset: "USDT", Quantity: dec("10"), Strategy: "vwap",
			Start: at(30), End: at(630), ArrivalPrice: dec("2400"), SlippageBandBps: dec("50"),
			MaxParticipation: dec("0.05"), Venues: []string{"simA"}}
	})
	ev("accumulate-1", bus.KindSlice, 90, func(m *bus.EventMsg) {
		m.Slice = &bus.SliceInfo{Seq: 1, Target: dec("4"), Filled: dec("0"), Shortfall: dec("4")}
	})
	ev("accumulate-1", bus.KindChildPlaced, 90, child("accumulate-1", 1, "simA", "buy", "2", "2401.5"))
	ev("accumulate-1", bus.KindPaused, 135, nil)
	ev("accumulate-1", bus.KindResumed, 165, nil)
	ev("accumulate-1", bus.KindSlice, 165, func(m *bus.EventMsg) {
		m.Slice = &bus.SliceInfo{Seq: 2, Target: dec("6"), Filled: dec("2"), Shortfall: dec("4")}
	})
	ev("accumulate-1", bus.KindChildPlaced, 165, child("accumulate-1", 2, "simA", "buy", "3", "2403"))
	ev("accumulate-1", bus.KindDone, 210, func(m *bus.EventMsg) {
		m.Summary = &bus.SummaryInfo{State: "cancelled", Filled: dec("5"), Unfilled: dec("5"), MarketVWAP: dec("2402.25"),
			MaxParticipation: dec("0.0431"), ChildOrders: 2, Fills: 2, Rejections: 0, Reason: "kill switch"}
	})
	fill := func(parent string, slice int, venue, trade, side, symbol, price, qty, fee string, sec int) {
		out = append(out, recorded{fill: &bus.FillMsg{Schema: bus.FillSchema, ParentID: parent,
			ClientID: fmt.Sprintf("%s-%d-%s-0", parent, slice, venue), OrderID: "o-" + trade, Venue: venue, TradeID: trade,
			Symbol: symbol, Side: side, Price: dec(price), Qty: dec(qty), Fee: dec(fee), FeeAsset: "USDT",
			Liquidity: "taker", Time: at(sec)}})
	}
	fill("unwind-1", 1, "simA", "a-1", "sell", "BTCUSDT", "62990.5", "1.25", "3.149525", 61)
	fill("unwind-1", 1, "simB", "b-1", "sell", "BTCUSDT", "62980", "0.5", "1.5745", 62)
	fill("accumulate-1", 1, "simA", "e-1", "buy", "ETHUSDT", "2401.5", "2", "0.9606", 91)
	fill("unwind-1", 2, "simA", "a-2", "sell", "BTCUSDT", "62970.25", "0.75", "1.8891075", 121)
	fill("accumulate-1", 2, "simA", "e-2", "buy", "ETHUSDT", "2403", "3", "1.4418", 166)
	return out
}

// startNATS runs a nats-server with JetStream on 127.0.0.1:port (0: any
// free port) storing under dir.
func startNATS(t *testing.T, dir string, port int) *natsserver.Server {
	t.Helper()
	if port == 0 {
		port = -1
	}
	srv, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir,
		NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		t.Fatal("nats-server not ready after 10s")
	}
	return srv
}

func natsURL(srv *natsserver.Server) string {
	return fmt.Sprintf("nats://127.0.0.1:%d", srv.Addr().(*net.TCPAddr).Port)
}

// publisher connects to url with the bus's own connection and publisher,
// which create the streams.
func publisher(t *testing.T, url string) (*bus.Publisher, func()) {
	t.Helper()
	c, err := bus.Connect(context.Background(), bus.Options{URL: url, Name: "watch-test"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return bus.NewPublisher(c.JS), c.Close
}

func publish(t *testing.T, p *bus.Publisher, r recorded) {
	t.Helper()
	var err error
	if r.fill != nil {
		err = p.PublishFill(context.Background(), *r.fill)
	} else {
		err = p.PublishEvent(context.Background(), *r.event)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// runWatchCmd runs "blockexec watch" with args and returns stdout and stderr.
func runWatchCmd(t *testing.T, args ...string) (string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRoot()
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"watch"}, args...))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := root.ExecuteContext(ctx); err != nil {
		t.Fatalf("watch %v: %v\nstderr: %s", args, err, errOut.String())
	}
	return out.String(), errOut.String()
}

// TestWatch_RecordedStreamMatchesGoldenFiles publishes a recorded stream
// and prints its history as lines and as JSON, for all parents and for one.
func TestWatch_RecordedStreamMatchesGoldenFiles(t *testing.T) {
	srv := startNATS(t, t.TempDir(), 0)
	defer srv.Shutdown()
	url := natsURL(srv)
	p, closePub := publisher(t, url)
	for _, r := range recordedStream() {
		publish(t, p, r)
	}
	closePub()

	cases := []struct{ name, golden string }{
		{"plain all", "watch-plain.golden"},
		{"json all", "watch-json.golden"},
		{"plain one parent", "watch-parent.golden"},
	}
	args := [][]string{
		{"--nats", url, "--since", "all", "--plain", "--no-follow"},
		{"--nats", url, "--since", "all", "--json", "--no-follow"},
		{"--nats", url, "--since", "1h", "--parent", "accumulate-1", "--no-follow"}, // not a terminal: lines
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut := runWatchCmd(t, args[i]...)
			if errOut != "" {
				t.Errorf("stderr: %s", errOut)
			}
			golden(t, tc.golden, []byte(out))
		})
	}
	t.Run("nothing new", func(t *testing.T) {
		out, _ := runWatchCmd(t, "--nats", url, "--no-follow")
		if out != "" {
			t.Errorf("--since now --no-follow printed %q, want nothing", out)
		}
	})
}

// TestWatch_FrameMatchesGoldenFile folds the recorded stream, halfway and
// to the end, and draws the terminal view; a short terminal counts the
// parents that do not fit.
func TestWatch_FrameMatchesGoldenFile(t *testing.T) {
	msgs := recordedStream()
	fold := func(until time.Time) *watchState {
		s := newWatchState()
		history := make([]watchMsg, len(msgs))
		for i, r := range msgs {
			history[i] = toWatchMsg(t, r, uint64(i+1))
		}
		sortHistory(history)
		for _, m := range history {
			if tm, _ := peek(m); tm.After(until) {
				continue
			}
			foldRaw(t, s, m)
		}
		return s
	}
	h := frameHeader{Source: redactNATSURL("nats://watch:s3cret@127.0.0.1:4222"), Filter: "all parents", Since: "the beginning",
		Status: "connected"}
	var got bytes.Buffer
	frames := []struct {
		name          string
		until         time.Time
		width, height int
		header        frameHeader
	}{
		{"halfway, 160x40", watchT0.Add(150 * time.Second), 160, 40, h},
		{"the end, 160x40", watchT0.Add(time.Hour), 160, 40, h},
		{"reconnecting, 100x5", watchT0.Add(150 * time.Second), 100, 5,
			frameHeader{Source: h.Source, Filter: h.Filter, Since: h.Since, Status: "reconnecting…",
				Caption: "nats: disconnected (EOF); reconnecting…"}},
	}
	for _, f := range frames {
		fmt.Fprintf(&got, "--- %s\n", f.name)
		for _, l := range renderFrame(fold(f.until), f.header, f.width, f.height) {
			if n := len([]rune(l)); n >= f.width {
				t.Errorf("%s: line of %d runes on a %d-column terminal: %s", f.name, n, f.width, l)
			}
			got.WriteString(l + "\n")
		}
	}
	if strings.Contains(got.String(), "s3cret") {
		t.Error("the frame shows the NATS password")
	}
	golden(t, "watch-frame.golden", got.Bytes())
}

func toWatchMsg(t *testing.T, r recorded, seq uint64) watchMsg {
	t.Helper()
	var v any = r.event
	stream := bus.EventsStream
	if r.fill != nil {
		v, stream = r.fill, bus.FillsStream
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return watchMsg{stream: stream, seq: seq, data: b}
}

func foldRaw(t *testing.T, s *watchState, m watchMsg) {
	t.Helper()
	w := &watcher{state: s, opts: watchOpts{mode: modeTTY}, screen: &screen{out: &bytes.Buffer{}}}
	if err := w.handle(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

// TestWatch_ShortfallMatchesTheReport records the stream in a ledger and
// checks the watcher's average price and shortfall against the report's.
func TestWatch_ShortfallMatchesTheReport(t *testing.T) {
	ctx := context.Background()
	l, err := settlement.OpenSQLite(filepath.Join(t.TempDir(), "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := newWatchState()
	for _, r := range recordedStream() {
		if r.fill != nil {
			_, err = l.RecordFill(ctx, *r.fill)
			s.foldFill(*r.fill)
		} else {
			_, err = l.RecordEvent(ctx, *r.event)
			s.foldEvent(*r.event)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"unwind-1", "accumulate-1"} {
		rep, err := l.Report(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		p := s.parents[id]
		if !p.ShortfallBps().Equal(rep.ShortfallBps) || !p.AvgPrice().Equal(rep.AveragePrice) || !p.Filled.Equal(rep.FilledQuantity) {
			t.Errorf("%s: watch filled %s avg %s shortfall %s bps; report filled %s avg %s shortfall %s bps", id,
				p.Filled, p.AvgPrice(), p.ShortfallBps(), rep.FilledQuantity, rep.AveragePrice, rep.ShortfallBps)
		}
		if p.ShortfallBps().Sign() <= 0 {
			t.Errorf("%s: shortfall %s bps, want a cost (positive): sold below / bought above arrival", id, p.ShortfallBps())
		}
	}
}

// lockedBuffer is an io.Writer the test reads while the watcher writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func (b *lockedBuffer) lines() []string {
	s := strings.TrimSuffix(b.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: still waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWatch_ResumesAfterNATSRestartWithoutRepeats starts a watcher, restarts
// the server on the same port and store, and expects every message printed
// once, in order, and the reconnect notices on stderr.
func TestWatch_ResumesAfterNATSRestartWithoutRepeats(t *testing.T) {
	dir := t.TempDir()
	srv := startNATS(t, dir, 0)
	port := srv.Addr().(*net.TCPAddr).Port
	url := natsURL(srv)
	msgs := recordedStream()
	before, after := msgs[:4], msgs[4:] // unwind-1 accepted, slice, two children; the rest after the restart

	p, closePub := publisher(t, url)
	for _, r := range before {
		publish(t, p, r)
	}

	var out, errOut lockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	opts := watchOpts{url: "nats://watch:s3cret@" + strings.TrimPrefix(url, "nats://"), start: watchStart{all: true},
		mode: modePlain, follow: true, reconnectWait: 50 * time.Millisecond, lookupTimeout: time.Second}
	// The server has no users: credentials in the URL are ignored, and
	// must not be printed.
	go func() { done <- runWatch(ctx, opts, &out, &errOut) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("watch returned %v after Ctrl-C, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("watch did not exit within 10s of Ctrl-C")
		}
	}()
	waitFor(t, "the history", 10*time.Second, func() bool { return len(out.lines()) == len(before) })

	closePub()
	srv.Shutdown()
	srv.WaitForShutdown()
	waitFor(t, "the disconnect notice", 10*time.Second, func() bool { return strings.Contains(errOut.String(), "reconnecting…") })
	srv = startNATS(t, dir, port)
	defer srv.Shutdown()
	waitFor(t, "the reconnect notice", 10*time.Second, func() bool { return strings.Contains(errOut.String(), "reconnected") })

	p, closePub = publisher(t, url)
	defer closePub()
	// One at a time, each awaited: fills and events are two streams, so
	// only this makes the live order the publish order.
	for i, r := range after {
		publish(t, p, r)
		n := len(before) + i + 1
		waitFor(t, fmt.Sprintf("message %d of %d", n, len(msgs)), 20*time.Second, func() bool { return len(out.lines()) >= n })
	}
	// Anything doubled would have arrived by now behind the last message.
	want := plainLines(msgs)
	got := out.lines()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("watch printed\n%s\nwant each message once, in order:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if strings.Contains(errOut.String(), "s3cret") || strings.Contains(out.String(), "s3cret") {
		t.Error("the NATS password was printed")
	}
}

// plainLines is what --plain prints for msgs in this order.
func plainLines(msgs []recorded) []string {
	s := newWatchState()
	var out []string
	for _, r := range msgs {
		if r.fill != nil {
			out = append(out, plainFillLine(*r.fill, s.foldFill(*r.fill)))
		} else {
			s.foldEvent(*r.event)
			out = append(out, plainEventLine(*r.event))
		}
	}
	return out
}

// TestWatch_LateParentTakesItsTermsFromTheBus starts watching after a
// parent was accepted: its first fill is shown against the size and
// arrival price looked up on the bus.
func TestWatch_LateParentTakesItsTermsFromTheBus(t *testing.T) {
	srv := startNATS(t, t.TempDir(), 0)
	defer srv.Shutdown()
	url := natsURL(srv)
	msgs := recordedStream()
	p, closePub := publisher(t, url)
	defer closePub()
	publish(t, p, msgs[0]) // unwind-1 accepted

	var out, errOut lockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	opts := watchOpts{url: url, mode: modeJSON, follow: true, reconnectWait: 50 * time.Millisecond, lookupTimeout: time.Second,
		ready: func() { close(ready) }}
	go func() { done <- runWatch(ctx, opts, &out, &errOut) }()
	// "Now" is when the consumers start: publish after that.
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher's consumers did not start within 10s")
	}
	var fill recorded
	for _, r := range msgs {
		if r.fill != nil {
			fill = r
			break
		}
	}
	publish(t, p, fill)
	waitFor(t, "the fill", 10*time.Second, func() bool { return len(out.lines()) == 1 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch did not exit within 10s")
	}
	line := out.lines()[0]
	for _, want := range []string{`"stream":"BLOCKEXEC_FILLS"`, `"joined_late":true`, `"quantity":"3"`, `"arrival_price":"63000"`,
		`"shortfall_bps":"1.5079"`} {
		if !strings.Contains(line, want) {
			t.Errorf("line %s lacks %s", line, want)
		}
	}
}

func TestWatch_ParsesSinceAndRedactsURLs(t *testing.T) {
	now := time.Date(2024, 10, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want watchStart
		err  bool
	}{
		{"", watchStart{}, false},
		{"now", watchStart{}, false},
		{"all", watchStart{all: true}, false},
		{"90m", watchStart{at: now.Add(-90 * time.Minute)}, false},
		{"2024-10-01T08:00:00Z", watchStart{at: watchT0}, false},
		{"-1h", watchStart{}, true},
		{"yesterday", watchStart{}, true},
	} {
		got, err := parseSince(tc.in, now)
		if (err != nil) != tc.err || got.all != tc.want.all || !got.at.Equal(tc.want.at) {
			t.Errorf("parseSince(%q) = %+v, %v; want %+v (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                          "nats://127.0.0.1:4222",
		"nats://alice:s3cret@a:4222,nats://tok3n@b:4222": "nats://alice:xxxxx@a:4222,nats://xxxxx@b:4222",
		"tls://u:p@[::1]:4222":                           "tls://u:xxxxx@[::1]:4222",
	} {
		if got := redactNATSURL(in); got != want {
			t.Errorf("redactNATSURL(%q) = %q, want %q", in, got, want)
		}
	}
}
