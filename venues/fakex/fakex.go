// Package fakex is what the protocol fakes of real exchanges share: a
// loopback HTTP server that can go dark, injected faults (an order accepted
// and then a 5xx, a 5xx, a timeout, a rate limit, a ban), a request budget
// per window, and the sim venue's tape cut into public trades. Each fake
// (venues/binance/binancefake, …) speaks its exchange's paths, JSON, auth
// and error bodies on top of it, and matches orders on a sim venue.
package fakex

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server is an HTTP server on 127.0.0.1 with a random port.
type Server struct {
	ln     net.Listener
	srv    *http.Server
	dark   atomic.Bool
	mu     sync.Mutex
	onDark []func()
	stop   chan struct{} // closed by Close: releases requests held by a timeout fault
	once   sync.Once
	done   chan struct{}
}

// Start serves h on a fresh loopback port.
func Start(h http.Handler) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fake exchange: listen: %w", err)
	}
	s := &Server{ln: ln, stop: make(chan struct{}), done: make(chan struct{})}
	s.srv = &http.Server{Handler: s.gate(h), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln) // returns http.ErrServerClosed on Close
	}()
	return s, nil
}

// URL is the server's base URL, http://127.0.0.1:port.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Addr is host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// SetDark makes the server drop every connection without an answer (true)
// or serve again (false): an exchange that has gone dark. Going dark also
// runs the OnDark hooks, which close long-lived connections (WebSockets).
func (s *Server) SetDark(dark bool) {
	s.dark.Store(dark)
	if !dark {
		return
	}
	s.mu.Lock()
	hooks := append([]func(){}, s.onDark...)
	s.mu.Unlock()
	for _, h := range hooks {
		h()
	}
}

// OnDark registers f to run whenever the server goes dark.
func (s *Server) OnDark(f func()) {
	s.mu.Lock()
	s.onDark = append(s.onDark, f)
	s.mu.Unlock()
}

// Dark reports whether the server is dark.
func (s *Server) Dark() bool { return s.dark.Load() }

// Stopping is closed when the server closes.
func (s *Server) Stopping() <-chan struct{} { return s.stop }

// Close stops the server and waits for it.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.stop)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			_ = s.srv.Close()
		}
		<-s.done
	})
}

// gate drops the connection of every request while the server is dark.
func (s *Server) gate(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.dark.Load() {
			Drop(w)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Drop closes the request's connection without writing a response.
func Drop(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler) // net/http closes the connection
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// Kind is a fault's kind. The zero value is invalid.
type Kind int8

const (
	// AcceptThen5xx lets the exchange process the request (an order is
	// placed), then answers 503 instead of the result: the client cannot
	// know what happened.
	AcceptThen5xx Kind = iota + 1
	// ServerError answers 500 without processing the request.
	ServerError
	// Timeout processes nothing and holds the request until the client
	// gives up (or the server closes).
	Timeout
	// AcceptThenTimeout processes the request, then holds the answer until
	// the client gives up.
	AcceptThenTimeout
	// RateLimited answers the exchange's 429 with Retry-After.
	RateLimited
	// Banned answers the exchange's ban (Binance: 418) with Retry-After.
	Banned
)

var kindNames = map[Kind]string{AcceptThen5xx: "accept-then-5xx", ServerError: "5xx", Timeout: "timeout",
	AcceptThenTimeout: "accept-then-timeout", RateLimited: "rate-limited", Banned: "banned"}

// String names the kind.
func (k Kind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("kind(%d)", int8(k))
}

// Fault is one injected failure.
type Fault struct {
	Kind Kind
	// Times is how many matching requests it hits; 0 is once.
	Times int
	// Method and Path select requests; empty matches any. Path is the
	// exact URL path (e.g. /api/v3/order).
	Method, Path string
	// RetryAfter is what a rate limit or ban tells the client; default 1 m.
	RetryAfter time.Duration
}

func (f Fault) matches(r *http.Request) bool {
	return (f.Method == "" || f.Method == r.Method) && (f.Path == "" || f.Path == r.URL.Path)
}

// Protocol writes an exchange's own error answers.
type Protocol interface {
	// WriteServerError answers an internal error (a 5xx).
	WriteServerError(w http.ResponseWriter, status int)
	// WriteRateLimited answers too many requests (a 429).
	WriteRateLimited(w http.ResponseWriter, retryAfter time.Duration)
	// WriteBanned answers a ban (Binance's 418; a 429 or 403 elsewhere).
	WriteBanned(w http.ResponseWriter, retryAfter time.Duration)
}

// Faults is a queue of injected faults, applied in the order added. Safe
// for concurrent use.
type Faults struct {
	mu     sync.Mutex
	queue  []*pending
	hits   map[Kind]int
	proto  Protocol
	stopC  <-chan struct{}
	banned time.Time // a ban answers every request until then (wall time)
	now    func() time.Time
}

type pending struct {
	f    Fault
	left int
}

// NewFaults returns an empty queue answering in proto's words. stop
// releases held requests (Server.Stopping); now is the clock that times
// bans: the market clock the client waits on, so that a ban ends when the
// client has waited it out, in a virtual-time run too.
func NewFaults(proto Protocol, stop <-chan struct{}, now func() time.Time) *Faults {
	return &Faults{proto: proto, stopC: stop, hits: map[Kind]int{}, now: now}
}

// Add queues f.
func (q *Faults) Add(f Fault) {
	if f.Times <= 0 {
		f.Times = 1
	}
	if f.RetryAfter <= 0 {
		f.RetryAfter = time.Minute
	}
	q.mu.Lock()
	q.queue = append(q.queue, &pending{f: f, left: f.Times})
	q.mu.Unlock()
}

// Clear drops every queued fault and lifts a ban.
func (q *Faults) Clear() {
	q.mu.Lock()
	q.queue, q.banned = nil, time.Time{}
	q.mu.Unlock()
}

// Hits returns how many requests faults of kind k have hit.
func (q *Faults) Hits(k Kind) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.hits[k]
}

// take returns the first queued fault matching r, using one of its hits.
func (q *Faults) take(r *http.Request) (Fault, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, p := range q.queue {
		if !p.f.matches(r) {
			continue
		}
		p.left--
		if p.left == 0 {
			q.queue = append(q.queue[:i], q.queue[i+1:]...)
		}
		q.hits[p.f.Kind]++
		return p.f, true
	}
	return Fault{}, false
}

// Wrap applies the queued faults to the requests h serves.
func (q *Faults) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q.mu.Lock()
		until := q.banned
		q.mu.Unlock()
		if now := q.now(); now.Before(until) {
			q.proto.WriteBanned(w, until.Sub(now).Round(time.Second))
			return
		}
		f, ok := q.take(r)
		if !ok {
			h.ServeHTTP(w, r)
			return
		}
		switch f.Kind {
		case AcceptThen5xx:
			h.ServeHTTP(discard(), r)
			q.proto.WriteServerError(w, http.StatusServiceUnavailable)
		case ServerError:
			q.proto.WriteServerError(w, http.StatusInternalServerError)
		case AcceptThenTimeout:
			h.ServeHTTP(discard(), r)
			q.hold(r)
			Drop(w)
		case Timeout:
			q.hold(r)
			Drop(w)
		case RateLimited:
			q.proto.WriteRateLimited(w, f.RetryAfter)
		case Banned:
			q.mu.Lock()
			q.banned = q.now().Add(f.RetryAfter)
			q.mu.Unlock()
			q.proto.WriteBanned(w, f.RetryAfter)
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// hold blocks until the client gives up on r or the server stops.
func (q *Faults) hold(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-q.stopC:
	}
}

// discard is a ResponseWriter that keeps nothing: the answer the client
// never receives.
func discard() http.ResponseWriter { return &sink{h: http.Header{}} }

type sink struct{ h http.Header }

func (s *sink) Header() http.Header         { return s.h }
func (s *sink) Write(b []byte) (int, error) { return len(b), nil }
func (s *sink) WriteHeader(int)             {}

// Budget counts a cost per fixed window of a clock (a Binance minute of
// request weight, say). Safe for concurrent use.
type Budget struct {
	mu     sync.Mutex
	window time.Duration
	start  time.Time
	used   int64
}

// NewBudget returns a budget that resets every window.
func NewBudget(window time.Duration) *Budget { return &Budget{window: window} }

// Spend adds cost at now and returns what the window has used, this
// included.
func (b *Budget) Spend(now time.Time, cost int64) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if w := now.Truncate(b.window); !w.Equal(b.start) {
		b.start, b.used = w, 0
	}
	b.used += cost
	return b.used
}

// Used returns what the window containing now has used.
func (b *Budget) Used(now time.Time) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !now.Truncate(b.window).Equal(b.start) {
		return 0
	}
	return b.used
}
