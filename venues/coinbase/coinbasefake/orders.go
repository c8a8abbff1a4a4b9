package coinbasefake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/venues"
)

// order is one accepted order: what Coinbase keeps beside the sim's state.
type order struct {
	id       string // Coinbase's order id
	clientID string
	simID    string
	side     string // BUY, SELL
	config   orderConfig
	created  time.Time
}

// createOrder answers POST /orders. A reused client_order_id gets the
// order it names and creates nothing; a refusal is success:false with
// Coinbase's failure reasons; both with HTTP 200.
func (s *Server) createOrder(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "could not read the order: "+err.Error())
		return
	}
	if req.ClientOrderID == "" {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "client_order_id is required")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := s.byClient[req.ClientOrderID]; ok {
		// "If the ID provided is not unique, the order will not be created
		// and the order corresponding with that ID will be returned instead."
		cfg := o.config
		writeJSON(w, http.StatusOK, createResponse{Success: true, FailureReason: "UNKNOWN_FAILURE_REASON", OrderID: o.id,
			SuccessResponse: &successResponse{OrderID: o.id, ProductID: s.o.ProductID, Side: o.side,
				ClientOrderID: o.clientID}, OrderConfiguration: &cfg})
		return
	}
	refuse := func(code, preview, msg string) {
		writeJSON(w, http.StatusOK, createResponse{FailureReason: "UNKNOWN_FAILURE_REASON",
			ErrorResponse: &errorResponse{Error: code, Message: msg, ErrorDetails: msg, PreviewFailureReason: preview,
				NewOrderFailureReason: code}})
	}
	if req.ProductID != s.o.ProductID {
		refuse("INVALID_PRODUCT_ID", "PREVIEW_INVALID_PRODUCT_ID", "Invalid product_id")
		return
	}
	mreq := market.OrderRequest{ClientID: req.ClientOrderID, Symbol: s.rules.Symbol}
	switch req.Side {
	case "BUY":
		mreq.Side = market.Buy
	case "SELL":
		mreq.Side = market.Sell
	default:
		refuse("INVALID_SIDE", "PREVIEW_INVALID_SIDE", "Invalid side")
		return
	}
	cfg, size, price, tif, err := parseConfig(req.OrderConfiguration)
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", err.Error())
		return
	}
	if tif == 0 {
		refuse("UNSUPPORTED_ORDER_CONFIGURATION", "PREVIEW_INVALID_ORDER_CONFIG", "Unsupported order configuration")
		return
	}
	mreq.Qty, mreq.Price, mreq.TIF = size, price, tif
	placed, _, err := s.o.Venue.Place(r.Context(), mreq)
	if err != nil {
		code, preview, msg, ok := failure(err)
		if !ok {
			writeError(w, http.StatusInternalServerError, "INTERNAL", "internal error")
			return
		}
		refuse(code, preview, msg)
		return
	}
	o := &order{id: newUUID(), clientID: req.ClientOrderID, simID: placed.VenueOrderID, side: req.Side, config: cfg,
		created: placed.Created}
	s.orders = append(s.orders, o)
	s.byID[o.id], s.byClient[o.clientID], s.bySim[o.simID] = o, o, o
	s.placed = append(s.placed, o.clientID)
	writeJSON(w, http.StatusOK, createResponse{Success: true, FailureReason: "UNKNOWN_FAILURE_REASON", OrderID: o.id,
		SuccessResponse:    &successResponse{OrderID: o.id, ProductID: s.o.ProductID, Side: o.side, ClientOrderID: o.clientID},
		OrderConfiguration: &cfg})
}

// parseConfig reads the order_configuration oneof. tif is zero for a
// configuration the fake does not take (market, stop, bracket, GTD, FOK).
func parseConfig(raw map[string]json.RawMessage) (cfg orderConfig, size, price decimal.Decimal, tif market.TimeInForce,
	err error) {
	if len(raw) != 1 {
		return cfg, size, price, 0, errors.New("order_configuration must hold exactly one configuration")
	}
	strict := func(b json.RawMessage, v any) error {
		d := json.NewDecoder(bytes.NewReader(b))
		d.DisallowUnknownFields()
		return d.Decode(v)
	}
	var base, limit string
	switch {
	case raw["sor_limit_ioc"] != nil:
		var c limitIOC
		if err := strict(raw["sor_limit_ioc"], &c); err != nil {
			return cfg, size, price, 0, errors.New("sor_limit_ioc: " + err.Error())
		}
		cfg.SorLimitIOC, base, limit, tif = &c, c.BaseSize, c.LimitPrice, market.IOC
	case raw["limit_limit_gtc"] != nil:
		var c limitGTC
		if err := strict(raw["limit_limit_gtc"], &c); err != nil {
			return cfg, size, price, 0, errors.New("limit_limit_gtc: " + err.Error())
		}
		cfg.LimitLimitGTC, base, limit, tif = &c, c.BaseSize, c.LimitPrice, market.GTC
		if c.PostOnly {
			tif = market.PostOnly
		}
	default:
		return cfg, size, price, 0, nil
	}
	if size, err = decimal.NewFromString(base); err != nil {
		return cfg, size, price, 0, errors.New("base_size is not a decimal")
	}
	if price, err = decimal.NewFromString(limit); err != nil {
		return cfg, size, price, 0, errors.New("limit_price is not a decimal")
	}
	return cfg, size, price, tif, nil
}

// failure maps a sim refusal onto Coinbase's failure reasons: the new
// order reason, the preview reason and a message. ok is false for an error
// that is not a refusal.
func failure(err error) (code, preview, msg string, ok bool) {
	switch {
	case errors.Is(err, venues.ErrWouldTake):
		return "INVALID_LIMIT_PRICE_POST_ONLY", "PREVIEW_INVALID_LIMIT_PRICE_POST_ONLY",
			"Limit price would cross the book for a post-only order", true
	case errors.Is(err, venues.ErrDuplicateClientID):
		return "DUPLICATE_CLIENT_ORDER_ID", "UNKNOWN_PREVIEW_FAILURE_REASON", "Duplicate client_order_id", true
	case errors.Is(err, venues.ErrUnknownSymbol):
		return "INVALID_PRODUCT_ID", "PREVIEW_INVALID_PRODUCT_ID", "Invalid product_id", true
	}
	var re *venues.RejectError
	if !errors.As(err, &re) {
		return "", "", "", false
	}
	switch re.Code {
	case "TICK":
		return "INVALID_PRICE_PRECISION", "PREVIEW_INVALID_LIMIT_PRICE_PRECISION", "Too many decimals in order price: " + re.Reason, true
	case "STEP":
		return "INVALID_SIZE_PRECISION", "PREVIEW_INVALID_SIZE_PRECISION", "Too many decimals in order amount: " + re.Reason, true
	case "MIN_QTY", "NON_POSITIVE_QTY":
		return "UNKNOWN_FAILURE_REASON", "PREVIEW_INVALID_BASE_SIZE_TOO_SMALL", "Order size is too small: " + re.Reason, true
	case "MIN_NOTIONAL":
		return "UNKNOWN_FAILURE_REASON", "PREVIEW_INVALID_QUOTE_SIZE_TOO_SMALL", "Order value is too small: " + re.Reason, true
	case "NON_POSITIVE_PRICE":
		return "INVALID_LIMIT_PRICE", "PREVIEW_INVALID_LIMIT_PRICE", "Invalid limit price: " + re.Reason, true
	case "SIDE":
		return "INVALID_SIDE", "PREVIEW_INVALID_SIDE", "Invalid side", true
	}
	return "INVALID_REQUEST", "UNKNOWN_PREVIEW_FAILURE_REASON", re.Reason, true
}

// getOrder answers GET /orders/historical/{order_id}.
func (s *Server) getOrder(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.byID[r.PathValue("order_id")]
	if !ok {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "order with this orderID was not found")
		return
	}
	body, err := s.orderBody(r.Context(), o)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "INTERNAL", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"order": body})
}

// orderBody is an order as Coinbase shows it, from the sim's state now.
// Caller holds mu.
func (s *Server) orderBody(ctx context.Context, o *order) (orderBody, error) {
	st, err := s.o.Venue.Order(ctx, s.rules.Symbol, o.clientID)
	if err != nil {
		return orderBody{}, err
	}
	fills, err := s.o.Venue.Fills(ctx, s.rules.Symbol, time.Time{}, s.o.Clock.Now())
	if err != nil {
		return orderBody{}, err
	}
	fees, n, last := decimal.Zero, 0, time.Time{}
	for _, f := range fills {
		if f.OrderID == o.simID {
			fees, n, last = fees.Add(f.Fee), n+1, f.Time
		}
	}
	status := map[market.OrderStatus]string{market.New: "OPEN", market.PartiallyFilled: "OPEN",
		market.Filled: "FILLED", market.Canceled: "CANCELLED", market.Expired: "EXPIRED", market.Rejected: "FAILED"}[st.Status]
	tif := "GOOD_UNTIL_CANCELLED"
	if st.TIF == market.IOC {
		tif = "IMMEDIATE_OR_CANCEL"
	}
	avg, pct := decimal.Zero, decimal.Zero
	if st.Filled.IsPositive() {
		avg = st.Notional.Div(st.Filled)
		pct = st.Filled.Div(st.Qty).Mul(decimal.NewFromInt(100)).Round(2)
	}
	hold := decimal.Zero
	if !st.Status.Done() && o.side == "BUY" {
		hold = st.Remaining().Mul(st.Price)
	} else if !st.Status.Done() {
		hold = st.Remaining()
	}
	after := st.Notional.Add(fees)
	if o.side == "SELL" {
		after = st.Notional.Sub(fees)
	}
	return orderBody{OrderID: o.id, ProductID: s.o.ProductID, UserID: s.user, OrderConfiguration: o.config, Side: o.side,
		ClientOrderID: o.clientID, Status: status, TimeInForce: tif, CreatedTime: stamp(o.created),
		CompletionPercentage: str(pct), FilledSize: str(st.Filled), AverageFilledPrice: str(avg), Fee: "",
		NumberOfFills: strconv.Itoa(n), FilledValue: str(st.Notional), TotalFees: str(fees),
		TotalValueAfterFees: str(after), TriggerStatus: "INVALID_ORDER_TYPE", OrderType: "LIMIT",
		RejectReason: "REJECT_REASON_UNSPECIFIED", Settled: st.Status.Done(), ProductType: "SPOT",
		OrderPlacementSource: "RETAIL_ADVANCED", OutstandingHoldAmount: str(hold), LastFillTime: stamp(last),
		EditHistory: []any{}, RetailPortfolioID: s.portfolio}, nil
}

// listOrders answers GET /orders/historical/batch: newest first, filtered
// by product_ids, order_status, order_side, start_date and end_date, paged
// by limit and cursor. There is no client id filter, as on Coinbase.
func (s *Server) listOrders(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, offset, ok := paging(w, q.Get("limit"), q.Get("cursor"))
	if !ok {
		return
	}
	from, to, ok := dateRange(w, q.Get("start_date"), q.Get("end_date"))
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var match []orderBody
	if ids := q["product_ids"]; len(ids) == 0 || slices.Contains(ids, s.o.ProductID) {
		for i := len(s.orders) - 1; i >= 0; i-- {
			o := s.orders[i]
			if o.created.Before(from) || (!to.IsZero() && o.created.After(to)) {
				continue
			}
			if side := q.Get("order_side"); side != "" && side != o.side {
				continue
			}
			b, err := s.orderBody(r.Context(), o)
			if err != nil {
				writeError(w, http.StatusInternalServerError, "INTERNAL", err.Error())
				return
			}
			if st := q["order_status"]; len(st) > 0 && !slices.Contains(st, b.Status) {
				continue
			}
			match = append(match, b)
		}
	}
	page, next := cut(match, offset, limit)
	writeJSON(w, http.StatusOK, map[string]any{"orders": page, "sequence": "0", "has_next": next != "",
		"cursor": next})
}

// listFills answers GET /orders/historical/fills: newest first, filtered
// by order_ids, trade_ids, product_ids and the sequence timestamps (both
// inclusive), paged by limit and cursor.
func (s *Server) listFills(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, offset, ok := paging(w, q.Get("limit"), q.Get("cursor"))
	if !ok {
		return
	}
	from, to, ok := dateRange(w, q.Get("start_sequence_timestamp"), q.Get("end_sequence_timestamp"))
	if !ok {
		return
	}
	if now := s.o.Clock.Now(); to.IsZero() || to.After(now) {
		to = now
	}
	if !from.IsZero() {
		from = from.Add(-time.Nanosecond) // the sim's window is (from, to]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var match []fillBody
	if ids := q["product_ids"]; len(ids) == 0 || slices.Contains(ids, s.o.ProductID) {
		fills, err := s.o.Venue.Fills(r.Context(), s.rules.Symbol, from, to)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "INTERNAL", err.Error())
			return
		}
		for i := len(fills) - 1; i >= 0; i-- {
			f := fills[i]
			o := s.bySim[f.OrderID]
			if o == nil {
				continue // placed on the sim directly, not through Coinbase
			}
			tid := s.tradeID(f.TradeID)
			if ids := q["order_ids"]; len(ids) > 0 && !slices.Contains(ids, o.id) {
				continue
			}
			if ids := q["trade_ids"]; len(ids) > 0 && !slices.Contains(ids, tid) {
				continue
			}
			liq := "TAKER"
			if f.Liquidity == market.Maker {
				liq = "MAKER"
			}
			match = append(match, fillBody{EntryID: tid, TradeID: tid, OrderID: o.id, TradeTime: stamp(f.Time),
				TradeType: "FILL", Price: str(f.Price), Size: str(f.Qty), Commission: str(f.Fee), ProductID: s.o.ProductID,
				SequenceTimestamp: stamp(f.Time), LiquidityIndicator: liq, UserID: s.user, Side: o.side,
				RetailPortfolioID: s.portfolio})
		}
	}
	page, next := cut(match, offset, limit)
	writeJSON(w, http.StatusOK, map[string]any{"fills": page, "cursor": next})
}

// tradeID is the Coinbase trade id of a sim trade: a UUID, so ids never
// repeat across runs. Caller holds mu.
func (s *Server) tradeID(simID string) string {
	id, ok := s.tradeIDs[simID]
	if !ok {
		id = newUUID()
		s.tradeIDs[simID] = id
	}
	return id
}

// cancelOrders answers POST /orders/batch_cancel with one result per id.
func (s *Server) cancelOrders(w http.ResponseWriter, r *http.Request) {
	var req struct {
		OrderIDs []string `json:"order_ids"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil || len(req.OrderIDs) == 0 {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "order_ids is required")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	results := make([]cancelResult, 0, len(req.OrderIDs))
	for _, id := range req.OrderIDs {
		res := cancelResult{OrderID: id, FailureReason: "UNKNOWN_CANCEL_FAILURE_REASON"}
		o, ok := s.byID[id]
		if !ok {
			res.FailureReason = "UNKNOWN_CANCEL_ORDER"
			results = append(results, res)
			continue
		}
		st, err := s.o.Venue.Order(r.Context(), s.rules.Symbol, o.clientID)
		switch {
		case err != nil:
			res.FailureReason = "UNKNOWN_CANCEL_ORDER"
		case st.Status == market.Canceled:
			res.FailureReason = "DUPLICATE_CANCEL_REQUEST"
		case st.Status.Done():
			// Filled or expired: nothing left to cancel.
		default:
			if _, err := s.o.Venue.Cancel(r.Context(), s.rules.Symbol, o.clientID); err == nil {
				res.Success = true
			}
		}
		results = append(results, res)
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": results})
}

// paging reads limit (default 100, at most 1000) and cursor (an offset).
func paging(w http.ResponseWriter, l, c string) (limit, offset int, ok bool) {
	limit = defaultLimit
	if l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "limit must be a non-negative integer")
			return 0, 0, false
		}
		if n > 0 {
			limit = min(n, maxListLimit)
		}
	}
	if c != "" {
		n, err := strconv.Atoi(c)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "invalid cursor")
			return 0, 0, false
		}
		offset = n
	}
	return limit, offset, true
}

// dateRange reads two optional RFC 3339 times.
func dateRange(w http.ResponseWriter, a, b string) (from, to time.Time, ok bool) {
	for _, x := range []struct {
		v   string
		dst *time.Time
	}{{a, &from}, {b, &to}} {
		if x.v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, x.v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "dates must be RFC 3339")
			return from, to, false
		}
		*x.dst = t
	}
	return from, to, true
}

// cut returns one page of items and the cursor of the next ("" at the end).
func cut[T any](items []T, offset, limit int) ([]T, string) {
	if offset > len(items) {
		offset = len(items)
	}
	end := min(offset+limit, len(items))
	page := append([]T{}, items[offset:end]...)
	if end < len(items) {
		return page, strconv.Itoa(end)
	}
	return page, ""
}
