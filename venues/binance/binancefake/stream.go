package binancefake

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/market"
)

// WSPath is the WebSocket API's path, as on ws-api.binance.com.
const WSPath = "/ws-api/v3"

// wsClient is one WebSocket API connection; subscribed once it has sent a
// valid userDataStream.subscribe.signature.
type wsClient struct {
	conn       *websocket.Conn
	mu         sync.Mutex // one writer at a time
	subscribed bool
}

func (c *wsClient) write(v any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.conn.SetWriteDeadline(clock.Wall{}.Now().Add(5 * time.Second)) // a socket deadline is wall time
	return c.conn.WriteJSON(v)
}

// streams is the fake's side of the user data stream: its connections and
// the fills already pushed.
type streams struct {
	mu      sync.Mutex
	clients map[*wsClient]bool
	pushed  map[string]bool // sim trade ids
	scanned time.Time       // fills up to here were pushed
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// wsAPI serves the WebSocket API's userDataStream.subscribe.signature: a
// signed request (apiKey, timestamp, signature over the sorted parameters)
// answered with a subscription id, then an executionReport event for every
// fill of the account.
func (s *Server) wsAPI(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &wsClient{conn: conn}
	s.ws.mu.Lock()
	s.ws.clients[c] = true
	s.ws.mu.Unlock()
	stopPing := make(chan struct{})
	if !s.o.NoPings {
		go s.ping(c, stopPing)
	}
	defer close(stopPing)
	defer func() {
		s.ws.mu.Lock()
		delete(s.ws.clients, c)
		s.ws.mu.Unlock()
		_ = conn.Close()
	}()
	for {
		var req struct {
			ID     any            `json:"id"`
			Method string         `json:"method"`
			Params map[string]any `json:"params"`
		}
		_, raw, err := conn.ReadMessage()
		if err != nil {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber() // parameters are signed as written: 1732350000000, not 1.73235e+12
		if err := dec.Decode(&req); err != nil {
			_ = c.write(wsError(nil, 400, -1100, "Malformed request."))
			continue
		}
		if req.Method != "userDataStream.subscribe.signature" {
			_ = c.write(wsError(req.ID, 400, -1020, "Unsupported operation."))
			continue
		}
		if code, msg := s.checkWSSignature(req.Params); code != 0 {
			_ = c.write(wsError(req.ID, 401, code, msg))
			continue
		}
		s.ws.mu.Lock()
		c.subscribed = true
		s.ws.mu.Unlock()
		_ = c.write(map[string]any{"id": req.ID, "status": 200, "result": map[string]any{"subscriptionId": 0},
			"rateLimits": []map[string]any{{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
				"limit": weightLimit1m, "count": s.weight.Used(s.o.Clock.Now())}}})
	}
}

// pingEvery is how often Binance pings a WebSocket API connection.
const pingEvery = 20 * time.Second

// ping sends a ping every pingEvery of wall time until stop, as Binance
// does; a client that never hears one may take the connection for dead.
func (s *Server) ping(c *wsClient, stop <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-stop:
		case <-s.srv.Stopping():
		}
		cancel()
	}()
	wall := clock.Wall{}
	for {
		if err := wall.WaitUntil(ctx, wall.Now().Add(pingEvery)); err != nil {
			return
		}
		c.mu.Lock()
		err := c.conn.WriteControl(websocket.PingMessage, nil, wall.Now().Add(5*time.Second))
		c.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func wsError(id any, status, code int, msg string) map[string]any {
	return map[string]any{"id": id, "status": status, "error": map[string]any{"code": code, "msg": msg}}
}

// checkWSSignature verifies a WebSocket API request as Binance does: the
// key, the timestamp against recvWindow, and the HMAC-SHA256 of every other
// parameter sorted by name and form-encoded.
func (s *Server) checkWSSignature(p map[string]any) (int, string) {
	key, _ := p["apiKey"].(string)
	sig, _ := p["signature"].(string)
	if key == "" || sig == "" {
		return -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed."
	}
	if !hmac.Equal([]byte(key), []byte(s.o.APIKey)) {
		return -2015, "Invalid API-key, IP, or permissions for action."
	}
	vals := url.Values{}
	names := make([]string, 0, len(p))
	for k := range p {
		if k != "signature" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		vals.Set(k, fmt.Sprintf("%v", p[k]))
	}
	mac := hmac.New(sha256.New, []byte(s.o.Secret))
	mac.Write([]byte(vals.Encode()))
	if !hmac.Equal([]byte(hex.EncodeToString(mac.Sum(nil))), []byte(strings.ToLower(sig))) {
		return -1022, "Signature for this request is not valid."
	}
	num, _ := p["timestamp"].(json.Number)
	ts, err := num.Int64()
	if err != nil {
		return -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."
	}
	st := s.serverTime()
	switch at := time.UnixMilli(ts); {
	case at.Sub(st) > aheadTolerance:
		return -1021, "Timestamp for this request was 1000ms ahead of the server's time."
	case st.Sub(at) > defaultRecv:
		return -1021, "Timestamp for this request is outside of the recvWindow."
	}
	return 0, ""
}

// pushFills sends an executionReport for every fill of the account not yet
// pushed, to every subscribed connection. It runs after each request, as
// that is when the matching core moves.
func (s *Server) pushFills(r *http.Request) {
	s.ws.mu.Lock()
	var subs []*wsClient
	for c := range s.ws.clients {
		if c.subscribed {
			subs = append(subs, c)
		}
	}
	from := s.ws.scanned
	s.ws.mu.Unlock()
	now := s.o.Clock.Now()
	if from.IsZero() {
		from = now.Add(-24 * time.Hour)
	}
	fills, err := s.o.Venue.Fills(r.Context(), s.in.Symbol, from, now)
	if err != nil {
		return
	}
	s.ws.mu.Lock()
	var fresh []market.Fill
	for _, f := range fills {
		if !s.ws.pushed[f.TradeID] {
			s.ws.pushed[f.TradeID] = true
			fresh = append(fresh, f)
		}
	}
	// A fill stamped now may still come (a later request in the same
	// instant): scan from just before now next time.
	s.ws.scanned = now.Add(-time.Nanosecond)
	s.ws.mu.Unlock()
	for _, f := range fresh {
		ev := s.executionReport(r, f)
		for _, c := range subs {
			_ = c.write(map[string]any{"subscriptionId": 0, "event": ev})
		}
	}
}

// executionReport is Binance's user data event for one trade of an order.
func (s *Server) executionReport(r *http.Request, f market.Fill) map[string]any {
	o, _ := s.o.Venue.Order(r.Context(), s.in.Symbol, f.ClientID)
	s.mu.Lock()
	typ := s.kinds[f.ClientID]
	s.mu.Unlock()
	j := s.orderJSON(o, typ)
	return map[string]any{
		"e": "executionReport", "E": s.o.Clock.Now().UnixMilli(), "s": f.Symbol, "c": s.clientID(f.ClientID), "S": j["side"],
		"o": typ, "f": j["timeInForce"], "q": j["origQty"], "p": j["price"], "P": "0.00000000", "F": "0.00000000",
		"g": -1, "C": "", "x": "TRADE", "X": j["status"], "r": "NONE", "i": s.orderID(f.OrderID),
		"l": f.Qty.StringFixed(8), "z": j["executedQty"], "L": f.Price.StringFixed(8), "n": f.Fee.StringFixed(8),
		"N": f.FeeAsset, "T": f.Time.UnixMilli(), "t": s.tradeID(f.TradeID), "I": s.tradeID(f.TradeID) * 2,
		"w": false, "m": f.Liquidity == market.Maker, "M": true, "O": o.Created.UnixMilli(),
		"Z": j["cummulativeQuoteQty"], "Y": f.Notional().StringFixed(8), "Q": "0.00000000",
		"W": o.Created.UnixMilli(), "V": "EXPIRE_MAKER",
	}
}

// DropStreams closes every WebSocket connection, as a network cut would.
func (s *Server) DropStreams() {
	s.ws.mu.Lock()
	conns := make([]*websocket.Conn, 0, len(s.ws.clients))
	for c := range s.ws.clients {
		conns = append(conns, c.conn)
	}
	s.ws.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// Subscribers returns how many connections follow the user data stream.
func (s *Server) Subscribers() int {
	s.ws.mu.Lock()
	defer s.ws.mu.Unlock()
	n := 0
	for c := range s.ws.clients {
		if c.subscribed {
			n++
		}
	}
	return n
}

// TradeQueries returns how many times the account's trades were asked for
// over REST (myTrades).
func (s *Server) TradeQueries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tradeQueries
}
