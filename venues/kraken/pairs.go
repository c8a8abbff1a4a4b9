package kraken

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/venues"
)

// assetPair is one entry of AssetPairs, with the fields the adapter reads.
type assetPair struct {
	key          string // the result's key (XXBTZUSD, XBTUSDT)
	Altname      string `json:"altname"`
	Wsname       string `json:"wsname"`
	Base         string `json:"base"`
	Quote        string `json:"quote"`
	PairDecimals int32  `json:"pair_decimals"`
	LotDecimals  int32  `json:"lot_decimals"`
	TickSize     string `json:"tick_size"`
	Ordermin     string `json:"ordermin"`
	Costmin      string `json:"costmin"`
	Status       string `json:"status"`
}

// pairRules is what the adapter knows of a symbol it trades.
type pairRules struct {
	pair assetPair
	in   market.Instrument
}

// names reports whether name is the pair's altname or key, as Kraken
// prints it in orders and trades.
func (p *pairRules) names(name string) bool { return name == p.pair.Altname || name == p.pair.key }

// canonicalAsset is the common name of a Kraken asset: Kraken says XBT for
// bitcoin and XDG for dogecoin, and prefixes its oldest assets with X
// (crypto) or Z (fiat) in asset codes (XXBT, ZUSD).
func canonicalAsset(a string) string {
	a = strings.ToUpper(strings.TrimSpace(a))
	if len(a) == 4 && (a[0] == 'X' || a[0] == 'Z') {
		switch a[1:] {
		case "XBT", "ETH", "LTC", "XDG", "XRP", "XLM", "ETC", "MLN", "REP", "ZEC", "XMR",
			"USD", "EUR", "GBP", "JPY", "CAD", "AUD":
			a = a[1:]
		}
	}
	switch a {
	case "XBT":
		return "BTC"
	case "XDG":
		return "DOGE"
	}
	return a
}

// engineNames returns the pair's base, quote and engine symbol (BTC, USDT,
// BTCUSDT), from its wsname when it has one.
func (p assetPair) engineNames() (base, quote, symbol string) {
	if b, q, ok := strings.Cut(p.Wsname, "/"); ok {
		base, quote = canonicalAsset(b), canonicalAsset(q)
	} else {
		base, quote = canonicalAsset(p.Base), canonicalAsset(p.Quote)
	}
	return base, quote, base + quote
}

// rules returns the symbol's pair and instrument, reading them once.
func (v *Venue) rules(ctx context.Context, symbol string) (*pairRules, error) {
	v.mu.Lock()
	pr, ok := v.inst[symbol]
	v.mu.Unlock()
	if ok {
		return pr, nil
	}
	p, err := v.findPair(ctx, symbol)
	if err != nil {
		return nil, err
	}
	base, quote, _ := p.engineNames()
	in := market.Instrument{Symbol: symbol, Base: base, Quote: quote, Step: decimal.New(1, -p.LotDecimals)}
	if in.Tick, err = optionalDecimal(p.TickSize, decimal.New(1, -p.PairDecimals)); err != nil {
		return nil, v.unreadable("AssetPairs", "tick_size", err)
	}
	if in.MinQty, err = optionalDecimal(p.Ordermin, in.Step); err != nil {
		return nil, v.unreadable("AssetPairs", "ordermin", err)
	}
	if in.MinNotional, err = optionalDecimal(p.Costmin, decimal.Zero); err != nil {
		return nil, v.unreadable("AssetPairs", "costmin", err)
	}
	if !in.Tick.IsPositive() || p.LotDecimals < 0 {
		return nil, fmt.Errorf("kraken %s: AssetPairs %s: tick %s and lot_decimals %d make no market: %w", v.cfg.Name,
			p.Altname, in.Tick, p.LotDecimals, venues.ErrUnavailable)
	}
	in.MakerFee, in.TakerFee = v.cfg.MakerFee, v.cfg.TakerFee
	if in.MakerFee.IsZero() && in.TakerFee.IsZero() {
		if in.MakerFee, in.TakerFee, err = v.fees(ctx, p); err != nil {
			return nil, err
		}
	}
	pr = &pairRules{pair: p, in: in}
	v.mu.Lock()
	v.inst[symbol] = pr
	v.mu.Unlock()
	return pr, nil
}

// Instrument returns the trading rules of symbol: tick_size, 10^-lot_decimals,
// ordermin and costmin from AssetPairs, fees from the configuration or the
// key's tier in TradeVolume. A pair Kraken does not list wraps
// venues.ErrUnknownSymbol.
func (v *Venue) Instrument(ctx context.Context, symbol string) (market.Instrument, error) {
	pr, err := v.rules(ctx, symbol)
	if err != nil {
		return market.Instrument{}, err
	}
	return pr.in, nil
}

// findPair finds symbol's pair: the configured altname, or the pair whose
// names translate to symbol.
func (v *Venue) findPair(ctx context.Context, symbol string) (assetPair, error) {
	if alt, ok := v.cfg.Symbols[symbol]; ok {
		pairs, err := v.assetPairs(ctx, url.Values{"pair": {alt}})
		if err != nil {
			return assetPair{}, err
		}
		for _, p := range pairs {
			if p.Altname == alt || p.key == alt {
				return p, nil
			}
		}
		return assetPair{}, fmt.Errorf("kraken %s: %s is configured as %s, which AssetPairs does not list: %w",
			v.cfg.Name, symbol, alt, venues.ErrUnknownSymbol)
	}
	v.mu.Lock()
	pairs := v.pairs
	v.mu.Unlock()
	if pairs == nil {
		var err error
		if pairs, err = v.assetPairs(ctx, nil); err != nil {
			return assetPair{}, err
		}
		v.mu.Lock()
		v.pairs = pairs
		v.mu.Unlock()
	}
	var found []assetPair
	for _, p := range pairs {
		// Dark-pool pairs (.d) share the wsname of the lit pair.
		if _, _, s := p.engineNames(); s == symbol && !strings.HasSuffix(p.Altname, ".d") {
			found = append(found, p)
		}
	}
	if len(found) == 0 {
		return assetPair{}, fmt.Errorf("kraken %s: no pair trades %s: %w", v.cfg.Name, symbol, venues.ErrUnknownSymbol)
	}
	// An online pair first, then by altname, so the choice is stable.
	sort.Slice(found, func(i, j int) bool {
		if (found[i].Status == "online") != (found[j].Status == "online") {
			return found[i].Status == "online"
		}
		return found[i].Altname < found[j].Altname
	})
	return found[0], nil
}

// assetPairs reads AssetPairs.
func (v *Venue) assetPairs(ctx context.Context, params url.Values) ([]assetPair, error) {
	var res map[string]json.RawMessage
	if err := v.call(ctx, request{method: "AssetPairs", params: params}, &res); err != nil {
		return nil, err
	}
	out := make([]assetPair, 0, len(res))
	for k, raw := range res {
		var p assetPair
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, v.unreadable("AssetPairs", k, err)
		}
		p.key = k
		if p.Altname == "" {
			p.Altname = k
		}
		out = append(out, p)
	}
	return out, nil
}

// fees reads the key's maker and taker fees for the pair from TradeVolume,
// where Kraken states them in percent.
func (v *Venue) fees(ctx context.Context, p assetPair) (maker, taker decimal.Decimal, err error) {
	type tier struct {
		Fee string `json:"fee"`
	}
	var res struct {
		Fees      map[string]tier `json:"fees"`
		FeesMaker map[string]tier `json:"fees_maker"`
	}
	rq := request{method: "TradeVolume", private: true, params: url.Values{"pair": {p.Altname}}}
	if err := v.call(ctx, rq, &res); err != nil {
		return decimal.Zero, decimal.Zero, err
	}
	pick := func(m map[string]tier) (decimal.Decimal, bool, error) {
		for _, k := range []string{p.key, p.Altname} {
			if t, ok := m[k]; ok {
				d, err := decimal.NewFromString(t.Fee)
				return d.Shift(-2), true, err
			}
		}
		if len(m) == 1 { // Kraken keys it by the pair's name, whichever it chose
			for _, t := range m {
				d, err := decimal.NewFromString(t.Fee)
				return d.Shift(-2), true, err
			}
		}
		return decimal.Zero, false, nil
	}
	taker, ok, err := pick(res.Fees)
	if err != nil || !ok {
		return decimal.Zero, decimal.Zero, v.unreadable("TradeVolume", "fees", errors.Join(err, errors.New("no taker fee for the pair")))
	}
	maker, ok, err = pick(res.FeesMaker)
	if err != nil {
		return decimal.Zero, decimal.Zero, v.unreadable("TradeVolume", "fees_maker", err)
	}
	if !ok { // a pair without a maker schedule charges the taker fee
		maker = taker
	}
	return maker, taker, nil
}

// optionalDecimal parses s, or returns def when Kraken left it out.
func optionalDecimal(s string, def decimal.Decimal) (decimal.Decimal, error) {
	if s == "" {
		return def, nil
	}
	return decimal.NewFromString(s)
}

// unreadable is an answer the adapter cannot read: the outcome is unknown.
func (v *Venue) unreadable(method, field string, err error) error {
	return fmt.Errorf("kraken %s: %s: unreadable %s (%v); state unknown: %w", v.cfg.Name, method, field, err,
		venues.ErrUnavailable)
}
