package krakenfake

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/venues/fakex"
	"github.com/blockexec/blockexec/venues/sim"
)

// Public trades are the sim's tape cut into one trade per bucket.
const (
	tradeBucket     = 10 * time.Second
	tradesPageMax   = 1000
	depthDefault    = 100
	depthMax        = 500
	tradesLookback  = 24 * time.Hour // how far back the fake serves public trades
	costDecimals    = 8
	feeVolumeQuote  = "ZUSD"
	postxidConstant = "TKH2SE-M7IF5-CFI7LT" // what Kraken prints for spot trades
)

// pair is the one asset pair the fake lists.
type pair struct {
	symbol       string // the sim's symbol (BTCUSDT)
	altname      string // XBTUSDT
	wsname       string // XBT/USDT
	key          string // the result key: XXBTZUSD for legacy pairs, else the altname
	baseCode     string // Kraken asset codes: XXBT, USDT, ZUSD
	quoteCode    string
	in           market.Instrument
	lotDecimals  int32
	pairDecimals int32
}

// rulesSource is what a sim venue that states its rules offers.
type rulesSource interface{ Rules() market.Instrument }

// derivePair builds the pair from the sim's instrument and, when given, the
// altname.
func derivePair(v *sim.Venue, altname string) (pair, error) {
	in, err := simInstrument(v, altname)
	if err != nil {
		return pair{}, err
	}
	base, quote := krakenAsset(in.Base), krakenAsset(in.Quote)
	if altname == "" {
		altname = base + quote
	}
	lot, ok := powerOfTen(in.Step)
	if !ok {
		return pair{}, fmt.Errorf("kraken fake: step %s: Kraken states lot sizes as lot_decimals, so the step must be 1e-n", in.Step)
	}
	p := pair{symbol: in.Symbol, altname: altname, wsname: base + "/" + quote, baseCode: assetCode(base),
		quoteCode: assetCode(quote), in: in, lotDecimals: lot, pairDecimals: decimals(in.Tick)}
	p.key = altname
	if legacy(p.baseCode) && legacy(p.quoteCode) {
		p.key = p.baseCode + p.quoteCode
	}
	return p, nil
}

// simInstrument reads the sim's rules: from Rules when the sim offers it,
// else by asking for the symbol the altname names.
func simInstrument(v *sim.Venue, altname string) (market.Instrument, error) {
	if rs, ok := any(v).(rulesSource); ok {
		return rs.Rules(), nil
	}
	if altname == "" {
		return market.Instrument{}, fmt.Errorf("kraken fake: cannot read the sim's symbol; set Options.Pair")
	}
	for _, cand := range []string{altname, engineName(altname)} {
		if in, err := v.Instrument(context.Background(), cand); err == nil {
			return in, nil
		}
	}
	return market.Instrument{}, fmt.Errorf("kraken fake: the sim does not list %s", altname)
}

// krakenAsset is Kraken's name for an asset: XBT for BTC, XDG for DOGE.
func krakenAsset(a string) string {
	switch a {
	case "BTC":
		return "XBT"
	case "DOGE":
		return "XDG"
	}
	return a
}

// engineName turns a name with Kraken's asset names back into the
// common ones (XBTUSDT → BTCUSDT).
func engineName(s string) string {
	switch {
	case strings.HasPrefix(s, "XBT"):
		return "BTC" + s[3:]
	case strings.HasPrefix(s, "XDG"):
		return "DOGE" + s[3:]
	}
	return s
}

// assetCode is an asset's code in AssetPairs and Balance: the old assets
// carry an X (crypto) or Z (fiat) prefix, newer ones do not.
func assetCode(a string) string {
	switch a {
	case "XBT", "ETH", "LTC", "XDG", "XRP", "XLM", "ETC", "MLN", "REP", "ZEC", "XMR":
		return "X" + a
	case "USD", "EUR", "GBP", "JPY", "CAD", "AUD":
		return "Z" + a
	}
	return a
}

func legacy(code string) bool {
	return len(code) == 4 && (code[0] == 'X' || code[0] == 'Z')
}

// powerOfTen returns n when d is 1e-n.
func powerOfTen(d decimal.Decimal) (int32, bool) {
	for n := int32(0); n <= 18; n++ {
		if d.Equal(decimal.New(1, -n)) {
			return n, true
		}
	}
	return 0, false
}

// decimals counts the decimals d needs.
func decimals(d decimal.Decimal) int32 {
	s := d.String()
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return int32(len(s) - i - 1)
	}
	return 0
}

// matches reports whether name is one of the pair's names.
func (p pair) matches(name string) bool {
	return name == p.altname || name == p.key || name == p.wsname
}

// handleTime answers the exchange's own clock.
func (s *Server) handleTime(w http.ResponseWriter, _ *http.Request, _ url.Values) {
	now := s.o.ServerClock.Now().UTC()
	writeResult(w, map[string]any{"unixtime": now.Unix(), "rfc1123": now.Format("Mon, 02 Jan 06 15:04:05 -0700")})
}

// handleAssetPairs lists the pair; pair= selects by altname, key or wsname.
func (s *Server) handleAssetPairs(w http.ResponseWriter, _ *http.Request, f url.Values) {
	if names := f.Get("pair"); names != "" {
		for _, n := range strings.Split(names, ",") {
			if !s.pair.matches(strings.TrimSpace(n)) {
				writeErrors(w, http.StatusOK, "EQuery:Unknown asset pair")
				return
			}
		}
	}
	p, in := s.pair, s.pair.in
	pct := func(f decimal.Decimal) json.Number { return json.Number(f.Shift(2).String()) }
	writeResult(w, map[string]any{p.key: map[string]any{
		"altname": p.altname, "wsname": p.wsname, "aclass_base": "currency", "base": p.baseCode,
		"aclass_quote": "currency", "quote": p.quoteCode, "lot": "unit", "cost_decimals": costDecimals,
		"pair_decimals": p.pairDecimals, "lot_decimals": p.lotDecimals, "lot_multiplier": 1,
		"leverage_buy": []int{}, "leverage_sell": []int{},
		"fees":                [][]json.Number{{"0", pct(in.TakerFee)}},
		"fees_maker":          [][]json.Number{{"0", pct(in.MakerFee)}},
		"fee_volume_currency": feeVolumeQuote, "margin_call": 80, "margin_stop": 40,
		"ordermin": in.MinQty.String(), "costmin": in.MinNotional.String(), "tick_size": in.Tick.String(),
		"status": "online",
	}})
}

// pairParam resolves the pair= parameter, answering Kraken's error if it is
// not the fake's pair.
func (s *Server) pairParam(w http.ResponseWriter, f url.Values) bool {
	if !s.pair.matches(f.Get("pair")) {
		writeErrors(w, http.StatusOK, "EQuery:Unknown asset pair")
		return false
	}
	return true
}

// handleDepth answers the book: {key: {asks: [[price, volume, time]…],
// bids: …}}, count levels a side (default 100, at most 500).
func (s *Server) handleDepth(w http.ResponseWriter, r *http.Request, f url.Values) {
	if !s.pairParam(w, f) {
		return
	}
	count := depthDefault
	if c := f.Get("count"); c != "" {
		n, err := strconv.Atoi(c)
		if err != nil || n < 1 {
			writeErrors(w, http.StatusOK, "EGeneral:Invalid arguments:count")
			return
		}
		count = min(n, depthMax)
	}
	b, err := s.o.Venue.Book(r.Context(), s.pair.symbol, count)
	if err != nil {
		writeErrors(w, http.StatusOK, "EGeneral:Internal error")
		return
	}
	ts := s.o.Clock.Now().Unix()
	levels := func(ls []market.Level) [][]any {
		out := make([][]any, 0, len(ls))
		for _, l := range ls {
			out = append(out, []any{l.Price.StringFixed(s.pair.pairDecimals), l.Qty.StringFixed(s.pair.lotDecimals), ts})
		}
		return out
	}
	writeResult(w, map[string]any{s.pair.key: map[string]any{"asks": levels(b.Asks), "bids": levels(b.Bids)}})
}

// handleTrades answers public trades after since (nanoseconds, or seconds
// for a small number), oldest first, at most count (1000), with last = the
// last trade's time in nanoseconds, to page on.
//
// Assumption: since is exclusive (a trade at exactly since is not
// repeated), which paging on last requires.
func (s *Server) handleTrades(w http.ResponseWriter, r *http.Request, f url.Values) {
	if !s.pairParam(w, f) {
		return
	}
	now := s.o.Clock.Now()
	count := tradesPageMax
	if c := f.Get("count"); c != "" {
		n, err := strconv.Atoi(c)
		if err != nil || n < 1 {
			writeErrors(w, http.StatusOK, "EGeneral:Invalid arguments:count")
			return
		}
		count = min(n, tradesPageMax)
	}
	from := now.Add(-time.Duration(count) * tradeBucket)
	sinceNs := from.UnixNano()
	if v := f.Get("since"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeErrors(w, http.StatusOK, "EGeneral:Invalid arguments:since")
			return
		}
		if n < 1e12 { // seconds, as older clients send
			n *= int64(time.Second)
		}
		sinceNs, from = n, time.Unix(0, n).UTC()
	}
	if floor := now.Add(-tradesLookback); from.Before(floor) {
		from = floor
	}
	var trades []fakex.Trade
	for chunk := from; len(trades) < count && chunk.Before(now); {
		to := chunk.Add(tradesPageMax * tradeBucket)
		got, err := fakex.Trades(r.Context(), s.o.Venue, s.pair.symbol, chunk, to, now, tradeBucket, s.pair.in.Tick)
		if err != nil {
			writeErrors(w, http.StatusOK, "EGeneral:Internal error")
			return
		}
		trades = append(trades, got...)
		chunk = to
	}
	if len(trades) > count {
		trades = trades[:count]
	}
	rows := make([][]any, 0, len(trades))
	last := sinceNs
	for _, t := range trades {
		side := "b"
		if t.BuyerMaker { // the seller took liquidity
			side = "s"
		}
		rows = append(rows, []any{t.Price.StringFixed(s.pair.pairDecimals), t.Qty.StringFixed(s.pair.lotDecimals),
			unixNumber(t.Time), side, "l", "", t.ID})
		last = t.Time.UnixNano()
	}
	writeResult(w, map[string]any{s.pair.key: rows, "last": strconv.FormatInt(last, 10)})
}

// handleBalance answers balances large enough never to refuse an order:
// the sim does not keep accounts.
func (s *Server) handleBalance(w http.ResponseWriter, _ *http.Request, _ url.Values) {
	writeResult(w, map[string]string{s.pair.baseCode: "1000.0000000000", s.pair.quoteCode: "100000000.0000"})
}

// handleTradeVolume answers the key's fee tier for the pair, in percent.
func (s *Server) handleTradeVolume(w http.ResponseWriter, _ *http.Request, f url.Values) {
	res := map[string]any{"currency": feeVolumeQuote, "volume": "0.0000"}
	if names := f.Get("pair"); names != "" {
		for _, n := range strings.Split(names, ",") {
			if !s.pair.matches(strings.TrimSpace(n)) {
				writeErrors(w, http.StatusOK, "EQuery:Unknown asset pair")
				return
			}
		}
		tier := func(fee decimal.Decimal) map[string]any {
			p := fee.Shift(2).StringFixed(4)
			return map[string]any{"fee": p, "minfee": p, "maxfee": p, "nextfee": nil, "nextvolume": nil,
				"tiervolume": "0.0000"}
		}
		res["fees"] = map[string]any{s.pair.key: tier(s.pair.in.TakerFee)}
		res["fees_maker"] = map[string]any{s.pair.key: tier(s.pair.in.MakerFee)}
	}
	writeResult(w, res)
}

// unixNumber prints t as Kraken's JSON seconds, with its fraction exact.
func unixNumber(t time.Time) json.Number {
	return json.Number(decimal.New(t.UnixNano(), -9).String())
}
