package service

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/engine"
	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/venues"
)

// Metrics counts what the engine does and how the API is used, and serves
// the counts for Prometheus from a registry of its own (client_golang):
// nothing is global. It learns from the engine through WrapPublisher and
// WrapVenue, and from the HTTP API that NewHTTP builds. Safe for
// concurrent use.
type Metrics struct {
	clk clock.Clock
	reg *prometheus.Registry

	childOrders   *family // counter {venue}
	rejections    *family // counter {venue, check}
	unknown       *family // counter {venue}
	fills         *family // counter {venue}
	filledQty     *family // counter {venue, symbol, side}
	orderEvents   *family // counter {kind}
	ordersEnded   *family // counter {state}
	publishErrors *family // counter {message}
	venueSeconds  *family // histogram {venue, method}
	venueErrors   *family // counter {venue, method, kind}
	httpRequests  *family // counter {route, code}
	httpSeconds   *family // histogram {route}
	streams       *family // gauge
}

// Latency buckets, seconds: a venue call or an API request.
var latencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// NewMetrics returns empty metrics that time calls on the wall clock.
func NewMetrics() *Metrics { return NewMetricsOn(clock.Wall{}) }

// NewMetricsOn returns empty metrics that time calls on clk, which should
// be a wall clock: latency is real time even when the engine's is not.
func NewMetricsOn(clk clock.Clock) *Metrics {
	m := &Metrics{clk: clk, reg: prometheus.NewRegistry()}
	add := func(f *family) *family {
		m.reg.MustRegister(f.collector())
		return f
	}
	m.childOrders = add(newFamily("blockexec_child_orders_total", "counter",
		"Child orders placed at a venue (child_placed events).", "venue"))
	m.rejections = add(newFamily("blockexec_child_rejections_total", "counter",
		"Child orders refused, by the risk check that refused them or \"venue\" (child_rejected events).", "venue", "check"))
	m.unknown = add(newFamily("blockexec_child_unknown_total", "counter",
		"Child orders whose outcome was not known when placed (child_unknown events).", "venue"))
	m.fills = add(newFamily("blockexec_fills_total", "counter",
		"Fills published.", "venue"))
	m.filledQty = add(newFamily("blockexec_filled_quantity_total", "counter",
		"Quantity filled, in base units of the symbol.", "venue", "symbol", "side"))
	m.orderEvents = add(newFamily("blockexec_order_events_total", "counter",
		"Parent order events published, by kind (accepted, paused, resumed, amended, done, …).", "kind"))
	m.ordersEnded = add(newFamily("blockexec_orders_ended_total", "counter",
		"Parent orders that ended, by final state (done, cancelled, failed).", "state"))
	m.publishErrors = add(newFamily("blockexec_publish_errors_total", "counter",
		"Fills or events the bus refused (the engine retries; each attempt counts).", "message"))
	m.venueSeconds = add(newHistogram("blockexec_venue_call_seconds",
		"Wall time of venue calls.", latencyBuckets, "venue", "method"))
	m.venueErrors = add(newFamily("blockexec_venue_call_errors_total", "counter",
		"Venue calls that failed: kind reject (a definite refusal), unavailable, or error.", "venue", "method", "kind"))
	m.httpRequests = add(newFamily("blockexec_http_requests_total", "counter",
		"API requests answered, by route and status code.", "route", "code"))
	m.httpSeconds = add(newHistogram("blockexec_http_request_seconds",
		"Wall time of API requests, to the end of the response (an event stream: its whole life).", latencyBuckets, "route"))
	m.streams = add(newFamily("blockexec_event_streams", "gauge",
		"Event streams (GET /v1/orders/{id}/events) open now."))
	m.streams.add(0)
	return m
}

// Handler serves the metrics for Prometheus (its text format, or what the
// scraper asks for).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// now is the metrics' clock.
func (m *Metrics) now() time.Time { return m.clk.Now() }

// request counts one API request.
func (m *Metrics) request(route string, code int, d time.Duration) {
	m.httpRequests.add(1, route, strconv.Itoa(code))
	m.httpSeconds.observe(max(d, 0).Seconds(), route)
}

// WrapPublisher counts what the engine publishes, then passes it on. Only
// what the bus took (stored, or queued by a bus.AsyncPublisher) counts:
// the engine retries a failed publish, and a retry must not count twice;
// what a queue could not store after all counts in the publish errors at
// its Flush. Marks stays reachable when p has it.
func (m *Metrics) WrapPublisher(p engine.Publisher) engine.Publisher {
	c := countingPublisher{m: m, next: p}
	if mk, ok := p.(marker); ok {
		return struct {
			countingPublisher
			marker
		}{c, mk}
	}
	return c
}

// marker is bus.Publisher's report of the last stream sequences written.
type marker interface{ Marks() bus.Marks }

type countingPublisher struct {
	m    *Metrics
	next engine.Publisher
}

func (p countingPublisher) PublishFill(ctx context.Context, f bus.FillMsg) error {
	if err := p.next.PublishFill(ctx, f); err != nil {
		p.m.publishErrors.add(1, "fill")
		return err
	}
	p.m.fills.add(1, f.Venue)
	p.m.filledQty.add(f.Qty.InexactFloat64(), f.Venue, f.Symbol, f.Side)
	return nil
}

// Flush passes a flush on to a queuing publisher (nothing to do for
// another) and counts what could not be stored.
func (p countingPublisher) Flush(ctx context.Context) []bus.PublishFailure {
	f, ok := p.next.(engine.Flusher)
	if !ok {
		return nil
	}
	failed := f.Flush(ctx)
	for _, pf := range failed {
		p.m.publishErrors.add(1, pf.Kind)
	}
	return failed
}

func (p countingPublisher) PublishEvent(ctx context.Context, e bus.EventMsg) error {
	if err := p.next.PublishEvent(ctx, e); err != nil {
		p.m.publishErrors.add(1, "event")
		return err
	}
	m := p.m
	m.orderEvents.add(1, e.Kind)
	switch {
	case e.Kind == bus.KindChildPlaced && e.Child != nil:
		m.childOrders.add(1, e.Child.Venue)
	case e.Kind == bus.KindChildRejected && e.Rejection != nil:
		m.rejections.add(1, e.Rejection.Venue, e.Rejection.Check)
	case e.Kind == bus.KindChildUnknown && e.Child != nil:
		m.unknown.add(1, e.Child.Venue)
	case e.Kind == bus.KindDone && e.Summary != nil:
		m.ordersEnded.add(1, e.Summary.State)
	}
	return nil
}

// WrapVenue times v's calls (Instrument, Book, Tape, Place, Cancel, Order
// and Fills) and counts their failures. The wrapper has exactly v's
// optional powers: those of the engine (FillLister, ClientIDRules,
// ClientIDAlphabet) and of the command (CheckKey, StartStream and Close),
// as callers find them by type assertion.
func (m *Metrics) WrapVenue(v engine.Venue) engine.Venue {
	t := &timedVenue{m: m, v: v, name: v.Name()}
	p := powers{}
	if fl, ok := v.(engine.FillLister); ok {
		p.fills = timedFills{t: t, fl: fl}
	}
	p.rules, _ = v.(engine.ClientIDRules)
	p.alphabet, _ = v.(engine.ClientIDAlphabet)
	p.keys, _ = v.(keyChecker)
	p.stream, _ = v.(streamer)
	return p.compose(t)
}

// keyChecker is a venue that reports on its API key (blockexec keys check).
type keyChecker interface {
	CheckKey(ctx context.Context) (venues.KeyReport, error)
}

// streamer is a venue that follows its own fills on a user data stream.
type streamer interface {
	StartStream(ctx context.Context) error
	Close() error
}

// powers are a venue's optional powers; nil: it lacks that one.
type powers struct {
	fills    engine.FillLister
	rules    engine.ClientIDRules
	alphabet engine.ClientIDAlphabet
	keys     keyChecker
	stream   streamer
}

// compose returns base with exactly the powers that are not nil: one
// struct type per combination, since a method set cannot be chosen at run
// time and claiming a power the venue lacks would mislead the engine.
func (p powers) compose(base engine.Venue) engine.Venue {
	type (
		V = engine.Venue
		F = engine.FillLister
		R = engine.ClientIDRules
		A = engine.ClientIDAlphabet
		K = keyChecker
		S = streamer
	)
	b, f, r, a, k, s := base, p.fills, p.rules, p.alphabet, p.keys, p.stream
	mask := 0
	for i, has := range []bool{f != nil, r != nil, a != nil, k != nil, s != nil} {
		if has {
			mask |= 1 << i
		}
	}
	switch mask {
	case 0b00000:
		return b
	case 0b00001:
		return struct {
			V
			F
		}{b, f}
	case 0b00010:
		return struct {
			V
			R
		}{b, r}
	case 0b00011:
		return struct {
			V
			F
			R
		}{b, f, r}
	case 0b00100:
		return struct {
			V
			A
		}{b, a}
	case 0b00101:
		return struct {
			V
			F
			A
		}{b, f, a}
	case 0b00110:
		return struct {
			V
			R
			A
		}{b, r, a}
	case 0b00111:
		return struct {
			V
			F
			R
			A
		}{b, f, r, a}
	case 0b01000:
		return struct {
			V
			K
		}{b, k}
	case 0b01001:
		return struct {
			V
			F
			K
		}{b, f, k}
	case 0b01010:
		return struct {
			V
			R
			K
		}{b, r, k}
	case 0b01011:
		return struct {
			V
			F
			R
			K
		}{b, f, r, k}
	case 0b01100:
		return struct {
			V
			A
			K
		}{b, a, k}
	case 0b01101:
		return struct {
			V
			F
			A
			K
		}{b, f, a, k}
	case 0b01110:
		return struct {
			V
			R
			A
			K
		}{b, r, a, k}
	case 0b01111:
		return struct {
			V
			F
			R
			A
			K
		}{b, f, r, a, k}
	case 0b10000:
		return struct {
			V
			S
		}{b, s}
	case 0b10001:
		return struct {
			V
			F
			S
		}{b, f, s}
	case 0b10010:
		return struct {
			V
			R
			S
		}{b, r, s}
	case 0b10011:
		return struct {
			V
			F
			R
			S
		}{b, f, r, s}
	case 0b10100:
		return struct {
			V
			A
			S
		}{b, a, s}
	case 0b10101:
		return struct {
			V
			F
			A
			S
		}{b, f, a, s}
	case 0b10110:
		return struct {
			V
			R
			A
			S
		}{b, r, a, s}
	case 0b10111:
		return struct {
			V
			F
			R
			A
			S
		}{b, f, r, a, s}
	case 0b11000:
		return struct {
			V
			K
			S
		}{b, k, s}
	case 0b11001:
		return struct {
			V
			F
			K
			S
		}{b, f, k, s}
	case 0b11010:
		return struct {
			V
			R
			K
			S
		}{b, r, k, s}
	case 0b11011:
		return struct {
			V
			F
			R
			K
			S
		}{b, f, r, k, s}
	case 0b11100:
		return struct {
			V
			A
			K
			S
		}{b, a, k, s}
	case 0b11101:
		return struct {
			V
			F
			A
			K
			S
		}{b, f, a, k, s}
	case 0b11110:
		return struct {
			V
			R
			A
			K
			S
		}{b, r, a, k, s}
	default:
		return struct {
			V
			F
			R
			A
			K
			S
		}{b, f, r, a, k, s}
	}
}

// timedVenue is the engine.Venue part of a wrapped venue.
type timedVenue struct {
	m    *Metrics
	v    engine.Venue
	name string
}

var _ engine.Venue = (*timedVenue)(nil)

func (t *timedVenue) Name() string { return t.name }

func (t *timedVenue) Instrument(ctx context.Context, symbol string) (in market.Instrument, err error) {
	defer t.done("instrument", t.m.clk.Now(), &err)
	return t.v.Instrument(ctx, symbol)
}

func (t *timedVenue) Book(ctx context.Context, symbol string, depth int) (b market.Book, err error) {
	defer t.done("book", t.m.clk.Now(), &err)
	return t.v.Book(ctx, symbol, depth)
}

func (t *timedVenue) Tape(ctx context.Context, symbol string, from, to time.Time) (tp market.Tape, err error) {
	defer t.done("tape", t.m.clk.Now(), &err)
	return t.v.Tape(ctx, symbol, from, to)
}

func (t *timedVenue) Place(ctx context.Context, req market.OrderRequest) (o market.Order, fs []market.Fill, err error) {
	defer t.done("place", t.m.clk.Now(), &err)
	return t.v.Place(ctx, req)
}

func (t *timedVenue) Cancel(ctx context.Context, symbol, clientID string) (o market.Order, err error) {
	defer t.done("cancel", t.m.clk.Now(), &err)
	return t.v.Cancel(ctx, symbol, clientID)
}

func (t *timedVenue) Order(ctx context.Context, symbol, clientID string) (o market.Order, err error) {
	defer t.done("order", t.m.clk.Now(), &err)
	return t.v.Order(ctx, symbol, clientID)
}

// done records a call that started at start and failed with *err, if so.
func (t *timedVenue) done(method string, start time.Time, err *error) {
	t.m.venueSeconds.observe(max(t.m.clk.Now().Sub(start), 0).Seconds(), t.name, method)
	if *err == nil {
		return
	}
	kind := "error"
	switch {
	case venues.IsReject(*err):
		kind = "reject"
	case errors.Is(*err, venues.ErrUnavailable):
		kind = "unavailable"
	}
	t.m.venueErrors.add(1, t.name, method, kind)
}

// timedFills is a wrapped venue's FillLister.
type timedFills struct {
	t  *timedVenue
	fl engine.FillLister
}

func (f timedFills) Fills(ctx context.Context, symbol string, from, to time.Time) (fs []market.Fill, err error) {
	defer f.t.done("fills", f.t.m.clk.Now(), &err)
	return f.fl.Fills(ctx, symbol, from, to)
}
