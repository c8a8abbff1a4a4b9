package service

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/engine"
	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/venues"
)

// metricsVenue is a venue whose calls take what the test says, on a
// manual clock, and fail as told.
type metricsVenue struct {
	clk   *clock.Manual
	took  time.Duration
	fail  map[string]error
	calls []string
}

func (v *metricsVenue) call(method string) error {
	v.calls = append(v.calls, method)
	v.clk.Advance(v.took)
	return v.fail[method]
}

func (v *metricsVenue) Name() string { return "v" }

func (v *metricsVenue) Instrument(context.Context, string) (market.Instrument, error) {
	return market.Instrument{}, v.call("instrument")
}

func (v *metricsVenue) Book(context.Context, string, int) (market.Book, error) {
	return market.Book{}, v.call("book")
}

func (v *metricsVenue) Tape(context.Context, string, time.Time, time.Time) (market.Tape, error) {
	return market.Tape{}, v.call("tape")
}

func (v *metricsVenue) Place(context.Context, market.OrderRequest) (market.Order, []market.Fill, error) {
	return market.Order{}, nil, v.call("place")
}

func (v *metricsVenue) Cancel(context.Context, string, string) (market.Order, error) {
	return market.Order{}, v.call("cancel")
}

func (v *metricsVenue) Order(context.Context, string, string) (market.Order, error) {
	return market.Order{}, v.call("order")
}

// The optional powers, each on its own, recording its calls.
type (
	powerLog      struct{ calls []string }
	fillsPower    struct{ log *powerLog }
	rulesPower    struct{ log *powerLog }
	alphabetPower struct{ log *powerLog }
	keysPower     struct{ log *powerLog }
	streamPower   struct{ log *powerLog }
)

func (p fillsPower) Fills(context.Context, string, time.Time, time.Time) ([]market.Fill, error) {
	p.log.calls = append(p.log.calls, "Fills")
	return nil, nil
}

func (p rulesPower) MaxClientIDLen() int {
	p.log.calls = append(p.log.calls, "MaxClientIDLen")
	return 17
}

func (p alphabetPower) ClientIDAllowed(r rune) bool {
	p.log.calls = append(p.log.calls, "ClientIDAllowed")
	return r == 'a'
}

func (p keysPower) CheckKey(context.Context) (venues.KeyReport, error) {
	p.log.calls = append(p.log.calls, "CheckKey")
	return venues.KeyReport{Venue: "v", Reachable: true}, nil
}

func (p streamPower) StartStream(context.Context) error {
	p.log.calls = append(p.log.calls, "StartStream")
	return nil
}

func (p streamPower) Close() error { p.log.calls = append(p.log.calls, "Close"); return nil }

// powersOf reports which optional powers v shows to a type assertion, as
// compose's mask.
func powersOf(v engine.Venue) int {
	mask := 0
	for i, has := range []bool{
		func() bool { _, ok := v.(engine.FillLister); return ok }(),
		func() bool { _, ok := v.(engine.ClientIDRules); return ok }(),
		func() bool { _, ok := v.(engine.ClientIDAlphabet); return ok }(),
		func() bool { _, ok := v.(keyChecker); return ok }(),
		func() bool { _, ok := v.(streamer); return ok }(),
	} {
		if has {
			mask |= 1 << i
		}
	}
	return mask
}

func TestMetrics_WrapVenueHasExactlyTheVenuesPowers(t *testing.T) {
	ctx := context.Background()
	for mask := range 32 {
		t.Run(fmt.Sprintf("%05b", mask), func(t *testing.T) {
			clk := clock.NewManual(httpT0)
			log := &powerLog{}
			var p powers
			if mask&1 != 0 {
				p.fills = fillsPower{log}
			}
			if mask&2 != 0 {
				p.rules = rulesPower{log}
			}
			if mask&4 != 0 {
				p.alphabet = alphabetPower{log}
			}
			if mask&8 != 0 {
				p.keys = keysPower{log}
			}
			if mask&16 != 0 {
				p.stream = streamPower{log}
			}
			inner := p.compose(&metricsVenue{clk: clk})
			if got := powersOf(inner); got != mask {
				t.Fatalf("compose made a venue with powers %05b", got)
			}
			m := NewMetricsOn(clk)
			w := m.WrapVenue(inner)
			if got := powersOf(w); got != mask {
				t.Fatalf("the wrapper has powers %05b, the venue %05b", got, mask)
			}
			if w.Name() != "v" {
				t.Fatalf("name %q", w.Name())
			}
			var want []string
			if fl, ok := w.(engine.FillLister); ok {
				_, _ = fl.Fills(ctx, "BTCUSDT", httpT0, httpT0)
				want = append(want, "Fills")
			}
			if r, ok := w.(engine.ClientIDRules); ok && r.MaxClientIDLen() == 17 {
				want = append(want, "MaxClientIDLen")
			}
			if a, ok := w.(engine.ClientIDAlphabet); ok && a.ClientIDAllowed('a') {
				want = append(want, "ClientIDAllowed")
			}
			if k, ok := w.(keyChecker); ok {
				if rep, err := k.CheckKey(ctx); err != nil || !rep.Reachable {
					t.Fatalf("CheckKey: %+v %v", rep, err)
				}
				want = append(want, "CheckKey")
			}
			if s, ok := w.(streamer); ok {
				_ = s.StartStream(ctx)
				_ = s.Close()
				want = append(want, "StartStream", "Close")
			}
			if strings.Join(log.calls, ",") != strings.Join(want, ",") {
				t.Fatalf("the venue's powers saw %v, want %v", log.calls, want)
			}
			fills := strings.Contains(scrape(t, m), promLine(`blockexec_venue_call_seconds_count{venue="v",method="fills"} 1`))
			if fills != (mask&1 != 0) {
				t.Fatalf("Fills timed: %v", fills)
			}
		})
	}
}

func TestMetrics_TimesVenueCallsOnTheInjectedClock(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewManual(httpT0)
	v := &metricsVenue{clk: clk, took: 30 * time.Millisecond, fail: map[string]error{
		"place":  &venues.RejectError{Venue: "v", Code: "MIN_NOTIONAL", Reason: "too small"},
		"order":  fmt.Errorf("order: %w", venues.ErrUnavailable),
		"cancel": errors.New("connection reset"),
	}}
	m := NewMetricsOn(clk)
	w := m.WrapVenue(v)
	_, _ = w.Book(ctx, "BTCUSDT", 5)
	_, _ = w.Instrument(ctx, "BTCUSDT")
	_, _ = w.Tape(ctx, "BTCUSDT", httpT0, httpT0)
	if _, _, err := w.Place(ctx, market.OrderRequest{}); !venues.IsReject(err) {
		t.Fatalf("place: the venue's error is not passed on: %v", err)
	}
	_, _ = w.Order(ctx, "BTCUSDT", "x")
	_, _ = w.Cancel(ctx, "BTCUSDT", "x")
	if strings.Join(v.calls, ",") != "book,instrument,tape,place,order,cancel" {
		t.Fatalf("calls %v", v.calls)
	}
	text := scrape(t, m)
	for _, want := range []string{
		`blockexec_venue_call_seconds_bucket{venue="v",method="book",le="0.025"} 0`,
		`blockexec_venue_call_seconds_bucket{venue="v",method="book",le="0.05"} 1`,
		`blockexec_venue_call_seconds_bucket{venue="v",method="book",le="+Inf"} 1`,
		`blockexec_venue_call_seconds_sum{venue="v",method="book"} 0.03`,
		`blockexec_venue_call_seconds_count{venue="v",method="book"} 1`,
		`blockexec_venue_call_seconds_count{venue="v",method="instrument"} 1`,
		`blockexec_venue_call_seconds_count{venue="v",method="tape"} 1`,
		`blockexec_venue_call_seconds_count{venue="v",method="place"} 1`,
		`blockexec_venue_call_seconds_count{venue="v",method="order"} 1`,
		`blockexec_venue_call_seconds_count{venue="v",method="cancel"} 1`,
		`blockexec_venue_call_errors_total{venue="v",method="place",kind="reject"} 1`,
		`blockexec_venue_call_errors_total{venue="v",method="order",kind="unavailable"} 1`,
		`blockexec_venue_call_errors_total{venue="v",method="cancel",kind="error"} 1`,
	} {
		if !strings.Contains(text, promLine(want)+"\n") {
			t.Errorf("no %s in:\n%s", want, text)
		}
	}
	if strings.Contains(text, `kind="error",method="book"`) || strings.Contains(text, `kind="unavailable",method="book"`) ||
		strings.Contains(text, `kind="reject",method="book"`) {
		t.Errorf("a call that succeeded counted as an error:\n%s", text)
	}
}

// flakyPublisher refuses the first n messages.
type flakyPublisher struct{ refuse int }

func (p *flakyPublisher) next() error {
	if p.refuse > 0 {
		p.refuse--
		return errors.New("nats: timeout")
	}
	return nil
}

func (p *flakyPublisher) PublishFill(context.Context, bus.FillMsg) error   { return p.next() }
func (p *flakyPublisher) PublishEvent(context.Context, bus.EventMsg) error { return p.next() }

type markingPublisher struct{ flakyPublisher }

func (markingPublisher) Marks() bus.Marks { return bus.Marks{bus.FillsStream: 7} }

func TestMetrics_CountsWhatTheBusTook(t *testing.T) {
	ctx := context.Background()
	m := NewMetricsOn(clock.NewManual(httpT0))
	inner := &flakyPublisher{refuse: 1}
	p := m.WrapPublisher(inner)
	if _, ok := p.(marker); ok {
		t.Fatal("the wrapper has Marks; the publisher has not")
	}
	placed := bus.EventMsg{ParentID: "c-1", Kind: bus.KindChildPlaced, Seq: 3, Child: &bus.ChildInfo{Venue: "alpha"}}
	if err := p.PublishEvent(ctx, placed); err == nil {
		t.Fatal("the bus's refusal was not passed on")
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(p.PublishEvent(ctx, placed)) // the engine's retry
	must(p.PublishEvent(ctx, bus.EventMsg{Kind: bus.KindAccepted}))
	for _, check := range []string{"band", "band", "venue"} {
		must(p.PublishEvent(ctx, bus.EventMsg{Kind: bus.KindChildRejected, Rejection: &bus.RejectionInfo{Venue: "beta", Check: check}}))
	}
	must(p.PublishEvent(ctx, bus.EventMsg{Kind: bus.KindChildUnknown, Child: &bus.ChildInfo{Venue: "beta"}}))
	must(p.PublishEvent(ctx, bus.EventMsg{Kind: bus.KindDone, Summary: &bus.SummaryInfo{State: "cancelled"}}))
	for _, q := range []string{"0.5", "0.25"} {
		must(p.PublishFill(ctx, bus.FillMsg{Venue: "alpha", Symbol: "BTCUSDT", Side: "sell", Qty: decimal.RequireFromString(q)}))
	}
	text := scrape(t, m)
	for _, want := range []string{
		`blockexec_publish_errors_total{message="event"} 1`,
		`blockexec_child_orders_total{venue="alpha"} 1`,
		`blockexec_order_events_total{kind="child_placed"} 1`,
		`blockexec_order_events_total{kind="accepted"} 1`,
		`blockexec_child_rejections_total{venue="beta",check="band"} 2`,
		`blockexec_child_rejections_total{venue="beta",check="venue"} 1`,
		`blockexec_child_unknown_total{venue="beta"} 1`,
		`blockexec_orders_ended_total{state="cancelled"} 1`,
		`blockexec_fills_total{venue="alpha"} 2`,
		`blockexec_filled_quantity_total{venue="alpha",symbol="BTCUSDT",side="sell"} 0.75`,
	} {
		if !strings.Contains(text, promLine(want)+"\n") {
			t.Errorf("no %s in:\n%s", want, text)
		}
	}
	mp := m.WrapPublisher(&markingPublisher{})
	if mk, ok := mp.(marker); !ok || mk.Marks()[bus.FillsStream] != 7 {
		t.Fatal("the wrapper hides the publisher's Marks")
	}
}

var (
	sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? (\S+)$`)
	helpLine   = regexp.MustCompile(`^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$`)
	typeLine   = regexp.MustCompile(`^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$`)
)

func TestMetrics_TextFormatIsWellFormed(t *testing.T) {
	clk := clock.NewManual(httpT0)
	m := NewMetricsOn(clk)
	w := m.WrapVenue(&metricsVenue{clk: clk, took: time.Second})
	p := m.WrapPublisher(&flakyPublisher{})
	_ = p.PublishFill(context.Background(), bus.FillMsg{Venue: "odd \"name\"\\\nhere", Symbol: "BTCUSDT", Side: "buy", Qty: decimal.New(1, -8)})
	_, _ = w.Book(context.Background(), "BTCUSDT", 1)
	m.request("GET /v1/orders", 200, 3*time.Millisecond)
	text := scrape(t, m)
	if !strings.Contains(text, `venue="odd \"name\"\\\nhere"`) {
		t.Fatalf("a label value is not escaped:\n%s", text)
	}
	typed := map[string]string{}
	var lastFamily string
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		switch {
		case helpLine.MatchString(line):
			name := helpLine.FindStringSubmatch(line)[1]
			if name <= lastFamily {
				t.Errorf("family %s after %s: not sorted", name, lastFamily)
			}
			lastFamily = name
		case typeLine.MatchString(line):
			sm := typeLine.FindStringSubmatch(line)
			if sm[1] != lastFamily {
				t.Errorf("TYPE of %s under the HELP of %s", sm[1], lastFamily)
			}
			typed[sm[1]] = sm[2]
		case sampleLine.MatchString(line):
			sm := sampleLine.FindStringSubmatch(line)
			name := sm[1]
			if typed[lastFamily] == "histogram" {
				name = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
			}
			if name != lastFamily {
				t.Errorf("sample %s in family %s", sm[1], lastFamily)
			}
			if _, err := strconv.ParseFloat(strings.Replace(sm[len(sm)-1], "+Inf", "Inf", 1), 64); err != nil {
				t.Errorf("value of %q: %v", line, err)
			}
		default:
			t.Errorf("not a line of the text format: %q", line)
		}
	}
	for _, want := range []string{
		`blockexec_venue_call_seconds_bucket{venue="v",method="book",le="0.5"} 0`,
		`blockexec_venue_call_seconds_bucket{venue="v",method="book",le="1"} 1`,
		`blockexec_http_request_seconds_bucket{route="GET /v1/orders",le="0.0025"} 0`,
		`blockexec_http_request_seconds_bucket{route="GET /v1/orders",le="0.005"} 1`,
		`blockexec_http_requests_total{route="GET /v1/orders",code="200"} 1`,
		`blockexec_filled_quantity_total{venue="odd \"name\"\\\nhere",symbol="BTCUSDT",side="buy"} 1e-08`,
		`blockexec_event_streams 0`,
	} {
		if !strings.Contains(text, promLine(want)+"\n") {
			t.Errorf("no %s in:\n%s", want, text)
		}
	}
}

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4; charset=utf-8") {
		t.Fatalf("Content-Type %q", ct)
	}
	return rec.Body.String()
}

// promLine writes a sample line's labels as client_golang does: sorted by
// name, le last.
func promLine(line string) string {
	open, end := strings.IndexByte(line, '{'), strings.LastIndexByte(line, '}')
	if open < 0 || end < open {
		return line
	}
	labels := labelPair.FindAllString(line[open+1:end], -1)
	sort.SliceStable(labels, func(i, j int) bool {
		li, lj := labels[i], labels[j]
		if strings.HasPrefix(li, "le=") || strings.HasPrefix(lj, "le=") {
			return strings.HasPrefix(lj, "le=") && !strings.HasPrefix(li, "le=")
		}
		return li < lj
	})
	return line[:open+1] + strings.Join(labels, ",") + line[end:]
}

var labelPair = regexp.MustCompile(`[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*"`)
