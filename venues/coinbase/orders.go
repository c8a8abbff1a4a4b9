package coinbase

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/venues"
)

// Paging bounds for order and fill lists.
const (
	listPage     = 100
	maxListPages = 50
	// fillsSlack widens a fills query beyond the window: Coinbase filters on
	// sequence_timestamp, we on trade_time.
	fillsSlack = time.Minute
)

// Coinbase failure reasons the engine tells apart.
const (
	reasonPostOnly        = "INVALID_LIMIT_PRICE_POST_ONLY"
	reasonPostOnlyPreview = "PREVIEW_INVALID_LIMIT_PRICE_POST_ONLY"
	reasonDuplicateID     = "DUPLICATE_CLIENT_ORDER_ID"
	reasonBadProduct      = "INVALID_PRODUCT_ID"
	reasonBadProductPrev  = "PREVIEW_INVALID_PRODUCT_ID"
)

// Place sends a limit order under req.ClientID: IOC as sor_limit_ioc, GTC
// as limit_limit_gtc, PostOnly as limit_limit_gtc with post_only. An
// accepted order is read back with its fills, so the fills returned are
// those that executed on arrival. Coinbase answers a reused client id with
// the order it already has and creates nothing; that order comes back with
// no fills (they were reported when it was placed).
func (v *Venue) Place(ctx context.Context, req market.OrderRequest) (market.Order, []market.Fill, error) {
	p, err := v.product(ctx, req.Symbol)
	if err != nil {
		return market.Order{}, nil, fmt.Errorf("place %s: %w", req.ClientID, err)
	}
	body, err := orderBody(p.id, req)
	if err != nil {
		return market.Order{}, nil, fmt.Errorf("place %s: %w", req.ClientID,
			&venues.RejectError{Venue: v.name, Code: "INVALID_REQUEST", Reason: err.Error()})
	}
	before, _ := v.knownOrder(req.ClientID)
	var res createdJSON
	if err := v.post(ctx, pathOrders, body, &res); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusBadRequest {
			// A request Coinbase could not take (INVALID_ARGUMENT): nothing placed.
			return market.Order{}, nil, fmt.Errorf("place %s: %w", req.ClientID,
				&venues.RejectError{Venue: v.name, Code: nonEmpty(ae.Code, "INVALID_ARGUMENT"), Reason: ae.Msg})
		}
		return market.Order{}, nil, fmt.Errorf("place %s: %w", req.ClientID, err)
	}
	if !res.Success {
		return market.Order{}, nil, v.refusal(req, res)
	}
	id := res.OrderID
	if sr := res.SuccessResponse; sr != nil {
		if sr.ClientOrderID != "" && sr.ClientOrderID != req.ClientID {
			return market.Order{}, nil, fmt.Errorf("place %s: answered for client id %q: %w", req.ClientID,
				sr.ClientOrderID, venues.ErrUnavailable)
		}
		id = nonEmpty(sr.OrderID, id)
	}
	if id == "" {
		return market.Order{}, nil, fmt.Errorf("place %s: accepted without an order id: %w", req.ClientID,
			venues.ErrUnavailable)
	}
	v.remember(req.ClientID, id)
	o, err := v.fetchOrder(ctx, req.Symbol, p, id)
	if err != nil {
		// Placed, but we cannot say how it stands: the engine looks it up.
		return market.Order{}, nil, fmt.Errorf("place %s: accepted as order %s, reading it back: %v: %w",
			req.ClientID, id, err, venues.ErrUnavailable)
	}
	if before == id || o.Filled.IsZero() {
		return o, nil, nil
	}
	fills, err := v.orderFills(ctx, req.Symbol, p, id)
	if err != nil {
		return market.Order{}, nil, fmt.Errorf("place %s: accepted as order %s, reading its fills: %v: %w",
			req.ClientID, id, err, venues.ErrUnavailable)
	}
	sum := decimal.Zero
	for _, f := range fills {
		sum = sum.Add(f.Qty)
	}
	if sum.LessThan(o.Filled) {
		return market.Order{}, nil, fmt.Errorf("place %s: order %s filled %s but its fills add to %s: %w",
			req.ClientID, id, o.Filled, sum, venues.ErrUnavailable)
	}
	return o, fills, nil
}

// orderBody builds POST /orders' body.
func orderBody(productID string, req market.OrderRequest) (createOrderJSON, error) {
	b := createOrderJSON{ClientOrderID: req.ClientID, ProductID: productID}
	switch req.Side {
	case market.Buy:
		b.Side = "BUY"
	case market.Sell:
		b.Side = "SELL"
	default:
		return b, fmt.Errorf("side %s is not buy or sell", req.Side)
	}
	if req.ClientID == "" || len(req.ClientID) > maxClientIDLen {
		return b, fmt.Errorf("client id of %d characters; 1 to %d", len(req.ClientID), maxClientIDLen)
	}
	size, price := amount{req.Qty}, amount{req.Price}
	switch req.TIF {
	case market.IOC:
		b.OrderConfiguration.SorLimitIOC = &limitIOC{BaseSize: size, LimitPrice: price}
	case market.GTC:
		b.OrderConfiguration.LimitLimitGTC = &limitGTC{BaseSize: size, LimitPrice: price}
	case market.PostOnly:
		b.OrderConfiguration.LimitLimitGTC = &limitGTC{BaseSize: size, LimitPrice: price, PostOnly: true}
	default:
		return b, fmt.Errorf("time in force %s is not supported", req.TIF)
	}
	return b, nil
}

// refusal maps success:false onto the engine's errors. The reason is the
// first specific one of new_order_failure_reason, preview_failure_reason,
// error and failure_reason.
func (v *Venue) refusal(req market.OrderRequest, res createdJSON) error {
	var codes []string
	msg := ""
	if e := res.ErrorResponse; e != nil {
		codes = append(codes, e.NewOrderFailureReason, e.PreviewFailureReason, e.Error)
		msg = nonEmpty(e.Message, e.ErrorDetails)
		if e.Message != "" && e.ErrorDetails != "" && e.ErrorDetails != e.Message {
			msg = e.Message + ": " + e.ErrorDetails
		}
	}
	codes = append(codes, res.FailureReason)
	code, has := "UNKNOWN_FAILURE_REASON", map[string]bool{}
	for _, c := range codes {
		has[c] = true
	}
	for _, c := range codes {
		if c != "" && c != "UNKNOWN_FAILURE_REASON" && c != "UNKNOWN_PREVIEW_FAILURE_REASON" {
			code = c
			break
		}
	}
	re := &venues.RejectError{Venue: v.name, Code: code,
		Reason: fmt.Sprintf("%s %s %s at %s: %s", req.Side, req.Qty, req.Symbol, req.Price, nonEmpty(msg, code))}
	switch {
	case has[reasonPostOnly] || has[reasonPostOnlyPreview]:
		return fmt.Errorf("place %s: %w: %w", req.ClientID, re, venues.ErrWouldTake)
	case has[reasonDuplicateID]:
		return fmt.Errorf("place %s: %w: %w", req.ClientID, re, venues.ErrDuplicateClientID)
	case has[reasonBadProduct] || has[reasonBadProductPrev]:
		return fmt.Errorf("place %s: %w: %w", req.ClientID, re, venues.ErrUnknownSymbol)
	}
	return fmt.Errorf("place %s: %w", req.ClientID, re)
}

// Order looks an order up by client id: by the order id we learnt when we
// placed it, else among the product's recent orders (an order whose answer
// was lost).
func (v *Venue) Order(ctx context.Context, symbol, clientID string) (market.Order, error) {
	p, err := v.product(ctx, symbol)
	if err != nil {
		return market.Order{}, fmt.Errorf("order %s: %w", clientID, err)
	}
	id, err := v.orderID(ctx, p, clientID)
	if err != nil {
		return market.Order{}, err
	}
	o, err := v.fetchOrder(ctx, symbol, p, id)
	if err != nil {
		return market.Order{}, fmt.Errorf("order %s: %w", clientID, err)
	}
	return o, nil
}

// orderID returns the order id of clientID, searching the product's
// orders of the last day when we have not seen it.
func (v *Venue) orderID(ctx context.Context, p product, clientID string) (string, error) {
	if id, ok := v.knownOrder(clientID); ok {
		return id, nil
	}
	// Coinbase's list has no client id filter (Get Order's is deprecated):
	// page through the product's recent orders, newest first.
	q := url.Values{"product_ids": {p.id}, "limit": {strconv.Itoa(listPage)},
		"start_date": {v.clk.Now().Add(-ordersLookback).Format(time.RFC3339)}}
	for page := 0; page < maxListPages; page++ {
		var oj ordersJSON
		if err := v.get(ctx, pathListOrders, q, &oj); err != nil {
			return "", fmt.Errorf("order %s: list orders: %w", clientID, err)
		}
		for _, o := range oj.Orders {
			v.remember(o.ClientOrderID, o.OrderID)
			if o.ClientOrderID == clientID && o.OrderID != "" {
				return o.OrderID, nil
			}
		}
		if !oj.HasNext || oj.Cursor == "" {
			break
		}
		q.Set("cursor", oj.Cursor)
	}
	return "", fmt.Errorf("order %s on %s: %w", clientID, p.id, venues.ErrUnknownOrder)
}

// fetchOrder reads one order; an unknown id is venues.ErrUnknownOrder.
func (v *Venue) fetchOrder(ctx context.Context, symbol string, p product, id string) (market.Order, error) {
	var env orderEnvelope
	err := v.get(ctx, pathOrder+url.PathEscape(id), nil, &env)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return market.Order{}, fmt.Errorf("order id %s: %s: %w", id, ae, venues.ErrUnknownOrder)
	}
	if err != nil {
		return market.Order{}, err
	}
	if env.Order == nil {
		return market.Order{}, fmt.Errorf("coinbase: order %s: answer without an order: %w", id, venues.ErrUnavailable)
	}
	if env.Order.ProductID != "" && env.Order.ProductID != p.id {
		return market.Order{}, fmt.Errorf("order id %s is on %s, not %s: %w", id, env.Order.ProductID, p.id,
			venues.ErrUnknownOrder)
	}
	v.remember(env.Order.ClientOrderID, env.Order.OrderID)
	return toOrder(symbol, *env.Order)
}

// toOrder converts Coinbase's order. Symbol stays the engine's.
func toOrder(symbol string, oj orderJSON) (market.Order, error) {
	side, err := toSide(oj.Side)
	if err != nil {
		return market.Order{}, fmt.Errorf("coinbase: order %s: %w: %w", oj.OrderID, err, venues.ErrUnavailable)
	}
	o := market.Order{ClientID: oj.ClientOrderID, VenueOrderID: oj.OrderID, Symbol: symbol, Side: side,
		Filled: oj.FilledSize.Decimal, Notional: oj.FilledValue.Decimal, Created: oj.CreatedTime.Time}
	if o.Notional.IsZero() && o.Filled.IsPositive() {
		o.Notional = o.Filled.Mul(oj.AverageFilledPrice.Decimal)
	}
	switch c := oj.OrderConfiguration; {
	case c.SorLimitIOC != nil:
		o.Price, o.Qty, o.TIF = c.SorLimitIOC.LimitPrice.Decimal, c.SorLimitIOC.BaseSize.Decimal, market.IOC
	case c.LimitLimitGTC != nil:
		o.Price, o.Qty, o.TIF = c.LimitLimitGTC.LimitPrice.Decimal, c.LimitLimitGTC.BaseSize.Decimal, market.GTC
		if c.LimitLimitGTC.PostOnly {
			o.TIF = market.PostOnly
		}
	}
	switch oj.Status {
	case "PENDING", "OPEN", "QUEUED", "CANCEL_QUEUED", "EDIT_QUEUED":
		o.Status = market.New
		if o.Filled.IsPositive() {
			o.Status = market.PartiallyFilled
		}
	case "FILLED":
		o.Status = market.Filled
	case "CANCELLED":
		o.Status = market.Canceled
	case "EXPIRED":
		o.Status = market.Expired
	case "FAILED":
		o.Status = market.Rejected
	default:
		return market.Order{}, fmt.Errorf("coinbase: order %s has status %q: %w", oj.OrderID, oj.Status,
			venues.ErrUnavailable)
	}
	return o, nil
}

func toSide(s string) (market.Side, error) {
	switch s {
	case "BUY":
		return market.Buy, nil
	case "SELL":
		return market.Sell, nil
	}
	return 0, fmt.Errorf("side %q", s)
}

// Cancel cancels by client id (batch_cancel of its order id) and returns
// the order as it then stands; an order already done comes back as it is.
func (v *Venue) Cancel(ctx context.Context, symbol, clientID string) (market.Order, error) {
	p, err := v.product(ctx, symbol)
	if err != nil {
		return market.Order{}, fmt.Errorf("cancel %s: %w", clientID, err)
	}
	id, err := v.orderID(ctx, p, clientID)
	if err != nil {
		return market.Order{}, fmt.Errorf("cancel: %w", err)
	}
	var cj cancelJSON
	if err := v.post(ctx, pathCancel, map[string][]string{"order_ids": {id}}, &cj); err != nil {
		return market.Order{}, fmt.Errorf("cancel %s: %w", clientID, err)
	}
	why := "no result"
	if len(cj.Results) > 0 {
		why = cj.Results[0].FailureReason
	}
	ok := len(cj.Results) > 0 && cj.Results[0].Success
	if !ok && why == "UNKNOWN_CANCEL_ORDER" {
		return market.Order{}, fmt.Errorf("cancel %s: %s: %w", clientID, why, venues.ErrUnknownOrder)
	}
	o, err := v.fetchOrder(ctx, symbol, p, id)
	if err != nil {
		return market.Order{}, fmt.Errorf("cancel %s: %w", clientID, err)
	}
	if !ok && !o.Status.Done() {
		return o, fmt.Errorf("cancel %s: Coinbase refused (%s) and the order is %s", clientID, why, o.Status)
	}
	return o, nil
}

// Fills lists our fills on symbol with from < trade time ≤ to, oldest
// first. Fees are the commission, in the quote currency.
func (v *Venue) Fills(ctx context.Context, symbol string, from, to time.Time) ([]market.Fill, error) {
	p, err := v.product(ctx, symbol)
	if err != nil {
		return nil, fmt.Errorf("fills: %w", err)
	}
	q := url.Values{"product_ids": {p.id},
		"start_sequence_timestamp": {from.Add(-fillsSlack).UTC().Format(time.RFC3339Nano)},
		"end_sequence_timestamp":   {to.Add(fillsSlack).UTC().Format(time.RFC3339Nano)}}
	fs, err := v.listFills(ctx, symbol, p, q)
	if err != nil {
		return nil, err
	}
	out := fs[:0]
	for _, f := range fs {
		if f.Time.After(from) && !f.Time.After(to) {
			out = append(out, f)
		}
	}
	return out, nil
}

// orderFills lists the fills of one order, oldest first.
func (v *Venue) orderFills(ctx context.Context, symbol string, p product, orderID string) ([]market.Fill, error) {
	return v.listFills(ctx, symbol, p, url.Values{"order_ids": {orderID}, "product_ids": {p.id}})
}

// listFills pages through GET /fills (newest first) and returns the fills
// oldest first, each with our client id.
func (v *Venue) listFills(ctx context.Context, symbol string, p product, q url.Values) ([]market.Fill, error) {
	q.Set("limit", strconv.Itoa(listPage))
	var raw []fillJSON
	seen := map[string]bool{}
	for page := 0; ; page++ {
		if page == maxListPages {
			return nil, fmt.Errorf("coinbase: fills of %s run past %d pages", p.id, maxListPages)
		}
		var fj fillsJSON
		if err := v.get(ctx, pathFills, q, &fj); err != nil {
			return nil, fmt.Errorf("fills %s: %w", p.id, err)
		}
		for _, f := range fj.Fills {
			if !seen[f.TradeID] {
				seen[f.TradeID] = true
				raw = append(raw, f)
			}
		}
		if fj.Cursor == "" || len(fj.Fills) == 0 {
			break
		}
		q.Set("cursor", fj.Cursor)
	}
	out := make([]market.Fill, 0, len(raw))
	for i := len(raw) - 1; i >= 0; i-- {
		f := raw[i]
		if f.ProductID != "" && f.ProductID != p.id {
			continue
		}
		client, err := v.clientID(ctx, symbol, p, f.OrderID)
		if err != nil {
			return nil, err
		}
		fill, err := v.toFill(symbol, p, client, f)
		if err != nil {
			return nil, err
		}
		out = append(out, fill)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// clientID returns the client id of an order, reading the order if it is
// not one we know.
func (v *Venue) clientID(ctx context.Context, symbol string, p product, orderID string) (string, error) {
	if c, ok := v.knownClient(orderID); ok {
		return c, nil
	}
	o, err := v.fetchOrder(ctx, symbol, p, orderID)
	if err != nil {
		return "", fmt.Errorf("client id of order %s: %w", orderID, err)
	}
	return o.ClientID, nil
}

// toFill converts one of Coinbase's fills.
func (v *Venue) toFill(symbol string, p product, client string, f fillJSON) (market.Fill, error) {
	side, err := toSide(f.Side)
	if err != nil || f.TradeID == "" || f.TradeTime.IsZero() || f.Price.Sign() <= 0 || f.Size.Sign() <= 0 {
		return market.Fill{}, fmt.Errorf("coinbase: fill %q of order %s is incomplete (side %q, price %s, size %s): %w",
			f.TradeID, f.OrderID, f.Side, f.Price, f.Size, venues.ErrUnavailable)
	}
	qty := f.Size.Decimal
	if f.SizeInQuote {
		qty = qty.Div(f.Price.Decimal)
	}
	liq := market.Taker // UNKNOWN_LIQUIDITY_INDICATOR: count it at the dearer rate
	if f.LiquidityIndicator == "MAKER" {
		liq = market.Maker
	}
	return market.Fill{Venue: v.name, TradeID: f.TradeID, OrderID: f.OrderID, ClientID: client, Symbol: symbol,
		Side: side, Price: f.Price.Decimal, Qty: qty, Fee: f.Commission.Decimal, FeeAsset: p.quote, Liquidity: liq,
		Time: f.TradeTime.Time}, nil
}

func nonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
