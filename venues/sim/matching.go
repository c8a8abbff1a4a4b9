package sim

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/venues"
)

// Place validates and matches an order. IOC takes what its limit allows
// and expires the rest; GTC takes what crosses and rests the rest;
// PostOnly that would cross is refused (as Binance's LIMIT_MAKER) with a
// *venues.RejectError of code WOULD_TAKE that also wraps
// venues.ErrWouldTake, and nothing is placed; otherwise it rests.
func (v *Venue) Place(_ context.Context, req market.OrderRequest) (market.Order, []market.Fill, error) {
	in := v.cfg.Instrument
	if req.Symbol != in.Symbol {
		return market.Order{}, nil, fmt.Errorf("%s: %s: %w", v.cfg.Name, req.Symbol, venues.ErrUnknownSymbol)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	f := v.failNext
	v.failNext = nil
	if f != nil && !f.afterAccept {
		return market.Order{}, nil, f.err
	}
	if err := v.validate(req); err != nil {
		return market.Order{}, nil, err
	}
	now := v.clk.Now()
	v.settle(now)
	s := v.stateAt(now)
	sell := req.Side == market.Sell
	limit := v.tickUnits.count(req.Price)
	if req.TIF == market.PostOnly {
		if touch := v.walk(v.scratch[:0], s, sell, 1, limit); len(touch) > 0 {
			v.scratch = touch
			return market.Order{}, nil, fmt.Errorf("%w: %w", &venues.RejectError{Venue: v.cfg.Name, Code: "WOULD_TAKE",
				Reason: fmt.Sprintf("post-only %s at %s would cross the touch %s", req.Side, req.Price, touch[0].Price)}, venues.ErrWouldTake)
		}
	}
	v.nextOrder++
	o := &order{o: market.Order{
		ClientID: req.ClientID, VenueOrderID: fmt.Sprintf("%s-o%d", v.cfg.IDPrefix, v.nextOrder), Symbol: req.Symbol,
		Side: req.Side, Price: req.Price, Qty: req.Qty, Filled: decimal.Zero, Notional: decimal.Zero,
		Status: market.New, TIF: req.TIF, Created: now,
	}}
	v.orders[req.ClientID] = o
	var fills []market.Fill
	if req.TIF != market.PostOnly {
		// Only the levels inside the limit are built; each takes what the
		// order still needs.
		v.scratch = v.walk(v.scratch[:0], s, sell, maxLevels, limit)
		for _, l := range v.scratch {
			rem := o.o.Remaining()
			if rem.Sign() <= 0 {
				break
			}
			fills = append(fills, v.fill(o, l.Price, decimal.Min(rem, l.Qty), market.Taker, now))
		}
		if len(fills) > 0 {
			v.addImpact(req.Side, o.o.Filled, now)
		}
	}
	switch {
	case o.o.Remaining().Sign() == 0:
		o.o.Status = market.Filled
	case req.TIF == market.IOC:
		o.o.Status = market.Expired
	default:
		v.resting = append(v.resting, o)
	}
	if f != nil {
		return market.Order{}, nil, f.err
	}
	return o.o, fills, nil
}

func (v *Venue) validate(req market.OrderRequest) error {
	if _, dup := v.orders[req.ClientID]; dup || req.ClientID == "" {
		return fmt.Errorf("%s: client id %q: %w", v.cfg.Name, req.ClientID, venues.ErrDuplicateClientID)
	}
	if len(req.ClientID) > maxClientIDLen {
		return &venues.RejectError{Venue: v.cfg.Name, Code: "CLIENT_ID", Reason: fmt.Sprintf("client id has %d characters; max %d", len(req.ClientID), maxClientIDLen)}
	}
	if !req.Side.Valid() {
		return &venues.RejectError{Venue: v.cfg.Name, Code: "SIDE", Reason: "side is not buy or sell"}
	}
	if err := v.cfg.Instrument.Check(req.Price, req.Qty); err != nil {
		var re *market.RuleError
		code := "RULE"
		if errors.As(err, &re) {
			code = re.Rule
		}
		return &venues.RejectError{Venue: v.cfg.Name, Code: code, Reason: err.Error()}
	}
	return nil
}

// fill executes qty of o at price and records it. Caller holds mu.
func (v *Venue) fill(o *order, price, qty decimal.Decimal, liq market.Liquidity, at time.Time) market.Fill {
	in := v.cfg.Instrument
	v.nextTrade++
	n := price.Mul(qty)
	f := market.Fill{
		Venue: v.cfg.Name, TradeID: fmt.Sprintf("%s-%d", v.cfg.IDPrefix, v.nextTrade), OrderID: o.o.VenueOrderID,
		ClientID: o.o.ClientID, Symbol: in.Symbol, Side: o.o.Side, Price: price, Qty: qty,
		Fee: in.Fee(n, liq), FeeAsset: in.Quote, Liquidity: liq, Time: at,
	}
	o.o.Filled = o.o.Filled.Add(qty)
	o.o.Notional = o.o.Notional.Add(n)
	if o.o.Remaining().Sign() > 0 {
		o.o.Status = market.PartiallyFilled
	} else {
		o.o.Status = market.Filled
	}
	o.fills = append(o.fills, f)
	v.fills = append(v.fills, f)
	tr := ourTrade{at: at, cumQty: qty, cumNotional: n}
	if k := len(v.ours); k > 0 {
		tr.cumQty, tr.cumNotional = v.ours[k-1].cumQty.Add(qty), v.ours[k-1].cumNotional.Add(n)
	}
	v.ours = append(v.ours, tr)
	return f
}

// addImpact records a taker execution of qty: the square-root impact on
// the mid and the depth it consumed on the side it hit, both decaying from
// now with the impact half-life. Caller holds mu.
func (v *Venue) addImpact(side market.Side, qty decimal.Decimal, at time.Time) {
	q := qty.InexactFloat64()
	size := v.cfg.ImpactCoef * v.m.sigma * math.Sqrt(q/v.vDay)
	decay := 1.0
	if dt := at.Sub(v.tradeAt); dt > 0 {
		decay = math.Exp(-dt.Seconds() / v.tau)
	}
	v.impact *= decay
	v.bidGone *= decay
	v.askGone *= decay
	if side == market.Sell {
		v.impact -= size
		v.bidGone += q
	} else {
		v.impact += size
		v.askGone += q
	}
	v.tradeAt = at
}

// settle fills resting orders against the market from the last check up
// to now, minute by minute. Caller holds mu.
func (v *Venue) settle(now time.Time) {
	if len(v.resting) == 0 {
		v.checked = now
		return
	}
	for v.checked.Before(now) {
		from := v.checked
		to := from.Truncate(time.Minute).Add(time.Minute)
		if to.After(now) {
			to = now
		}
		v.settleStep(from, to)
		v.checked = to
	}
}

// settleStep fills resting orders over (from, to] at the touch of time to.
// Caller holds mu.
func (v *Venue) settleStep(from, to time.Time) {
	s := v.stateAt(to)
	v.scratch = v.walk(v.scratch[:0], s, true, 1, math.MinInt64)
	v.scratch = v.walk(v.scratch, s, false, 1, math.MaxInt64)
	if len(v.scratch) != 2 {
		return
	}
	bid, ask := v.scratch[0], v.scratch[1]
	v0, _ := v.background(from)
	v1, _ := v.background(to)
	flow := decimal.New(v1-v0, volumeExp).Mul(decimal.NewFromFloat(queueShare / 2))
	open := v.resting[:0]
	for _, o := range v.resting {
		rem := o.o.Remaining()
		through, touch := false, false
		if o.o.Side == market.Sell {
			through = bid.Price.GreaterThanOrEqual(o.o.Price)
			touch = o.o.Price.LessThanOrEqual(ask.Price)
		} else {
			through = ask.Price.LessThanOrEqual(o.o.Price)
			touch = o.o.Price.GreaterThanOrEqual(bid.Price)
		}
		q := decimal.Zero
		switch {
		case through:
			q = rem
		case touch:
			q = v.cfg.Instrument.Quantity(decimal.Min(rem, flow))
		}
		if q.Sign() > 0 {
			v.fill(o, o.o.Price, q, market.Maker, to)
		}
		if o.o.Remaining().Sign() > 0 {
			open = append(open, o)
		}
	}
	v.resting = open
}

// Cancel cancels an open order and returns its final state; a done order
// is returned as it is.
func (v *Venue) Cancel(_ context.Context, symbol, clientID string) (market.Order, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.settle(v.clk.Now())
	o, ok := v.orders[clientID]
	if !ok || o.o.Symbol != symbol {
		return market.Order{}, fmt.Errorf("%s: cancel %q: %w", v.cfg.Name, clientID, venues.ErrUnknownOrder)
	}
	if o.o.Status.Done() {
		return o.o, nil
	}
	o.o.Status = market.Canceled
	for i, r := range v.resting {
		if r == o {
			v.resting = append(v.resting[:i], v.resting[i+1:]...)
			break
		}
	}
	return o.o, nil
}

// Order looks an order up by client id.
func (v *Venue) Order(_ context.Context, symbol, clientID string) (market.Order, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.settle(v.clk.Now())
	o, ok := v.orders[clientID]
	if !ok || o.o.Symbol != symbol {
		return market.Order{}, fmt.Errorf("%s: order %q: %w", v.cfg.Name, clientID, venues.ErrUnknownOrder)
	}
	return o.o, nil
}

// Fills returns our fills on symbol with from < time ≤ to.
func (v *Venue) Fills(_ context.Context, symbol string, from, to time.Time) ([]market.Fill, error) {
	if symbol != v.cfg.Instrument.Symbol {
		return nil, fmt.Errorf("%s: %s: %w", v.cfg.Name, symbol, venues.ErrUnknownSymbol)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.settle(v.clk.Now())
	var out []market.Fill
	for _, f := range v.fills {
		if f.Time.After(from) && !f.Time.After(to) {
			out = append(out, f)
		}
	}
	return out, nil
}
