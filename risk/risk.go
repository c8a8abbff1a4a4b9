// Package risk checks every child order before it reaches a venue: the
// slippage band around the arrival price, the parent's floor or ceiling,
// the child notional cap, the participation cap, the venue's rules and the
// kill switch. A refusal is a *Rejection value carrying the numbers.
package risk

import (
	"fmt"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/market"
)

// Names of the checks, as they appear in rejection events.
const (
	CheckKill          = "kill_switch"
	CheckRules         = "venue_rules"
	CheckBand          = "slippage_band"
	CheckLimit         = "limit_price"
	CheckNotional      = "max_child_notional"
	CheckParticipation = "participation"
)

var bpsDenominator = decimal.NewFromInt(10_000)

// Limits are a parent order's risk parameters.
type Limits struct {
	ParentID         string
	Side             market.Side
	ArrivalPrice     decimal.Decimal
	BandBps          decimal.Decimal // slippage band vs arrival, > 0
	LimitPrice       decimal.Decimal // floor (sell) or ceiling (buy); zero = none
	MaxChildNotional decimal.Decimal // zero = no cap
	MaxParticipation decimal.Decimal // in (0, 1]
}

// Window is the trading on one venue over the participation window that
// ends at the check time.
type Window struct {
	Market decimal.Decimal // public volume on the venue, ours included
	Ours   decimal.Decimal // our filled quantity on the venue
	Open   decimal.Decimal // our resting quantity on the venue
}

// Child is a child order about to be placed.
type Child struct {
	Venue      string
	Instrument market.Instrument
	Req        market.OrderRequest
	Window     Window
}

// Rejection is a refused child: which check, and why with the numbers.
type Rejection struct {
	Check  string
	Reason string
}

func (r *Rejection) Error() string { return r.Check + ": " + r.Reason }

// BandLimit returns the worst price the slippage band allows: arrival ×
// (1 − bps/10⁴) for a sell, arrival × (1 + bps/10⁴) for a buy. Not rounded.
func BandLimit(side market.Side, arrival, bps decimal.Decimal) decimal.Decimal {
	f := bps.Div(bpsDenominator)
	if side == market.Sell {
		return arrival.Mul(decimal.NewFromInt(1).Sub(f))
	}
	return arrival.Mul(decimal.NewFromInt(1).Add(f))
}

// WorstPrice returns the tightest of the band and the parent's floor or
// ceiling: the worst price any child of the parent may carry. Not rounded.
func (l Limits) WorstPrice() decimal.Decimal {
	band := BandLimit(l.Side, l.ArrivalPrice, l.BandBps)
	if l.LimitPrice.Sign() <= 0 {
		return band
	}
	if l.Side == market.Sell {
		return decimal.Max(band, l.LimitPrice)
	}
	return decimal.Min(band, l.LimitPrice)
}

// Headroom returns how much more we may trade on a venue in the window
// without our share of its volume exceeding cap. With ours + q counted in
// the market's volume too, ours+q ≤ cap·(others+ours+q) solves to
// ours+open+q ≤ cap/(1−cap)·others. A cap of 1 means no cap: ok is false.
func Headroom(capFrac decimal.Decimal, w Window) (room decimal.Decimal, ok bool) {
	one := decimal.NewFromInt(1)
	if capFrac.GreaterThanOrEqual(one) {
		return decimal.Zero, false
	}
	others := w.Market.Sub(w.Ours)
	if others.Sign() < 0 {
		others = decimal.Zero
	}
	// Multiply before dividing so that exact inputs give an exact room.
	room = capFrac.Mul(others).Div(one.Sub(capFrac)).Sub(w.Ours).Sub(w.Open)
	if room.Sign() < 0 {
		room = decimal.Zero
	}
	return room, true
}

// Checker runs the pre-trade checks. It is safe for concurrent use.
type Checker struct {
	kill *KillSwitch
}

// NewChecker returns a checker that consults kill.
func NewChecker(kill *KillSwitch) *Checker { return &Checker{kill: kill} }

// Check returns nil when the child may be placed, or the first failed check.
func (c *Checker) Check(l Limits, ch Child) *Rejection {
	req := ch.Req
	if scope, killed := c.kill.Killed(l.ParentID); killed {
		return &Rejection{CheckKill, fmt.Sprintf("KILL_SWITCH_ON: scope=%s", scope)}
	}
	if req.Side != l.Side {
		return &Rejection{CheckRules, fmt.Sprintf("SIDE_MISMATCH: parent=%s child=%s", l.Side, req.Side)}
	}
	if err := ch.Instrument.Check(req.Price, req.Qty); err != nil {
		return &Rejection{CheckRules, err.Error()}
	}
	band := BandLimit(l.Side, l.ArrivalPrice, l.BandBps)
	if !market.Within(l.Side, req.Price, band) {
		return &Rejection{CheckBand, fmt.Sprintf("PRICE_OUTSIDE_BAND: side=%s price=%s arrival=%s band_bps=%s limit=%s",
			l.Side, req.Price, l.ArrivalPrice, l.BandBps, band.Round(8))}
	}
	if l.LimitPrice.Sign() > 0 && !market.Within(l.Side, req.Price, l.LimitPrice) {
		name := "FLOOR"
		if l.Side == market.Buy {
			name = "CEILING"
		}
		return &Rejection{CheckLimit, fmt.Sprintf("PRICE_BEYOND_%s: side=%s price=%s %s=%s",
			name, l.Side, req.Price, name, l.LimitPrice)}
	}
	if l.MaxChildNotional.Sign() > 0 && req.Notional().GreaterThan(l.MaxChildNotional) {
		return &Rejection{CheckNotional, fmt.Sprintf("NOTIONAL_EXCEEDS_MAX_PER_ORDER: notional=%s max=%s",
			req.Notional(), l.MaxChildNotional)}
	}
	if room, capped := Headroom(l.MaxParticipation, ch.Window); capped && overCap(l.MaxParticipation, ch.Window, req.Qty) {
		return &Rejection{CheckParticipation, fmt.Sprintf("PARTICIPATION_EXCEEDS_CAP: venue=%s qty=%s headroom=%s cap=%s market=%s ours=%s open=%s",
			ch.Venue, req.Qty, room.Round(8), l.MaxParticipation, ch.Window.Market, ch.Window.Ours, ch.Window.Open)}
	}
	return nil
}

// overCap decides the participation check without division:
// (ours+open+q)·(1−cap) > cap·others.
func overCap(capFrac decimal.Decimal, w Window, q decimal.Decimal) bool {
	others := decimal.Max(w.Market.Sub(w.Ours), decimal.Zero)
	lhs := w.Ours.Add(w.Open).Add(q).Mul(decimal.NewFromInt(1).Sub(capFrac))
	return lhs.GreaterThan(capFrac.Mul(others))
}
