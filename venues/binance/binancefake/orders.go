package binancefake

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/venues"
)

var clientIDRule = regexp.MustCompile(`^[.A-Z:/a-z0-9_-]{1,36}$`)

// signed checks a SIGNED request as Binance does: the API key header, the
// timestamp against the server's clock and recvWindow, and the HMAC-SHA256
// of the query string (less the signature) followed by the body. The
// handler gets the query and body parameters merged.
func (s *Server) signed(h func(http.ResponseWriter, *http.Request, url.Values)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("X-MBX-APIKEY")
		if key == "" {
			writeErr(w, http.StatusUnauthorized, -2014, "API-key format invalid.")
			return
		}
		if !hmac.Equal([]byte(key), []byte(s.o.APIKey)) {
			writeErr(w, http.StatusUnauthorized, -2015, "Invalid API-key, IP, or permissions for action.")
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			writeErr(w, http.StatusBadRequest, -1000, "An unknown error occurred while processing the request.")
			return
		}
		raw, sig := splitSignature(r.URL.RawQuery)
		params, err1 := url.ParseQuery(r.URL.RawQuery)
		form, err2 := url.ParseQuery(string(body))
		if err1 != nil || err2 != nil {
			writeErr(w, http.StatusBadRequest, -1100, "Illegal characters found in a parameter.")
			return
		}
		for k, vs := range form {
			params[k] = append(params[k], vs...)
		}
		if sig == "" {
			writeErr(w, http.StatusBadRequest, -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
			return
		}
		ts, err := strconv.ParseInt(params.Get("timestamp"), 10, 64)
		if err != nil {
			writeErr(w, http.StatusBadRequest, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.")
			return
		}
		recv := defaultRecv
		if rw := params.Get("recvWindow"); rw != "" {
			n, err := strconv.ParseInt(rw, 10, 64)
			if err != nil || n <= 0 || time.Duration(n)*time.Millisecond > maxRecvWindow {
				writeErr(w, http.StatusBadRequest, -1131, "recvWindow must be less than 60000")
				return
			}
			recv = time.Duration(n) * time.Millisecond
		}
		mac := hmac.New(sha256.New, []byte(s.o.Secret))
		mac.Write([]byte(raw + string(body)))
		if !hmac.Equal([]byte(hex.EncodeToString(mac.Sum(nil))), []byte(strings.ToLower(sig))) {
			writeErr(w, http.StatusBadRequest, -1022, "Signature for this request is not valid.")
			return
		}
		st := s.serverTime()
		switch at := time.UnixMilli(ts); {
		case at.Sub(st) > aheadTolerance:
			writeErr(w, http.StatusBadRequest, -1021, "Timestamp for this request was 1000ms ahead of the server's time.")
			return
		case st.Sub(at) > recv:
			writeErr(w, http.StatusBadRequest, -1021, "Timestamp for this request is outside of the recvWindow.")
			return
		}
		h(w, r, params)
	}
}

// splitSignature returns the query string without its signature
// parameter, and the signature.
func splitSignature(q string) (rest, sig string) {
	parts := strings.Split(q, "&")
	kept := parts[:0]
	for _, p := range parts {
		if v, ok := strings.CutPrefix(p, "signature="); ok {
			sig = v
			continue
		}
		kept = append(kept, p)
	}
	return strings.Join(kept, "&"), sig
}

// decimalParam reads a decimal parameter with at most 8 decimals.
func decimalParam(p url.Values, name string) (decimal.Decimal, error) {
	v := p.Get(name)
	d, err := decimal.NewFromString(v)
	if v == "" || err != nil {
		return d, errMissing(name)
	}
	if d.Exponent() < -8 {
		return d, errPrecision(name)
	}
	return d, nil
}

// errMissing and errPrecision carry a parameter's name to Binance's words.
type (
	errMissing   string
	errPrecision string
)

func (e errMissing) Error() string {
	return fmt.Sprintf("Mandatory parameter '%s' was not sent, was empty/null, or malformed.", string(e))
}

func (e errPrecision) Error() string {
	return fmt.Sprintf("Parameter '%s' has too much precision.", string(e))
}

func (s *Server) newOrder(w http.ResponseWriter, r *http.Request, p url.Values) {
	if !s.o.Restrictions.EnableSpotAndMarginTrading {
		writeErr(w, http.StatusUnauthorized, -2015, "Invalid API-key, IP, or permissions for action.")
		return
	}
	if p.Get("symbol") != s.in.Symbol {
		writeErr(w, http.StatusBadRequest, -1121, "Invalid symbol.")
		return
	}
	req := market.OrderRequest{Symbol: s.in.Symbol, ClientID: p.Get("newClientOrderId")}
	switch p.Get("side") {
	case "SELL":
		req.Side = market.Sell
	case "BUY":
		req.Side = market.Buy
	default:
		writeErr(w, http.StatusBadRequest, -1102, "Mandatory parameter 'side' was not sent, was empty/null, or malformed.")
		return
	}
	typ := p.Get("type")
	switch {
	case typ == "LIMIT_MAKER":
		req.TIF = market.PostOnly
	case typ == "LIMIT" && p.Get("timeInForce") == "GTC":
		req.TIF = market.GTC
	case typ == "LIMIT" && p.Get("timeInForce") == "IOC":
		req.TIF = market.IOC
	case typ == "LIMIT" && p.Get("timeInForce") == "":
		writeErr(w, http.StatusBadRequest, -1102, "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.")
		return
	case typ == "LIMIT":
		// FOK exists at Binance; the fake's matching core has no FOK.
		writeErr(w, http.StatusBadRequest, -1115, "Invalid timeInForce.")
		return
	default:
		writeErr(w, http.StatusBadRequest, -1116, "Invalid orderType.")
		return
	}
	var err1, err2 error
	req.Qty, err1 = decimalParam(p, "quantity")
	req.Price, err2 = decimalParam(p, "price")
	for _, err := range []error{err1, err2} {
		var ep errPrecision
		switch {
		case errors.As(err, &ep):
			writeErr(w, http.StatusBadRequest, -1111, ep.Error())
			return
		case err != nil:
			writeErr(w, http.StatusBadRequest, -1102, err.Error())
			return
		}
	}
	if req.ClientID == "" {
		req.ClientID = fmt.Sprintf("x-%d", s.o.Clock.Now().UnixNano())
	}
	if !clientIDRule.MatchString(req.ClientID) {
		writeErr(w, http.StatusBadRequest, -1100, "Illegal characters found in parameter 'newClientOrderId'; legal range is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.")
		return
	}
	now := s.o.Clock.Now()
	c10, c1d := s.o10s.Spend(now, 1), s.o1d.Spend(now, 1)
	w.Header().Set("X-MBX-ORDER-COUNT-10S", strconv.FormatInt(c10, 10))
	w.Header().Set("X-MBX-ORDER-COUNT-1D", strconv.FormatInt(c1d, 10))
	if c10 > orderLimit10s {
		writeErr(w, http.StatusTooManyRequests, -1015, fmt.Sprintf("Too many new orders; current limit is %d orders per TEN_SECONDS.", orderLimit10s))
		return
	}
	if req.TIF != market.IOC && s.openOrders(r) >= maxOpenOrders {
		writeErr(w, http.StatusBadRequest, -2010, "Filter failure: MAX_NUM_ORDERS")
		return
	}
	cid := req.ClientID
	s.mu.Lock()
	prev, had := s.simOf[cid]
	s.mu.Unlock()
	if had {
		if o, err := s.o.Venue.Order(r.Context(), s.in.Symbol, prev); err == nil && !o.Status.Done() {
			writeErr(w, http.StatusBadRequest, -2010, "Duplicate order sent.")
			return
		}
		s.mu.Lock()
		s.reused++
		req.ClientID = fmt.Sprintf("reused-%d", s.reused)
		s.mu.Unlock()
	}
	o, fills, err := s.o.Venue.Place(r.Context(), req)
	if err != nil {
		status, code, msg := refusal(err)
		writeErr(w, status, code, msg)
		return
	}
	id := s.orderID(o.VenueOrderID)
	s.mu.Lock()
	s.placed = append(s.placed, cid)
	s.simOf[cid], s.cidOf[req.ClientID] = req.ClientID, cid
	s.byOrderID[id] = req.ClientID
	s.kinds[req.ClientID] = typ
	s.mu.Unlock()
	res := s.orderJSON(o, typ)
	delete(res, "time")
	delete(res, "updateTime")
	delete(res, "isWorking")
	delete(res, "stopPrice")
	delete(res, "icebergQty")
	res["transactTime"] = now.UnixMilli()
	switch p.Get("newOrderRespType") {
	case "ACK":
		writeJSON(w, map[string]any{"symbol": o.Symbol, "orderId": id, "orderListId": -1,
			"clientOrderId": cid, "transactTime": now.UnixMilli()})
		return
	case "RESULT":
		writeJSON(w, res)
		return
	}
	fl := make([]map[string]any, len(fills))
	for i, f := range fills {
		fl[i] = map[string]any{"price": f.Price.StringFixed(8), "qty": f.Qty.StringFixed(8),
			"commission": f.Fee.StringFixed(8), "commissionAsset": f.FeeAsset, "tradeId": s.tradeID(f.TradeID)}
	}
	res["fills"] = fl
	writeJSON(w, res)
}

// openOrders counts the resting orders the fake has placed.
func (s *Server) openOrders(r *http.Request) int {
	s.mu.Lock()
	var ids []string
	for id, typ := range s.kinds {
		if typ != "" {
			ids = append(ids, id)
		}
	}
	s.mu.Unlock()
	n := 0
	for _, id := range ids {
		if o, err := s.o.Venue.Order(r.Context(), s.in.Symbol, id); err == nil && !o.Status.Done() {
			n++
		}
	}
	return n
}

// refusal maps the matching core's refusals onto Binance's answers.
func refusal(err error) (status, code int, msg string) {
	var re *venues.RejectError
	switch {
	case errors.Is(err, venues.ErrDuplicateClientID):
		return http.StatusBadRequest, -2010, "Duplicate order sent."
	case errors.Is(err, venues.ErrWouldTake):
		return http.StatusBadRequest, -2010, "Order would immediately match and take."
	case errors.As(err, &re):
		switch re.Code {
		case "TICK", "NON_POSITIVE_PRICE":
			return http.StatusBadRequest, -1013, "Filter failure: PRICE_FILTER"
		case "STEP", "MIN_QTY", "NON_POSITIVE_QTY":
			return http.StatusBadRequest, -1013, "Filter failure: LOT_SIZE"
		case "MIN_NOTIONAL":
			return http.StatusBadRequest, -1013, "Filter failure: NOTIONAL"
		case "CLIENT_ID":
			return http.StatusBadRequest, -1100, "Illegal characters found in parameter 'newClientOrderId'; legal range is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'."
		}
		return http.StatusBadRequest, -2010, re.Reason
	}
	return http.StatusInternalServerError, -1000, "An unknown error occurred while processing the request."
}

func (s *Server) orderID(simID string) int64 { return s.idBase + trimID(simID) }

// clientID is the client order id of a matching-core order.
func (s *Server) clientID(simID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cid, ok := s.cidOf[simID]; ok {
		return cid
	}
	return simID
}
func (s *Server) tradeID(simID string) int64 { return s.idBase + trimID(simID) }

var statusNames = map[market.OrderStatus]string{market.New: "NEW", market.PartiallyFilled: "PARTIALLY_FILLED",
	market.Filled: "FILLED", market.Canceled: "CANCELED", market.Rejected: "REJECTED", market.Expired: "EXPIRED"}

func (s *Server) orderJSON(o market.Order, typ string) map[string]any {
	tif := "GTC"
	if o.TIF == market.IOC {
		tif = "IOC"
	}
	side := "SELL"
	if o.Side == market.Buy {
		side = "BUY"
	}
	at := o.Created.UnixMilli()
	return map[string]any{
		"symbol": o.Symbol, "orderId": s.orderID(o.VenueOrderID), "orderListId": -1, "clientOrderId": s.clientID(o.ClientID),
		"price": o.Price.StringFixed(8), "origQty": o.Qty.StringFixed(8), "executedQty": o.Filled.StringFixed(8),
		"cummulativeQuoteQty": o.Notional.StringFixed(8), "status": statusNames[o.Status], "timeInForce": tif,
		"type": typ, "side": side, "stopPrice": "0.00000000", "icebergQty": "0.00000000", "time": at,
		"updateTime": at, "isWorking": true, "workingTime": at, "origQuoteOrderQty": "0.00000000",
		"selfTradePreventionMode": "EXPIRE_MAKER",
	}
}

// lookup finds an order by origClientOrderId or orderId.
func (s *Server) lookup(r *http.Request, p url.Values) (market.Order, string, bool) {
	s.mu.Lock()
	simID := s.simOf[p.Get("origClientOrderId")]
	s.mu.Unlock()
	if p.Get("origClientOrderId") == "" {
		id, err := strconv.ParseInt(p.Get("orderId"), 10, 64)
		if err != nil {
			return market.Order{}, "", false
		}
		s.mu.Lock()
		simID = s.byOrderID[id]
		s.mu.Unlock()
	}
	s.mu.Lock()
	typ, ok := s.kinds[simID]
	s.mu.Unlock()
	if !ok {
		return market.Order{}, "", false
	}
	o, err := s.o.Venue.Order(r.Context(), s.in.Symbol, simID)
	return o, typ, err == nil
}

func (s *Server) getOrder(w http.ResponseWriter, r *http.Request, p url.Values) {
	if p.Get("symbol") != s.in.Symbol {
		writeErr(w, http.StatusBadRequest, -1121, "Invalid symbol.")
		return
	}
	o, typ, ok := s.lookup(r, p)
	if !ok {
		writeErr(w, http.StatusBadRequest, -2013, "Order does not exist.")
		return
	}
	writeJSON(w, s.orderJSON(o, typ))
}

func (s *Server) cancelOrder(w http.ResponseWriter, r *http.Request, p url.Values) {
	if p.Get("symbol") != s.in.Symbol {
		writeErr(w, http.StatusBadRequest, -1121, "Invalid symbol.")
		return
	}
	o, typ, ok := s.lookup(r, p)
	if !ok || o.Status.Done() {
		writeErr(w, http.StatusBadRequest, -2011, "Unknown order sent.")
		return
	}
	c, err := s.o.Venue.Cancel(r.Context(), s.in.Symbol, o.ClientID)
	if err != nil {
		writeErr(w, http.StatusBadRequest, -2011, "Unknown order sent.")
		return
	}
	res := s.orderJSON(c, typ)
	for _, k := range []string{"time", "updateTime", "isWorking", "stopPrice", "icebergQty", "workingTime"} {
		delete(res, k)
	}
	res["origClientOrderId"] = s.clientID(c.ClientID)
	res["clientOrderId"] = fmt.Sprintf("cancel-%d", s.o.Clock.Now().UnixNano())
	res["transactTime"] = s.o.Clock.Now().UnixMilli()
	writeJSON(w, res)
}

func (s *Server) myTrades(w http.ResponseWriter, r *http.Request, p url.Values) {
	s.mu.Lock()
	s.tradeQueries++
	s.mu.Unlock()
	if p.Get("symbol") != s.in.Symbol {
		writeErr(w, http.StatusBadRequest, -1121, "Invalid symbol.")
		return
	}
	now := s.o.Clock.Now()
	from, to := now.Add(-24*time.Hour), now
	if v := p.Get("startTime"); v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			writeErr(w, http.StatusBadRequest, -1100, "Illegal characters found in parameter 'startTime'; legal range is '^[0-9]{1,20}$'.")
			return
		}
		from = time.UnixMilli(ms).UTC()
	}
	if v := p.Get("endTime"); v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			writeErr(w, http.StatusBadRequest, -1100, "Illegal characters found in parameter 'endTime'; legal range is '^[0-9]{1,20}$'.")
			return
		}
		to = time.UnixMilli(ms).UTC()
	}
	if to.Sub(from) > 24*time.Hour {
		writeErr(w, http.StatusBadRequest, -1127, "More than 24 hours between startTime and endTime.")
		return
	}
	limit := 500
	if v := p.Get("limit"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			limit = min(n, 1000)
		}
	}
	var orderFilter int64 = -1
	if v := p.Get("orderId"); v != "" {
		orderFilter, _ = strconv.ParseInt(v, 10, 64)
	}
	var fromID int64 = -1
	if v := p.Get("fromId"); v != "" {
		if p.Get("startTime") != "" || p.Get("endTime") != "" {
			writeErr(w, http.StatusBadRequest, -1128, "Combination of optional parameters invalid.")
			return
		}
		fromID, _ = strconv.ParseInt(v, 10, 64)
		from, to = now.Add(-24*time.Hour), now // trades from the id on, up to now
	}
	fills, err := s.o.Venue.Fills(r.Context(), s.in.Symbol, from.Add(-time.Nanosecond), to.Add(time.Millisecond-time.Nanosecond))
	if err != nil {
		writeErr(w, http.StatusInternalServerError, -1000, "An unknown error occurred while processing the request.")
		return
	}
	out := make([]map[string]any, 0, len(fills))
	for _, f := range fills {
		oid := s.orderID(f.OrderID)
		if orderFilter >= 0 && oid != orderFilter || fromID >= 0 && s.tradeID(f.TradeID) < fromID {
			continue
		}
		if len(out) == limit {
			break
		}
		out = append(out, map[string]any{
			"symbol": f.Symbol, "id": s.tradeID(f.TradeID), "orderId": oid, "orderListId": -1,
			"price": f.Price.StringFixed(8), "qty": f.Qty.StringFixed(8), "quoteQty": f.Notional().StringFixed(8),
			"commission": f.Fee.StringFixed(8), "commissionAsset": f.FeeAsset, "time": f.Time.UnixMilli(),
			"isBuyer": f.Side == market.Buy, "isMaker": f.Liquidity == market.Maker, "isBestMatch": true,
		})
	}
	writeJSON(w, out)
}
