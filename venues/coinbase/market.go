package coinbase

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/venues"
)

// product is what the adapter keeps of a Coinbase product.
type product struct {
	id          string // BTC-USDT
	base, quote string // BTC, USDT
	tick, step  decimal.Decimal
	minQty      decimal.Decimal
	minNotional decimal.Decimal
}

// feeRates are the account's rates, fractions of notional.
type feeRates struct {
	maker, taker decimal.Decimal
}

// product resolves an engine symbol to its Coinbase product, once.
func (v *Venue) product(ctx context.Context, symbol string) (product, error) {
	v.mu.Lock()
	p, ok := v.products[symbol]
	v.mu.Unlock()
	if ok {
		return p, nil
	}
	var pj productJSON
	if id, mapped := v.symbols[symbol]; mapped {
		err := v.get(ctx, pathProducts+"/"+url.PathEscape(id), nil, &pj)
		var ae *apiError
		if errors.As(err, &ae) && (ae.Status == http.StatusNotFound || ae.Status == http.StatusBadRequest) {
			return product{}, fmt.Errorf("coinbase: %s maps to product %s: %s: %w", symbol, id, ae, venues.ErrUnknownSymbol)
		}
		if err != nil {
			return product{}, fmt.Errorf("product %s: %w", id, err)
		}
	} else {
		var list productsJSON
		if err := v.get(ctx, pathProducts, url.Values{"product_type": {"SPOT"}}, &list); err != nil {
			return product{}, fmt.Errorf("products: %w", err)
		}
		found, err := matchProduct(symbol, list.Products)
		if err != nil {
			return product{}, err
		}
		pj = found
	}
	p, err := toProduct(pj)
	if err != nil {
		return product{}, fmt.Errorf("coinbase: %s: %w", symbol, err)
	}
	v.mu.Lock()
	v.products[symbol] = p
	v.mu.Unlock()
	return p, nil
}

// matchProduct finds the product whose base_currency_id + quote_currency_id
// spells the engine symbol (BTC + USDT = BTCUSDT). Two matches are refused:
// Config.Symbols must say which.
func matchProduct(symbol string, ps []productJSON) (productJSON, error) {
	var hits []productJSON
	for _, p := range ps {
		if (p.ProductType != "" && p.ProductType != "SPOT") || p.IsDisabled {
			continue // futures, and products Coinbase has delisted
		}
		if p.BaseCurrencyID != "" && p.QuoteCurrencyID != "" &&
			strings.EqualFold(p.BaseCurrencyID+p.QuoteCurrencyID, symbol) {
			hits = append(hits, p)
		}
	}
	switch len(hits) {
	case 0:
		return productJSON{}, fmt.Errorf("coinbase: no product has base+quote %s; map it in symbols: %w", symbol,
			venues.ErrUnknownSymbol)
	case 1:
		return hits[0], nil
	}
	ids := make([]string, len(hits))
	for i, h := range hits {
		ids[i] = h.ProductID
	}
	return productJSON{}, fmt.Errorf("coinbase: %s could be any of %v; map it in symbols", symbol, ids)
}

// toProduct checks that a product carries the rules the engine needs.
func toProduct(pj productJSON) (product, error) {
	p := product{id: pj.ProductID, base: pj.BaseCurrencyID, quote: pj.QuoteCurrencyID,
		tick: pj.PriceIncrement.Decimal, step: pj.BaseIncrement.Decimal,
		minQty: pj.BaseMinSize.Decimal, minNotional: pj.QuoteMinSize.Decimal}
	if p.tick.Sign() <= 0 {
		p.tick = pj.QuoteIncrement.Decimal // older products state only quote_increment
	}
	switch {
	case p.id == "" || p.base == "" || p.quote == "":
		return product{}, fmt.Errorf("product %q lacks its id or currencies", p.id)
	case p.tick.Sign() <= 0 || p.step.Sign() <= 0:
		return product{}, fmt.Errorf("product %s: price increment %s and base increment %s must be positive", p.id,
			p.tick, p.step)
	case p.minQty.Sign() < 0 || p.minNotional.Sign() < 0:
		return product{}, fmt.Errorf("product %s: negative minimum size", p.id)
	}
	return p, nil
}

// Instrument returns the product's rules: price_increment is the tick,
// base_increment the step, base_min_size and quote_min_size the minimums;
// fees as configured, else from the account's fee tier.
func (v *Venue) Instrument(ctx context.Context, symbol string) (market.Instrument, error) {
	p, err := v.product(ctx, symbol)
	if err != nil {
		return market.Instrument{}, err
	}
	f, err := v.feeRates(ctx)
	if err != nil {
		return market.Instrument{}, err
	}
	return market.Instrument{Symbol: symbol, Base: p.base, Quote: p.quote, Tick: p.tick, Step: p.step,
		MinQty: p.minQty, MinNotional: p.minNotional, MakerFee: f.maker, TakerFee: f.taker}, nil
}

// feeRates returns the configured fees, or reads the fee tier once.
func (v *Venue) feeRates(ctx context.Context) (feeRates, error) {
	if v.fixedFees {
		return feeRates{maker: v.makerFee, taker: v.takerFee}, nil
	}
	v.mu.Lock()
	f := v.fees
	v.mu.Unlock()
	if f != nil {
		return *f, nil
	}
	var fj feesJSON
	if err := v.get(ctx, pathFees, url.Values{"product_type": {"SPOT"}}, &fj); err != nil {
		return feeRates{}, fmt.Errorf("fee tier: %w", err)
	}
	if fj.FeeTier == nil {
		return feeRates{}, fmt.Errorf("coinbase: transaction_summary has no fee_tier: %w", venues.ErrUnavailable)
	}
	got := feeRates{maker: fj.FeeTier.MakerFeeRate.Decimal, taker: fj.FeeTier.TakerFeeRate.Decimal}
	limit := decimal.RequireFromString(maxFee)
	if got.taker.Sign() < 0 || !got.taker.LessThan(limit) || !got.maker.Abs().LessThan(limit) {
		return feeRates{}, fmt.Errorf("coinbase: fee tier %q: maker %s, taker %s are not fractions of notional",
			fj.FeeTier.PricingTier, got.maker, got.taker)
	}
	v.mu.Lock()
	v.fees = &got
	v.mu.Unlock()
	return got, nil
}

// Book returns up to depth levels a side from product_book, stamped with
// the market clock when it arrived.
func (v *Venue) Book(ctx context.Context, symbol string, depth int) (market.Book, error) {
	p, err := v.product(ctx, symbol)
	if err != nil {
		return market.Book{}, err
	}
	var bj bookJSON
	q := url.Values{"product_id": {p.id}, "limit": {strconv.Itoa(max(depth, 1))}}
	if err := v.get(ctx, pathBook, q, &bj); err != nil {
		return market.Book{}, fmt.Errorf("book %s: %w", p.id, err)
	}
	return market.Book{Symbol: symbol, Bids: levels(bj.Pricebook.Bids, depth), Asks: levels(bj.Pricebook.Asks, depth),
		Time: v.clk.Now()}, nil
}

func levels(ls []levelJSON, depth int) []market.Level {
	out := make([]market.Level, 0, min(len(ls), max(depth, 0)))
	for _, l := range ls {
		if len(out) == depth {
			break
		}
		out = append(out, market.Level{Price: l.Price.Decimal, Qty: l.Size.Decimal})
	}
	return out
}

// Tape sums the product's public trades with from < time ≤ to. The ticker
// answers the newest trades of [start, end] first, a page at a time; a full
// page moves end back to its oldest trade (trades are told apart by id).
func (v *Venue) Tape(ctx context.Context, symbol string, from, to time.Time) (market.Tape, error) {
	p, err := v.product(ctx, symbol)
	if err != nil {
		return market.Tape{}, err
	}
	t := market.Tape{Volume: decimal.Zero, Notional: decimal.Zero}
	if !to.After(from) {
		return t, nil
	}
	seen := map[string]bool{}
	start, end := from.Unix(), ceilUnix(to)
	for {
		var tj tradesJSON
		q := url.Values{"limit": {strconv.Itoa(v.tradesPage)}, "start": {strconv.FormatInt(start, 10)},
			"end": {strconv.FormatInt(end, 10)}}
		if err := v.get(ctx, pathProducts+"/"+url.PathEscape(p.id)+"/ticker", q, &tj); err != nil {
			return market.Tape{}, fmt.Errorf("trades %s: %w", p.id, err)
		}
		oldest := end
		for _, tr := range tj.Trades {
			if tr.Time.IsZero() || tr.Size.Sign() < 0 || tr.Price.Sign() < 0 {
				return market.Tape{}, fmt.Errorf("coinbase: trade %q of %s has no time or a negative size: %w",
					tr.TradeID, p.id, venues.ErrUnavailable)
			}
			oldest = min(oldest, ceilUnix(tr.Time.Time))
			if seen[tr.TradeID] || !tr.Time.After(from) || tr.Time.After(to) {
				continue
			}
			seen[tr.TradeID] = true
			t.Volume = t.Volume.Add(tr.Size.Decimal)
			t.Notional = t.Notional.Add(tr.Price.Mul(tr.Size.Decimal))
		}
		if len(tj.Trades) < v.tradesPage || oldest <= start {
			return t, nil
		}
		if oldest >= end {
			return market.Tape{}, fmt.Errorf("coinbase: more than %d trades of %s in the second before %s; cannot page",
				v.tradesPage, p.id, time.Unix(end, 0).UTC().Format(time.RFC3339))
		}
		end = oldest
	}
}

// ceilUnix is t in whole Unix seconds, rounded up.
func ceilUnix(t time.Time) int64 {
	s := t.Unix()
	if t.After(time.Unix(s, 0)) {
		s++
	}
	return s
}
