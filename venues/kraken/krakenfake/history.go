package krakenfake

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/market"
)

// orderInfo is Kraken's view of an order, as QueryOrders, OpenOrders and
// ClosedOrders print it.
type orderInfo struct {
	Refid      *string     `json:"refid"`
	Userref    int64       `json:"userref"`
	ClOrdID    string      `json:"cl_ord_id,omitempty"`
	Status     string      `json:"status"`
	Reason     *string     `json:"reason"`
	Opentm     json.Number `json:"opentm"`
	Closetm    json.Number `json:"closetm,omitempty"`
	Starttm    int         `json:"starttm"`
	Expiretm   int         `json:"expiretm"`
	Descr      descr       `json:"descr"`
	Vol        string      `json:"vol"`
	VolExec    string      `json:"vol_exec"`
	Cost       string      `json:"cost"`
	Fee        string      `json:"fee"`
	Price      string      `json:"price"`
	Stopprice  string      `json:"stopprice"`
	Limitprice string      `json:"limitprice"`
	Misc       string      `json:"misc"`
	Oflags     string      `json:"oflags"`
	Trades     []string    `json:"trades,omitempty"`
}

type descr struct {
	Pair      string `json:"pair"`
	Type      string `json:"type"`
	Ordertype string `json:"ordertype"`
	Price     string `json:"price"`
	Price2    string `json:"price2"`
	Leverage  string `json:"leverage"`
	Order     string `json:"order"`
	Close     string `json:"close"`
}

// tradeInfo is Kraken's view of one of our trades (TradesHistory,
// QueryTrades).
type tradeInfo struct {
	Ordertxid string      `json:"ordertxid"`
	Postxid   string      `json:"postxid"`
	Pair      string      `json:"pair"`
	Time      json.Number `json:"time"`
	Type      string      `json:"type"`
	Ordertype string      `json:"ordertype"`
	Price     string      `json:"price"`
	Cost      string      `json:"cost"`
	Fee       string      `json:"fee"`
	Vol       string      `json:"vol"`
	Margin    string      `json:"margin"`
	Misc      string      `json:"misc"`
	TradeID   int64       `json:"trade_id"`
	Maker     bool        `json:"maker"`
}

// view is an order with its sim state and fills, as of one request.
type view struct {
	o      *order
	state  market.Order
	fills  []market.Fill
	status string
	closed time.Time
}

// views reads the state of the given orders (all when nil) from the sim.
// Caller holds mu.
func (s *Server) views(ctx context.Context, only []*order) ([]view, error) {
	all, err := s.o.Venue.Fills(ctx, s.pair.symbol, time.Time{}, s.o.Clock.Now().Add(time.Nanosecond))
	if err != nil {
		return nil, err
	}
	byOrder := map[string][]market.Fill{}
	for _, f := range all {
		s.tradeOf(f)
		byOrder[f.ClientID] = append(byOrder[f.ClientID], f)
	}
	if only == nil {
		only = s.seq
	}
	out := make([]view, 0, len(only))
	for _, o := range only {
		st, err := s.o.Venue.Order(ctx, s.pair.symbol, o.txid)
		if err != nil {
			return nil, err
		}
		v := view{o: o, state: st, fills: byOrder[o.txid]}
		v.status, v.closed = s.statusOf(v)
		out = append(out, v)
	}
	return out, nil
}

// statusOf maps the sim's state onto Kraken's statuses and the close time.
func (s *Server) statusOf(v view) (string, time.Time) {
	closed := v.o.opened
	for _, f := range v.fills {
		if f.Time.After(closed) {
			closed = f.Time
		}
	}
	switch v.state.Status {
	case market.Filled:
		return "closed", closed
	case market.Canceled:
		if v.o.canceled.After(closed) {
			closed = v.o.canceled
		}
		return "canceled", closed
	case market.Expired, market.Rejected:
		return "canceled", closed
	}
	return "open", time.Time{}
}

// tradeOf names a sim fill in Kraken's terms, the first time it is seen.
// Caller holds mu.
func (s *Server) tradeOf(f market.Fill) tradeID {
	t, ok := s.trades[f.TradeID]
	if !ok {
		s.nextTrade++
		t = tradeID{txid: s.newTxid('T'), seq: s.nextTrade}
		s.trades[f.TradeID] = t
	}
	return t
}

// info renders a view as Kraken prints an order.
func (s *Server) info(v view, withTrades bool) orderInfo {
	p := s.pair
	cost, fee := decimal.Zero, decimal.Zero
	for _, f := range v.fills {
		cost = cost.Add(f.Notional().Round(costDecimals))
		fee = fee.Add(f.Fee.Round(costDecimals))
	}
	avg := decimal.Zero
	if v.state.Filled.IsPositive() {
		avg = cost.Div(v.state.Filled)
	}
	oi := orderInfo{
		Userref: v.o.userref, ClOrdID: v.o.clOrdID, Status: v.status, Opentm: unixNumber(v.o.opened),
		Descr: descr{Pair: p.altname, Type: sideName(v.o.side), Ordertype: "limit",
			Price: v.o.price.StringFixed(p.pairDecimals), Price2: "0", Leverage: "none",
			Order: fmt.Sprintf("%s %s %s @ limit %s", sideName(v.o.side), v.o.vol.StringFixed(p.lotDecimals), p.altname,
				v.o.price.StringFixed(p.pairDecimals))},
		Vol: v.o.vol.StringFixed(p.lotDecimals), VolExec: v.state.Filled.StringFixed(p.lotDecimals),
		Cost: cost.StringFixed(costDecimals), Fee: fee.StringFixed(costDecimals),
		Price: avg.StringFixed(p.pairDecimals + 4), Stopprice: "0.00000", Limitprice: "0.00000", Oflags: v.o.oflags,
	}
	if !v.closed.IsZero() {
		oi.Closetm = unixNumber(v.closed)
	}
	var reason string
	switch {
	case v.status == "canceled" && v.o.tif == market.IOC:
		// Assumption: the remainder of an IOC order is cancelled with this
		// reason; Kraken's docs do not print the reason strings.
		reason = "Immediate or cancel"
	case v.status == "canceled":
		reason = "User requested"
	}
	if reason != "" {
		oi.Reason = &reason
	}
	if withTrades {
		for _, f := range v.fills {
			oi.Trades = append(oi.Trades, s.trades[f.TradeID].txid)
		}
	}
	return oi
}

// trade renders one fill as Kraken prints a trade.
func (s *Server) trade(f market.Fill, txid string) tradeInfo {
	t := s.trades[f.TradeID]
	return tradeInfo{Ordertxid: txid, Postxid: postxidConstant, Pair: s.pair.key, Time: unixNumber(f.Time),
		Type: sideName(f.Side), Ordertype: "limit", Price: f.Price.StringFixed(s.pair.pairDecimals),
		Cost: f.Notional().Round(costDecimals).StringFixed(costDecimals), Fee: f.Fee.Round(costDecimals).StringFixed(costDecimals),
		Vol: f.Qty.StringFixed(s.pair.lotDecimals), Margin: "0.00000", TradeID: t.seq, Maker: f.Liquidity == market.Maker}
}

// truthy reads Kraken's boolean parameters.
func truthy(v string) bool { return v == "true" || v == "1" }

// handleQueryOrders answers the orders named by txid (a comma list of up
// to 50).
func (s *Server) handleQueryOrders(w http.ResponseWriter, r *http.Request, f url.Values) {
	ids := splitList(f.Get("txid"))
	if len(ids) == 0 || len(ids) > pageSize {
		writeErrors(w, http.StatusOK, "EGeneral:Invalid arguments:txid")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var only []*order
	for _, id := range ids {
		o, ok := s.orders[id]
		if !ok {
			// Assumption: an unknown txid is an error, not an empty answer.
			writeErrors(w, http.StatusOK, "EOrder:Unknown order")
			return
		}
		only = append(only, o)
	}
	vs, err := s.views(r.Context(), only)
	if err != nil {
		writeErrors(w, http.StatusOK, "EGeneral:Internal error")
		return
	}
	res := map[string]orderInfo{}
	for _, v := range vs {
		res[v.o.txid] = s.info(v, truthy(f.Get("trades")))
	}
	writeResult(w, res)
}

// handleOpenOrders answers the open orders, filtered by cl_ord_id or
// userref.
func (s *Server) handleOpenOrders(w http.ResponseWriter, r *http.Request, f url.Values) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs, err := s.views(r.Context(), nil)
	if err != nil {
		writeErrors(w, http.StatusOK, "EGeneral:Internal error")
		return
	}
	res := map[string]orderInfo{}
	for _, v := range vs {
		if v.status == "open" && selected(v.o, f) {
			res[v.o.txid] = s.info(v, truthy(f.Get("trades")))
		}
	}
	writeResult(w, map[string]any{"open": res})
}

// handleClosedOrders answers closed orders, most recent first, 50 a page
// (ofs), filtered by cl_ord_id or userref and by start (exclusive) and end
// (inclusive) on the open or close time (closetime: open, close, both).
func (s *Server) handleClosedOrders(w http.ResponseWriter, r *http.Request, f url.Values) {
	start, end, ofs, ok := window(w, f)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	vs, err := s.views(r.Context(), nil)
	if err != nil {
		writeErrors(w, http.StatusOK, "EGeneral:Internal error")
		return
	}
	in := func(t time.Time) bool { return (start == nil || t.After(*start)) && (end == nil || !t.After(*end)) }
	var closed []view
	for _, v := range vs {
		if v.status == "open" || !selected(v.o, f) {
			continue
		}
		var keep bool
		switch f.Get("closetime") {
		case "open":
			keep = in(v.o.opened)
		case "close":
			keep = in(v.closed)
		default:
			keep = in(v.o.opened) || in(v.closed)
		}
		if keep {
			closed = append(closed, v)
		}
	}
	sort.SliceStable(closed, func(i, j int) bool { return closed[i].closed.After(closed[j].closed) })
	res := map[string]orderInfo{}
	for i := ofs; i < len(closed) && i < ofs+pageSize; i++ {
		res[closed[i].o.txid] = s.info(closed[i], truthy(f.Get("trades")))
	}
	writeResult(w, map[string]any{"closed": res, "count": len(closed)})
}

// selected applies the cl_ord_id and userref filters.
func selected(o *order, f url.Values) bool {
	if f.Has("cl_ord_id") && o.clOrdID != f.Get("cl_ord_id") {
		return false
	}
	if ur := f.Get("userref"); ur != "" && strconv.FormatInt(o.userref, 10) != ur {
		return false
	}
	return true
}

// handleTradesHistory answers our trades, most recent first, 50 a page
// (ofs), with start (exclusive) and end (inclusive) on the trade time.
func (s *Server) handleTradesHistory(w http.ResponseWriter, r *http.Request, f url.Values) {
	start, end, ofs, ok := window(w, f)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	vs, err := s.views(r.Context(), nil)
	if err != nil {
		writeErrors(w, http.StatusOK, "EGeneral:Internal error")
		return
	}
	type row struct {
		f    market.Fill
		txid string
	}
	var rows []row
	for _, v := range vs {
		for _, fl := range v.fills {
			if (start == nil || fl.Time.After(*start)) && (end == nil || !fl.Time.After(*end)) {
				rows = append(rows, row{fl, v.o.txid})
			}
		}
	}
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i].f, rows[j].f
		if !a.Time.Equal(b.Time) {
			return a.Time.After(b.Time)
		}
		return s.trades[a.TradeID].seq > s.trades[b.TradeID].seq
	})
	res := map[string]tradeInfo{}
	for i := ofs; i < len(rows) && i < ofs+pageSize; i++ {
		res[s.trades[rows[i].f.TradeID].txid] = s.trade(rows[i].f, rows[i].txid)
	}
	writeResult(w, map[string]any{"trades": res, "count": len(rows)})
}

// handleQueryTrades answers the trades named by txid (a comma list of up
// to 20); unknown ids are left out.
func (s *Server) handleQueryTrades(w http.ResponseWriter, r *http.Request, f url.Values) {
	ids := splitList(f.Get("txid"))
	if len(ids) == 0 || len(ids) > 20 {
		writeErrors(w, http.StatusOK, "EGeneral:Invalid arguments:txid")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	vs, err := s.views(r.Context(), nil)
	if err != nil {
		writeErrors(w, http.StatusOK, "EGeneral:Internal error")
		return
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	res := map[string]tradeInfo{}
	for _, v := range vs {
		for _, fl := range v.fills {
			if t := s.trades[fl.TradeID]; want[t.txid] {
				res[t.txid] = s.trade(fl, v.o.txid)
			}
		}
	}
	writeResult(w, res)
}

// window reads start, end (unix seconds, possibly fractional) and ofs.
func window(w http.ResponseWriter, f url.Values) (start, end *time.Time, ofs int, ok bool) {
	parse := func(name string) (*time.Time, bool) {
		v := f.Get(name)
		if v == "" {
			return nil, true
		}
		d, err := decimal.NewFromString(v)
		if err != nil || d.IsNegative() {
			writeErrors(w, http.StatusOK, "EGeneral:Invalid arguments:"+name)
			return nil, false
		}
		t := time.Unix(0, d.Shift(9).IntPart()).UTC()
		return &t, true
	}
	if start, ok = parse("start"); !ok {
		return nil, nil, 0, false
	}
	if end, ok = parse("end"); !ok {
		return nil, nil, 0, false
	}
	if v := f.Get("ofs"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeErrors(w, http.StatusOK, "EGeneral:Invalid arguments:ofs")
			return nil, nil, 0, false
		}
		ofs = n
	}
	return start, end, ofs, true
}

// splitList reads a comma-separated list.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
