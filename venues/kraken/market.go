package kraken

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/market"
)

const (
	// depthMax is the most levels Depth returns.
	depthMax = 500
	// tradesPage is the most trades one Trades call returns.
	tradesPage = 1000
	// tapePages bounds one tape window.
	tapePages = 100
)

// Book returns up to depth levels a side from Depth, timed by the market
// clock.
func (v *Venue) Book(ctx context.Context, symbol string, depth int) (market.Book, error) {
	pr, err := v.rules(ctx, symbol)
	if err != nil {
		return market.Book{}, err
	}
	count := depth
	if count <= 0 || count > depthMax {
		count = depthMax
	}
	var res map[string]json.RawMessage
	rq := request{method: "Depth", params: url.Values{"pair": {pr.pair.Altname}, "count": {strconv.Itoa(count)}}}
	if err := v.call(ctx, rq, &res); err != nil {
		return market.Book{}, err
	}
	raw, ok := res[pr.pair.key]
	if !ok {
		raw, ok = res[pr.pair.Altname]
	}
	if !ok && len(res) == 1 {
		for _, r := range res {
			raw, ok = r, true
		}
	}
	if !ok {
		return market.Book{}, v.unreadable("Depth", "result", fmt.Errorf("no book for %s", pr.pair.Altname))
	}
	bids, asks, err := decodeDepth(raw)
	if err != nil {
		return market.Book{}, v.unreadable("Depth", "levels", err)
	}
	if depth > 0 {
		bids, asks = bids[:min(depth, len(bids))], asks[:min(depth, len(asks))]
	}
	return market.Book{Symbol: symbol, Bids: bids, Asks: asks, Time: v.clk.Now()}, nil
}

// decodeDepth reads {"asks": [[price, volume, timestamp], …], "bids": …}.
func decodeDepth(raw json.RawMessage) (bids, asks []market.Level, err error) {
	var book struct {
		Asks [][]json.RawMessage `json:"asks"`
		Bids [][]json.RawMessage `json:"bids"`
	}
	if err := json.Unmarshal(raw, &book); err != nil {
		return nil, nil, err
	}
	levels := func(rows [][]json.RawMessage) ([]market.Level, error) {
		out := make([]market.Level, 0, len(rows))
		for i, r := range rows {
			if len(r) < 2 {
				return nil, fmt.Errorf("level %d has %d fields", i, len(r))
			}
			p, err := decimalField(r[0])
			if err != nil {
				return nil, fmt.Errorf("level %d price: %w", i, err)
			}
			q, err := decimalField(r[1])
			if err != nil {
				return nil, fmt.Errorf("level %d volume: %w", i, err)
			}
			out = append(out, market.Level{Price: p, Qty: q})
		}
		return out, nil
	}
	if bids, err = levels(book.Bids); err != nil {
		return nil, nil, err
	}
	if asks, err = levels(book.Asks); err != nil {
		return nil, nil, err
	}
	return bids, asks, nil
}

// publicTrade is one trade of the public tape.
type publicTrade struct {
	at    time.Time
	price decimal.Decimal
	qty   decimal.Decimal
}

// Tape sums the public trades with from < time ≤ to: volume, and price ×
// volume. It pages through Trades with since = the previous page's last,
// so a window of more than 1000 trades costs one call per 1000.
//
// Assumption: since takes a nanosecond timestamp (the form of last) and
// is exclusive; a page shorter than count means Kraken has nothing newer.
func (v *Venue) Tape(ctx context.Context, symbol string, from, to time.Time) (market.Tape, error) {
	t := market.Tape{Volume: decimal.Zero, Notional: decimal.Zero}
	pr, err := v.rules(ctx, symbol)
	if err != nil {
		return market.Tape{}, err
	}
	if !to.After(from) {
		return t, nil
	}
	since := from.UnixNano()
	for page := 0; page < tapePages; page++ {
		trades, last, err := v.publicTrades(ctx, pr, since)
		if err != nil {
			return market.Tape{}, err
		}
		past := false
		for _, tr := range trades {
			switch {
			case !tr.at.After(from):
			case tr.at.After(to):
				past = true
			default:
				t.Volume = t.Volume.Add(tr.qty)
				t.Notional = t.Notional.Add(tr.price.Mul(tr.qty))
			}
		}
		// Fewer than a page means Kraken has nothing newer yet.
		if past || len(trades) < tradesPage || last <= since {
			return t, nil
		}
		since = last
	}
	return market.Tape{}, fmt.Errorf("kraken %s: tape (%s, %s] has more than %d trades; ask for a shorter window",
		v.cfg.Name, from.Format(time.RFC3339), to.Format(time.RFC3339), tapePages*tradesPage)
}

// publicTrades reads one page of Trades after since (nanoseconds).
func (v *Venue) publicTrades(ctx context.Context, pr *pairRules, since int64) ([]publicTrade, int64, error) {
	var res map[string]json.RawMessage
	rq := request{method: "Trades", params: url.Values{"pair": {pr.pair.Altname},
		"since": {strconv.FormatInt(since, 10)}, "count": {strconv.Itoa(tradesPage)}}}
	if err := v.call(ctx, rq, &res); err != nil {
		return nil, 0, err
	}
	trades, last, err := decodeTrades(res, pr.pair.key, pr.pair.Altname)
	if err != nil {
		return nil, 0, v.unreadable("Trades", "trades", err)
	}
	return trades, last, nil
}

// decodeTrades reads {"<pair>": [[price, volume, time, side, type, misc,
// trade_id], …], "last": "<ns>"}.
func decodeTrades(res map[string]json.RawMessage, names ...string) ([]publicTrade, int64, error) {
	var last int64
	if raw, ok := res["last"]; ok {
		var s json.Number
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, 0, fmt.Errorf("last: %w", err)
		}
		n, err := strconv.ParseInt(s.String(), 10, 64)
		if err != nil {
			return nil, 0, fmt.Errorf("last: %w", err)
		}
		last = n
	}
	var raw json.RawMessage
	for _, n := range names {
		if r, ok := res[n]; ok {
			raw = r
			break
		}
	}
	if raw == nil {
		for k, r := range res {
			if k != "last" {
				raw = r
			}
		}
	}
	if raw == nil {
		return nil, last, nil
	}
	var rows [][]json.RawMessage
	if err := json.Unmarshal(raw, &rows); err != nil {
		return nil, 0, err
	}
	out := make([]publicTrade, 0, len(rows))
	for i, r := range rows {
		if len(r) < 3 {
			return nil, 0, fmt.Errorf("trade %d has %d fields", i, len(r))
		}
		p, err := decimalField(r[0])
		if err != nil {
			return nil, 0, fmt.Errorf("trade %d price: %w", i, err)
		}
		q, err := decimalField(r[1])
		if err != nil {
			return nil, 0, fmt.Errorf("trade %d volume: %w", i, err)
		}
		at, err := timeField(r[2])
		if err != nil {
			return nil, 0, fmt.Errorf("trade %d time: %w", i, err)
		}
		out = append(out, publicTrade{at: at, price: p, qty: q})
	}
	return out, last, nil
}

// decimalField reads a JSON string or number as a decimal.
func decimalField(raw json.RawMessage) (decimal.Decimal, error) {
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return decimal.Decimal{}, err
	}
	return decimal.NewFromString(n.String())
}

// timeField reads Kraken's unix seconds (a JSON number or string, with a
// fraction) as a time.
func timeField(raw json.RawMessage) (time.Time, error) {
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return time.Time{}, err
	}
	return unixTime(n)
}

// maxUnixSeconds keeps a parsed time inside int64 nanoseconds.
const maxUnixSeconds = 9_000_000_000

// unixTime converts Kraken's seconds with a fraction into a time, exactly
// to the nanosecond.
func unixTime(n json.Number) (time.Time, error) {
	d, err := decimal.NewFromString(n.String())
	if err != nil {
		return time.Time{}, err
	}
	if d.IsNegative() || d.GreaterThan(decimal.NewFromInt(maxUnixSeconds)) {
		return time.Time{}, fmt.Errorf("time %s out of range", n)
	}
	return time.Unix(0, d.Shift(9).IntPart()).UTC(), nil
}
