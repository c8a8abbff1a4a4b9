// Package coinbasefake is a fake of Coinbase Advanced Trade's REST API for
// tests and demo runs: the real paths, JSON shapes (decimals as strings),
// ES256 JWT checks and error bodies, in front of a sim venue that does the
// matching. It lists one product (BASE-QUOTE of the sim's instrument),
// enforces the product's increments and minimums through the sim, answers
// a reused client_order_id with the order it already has (as Coinbase
// documents), and takes injected faults (fakex) in Coinbase's own words.
//
// What Coinbase does not document and the fake assumes: the 429 and 5xx
// bodies ({"error", "error_details", "message"}) and Retry-After, an IOC
// remainder's status (EXPIRED), the failure reasons of a cancel that
// cannot be done, and that the ticker's start and end are both inclusive.
package coinbasefake

import (
	"crypto/ecdsa"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/venues/fakex"
	"github.com/blockexec/blockexec/venues/sim"
)

// Paths the fake serves (Coinbase's).
const (
	// PathOrders is order placement: POST.
	PathOrders = "/api/v3/brokerage/orders"

	prefix         = "/api/v3/brokerage"
	pathTime       = prefix + "/time"
	tradeBucket    = 10 * time.Second
	maxTradesLimit = 1000
	maxListLimit   = 1000
	defaultLimit   = 100
	defaultDepth   = 50
)

// Options configure the fake.
type Options struct {
	// Venue does the matching; required.
	Venue *sim.Venue
	// ProductID defaults to BASE-QUOTE of the sim's instrument.
	ProductID string
	// KeyName and PublicKey are the API key the fake accepts; required.
	KeyName   string
	PublicKey *ecdsa.PublicKey
	// Clock is the market clock: order, fill and trade times; required.
	Clock clock.Clock
	// AuthClock is the wall clock JWTs are checked against (nbf, exp) and
	// bans are timed with; default clock.Wall.
	AuthClock clock.Clock
}

// Server is a running fake. Safe for concurrent use.
type Server struct {
	o      Options
	rules  market.Instrument
	srv    *fakex.Server
	faults *fakex.Faults
	h      gate

	mu        sync.Mutex
	orders    []*order          // by placement
	byID      map[string]*order // Coinbase order id
	byClient  map[string]*order
	bySim     map[string]*order // sim order id
	tradeIDs  map[string]string // sim trade id → Coinbase trade id
	placed    []string
	perms     permissions
	portfolio string
	user      string
}

// permissions are what key_permissions answers.
type permissions struct {
	view, trade, transfer bool
}

// New starts the fake on a loopback port.
func New(o Options) (*Server, error) {
	switch {
	case o.Venue == nil:
		return nil, errors.New("coinbasefake: a sim venue is required")
	case o.KeyName == "" || o.PublicKey == nil:
		return nil, errors.New("coinbasefake: the key name and public key are required")
	case o.Clock == nil:
		return nil, errors.New("coinbasefake: a market clock is required")
	}
	if o.AuthClock == nil {
		o.AuthClock = clock.Wall{}
	}
	rules := o.Venue.Rules()
	if o.ProductID == "" {
		o.ProductID = rules.Base + "-" + rules.Quote
	}
	s := &Server{o: o, rules: rules, byID: map[string]*order{}, byClient: map[string]*order{},
		bySim: map[string]*order{}, tradeIDs: map[string]string{}, perms: permissions{view: true, trade: true},
		portfolio: newUUID(), user: newUUID()}
	srv, err := fakex.Start(&s.h)
	if err != nil {
		return nil, err
	}
	s.srv = srv
	s.faults = fakex.NewFaults(protocol{}, srv.Stopping(), o.AuthClock.Now)
	s.h.set(s.faults.Wrap(s.routes()))
	return s, nil
}

// URL is the fake's base URL, for Config.BaseURL.
func (s *Server) URL() string { return s.srv.URL() }

// Close stops the fake.
func (s *Server) Close() { s.srv.Close() }

// Faults is the fake's fault queue.
func (s *Server) Faults() *fakex.Faults { return s.faults }

// Server is the loopback server (to make it go dark).
func (s *Server) Server() *fakex.Server { return s.srv }

// ProductID is the one product the fake lists.
func (s *Server) ProductID() string { return s.o.ProductID }

// Placed returns the client ids of the orders the fake accepted, one per
// accepted placement, in order; a reused client id that returned the
// existing order is not a placement.
func (s *Server) Placed() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.placed...)
}

// SetKeyPermissions sets what key_permissions reports (default: view and
// trade, no transfer).
func (s *Server) SetKeyPermissions(canView, canTrade, canTransfer bool) {
	s.mu.Lock()
	s.perms = permissions{view: canView, trade: canTrade, transfer: canTransfer}
	s.mu.Unlock()
}

// routes serves Coinbase's paths. Every request but the server time needs
// a valid JWT, checked before routing (a bad token is a 401 whatever the
// path).
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	for pattern, h := range map[string]http.HandlerFunc{
		"GET " + prefix + "/products":                     s.listProducts,
		"GET " + prefix + "/products/{product_id}":        s.getProduct,
		"GET " + prefix + "/products/{product_id}/ticker": s.marketTrades,
		"GET " + prefix + "/product_book":                 s.productBook,
		"POST " + PathOrders:                              s.createOrder,
		"GET " + prefix + "/orders/historical/batch":      s.listOrders,
		"GET " + prefix + "/orders/historical/fills":      s.listFills,
		"GET " + prefix + "/orders/historical/{order_id}": s.getOrder,
		"POST " + prefix + "/orders/batch_cancel":         s.cancelOrders,
		"GET " + prefix + "/transaction_summary":          s.transactionSummary,
		"GET " + prefix + "/key_permissions":              s.keyPermissions,
	} {
		mux.HandleFunc(pattern, h)
	}
	authed := s.authenticated(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == pathTime {
			s.serverTime(w, r)
			return
		}
		authed.ServeHTTP(w, r)
	})
}

// gate serves the handler set once the fault queue exists (it needs the
// running server's stop channel).
type gate struct {
	mu sync.RWMutex
	h  http.Handler
}

func (g *gate) set(h http.Handler) {
	g.mu.Lock()
	g.h = h
	g.mu.Unlock()
}

// ServeHTTP serves with the handler set, or 503 before it is.
func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.RLock()
	h := g.h
	g.mu.RUnlock()
	if h == nil {
		protocol{}.WriteServerError(w, http.StatusServiceUnavailable)
		return
	}
	h.ServeHTTP(w, r)
}
