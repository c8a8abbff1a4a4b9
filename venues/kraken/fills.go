package kraken

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/venues"
)

// tradeInfo is one of our trades (QueryTrades, TradesHistory).
type tradeInfo struct {
	Ordertxid string      `json:"ordertxid"`
	Pair      string      `json:"pair"`
	Time      json.Number `json:"time"`
	Type      string      `json:"type"`
	Price     string      `json:"price"`
	Vol       string      `json:"vol"`
	Fee       string      `json:"fee"`
	TradeID   json.Number `json:"trade_id"`
	Maker     *bool       `json:"maker"`
}

// Fills lists our trades on symbol with from < time ≤ to from
// TradesHistory, oldest first; each carries the client id of its order.
func (v *Venue) Fills(ctx context.Context, symbol string, from, to time.Time) ([]market.Fill, error) {
	pr, err := v.rules(ctx, symbol)
	if err != nil {
		return nil, err
	}
	if !to.After(from) {
		return nil, nil
	}
	// start is exclusive and end inclusive, in whole seconds: widen to
	// whole seconds and cut exactly below.
	params := url.Values{"type": {"all"}, "start": {strconv.FormatInt(from.Unix(), 10)},
		"end": {strconv.FormatInt(ceilUnix(to), 10)}}
	var trades map[string]tradeInfo
	for page := 0; ; page++ {
		if page == historyPages {
			return nil, fmt.Errorf("kraken %s: more than %d trades in (%s, %s]; ask for a shorter window", v.cfg.Name,
				historyPages*historyPage, from.Format(time.RFC3339), to.Format(time.RFC3339))
		}
		params.Set("ofs", strconv.Itoa(page*historyPage))
		var res struct {
			Trades map[string]tradeInfo `json:"trades"`
			Count  int                  `json:"count"`
		}
		if err := v.call(ctx, request{method: "TradesHistory", private: true, params: params}, &res); err != nil {
			return nil, err
		}
		if trades == nil {
			trades = map[string]tradeInfo{}
		}
		for id, t := range res.Trades {
			trades[id] = t
		}
		if len(res.Trades) == 0 || (page+1)*historyPage >= res.Count {
			break
		}
	}
	var ours []tradeRow
	for id, t := range trades {
		if !pr.names(t.Pair) {
			continue
		}
		row, err := v.decodeTrade(id, t)
		if err != nil {
			return nil, err
		}
		if row.at.After(from) && !row.at.After(to) {
			ours = append(ours, row)
		}
	}
	return v.toFills(ctx, pr, ours)
}

// tradeRow is a decoded trade.
type tradeRow struct {
	id    string
	info  tradeInfo
	at    time.Time
	seq   int64
	price decimal.Decimal
	qty   decimal.Decimal
	fee   decimal.Decimal
}

func (v *Venue) decodeTrade(id string, t tradeInfo) (tradeRow, error) {
	r := tradeRow{id: id, info: t}
	var err error
	if r.at, err = unixTime(t.Time); err != nil {
		return r, v.unreadable("trades", "time of "+id, err)
	}
	if r.price, err = decimal.NewFromString(t.Price); err != nil {
		return r, v.unreadable("trades", "price of "+id, err)
	}
	if r.qty, err = decimal.NewFromString(t.Vol); err != nil {
		return r, v.unreadable("trades", "vol of "+id, err)
	}
	if r.fee, err = optionalDecimal(t.Fee, decimal.Zero); err != nil {
		return r, v.unreadable("trades", "fee of "+id, err)
	}
	if t.TradeID != "" {
		r.seq, _ = strconv.ParseInt(t.TradeID.String(), 10, 64)
	}
	return r, nil
}

// toFills turns trades into fills, oldest first (ties by Kraken's trade
// number, then txid), finding the client id of orders the adapter did not
// place in this process.
func (v *Venue) toFills(ctx context.Context, pr *pairRules, rows []tradeRow) ([]market.Fill, error) {
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		switch {
		case !a.at.Equal(b.at):
			return a.at.Before(b.at)
		case a.seq != b.seq:
			return a.seq < b.seq
		}
		return a.id < b.id
	})
	var missing []string
	seen := map[string]bool{}
	v.mu.Lock()
	for _, r := range rows {
		if _, ok := v.clientIDs[r.info.Ordertxid]; !ok && !seen[r.info.Ordertxid] {
			seen[r.info.Ordertxid] = true
			missing = append(missing, r.info.Ordertxid)
		}
	}
	v.mu.Unlock()
	for len(missing) > 0 {
		n := min(len(missing), queryOrdersMax)
		infos, err := v.queryOrders(ctx, missing[:n], false)
		if err != nil {
			return nil, err
		}
		for id, info := range infos {
			v.remember(info.ClOrdID, id, 0)
		}
		missing = missing[n:]
	}
	out := make([]market.Fill, 0, len(rows))
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, r := range rows {
		side, err := parseSide(r.info.Type)
		if err != nil {
			return nil, fmt.Errorf("kraken %s: trade %s: %v: %w", v.cfg.Name, r.id, err, venues.ErrUnavailable)
		}
		liq := market.Taker
		if r.info.Maker != nil && *r.info.Maker {
			liq = market.Maker
		}
		out = append(out, market.Fill{Venue: v.cfg.Name, TradeID: r.id, OrderID: r.info.Ordertxid,
			ClientID: v.clientIDs[r.info.Ordertxid], Symbol: pr.in.Symbol, Side: side, Price: r.price, Qty: r.qty,
			Fee: r.fee, FeeAsset: pr.in.Quote, Liquidity: liq, Time: r.at})
	}
	return out, nil
}

// queryOrders reads orders by txid.
func (v *Venue) queryOrders(ctx context.Context, txids []string, trades bool) (map[string]orderInfo, error) {
	params := url.Values{"txid": {strings.Join(txids, ",")}}
	if trades {
		params.Set("trades", "true")
	}
	var res map[string]orderInfo
	if err := v.call(ctx, request{method: "QueryOrders", private: true, params: params}, &res); err != nil {
		return nil, err
	}
	return res, nil
}

// queryTrades reads trades by txid, as fills.
func (v *Venue) queryTrades(ctx context.Context, pr *pairRules, ids []string) ([]market.Fill, error) {
	var rows []tradeRow
	for len(ids) > 0 {
		n := min(len(ids), queryTradesMax)
		var res map[string]tradeInfo
		rq := request{method: "QueryTrades", private: true, params: url.Values{"txid": {strings.Join(ids[:n], ",")}}}
		if err := v.call(ctx, rq, &res); err != nil {
			return nil, err
		}
		for _, id := range ids[:n] {
			t, ok := res[id]
			if !ok {
				return nil, fmt.Errorf("kraken %s: QueryTrades left out %s; state unknown: %w", v.cfg.Name, id,
					venues.ErrUnavailable)
			}
			row, err := v.decodeTrade(id, t)
			if err != nil {
				return nil, err
			}
			rows = append(rows, row)
		}
		ids = ids[n:]
	}
	return v.toFills(ctx, pr, rows)
}
