// Package binancefake is a Binance Spot REST server for tests and demo
// runs: the real paths, parameters, JSON shapes, HMAC-SHA256 signatures,
// recvWindow and timestamp checks, filters, error codes and rate-limit
// headers (X-MBX-USED-WEIGHT-1M, X-MBX-ORDER-COUNT-10S/-1D, 429 with
// Retry-After, then 418 bans), with orders matched by a sim venue. The
// go-binance client runs against it unchanged.
package binancefake

import (
	cryptorand "crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/venues/fakex"
	"github.com/blockexec/blockexec/venues/sim"
)

// Binance's published limits, as exchangeInfo states them.
const (
	weightLimit1m   = 6000
	orderLimit10s   = 100
	orderLimit1d    = 200000
	maxOpenOrders   = 200
	maxRecvWindow   = 60 * time.Second
	defaultRecv     = 5 * time.Second
	aheadTolerance  = time.Second
	aggMaxLimit     = 1000
	aggDefaultLimit = 500
	aggBucket       = 10 * time.Second
	maxAggWindow    = time.Hour
	firstBan        = 2 * time.Minute
)

// Restrictions is what /sapi/v1/account/apiRestrictions reports of the key.
type Restrictions struct {
	IPRestrict                 bool `json:"ipRestrict"`
	EnableReading              bool `json:"enableReading"`
	EnableSpotAndMarginTrading bool `json:"enableSpotAndMarginTrading"`
	EnableWithdrawals          bool `json:"enableWithdrawals"`
	EnableInternalTransfer     bool `json:"enableInternalTransfer"`
	EnableMargin               bool `json:"enableMargin"`
	EnableFutures              bool `json:"enableFutures"`
	PermitsUniversalTransfer   bool `json:"permitsUniversalTransfer"`
	EnableVanillaOptions       bool `json:"enableVanillaOptions"`
}

// Options configure a fake.
type Options struct {
	// Venue matches the orders; its instrument is the one symbol listed.
	Venue *sim.Venue
	// APIKey and Secret are the one key the fake accepts.
	APIKey, Secret string
	// Clock is the market clock: order and trade times, the weight and
	// order-count windows, bans.
	Clock clock.Clock
	// AuthClock is the server's clock for timestamps and recvWindow
	// (default wall time); ClockOffset shifts it, to make a client's
	// clock look skewed.
	AuthClock   clock.Clock
	ClockOffset time.Duration
	// Restrictions of the key; the zero value is replaced by reading and
	// spot trading enabled, nothing else.
	Restrictions *Restrictions
	// NoPings stops the WebSocket API's pings (every 20 s otherwise): a
	// connection that has gone half-open.
	NoPings bool
}

// Server is a running fake. Safe for concurrent use.
type Server struct {
	o      Options
	in     market.Instrument
	srv    *fakex.Server
	faults *fakex.Faults
	weight *fakex.Budget
	o10s   *fakex.Budget
	o1d    *fakex.Budget
	idBase int64 // order and trade ids start above it: fresh per process

	mu     sync.Mutex
	placed []string // client ids accepted, in order
	// Binance keeps a client order id unique among open orders only: a
	// done order's id may be used again. The matching core's ids are
	// unique, so a reused id gets a fresh one there.
	simOf        map[string]string // client id → matching-core id of its latest order
	cidOf        map[string]string // matching-core id → client id
	reused       int
	byOrderID    map[int64]string  // order id → matching-core id
	kinds        map[string]string // matching-core id → LIMIT or LIMIT_MAKER
	limitedUntil time.Time         // after a 429: a request before this is banned
	banUntil     time.Time
	bans         int
	tradeQueries int
	ws           streams
}

// New starts a fake on a loopback port.
func New(o Options) (*Server, error) {
	if o.Venue == nil || o.Clock == nil || o.APIKey == "" || o.Secret == "" {
		return nil, errors.New("binancefake: venue, clock, api key and secret are required")
	}
	if o.AuthClock == nil {
		o.AuthClock = clock.Wall{}
	}
	if o.Restrictions == nil {
		o.Restrictions = &Restrictions{EnableReading: true, EnableSpotAndMarginTrading: true}
	}
	in := o.Venue.Rules()
	var b [8]byte
	if _, err := cryptorand.Read(b[:]); err != nil {
		return nil, err
	}
	s := &Server{o: o, in: in, weight: fakex.NewBudget(time.Minute), o10s: fakex.NewBudget(10 * time.Second),
		o1d: fakex.NewBudget(24 * time.Hour), idBase: int64(binary.BigEndian.Uint64(b[:])%9_000_000+1_000_000) * 1_000_000,
		byOrderID: map[int64]string{}, kinds: map[string]string{}, simOf: map[string]string{}, cidOf: map[string]string{},
		ws: streams{clients: map[*wsClient]bool{}, pushed: map[string]bool{}}}
	mux := http.NewServeMux()
	s.routes(mux)
	var h http.Handler
	srv, err := fakex.Start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	if err != nil {
		return nil, err
	}
	s.srv = srv
	srv.OnDark(s.DropStreams)
	s.faults = fakex.NewFaults(protocol{}, s.srv.Stopping(), o.Clock.Now)
	h = s.limits(s.faults.Wrap(mux))
	return s, nil
}

// URL is the base URL to give the client.
func (s *Server) URL() string { return s.srv.URL() }

// Close stops the server and its WebSocket connections.
func (s *Server) Close() {
	s.DropStreams()
	s.srv.Close()
}

// Faults is the fault queue.
func (s *Server) Faults() *fakex.Faults { return s.faults }

// Server is the HTTP server, to make it go dark.
func (s *Server) Server() *fakex.Server { return s.srv }

// Placed returns the client ids of every order accepted, in order.
func (s *Server) Placed() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.placed...)
}

// SetClockOffset moves the server's clock against the clients'.
func (s *Server) SetClockOffset(d time.Duration) {
	s.mu.Lock()
	s.o.ClockOffset = d
	s.mu.Unlock()
}

func (s *Server) serverTime() time.Time {
	s.mu.Lock()
	off := s.o.ClockOffset
	s.mu.Unlock()
	return s.o.AuthClock.Now().Add(off)
}

func (s *Server) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v3/ping", s.weighted(1, func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, struct{}{}) }))
	mux.HandleFunc("GET /api/v3/time", s.weighted(1, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]int64{"serverTime": s.serverTime().UnixMilli()})
	}))
	mux.HandleFunc("GET /api/v3/exchangeInfo", s.weighted(20, s.exchangeInfo))
	mux.HandleFunc("GET /api/v3/depth", s.depth)
	mux.HandleFunc("GET /api/v3/aggTrades", s.weighted(4, s.aggTrades))
	mux.HandleFunc("POST /api/v3/order", s.weighted(1, s.signed(s.newOrder)))
	mux.HandleFunc("GET /api/v3/order", s.weighted(4, s.signed(s.getOrder)))
	mux.HandleFunc("DELETE /api/v3/order", s.weighted(1, s.signed(s.cancelOrder)))
	mux.HandleFunc("GET /api/v3/myTrades", s.weighted(20, s.signed(s.myTrades)))
	mux.HandleFunc("GET /api/v3/rateLimit/order", s.weighted(40, s.signed(s.rateLimitOrder)))
	mux.HandleFunc("GET /api/v3/account/commission", s.weighted(20, s.signed(s.commission)))
	mux.HandleFunc("GET /sapi/v1/account/apiRestrictions", s.weighted(1, s.signed(s.apiRestrictions)))
	mux.HandleFunc("GET "+WSPath, s.weighted(2, s.wsAPI))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, http.StatusNotFound, -1000, "An unknown error occurred while processing the request.")
	})
}

// limits applies Binance's IP limits before anything else: a banned IP
// gets 418 with Retry-After; one that keeps calling after a 429 is banned.
func (s *Server) limits(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := s.o.Clock.Now()
		s.mu.Lock()
		if now.Before(s.limitedUntil) && !now.Before(s.banUntil) {
			s.bans++
			s.banUntil = now.Add(firstBan * time.Duration(1<<min(s.bans-1, 10)))
		}
		ban := s.banUntil
		s.mu.Unlock()
		if now.Before(ban) {
			protocol{}.WriteBanned(w, ban.Sub(now))
			return
		}
		if r.URL.Path == WSPath {
			next.ServeHTTP(w, r) // a long-lived connection: nothing to push after it
			return
		}
		next.ServeHTTP(w, r)
		s.pushFills(r)
	})
}

// weighted charges a request's weight to the IP's minute and refuses it
// with 429 once the minute is spent.
func (s *Server) weighted(weight int64, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.charge(w, r, weight, h)
	}
}

func (s *Server) charge(w http.ResponseWriter, r *http.Request, weight int64, h http.HandlerFunc) {
	now := s.o.Clock.Now()
	used := s.weight.Spend(now, weight)
	w.Header().Set("X-MBX-USED-WEIGHT-1M", strconv.FormatInt(used, 10))
	if used > weightLimit1m {
		retry := now.Truncate(time.Minute).Add(time.Minute).Sub(now)
		s.mu.Lock()
		s.limitedUntil = now.Add(retry)
		s.mu.Unlock()
		w.Header().Set("Retry-After", strconv.Itoa(int(retry.Seconds()+0.999)))
		writeErr(w, http.StatusTooManyRequests, -1003, fmt.Sprintf("Too much request weight used; current limit is %d request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.", weightLimit1m))
		return
	}
	h(w, r)
}

func (s *Server) exchangeInfo(w http.ResponseWriter, r *http.Request) {
	if sym := r.URL.Query().Get("symbol"); sym != "" && sym != s.in.Symbol {
		writeErr(w, http.StatusBadRequest, -1121, "Invalid symbol.")
		return
	}
	in := s.in
	f8 := func(d decimal.Decimal) string { return d.StringFixed(8) }
	writeJSON(w, map[string]any{
		"timezone": "UTC", "serverTime": s.serverTime().UnixMilli(),
		"rateLimits": []map[string]any{
			{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": weightLimit1m},
			{"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": orderLimit10s},
			{"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": orderLimit1d},
			{"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
		},
		"exchangeFilters": []any{},
		"symbols": []map[string]any{{
			"symbol": in.Symbol, "status": "TRADING", "baseAsset": in.Base, "baseAssetPrecision": 8,
			"quoteAsset": in.Quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
			"baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
			"orderTypes":     []string{"LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"},
			"icebergAllowed": true, "ocoAllowed": true, "otoAllowed": true,
			"quoteOrderQtyMarketAllowed": true, "allowTrailingStop": true, "cancelReplaceAllowed": true,
			"isSpotTradingAllowed": true, "isMarginTradingAllowed": true,
			"filters": []map[string]any{
				{"filterType": "PRICE_FILTER", "minPrice": f8(in.Tick), "maxPrice": "1000000.00000000", "tickSize": f8(in.Tick)},
				{"filterType": "LOT_SIZE", "minQty": f8(in.MinQty), "maxQty": "9000.00000000", "stepSize": f8(in.Step)},
				{"filterType": "NOTIONAL", "minNotional": f8(in.MinNotional), "applyMinToMarket": true,
					"maxNotional": "9000000.00000000", "applyMaxToMarket": false, "avgPriceMins": 5},
				{"filterType": "MAX_NUM_ORDERS", "maxNumOrders": maxOpenOrders},
			},
			"permissions": []string{}, "permissionSets": [][]string{{"SPOT", "MARGIN"}},
			"defaultSelfTradePreventionMode":  "EXPIRE_MAKER",
			"allowedSelfTradePreventionModes": []string{"EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"},
		}},
	})
}

// depthWeight is Binance's weight of a book request by its limit.
func depthWeight(limit int) int64 {
	switch {
	case limit <= 100:
		return 5
	case limit <= 500:
		return 25
	case limit <= 1000:
		return 50
	}
	return 250
}

func (s *Server) depth(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 100
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n <= 0 {
			writeErr(w, http.StatusBadRequest, -1100, "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'.")
			return
		}
		limit = min(n, 5000)
	}
	s.charge(w, r, depthWeight(limit), func(w http.ResponseWriter, r *http.Request) {
		if q.Get("symbol") != s.in.Symbol {
			writeErr(w, http.StatusBadRequest, -1121, "Invalid symbol.")
			return
		}
		b, err := s.o.Venue.Book(r.Context(), s.in.Symbol, limit)
		if err != nil {
			writeErr(w, http.StatusInternalServerError, -1000, "An unknown error occurred while processing the request.")
			return
		}
		side := func(ls []market.Level) [][2]string {
			out := make([][2]string, len(ls))
			for i, l := range ls {
				out[i] = [2]string{l.Price.StringFixed(8), l.Qty.StringFixed(8)}
			}
			return out
		}
		writeJSON(w, map[string]any{"lastUpdateId": b.Time.UnixMilli(), "bids": side(b.Bids), "asks": side(b.Asks)})
	})
}

func (s *Server) aggTrades(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("symbol") != s.in.Symbol {
		writeErr(w, http.StatusBadRequest, -1121, "Invalid symbol.")
		return
	}
	limit := aggDefaultLimit
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n <= 0 {
			writeErr(w, http.StatusBadRequest, -1100, "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'.")
			return
		}
		limit = min(n, aggMaxLimit)
	}
	now := s.o.Clock.Now()
	var from, to time.Time // inclusive, as Binance's startTime and endTime
	switch {
	case q.Get("fromId") != "":
		id, err := strconv.ParseInt(q.Get("fromId"), 10, 64)
		if err != nil {
			writeErr(w, http.StatusBadRequest, -1100, "Illegal characters found in parameter 'fromId'; legal range is '^[0-9]{1,20}$'.")
			return
		}
		from, to = time.Unix(0, id*int64(aggBucket)).UTC(), now
	case q.Get("startTime") != "" || q.Get("endTime") != "":
		st, err1 := strconv.ParseInt(q.Get("startTime"), 10, 64)
		et, err2 := strconv.ParseInt(q.Get("endTime"), 10, 64)
		if err1 != nil || err2 != nil {
			writeErr(w, http.StatusBadRequest, -1102, "Mandatory parameter 'startTime' or 'endTime' was not sent, was empty/null, or malformed.")
			return
		}
		from, to = time.UnixMilli(st).UTC(), time.UnixMilli(et).UTC()
		if to.Sub(from) > maxAggWindow {
			writeErr(w, http.StatusBadRequest, -1127, "More than 1 hours between startTime and endTime.")
			return
		}
	default:
		from, to = now.Add(-maxAggWindow), now
	}
	// fakex.Trades takes (from, to]: one nanosecond earlier makes from
	// inclusive.
	trades, err := fakex.Trades(r.Context(), s.o.Venue, s.in.Symbol, from.Add(-time.Nanosecond), to, now, aggBucket, s.in.Tick)
	if err != nil {
		writeErr(w, http.StatusInternalServerError, -1000, "An unknown error occurred while processing the request.")
		return
	}
	if len(trades) > limit {
		trades = trades[:limit]
	}
	type agg struct {
		A int64  `json:"a"`
		P string `json:"p"`
		Q string `json:"q"`
		F int64  `json:"f"`
		L int64  `json:"l"`
		T int64  `json:"T"`
		M bool   `json:"m"`
		B bool   `json:"M"`
	}
	out := make([]agg, len(trades))
	for i, t := range trades {
		out[i] = agg{A: t.ID, P: t.Price.StringFixed(8), Q: t.Qty.StringFixed(8), F: t.ID, L: t.ID,
			T: t.Time.UnixMilli(), M: t.BuyerMaker, B: true}
	}
	writeJSON(w, out)
}

func (s *Server) apiRestrictions(w http.ResponseWriter, _ *http.Request, _ url.Values) {
	s.mu.Lock()
	res := *s.o.Restrictions
	s.mu.Unlock()
	writeJSON(w, struct {
		Restrictions
		CreateTime                   int64 `json:"createTime"`
		EnablePortfolioMarginTrading bool  `json:"enablePortfolioMarginTrading"`
	}{Restrictions: res, CreateTime: s.serverTime().Add(-30 * 24 * time.Hour).UnixMilli()})
}

func (s *Server) commission(w http.ResponseWriter, _ *http.Request, p url.Values) {
	if p.Get("symbol") != s.in.Symbol {
		writeErr(w, http.StatusBadRequest, -1121, "Invalid symbol.")
		return
	}
	f8 := func(d decimal.Decimal) string { return d.StringFixed(8) }
	zero := "0.00000000"
	writeJSON(w, map[string]any{
		"symbol":             s.in.Symbol,
		"standardCommission": map[string]string{"maker": f8(s.in.MakerFee), "taker": f8(s.in.TakerFee), "buyer": zero, "seller": zero},
		"taxCommission":      map[string]string{"maker": zero, "taker": zero, "buyer": zero, "seller": zero},
		"discount":           map[string]any{"enabledForAccount": false, "enabledForSymbol": false, "discountAsset": "BNB", "discount": "0.75000000"},
	})
}

func (s *Server) rateLimitOrder(w http.ResponseWriter, _ *http.Request, _ url.Values) {
	now := s.o.Clock.Now()
	writeJSON(w, []map[string]any{
		{"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": orderLimit10s, "count": s.o10s.Used(now)},
		{"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": orderLimit1d, "count": s.o1d.Used(now)},
	})
}

// protocol writes Binance's error answers for injected faults.
type protocol struct{}

func (protocol) WriteServerError(w http.ResponseWriter, status int) {
	if status == http.StatusServiceUnavailable {
		// What Binance answers when the order may or may not have been taken.
		writeErr(w, status, -1007, "Timeout waiting for response from backend server. Send status unknown; execution status unknown.")
		return
	}
	writeErr(w, status, -1000, "An unknown error occurred while processing the request.")
}

func (protocol) WriteRateLimited(w http.ResponseWriter, retry time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(retry.Seconds()+0.999)))
	writeErr(w, http.StatusTooManyRequests, -1003, fmt.Sprintf("Too much request weight used; current limit is %d request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.", weightLimit1m))
}

func (protocol) WriteBanned(w http.ResponseWriter, retry time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(retry.Seconds()+0.999)))
	writeErr(w, http.StatusTeapot, -1003, "Way too much request weight used; IP banned. Please use WebSocket Streams for live updates to avoid bans.")
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, code int, msg string) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": code, "msg": msg})
}

// trimID reads the sequence number at the end of a sim id ("x-17",
// "x-o17").
func trimID(id string) int64 {
	i := strings.LastIndexAny(id, "-o")
	n, _ := strconv.ParseInt(id[i+1:], 10, 64)
	return n
}
