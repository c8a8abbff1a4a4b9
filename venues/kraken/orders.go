package kraken

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/venues"
)

const (
	// queryOrdersMax and queryTradesMax are how many ids QueryOrders and
	// QueryTrades take at once.
	queryOrdersMax = 50
	queryTradesMax = 20
	// historyPage is the page of TradesHistory and ClosedOrders.
	historyPage = 50
	// historyPages bounds one Fills window.
	historyPages = 200
)

// clOrdIDText is the free-text form of cl_ord_id the engine's ids take;
// Kraken also takes UUIDs (with or without dashes), which are longer.
var (
	clOrdIDText = regexp.MustCompile(`^[\x21-\x7e]{1,18}$`)
	clOrdIDUUID = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)
)

func validClOrdID(id string) bool { return clOrdIDText.MatchString(id) || clOrdIDUUID.MatchString(id) }

// orderInfo is Kraken's view of an order (QueryOrders, OpenOrders,
// ClosedOrders), with the fields the adapter reads.
type orderInfo struct {
	ClOrdID string      `json:"cl_ord_id"`
	Status  string      `json:"status"`
	Reason  *string     `json:"reason"`
	Opentm  json.Number `json:"opentm"`
	Descr   struct {
		Pair  string `json:"pair"`
		Type  string `json:"type"`
		Price string `json:"price"`
	} `json:"descr"`
	Vol     string   `json:"vol"`
	VolExec string   `json:"vol_exec"`
	Cost    string   `json:"cost"`
	Oflags  string   `json:"oflags"`
	Trades  []string `json:"trades"`
}

// Place sends a limit order with the request's client id as cl_ord_id:
// timeinforce IOC or GTC, oflags=post for post-only, fciq so that fees are
// charged in the quote asset. On acceptance it reads the order and its
// trades back, so the fills returned are those that executed on arrival.
//
// Kraken keeps a cl_ord_id unique among open orders only; a closed order's
// id would make a second order. So an id the adapter has placed, or that
// ClosedOrders knows, is refused with venues.ErrDuplicateClientID before
// anything is sent.
func (v *Venue) Place(ctx context.Context, req market.OrderRequest) (market.Order, []market.Fill, error) {
	pr, err := v.rules(ctx, req.Symbol)
	if err != nil {
		return market.Order{}, nil, err
	}
	if !validClOrdID(req.ClientID) {
		return market.Order{}, nil, &venues.RejectError{Venue: v.cfg.Name, Code: "CLIENT_ID",
			Reason: fmt.Sprintf("client id %q is not a Kraken cl_ord_id (at most %d printable ASCII characters, or a UUID)",
				req.ClientID, maxClientIDLen)}
	}
	if !req.Side.Valid() {
		return market.Order{}, nil, &venues.RejectError{Venue: v.cfg.Name, Code: "SIDE", Reason: "side is not buy or sell"}
	}
	v.mu.Lock()
	txid, known := v.txids[req.ClientID]
	v.mu.Unlock()
	if !known {
		found, err := v.byClientID(ctx, pr, req.ClientID, "ClosedOrders")
		switch {
		case err == nil:
			txid, known = found.txid, true
		case !errors.Is(err, venues.ErrUnknownOrder):
			return market.Order{}, nil, fmt.Errorf("kraken %s: place %s: checking the id is unused: %w", v.cfg.Name,
				req.ClientID, err)
		}
	}
	if known {
		return market.Order{}, nil, fmt.Errorf("kraken %s: client id %s is order %s: %w", v.cfg.Name, req.ClientID, txid,
			venues.ErrDuplicateClientID)
	}
	params := url.Values{
		"pair": {pr.pair.Altname}, "type": {req.Side.String()}, "ordertype": {"limit"},
		"price": {req.Price.String()}, "volume": {req.Qty.String()}, "cl_ord_id": {req.ClientID},
		"oflags": {"fciq"}, "timeinforce": {"GTC"},
	}
	switch req.TIF {
	case market.IOC:
		params.Set("timeinforce", "IOC")
	case market.PostOnly:
		params.Set("oflags", "post,fciq")
	case market.GTC:
	default:
		return market.Order{}, nil, &venues.RejectError{Venue: v.cfg.Name, Code: "TIF",
			Reason: fmt.Sprintf("time in force %s is not one Kraken takes here", req.TIF)}
	}
	var res struct {
		Txid []string `json:"txid"`
	}
	if err := v.call(ctx, request{method: "AddOrder", private: true, write: true, params: params}, &res); err != nil {
		return market.Order{}, nil, err
	}
	if len(res.Txid) == 0 {
		return market.Order{}, nil, fmt.Errorf("kraken %s: AddOrder %s: accepted without a txid; state unknown: %w",
			v.cfg.Name, req.ClientID, venues.ErrUnavailable)
	}
	txid = res.Txid[0]
	v.remember(req.ClientID, txid, req.TIF)
	o, fills, err := v.readBack(ctx, pr, txid, req.ClientID)
	if err != nil {
		// The order exists: never let a read error pass for a refusal.
		return market.Order{ClientID: req.ClientID, VenueOrderID: txid, Symbol: req.Symbol, Side: req.Side,
				Price: req.Price, Qty: req.Qty, Filled: decimal.Zero, Notional: decimal.Zero, Status: market.New, TIF: req.TIF},
			nil, fmt.Errorf("kraken %s: order %s placed as %s; reading it back: %v: %w", v.cfg.Name, req.ClientID, txid,
				err, venues.ErrUnavailable)
	}
	if o.Status == market.Canceled && len(fills) == 0 && o.reason == "Post only order" {
		// Assumption: besides refusing it with EOrder:Post only order,
		// Kraken may take a crossing post-only order and cancel it at once
		// with this reason; either way nothing rested.
		return market.Order{}, nil, fmt.Errorf("%w: %w", &venues.RejectError{Venue: v.cfg.Name, Code: "WOULD_TAKE",
			Reason: "post-only order cancelled by Kraken: it would have taken liquidity"}, venues.ErrWouldTake)
	}
	return o.Order, fills, nil
}

// readBack reads an order with its trades.
func (v *Venue) readBack(ctx context.Context, pr *pairRules, txid, clientID string) (krakenOrder, []market.Fill, error) {
	infos, err := v.queryOrders(ctx, []string{txid}, true)
	if err != nil {
		return krakenOrder{}, nil, err
	}
	info, ok := infos[txid]
	if !ok {
		return krakenOrder{}, nil, fmt.Errorf("QueryOrders left out %s", txid)
	}
	o, err := v.toOrder(pr, txid, info, clientID)
	if err != nil {
		return krakenOrder{}, nil, err
	}
	fills, err := v.queryTrades(ctx, pr, info.Trades)
	if err != nil {
		return krakenOrder{}, nil, err
	}
	return o, fills, nil
}

// Order looks an order up by client id: by the txid the adapter placed it
// as, else through OpenOrders and ClosedOrders with cl_ord_id (when the
// answer to the placement was lost). Not found wraps venues.ErrUnknownOrder.
func (v *Venue) Order(ctx context.Context, symbol, clientID string) (market.Order, error) {
	pr, err := v.rules(ctx, symbol)
	if err != nil {
		return market.Order{}, err
	}
	o, err := v.findOrder(ctx, pr, clientID)
	if err != nil {
		return market.Order{}, err
	}
	return o.Order, nil
}

// krakenOrder is an order with what Kraken said of it beyond the engine's
// view.
type krakenOrder struct {
	market.Order
	txid   string
	reason string
}

// findOrder finds our order with clientID: by its txid when the adapter
// knows it, else by cl_ord_id among open, then closed orders.
func (v *Venue) findOrder(ctx context.Context, pr *pairRules, clientID string) (krakenOrder, error) {
	v.mu.Lock()
	txid, ok := v.txids[clientID]
	v.mu.Unlock()
	if !ok || !validClOrdID(clientID) {
		return v.byClientID(ctx, pr, clientID, "OpenOrders", "ClosedOrders")
	}
	infos, err := v.queryOrders(ctx, []string{txid}, false)
	if err != nil {
		return krakenOrder{}, err
	}
	info, found := infos[txid]
	if !found || !pr.names(info.Descr.Pair) {
		return krakenOrder{}, fmt.Errorf("kraken %s: order %q: %w", v.cfg.Name, clientID, venues.ErrUnknownOrder)
	}
	return v.toOrder(pr, txid, info, clientID)
}

// byClientID finds the order with cl_ord_id clientID through the given
// methods (OpenOrders, ClosedOrders), in order. Should the id have been
// used more than once, the latest order is the one the engine asks about.
func (v *Venue) byClientID(ctx context.Context, pr *pairRules, clientID string, methods ...string) (krakenOrder, error) {
	if !validClOrdID(clientID) {
		return krakenOrder{}, fmt.Errorf("kraken %s: order %q: %w", v.cfg.Name, clientID, venues.ErrUnknownOrder)
	}
	for _, method := range methods {
		var res struct {
			Open   map[string]orderInfo `json:"open"`
			Closed map[string]orderInfo `json:"closed"`
		}
		rq := request{method: method, private: true, params: url.Values{"cl_ord_id": {clientID}}}
		if err := v.call(ctx, rq, &res); err != nil {
			return krakenOrder{}, err
		}
		orders := res.Open
		if method == "ClosedOrders" {
			orders = res.Closed
		}
		var best string
		var bestAt time.Time
		for id, info := range orders {
			if !pr.names(info.Descr.Pair) || (info.ClOrdID != "" && info.ClOrdID != clientID) {
				continue
			}
			at, _ := unixTime(info.Opentm)
			if best == "" || at.After(bestAt) || (at.Equal(bestAt) && id > best) {
				best, bestAt = id, at
			}
		}
		if best != "" {
			v.remember(clientID, best, 0)
			return v.toOrder(pr, best, orders[best], clientID)
		}
	}
	return krakenOrder{}, fmt.Errorf("kraken %s: order %q: %w", v.cfg.Name, clientID, venues.ErrUnknownOrder)
}

// Cancel cancels the open order with clientID through CancelOrder with
// cl_ord_id and returns its final state; an order already done is returned
// as it is.
func (v *Venue) Cancel(ctx context.Context, symbol, clientID string) (market.Order, error) {
	pr, err := v.rules(ctx, symbol)
	if err != nil {
		return market.Order{}, err
	}
	if !validClOrdID(clientID) {
		return market.Order{}, fmt.Errorf("kraken %s: cancel %q: %w", v.cfg.Name, clientID, venues.ErrUnknownOrder)
	}
	rq := request{method: "CancelOrder", private: true, write: true, params: url.Values{"cl_ord_id": {clientID}}}
	err = v.call(ctx, rq, nil)
	if err != nil && !errors.Is(err, venues.ErrUnknownOrder) {
		return market.Order{}, err
	}
	// Kraken says an order it cannot cancel is unknown, a done one too.
	o, ferr := v.findOrder(ctx, pr, clientID)
	if ferr != nil {
		if err != nil {
			return market.Order{}, err
		}
		return market.Order{}, fmt.Errorf("kraken %s: cancel %s: reading it back: %w", v.cfg.Name, clientID, ferr)
	}
	return o.Order, nil
}

// toOrder maps Kraken's order onto the engine's.
func (v *Venue) toOrder(pr *pairRules, txid string, info orderInfo, clientID string) (krakenOrder, error) {
	o := krakenOrder{txid: txid}
	if info.Reason != nil {
		o.reason = *info.Reason
	}
	side, err := parseSide(info.Descr.Type)
	if err != nil {
		return o, v.unreadable("order "+txid, "type", err)
	}
	price, err := optionalDecimal(info.Descr.Price, decimal.Zero)
	if err != nil {
		return o, v.unreadable("order "+txid, "descr.price", err)
	}
	qty, err := decimal.NewFromString(info.Vol)
	if err != nil {
		return o, v.unreadable("order "+txid, "vol", err)
	}
	filled, err := optionalDecimal(info.VolExec, decimal.Zero)
	if err != nil {
		return o, v.unreadable("order "+txid, "vol_exec", err)
	}
	cost, err := optionalDecimal(info.Cost, decimal.Zero)
	if err != nil {
		return o, v.unreadable("order "+txid, "cost", err)
	}
	created, _ := unixTime(info.Opentm)
	if info.ClOrdID != "" {
		clientID = info.ClOrdID
	}
	v.mu.Lock()
	tif, known := v.tifs[txid]
	v.mu.Unlock()
	// Assumption: Kraken's docs do not print the reason of a cancelled IOC
	// remainder; one that mentions "immediate" (or an order the adapter
	// sent as IOC) is the engine's Expired.
	ioc := strings.Contains(strings.ToLower(o.reason), "immediate")
	switch {
	case known:
	case strings.Contains(info.Oflags, "post"):
		tif = market.PostOnly
	case ioc:
		tif = market.IOC
	default:
		tif = market.GTC
	}
	var status market.OrderStatus
	switch info.Status {
	case "pending", "open":
		status = market.New
		if filled.IsPositive() {
			status = market.PartiallyFilled
		}
	case "closed":
		status = market.Filled
		if filled.LessThan(qty) {
			status = market.Expired
		}
	case "canceled":
		status = market.Canceled
		if ioc || tif == market.IOC {
			status = market.Expired
		}
	case "expired":
		status = market.Expired
	default:
		return o, v.unreadable("order "+txid, "status", fmt.Errorf("status %q", info.Status))
	}
	o.Order = market.Order{ClientID: clientID, VenueOrderID: txid, Symbol: pr.in.Symbol, Side: side, Price: price,
		Qty: qty, Filled: filled, Notional: cost, Status: status, TIF: tif, Created: created}
	return o, nil
}

func parseSide(s string) (market.Side, error) {
	switch s {
	case "buy":
		return market.Buy, nil
	case "sell":
		return market.Sell, nil
	}
	return 0, fmt.Errorf("side %q", s)
}

// ceilUnix is t in whole seconds, rounded up.
func ceilUnix(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}
