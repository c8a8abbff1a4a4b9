package service

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/blockexec/blockexec/api"
	"github.com/blockexec/blockexec/clock"
)

// api.CodeMethodNotAllowed is the code of a 405: a route's path with a method
// it does not take. (Not in package api's codes, which are the
// operations' errors.)

// Heartbeat is how often an event stream sends a comment line, so that
// the client and any proxy between know it is alive while the order is
// quiet.
const Heartbeat = 15 * time.Second

// Defaults of an HTTPConfig's zero fields for event streams.
const (
	// DefaultMaxStreams is how many event streams one key may hold open.
	DefaultMaxStreams = 8
	// DefaultStreamWriteTimeout bounds each write of an event stream: a
	// client that stops reading is dropped when its buffers are full.
	DefaultStreamWriteTimeout = 10 * time.Second
)

// HTTPConfig configures the HTTP API. Zero fields take the defaults noted.
type HTTPConfig struct {
	// MaxBody is the largest request body, in bytes; default DefaultMaxBody.
	MaxBody int
	// Log gets a debug line per request (method, path, status, key id,
	// latency; never a header value, a body or a signature) and internal
	// errors at error level.
	Log zerolog.Logger
	// Metrics counts the requests and is served at /metrics; default a
	// registry of the API's own (then it has no engine counts).
	Metrics *Metrics
	// Clock is the wall clock: latencies and the event streams'
	// heartbeats. Default clock.Wall{}.
	Clock clock.Clock
	// Health reports on the engine and the bus for /healthz; nil: always ok.
	// The kill switch's state is added to its checks.
	Health func() api.Health
	// SeparateMetrics leaves /metrics off this handler (a 404): the caller
	// serves Metrics.Handler on a listener of its own.
	SeparateMetrics bool
	// MaxStreams is how many event streams one key may hold open at once;
	// one more is a 429. Default DefaultMaxStreams.
	MaxStreams int
	// StreamWriteTimeout bounds each write of an event stream; default
	// DefaultStreamWriteTimeout.
	StreamWriteTimeout time.Duration
	// Closing, once closed, ends every event stream: a server shutting
	// down does not wait for them (other requests finish as usual).
	Closing <-chan struct{}
}

// server answers the API's routes.
type server struct {
	desk         *Desk
	keys         *Keyring
	max          int
	log          zerolog.Logger
	metrics      *Metrics
	clk          clock.Clock
	health       func() api.Health
	streams      *streamLimit
	writeTimeout time.Duration
	closing      <-chan struct{}
}

// route is one operation of the API. routes is the one table of them:
// NewHTTP serves it and a test holds api/openapi.yaml to it.
type route struct {
	method, path string
	scope        string   // "" for none: no authentication
	query        []string // the query parameters it takes
	serve        func(s *server, w http.ResponseWriter, rq *request)
}

// request is a request past authentication.
type request struct {
	r      *http.Request
	body   []byte
	key    string // the authenticated key's id
	caller Caller
}

func routes() []route {
	return []route{
		{http.MethodPost, "/v1/orders", ScopeTrade, nil, reply((*server).submit)},
		{http.MethodGet, "/v1/orders", ScopeRead, []string{"state"}, reply((*server).list)},
		{http.MethodGet, "/v1/orders/{id}", ScopeRead, nil, reply((*server).get)},
		{http.MethodPatch, "/v1/orders/{id}", ScopeTrade, nil, reply((*server).amend)},
		{http.MethodPost, "/v1/orders/{id}/pause", ScopeTrade, nil, reply((*server).pause)},
		{http.MethodPost, "/v1/orders/{id}/resume", ScopeTrade, nil, reply((*server).resume)},
		{http.MethodPost, "/v1/orders/{id}/cancel", ScopeTrade, nil, reply((*server).cancel)},
		{http.MethodGet, "/v1/orders/{id}/fills", ScopeRead, nil, reply((*server).fills)},
		{http.MethodGet, "/v1/orders/{id}/events", ScopeRead, nil, (*server).events},
		{http.MethodPost, "/v1/kill", ScopeAdmin, nil, reply((*server).kill)},
		{http.MethodDelete, "/v1/kill", ScopeAdmin, nil, reply((*server).releaseKill)},
		{http.MethodGet, "/v1/whoami", ScopeRead, nil, reply((*server).whoami)},
		{http.MethodGet, "/healthz", "", nil, reply((*server).healthz)},
		// Unsigned, as Prometheus scrapes: aggregate counts by venue, check
		// and route, no client, order or key. Expose it to the monitoring
		// network only (HTTPConfig.SeparateMetrics).
		{http.MethodGet, metricsPath, "", nil, func(s *server, w http.ResponseWriter, rq *request) {
			s.metrics.Handler().ServeHTTP(w, rq.r)
		}},
	}
}

const metricsPath = "/metrics"

// NewHTTP returns the HTTP JSON API over a desk: the routes of the table
// above on a ServeMux, each signed request authenticated by keys, and a
// JSON 404 or 405 for anything else.
func NewHTTP(d *Desk, keys *Keyring, cfg HTTPConfig) http.Handler {
	s := &server{desk: d, keys: keys, max: cfg.MaxBody, log: cfg.Log, metrics: cfg.Metrics, clk: cfg.Clock, health: cfg.Health,
		streams: newStreamLimit(cfg.MaxStreams), writeTimeout: cfg.StreamWriteTimeout, closing: cfg.Closing}
	if s.max <= 0 {
		s.max = DefaultMaxBody
	}
	if s.writeTimeout <= 0 {
		s.writeTimeout = DefaultStreamWriteTimeout
	}
	if s.clk == nil {
		s.clk = clock.Wall{}
	}
	if s.metrics == nil {
		s.metrics = NewMetricsOn(s.clk)
	}
	mux := http.NewServeMux()
	known := http.NewServeMux() // the routes' paths, any method: a 405 or a 404
	methods := map[string][]string{}
	for _, rt := range routes() {
		if rt.path == metricsPath && cfg.SeparateMetrics {
			continue
		}
		mux.Handle(rt.method+" "+rt.path, s.wrap(rt))
		methods[rt.path] = append(methods[rt.path], rt.method)
	}
	for path, ms := range methods {
		known.Handle(path, allow(ms))
	}
	s.serveDashboard(mux)
	mux.Handle("/", s.wrap(route{path: "unmatched", serve: func(s *server, w http.ResponseWriter, rq *request) {
		if h, pattern := known.Handler(rq.r); pattern != "" {
			if ms, ok := h.(allow); ok {
				w.Header().Set("Allow", strings.Join(ms, ", "))
				s.fail(w, rq.r, api.Errorf(http.StatusMethodNotAllowed, api.CodeMethodNotAllowed,
					"%s takes %s", pattern, strings.Join(ms, ", ")))
				return
			}
		}
		s.fail(w, rq.r, api.Errorf(http.StatusNotFound, api.CodeNotFound, "no such route; see api/openapi.yaml"))
	}}))
	return mux
}

// allow is the methods a path takes.
type allow []string

func (allow) ServeHTTP(http.ResponseWriter, *http.Request) {}

// wrap runs a route: the size limit, authentication, the scope and the
// query parameters, then its handler; a panic becomes a 500; every
// request is logged and counted.
func (s *server) wrap(rt route) http.Handler {
	name := rt.method + " " + rt.path
	if rt.method == "" {
		name = rt.path
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.clk.Now()
		sw := &statusWriter{ResponseWriter: w}
		keyID := ""
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler { //nolint:errorlint // the sentinel is compared as net/http does
					panic(p)
				}
				s.panicked(sw, name, p)
			}
			d := max(s.clk.Now().Sub(start), 0)
			s.metrics.request(name, sw.status(), d)
			s.log.Debug().Str("method", r.Method).Str("path", r.URL.Path).Int("status", sw.status()).
				Str("key", keyID).Dur("latency", d).Msg("request")
		}()
		rq := &request{r: r}
		if rt.scope != "" {
			key, ok := s.authenticate(sw, rq, rt.scope)
			if key != nil {
				keyID = key.ID // authenticated: the id is the key's, not whatever a header said
			}
			if !ok {
				return
			}
			rq.key, rq.caller = key.ID, key.Caller()
			if aerr := checkQuery(r, rt.query); aerr != nil {
				s.fail(sw, r, aerr)
				return
			}
		}
		rt.serve(s, sw, rq)
	})
}

// authenticate reads the body (413 over the limit, before anything else),
// checks the signature, the key's rate and its scope, and answers the
// refusal itself. A key that lacks the scope is returned, not ok.
func (s *server) authenticate(w http.ResponseWriter, rq *request, scope string) (*Key, bool) {
	r := rq.r
	if r.ContentLength > int64(s.max) {
		s.fail(w, r, tooLarge(s.max))
		return nil, false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(s.max)+1))
	switch {
	case len(body) > s.max:
		s.fail(w, r, tooLarge(s.max))
		return nil, false
	case err != nil:
		s.fail(w, r, api.BadField("", "could not read the body: %v", err))
		return nil, false
	}
	rq.body = body
	key, aerr, wait := s.keys.Authenticate(Signed{
		KeyID: r.Header.Get(api.HeaderKey), Timestamp: r.Header.Get(api.HeaderTimestamp),
		Nonce: r.Header.Get(api.HeaderNonce), Signature: r.Header.Get(api.HeaderSignature),
		Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Body: body,
	})
	if aerr != nil {
		if aerr.Status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", strconv.Itoa(retryAfter(wait)))
		}
		s.fail(w, r, aerr)
		return nil, false
	}
	if !key.Allows(scope) {
		s.fail(w, r, api.Errorf(http.StatusForbidden, api.CodeForbidden, "key %s lacks the %s scope", key.ID, scope))
		return key, false
	}
	return key, true
}

func tooLarge(limit int) *api.Error {
	return api.Errorf(http.StatusRequestEntityTooLarge, api.CodeTooLarge, "the body is over the limit of %d bytes", limit)
}

// retryAfter is a wait in whole seconds, rounded up, at least 1.
func retryAfter(wait time.Duration) int {
	secs := math.Ceil(wait.Seconds())
	switch {
	case secs < 1 || math.IsNaN(secs):
		return 1
	case secs > 3600:
		return 3600
	}
	return int(secs)
}

// checkQuery refuses a query parameter the route does not take, or one
// given twice: a misspelt filter must not widen a listing silently.
func checkQuery(r *http.Request, takes []string) *api.Error {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return api.BadField("", "the query string is not valid: %v", err)
	}
	for name, vs := range q {
		ok := false
		for _, t := range takes {
			ok = ok || t == name
		}
		switch {
		case !ok:
			return api.BadField(name, "unknown query parameter %q", name)
		case len(vs) > 1:
			return api.BadField(name, "given %d times; give it once", len(vs))
		}
	}
	return nil
}

// reply adapts a handler that returns a JSON body or an error.
func reply(h func(s *server, w http.ResponseWriter, rq *request) (int, any, *api.Error)) func(*server, http.ResponseWriter, *request) {
	return func(s *server, w http.ResponseWriter, rq *request) {
		status, v, aerr := h(s, w, rq)
		if aerr != nil {
			s.fail(w, rq.r, aerr)
			return
		}
		s.json(w, rq.r, status, v)
	}
}

// json answers v with status.
func (s *server) json(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.fail(w, r, api.Errorf(http.StatusInternalServerError, api.CodeInternal, "encode the answer: %v", err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// fail answers an error. An internal error's text stays in the log, under
// a reference the client can quote.
func (s *server) fail(w http.ResponseWriter, r *http.Request, aerr *api.Error) {
	if aerr.Status == 0 || aerr.Status == http.StatusInternalServerError {
		ref := newRef()
		s.log.Error().Str("ref", ref).Str("method", r.Method).Str("path", r.URL.Path).Str("error", aerr.Message).
			Msg("internal error")
		writeError(w, internal(ref))
		return
	}
	writeError(w, aerr)
}

func internal(ref string) *api.Error {
	return api.Errorf(http.StatusInternalServerError, api.CodeInternal,
		"internal error (ref %s); the service's log has the details", ref)
}

func writeError(w http.ResponseWriter, aerr *api.Error) {
	b, _ := json.Marshal(api.ErrorBody{Error: aerr})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(aerr.Status)
	_, _ = w.Write(append(b, '\n'))
}

// panicked logs a handler's panic and answers 500 if nothing was sent yet.
// Only a runtime error's text is logged: another panic value may carry
// request data.
func (s *server) panicked(w *statusWriter, route string, p any) {
	ref := logPanic(s.log, "route", route, p)
	if !w.wrote {
		writeError(w, internal(ref))
	}
}

// logPanic logs a recovered panic value with the stack, under a new
// reference it returns. Only a runtime error's text is logged: another
// panic value may carry request data.
func logPanic(log zerolog.Logger, where, name string, p any) string {
	what := fmt.Sprintf("%T", p)
	if re, ok := p.(runtime.Error); ok {
		what = re.Error()
	}
	stack := make([]byte, 16<<10)
	stack = stack[:runtime.Stack(stack, false)]
	ref := newRef()
	log.Error().Str("ref", ref).Str(where, name).Str("panic", what).Bytes("stack", bytes.TrimSpace(stack)).
		Msg("handler panicked")
	return ref
}

// newRef is a short random reference that ties an answer to a log line.
func newRef() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// statusWriter remembers the status sent. Unwrap lets
// http.ResponseController reach the connection (Flush, deadlines).
type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote && code >= 200 {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// status is the status sent, 200 if the handler wrote nothing.
func (w *statusWriter) status() int {
	if !w.wrote {
		return http.StatusOK
	}
	return w.code
}
