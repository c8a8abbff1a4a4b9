// Package krakenfake is a Kraken Spot REST server for tests and demo runs:
// the real paths (/0/public/…, /0/private/…), form parameters, the
// {"error":[…],"result":…} envelope, API-Key / API-Sign (HMAC-SHA512)
// authentication with a strictly increasing nonce per key, Kraken's own
// error strings, order and trade ids in Kraken's format, and one asset pair
// whose orders are matched by a sim venue. The fake does no matching of its
// own: it translates the protocol onto the sim.
//
// Where Kraken's documentation is silent the fake makes a choice and says
// so in a comment marked "Assumption".
package krakenfake

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/venues/fakex"
	"github.com/blockexec/blockexec/venues/sim"
)

// Options configure a fake.
type Options struct {
	// Venue matches the pair's orders; required.
	Venue *sim.Venue
	// Pair is the pair's altname (XBTUSDT); default derived from the sim
	// instrument with Kraken's asset names (BTC→XBT, DOGE→XDG).
	Pair string
	// APIKey and Secret are the only credentials the fake accepts; Secret
	// is base64, as Kraken issues it. NewCredentials makes a fresh pair.
	APIKey, Secret string
	// Clock is the market clock: order and trade times. Required.
	Clock clock.Clock
	// ServerClock is what the Time endpoint reports; default Clock. An
	// in-process fake on a virtual market clock gives the wall clock here,
	// as the adapter's nonces and skew check run on wall time.
	ServerClock clock.Clock
}

// Server is a running fake. Safe for concurrent use.
type Server struct {
	o      Options
	pair   pair
	secret []byte
	srv    *fakex.Server
	faults *fakex.Faults

	mu        sync.Mutex
	lastNonce uint64             // the last nonce accepted for the key
	orders    map[string]*order  // by txid
	seq       []*order           // by placement
	trades    map[string]tradeID // by sim trade id
	nextTrade int64
	ids       map[string]bool // every txid issued, orders and trades
	placed    []string        // cl_ord_id of every accepted order
}

// tradeID is how Kraken names one of the sim's executions.
type tradeID struct {
	txid string
	seq  int64
}

// New starts a fake on a loopback port.
func New(o Options) (*Server, error) {
	if o.ServerClock == nil {
		o.ServerClock = o.Clock
	}
	if o.Venue == nil || o.Clock == nil {
		return nil, errors.New("kraken fake: Venue and Clock are required")
	}
	if o.APIKey == "" || o.Secret == "" {
		return nil, errors.New("kraken fake: APIKey and Secret are required (NewCredentials makes a pair)")
	}
	secret, err := base64.StdEncoding.DecodeString(o.Secret)
	if err != nil || len(secret) == 0 {
		return nil, errors.New("kraken fake: Secret is not base64")
	}
	p, err := derivePair(o.Venue, o.Pair)
	if err != nil {
		return nil, err
	}
	s := &Server{o: o, pair: p, secret: secret, orders: map[string]*order{}, trades: map[string]tradeID{},
		ids: map[string]bool{}, nextTrade: randomStart()}
	// The faults need the server's stop channel, and the server needs the
	// handler: the handler is installed once both exist.
	var h atomic.Pointer[http.Handler]
	srv, err := fakex.Start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hp := h.Load(); hp != nil {
			(*hp).ServeHTTP(w, r)
			return
		}
		writeErrors(w, http.StatusServiceUnavailable, "EService:Unavailable")
	}))
	if err != nil {
		return nil, err
	}
	s.srv = srv
	s.faults = fakex.NewFaults(protocol{}, srv.Stopping(), clock.Wall{}.Now)
	var wrapped http.Handler = s.faults.Wrap(s.routes())
	h.Store(&wrapped)
	return s, nil
}

// URL is the base URL to configure an adapter with (http://127.0.0.1:port).
func (s *Server) URL() string { return s.srv.URL() }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Faults is the queue of injected failures.
func (s *Server) Faults() *fakex.Faults { return s.faults }

// Server is the underlying loopback server (SetDark, Stopping).
func (s *Server) Server() *fakex.Server { return s.srv }

// Pair returns the altname the fake lists.
func (s *Server) Pair() string { return s.pair.altname }

// Placed returns the cl_ord_id of every order the fake accepted, in order,
// one entry per accepted AddOrder ("" for an order sent without one).
func (s *Server) Placed() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.placed...)
}

// NewCredentials returns a fresh random API key and base64 secret shaped
// like Kraken's (56 and 88 characters), for tests and in-process demo runs:
// no fixed secret lives in the repository.
func NewCredentials() (apiKey, secret string, err error) {
	k := make([]byte, 42)
	sec := make([]byte, 64)
	if _, err := rand.Read(k); err != nil {
		return "", "", fmt.Errorf("kraken fake: credentials: %w", err)
	}
	if _, err := rand.Read(sec); err != nil {
		return "", "", fmt.Errorf("kraken fake: credentials: %w", err)
	}
	return base64.StdEncoding.EncodeToString(k), base64.StdEncoding.EncodeToString(sec), nil
}

// routes maps Kraken's paths to handlers.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	public := map[string]handler{
		"Time": s.handleTime, "AssetPairs": s.handleAssetPairs, "Depth": s.handleDepth, "Trades": s.handleTrades,
	}
	for name, h := range public {
		mux.HandleFunc("/0/public/"+name, s.public(h))
	}
	private := map[string]handler{
		"Balance": s.handleBalance, "TradeVolume": s.handleTradeVolume, "AddOrder": s.handleAddOrder,
		"QueryOrders": s.handleQueryOrders, "OpenOrders": s.handleOpenOrders, "ClosedOrders": s.handleClosedOrders,
		"CancelOrder": s.handleCancelOrder, "TradesHistory": s.handleTradesHistory, "QueryTrades": s.handleQueryTrades,
	}
	for name, h := range private {
		mux.HandleFunc("/0/private/"+name, s.private(h))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeErrors(w, http.StatusNotFound, "EGeneral:Unknown method")
	})
	return mux
}

// handler serves one method with its parameters.
type handler func(w http.ResponseWriter, r *http.Request, form url.Values)

// public serves a public method; Kraken takes GET or POST.
func (s *Server) public(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			writeErrors(w, http.StatusMethodNotAllowed, "EGeneral:Invalid arguments")
			return
		}
		if err := r.ParseForm(); err != nil {
			writeErrors(w, http.StatusOK, "EGeneral:Invalid arguments")
			return
		}
		h(w, r, r.Form)
	}
}

// writeResult writes Kraken's success envelope.
func writeResult(w http.ResponseWriter, result any) {
	writeJSON(w, http.StatusOK, map[string]any{"error": []string{}, "result": result})
}

// writeErrors writes Kraken's error envelope. Kraken answers its API
// errors with HTTP 200; the status matters only for 404, 429 and 5xx.
func writeErrors(w http.ResponseWriter, status int, msgs ...string) {
	writeJSON(w, status, map[string]any{"error": msgs})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":["EGeneral:Internal error"]}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// protocol writes Kraken's answers for injected faults.
type protocol struct{}

// WriteServerError answers as Kraken's edge does when the engine is down.
func (protocol) WriteServerError(w http.ResponseWriter, status int) {
	msg := "EGeneral:Internal error"
	if status == http.StatusServiceUnavailable {
		msg = "EService:Unavailable"
	}
	writeErrors(w, status, msg)
}

// WriteRateLimited answers a request over the limit. Assumption: Kraken
// documents the error strings (EAPI:Rate limit exceeded, EGeneral:Too many
// requests) but neither a status nor a Retry-After header; the fake answers
// as its HTTP edge does for too many requests, 429 with Retry-After.
func (protocol) WriteRateLimited(w http.ResponseWriter, retryAfter time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter.Round(time.Second)/time.Second)))
	writeErrors(w, http.StatusTooManyRequests, "EGeneral:Too many requests")
}

// WriteBanned answers Kraken's temporary lockout (after too many failed
// calls; Kraken says it lasts about 15 minutes).
func (protocol) WriteBanned(w http.ResponseWriter, retryAfter time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter.Round(time.Second)/time.Second)))
	writeErrors(w, http.StatusTooManyRequests, "EGeneral:Temporary lockout")
}

// newTxid returns a fresh id in Kraken's shape, "OABCDE-FGHIJ-KLMNOP" for
// an order (prefix 'O') or a trade ('T'), random per process. Caller holds
// mu.
func (s *Server) newTxid(prefix byte) string {
	const charset = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	for {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			panic(fmt.Sprintf("kraken fake: crypto/rand: %v", err)) // the OS has no entropy: nothing sensible to do
		}
		id := make([]byte, 0, 19)
		id = append(id, prefix)
		for i, c := range b {
			if i == 5 || i == 10 {
				id = append(id, '-')
			}
			id = append(id, charset[int(c)%len(charset)])
		}
		if !s.ids[string(id)] {
			s.ids[string(id)] = true
			return string(id)
		}
	}
}

// randomStart is where the numeric trade_id sequence starts, so two runs
// rarely print the same numbers either.
func randomStart() int64 {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return 40_000_000 + int64(b[0])<<16 + int64(b[1])<<8 + int64(b[2])
}

// side names a market side as Kraken does.
func sideName(s market.Side) string {
	if s == market.Buy {
		return "buy"
	}
	return "sell"
}
