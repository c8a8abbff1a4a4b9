package market

import (
	"fmt"

	"github.com/shopspring/decimal"
)

// Instrument carries a venue's trading rules for one symbol. Fees are
// fractions of notional (0.001 is 10 bps).
type Instrument struct {
	Symbol      string
	Base        string
	Quote       string
	Tick        decimal.Decimal // price increment
	Step        decimal.Decimal // quantity increment
	MinQty      decimal.Decimal
	MinNotional decimal.Decimal
	MakerFee    decimal.Decimal
	TakerFee    decimal.Decimal
	// MaxOpenOrders is the venue's cap on resting orders in the symbol
	// (Binance's MAX_NUM_ORDERS); zero: none stated.
	MaxOpenOrders int
}

// FloorToStep rounds x down to a multiple of step. A zero step leaves x as is.
// Steps need not be powers of ten (0.25, 5, 0.0003 all work). The division
// is exact (an integer quotient and its remainder), so no digit of x is
// lost however many it has.
func FloorToStep(x, step decimal.Decimal) decimal.Decimal {
	if step.Sign() <= 0 {
		return x
	}
	if places, ok := decimalPlaces(step); ok {
		return x.RoundFloor(places)
	}
	q, r := x.QuoRem(step, 0)
	if r.Sign() < 0 {
		q = q.Sub(decimal.NewFromInt(1))
	}
	return q.Mul(step)
}

// CeilToStep rounds x up to a multiple of step. A zero step leaves x as is.
func CeilToStep(x, step decimal.Decimal) decimal.Decimal {
	if step.Sign() <= 0 {
		return x
	}
	if places, ok := decimalPlaces(step); ok {
		return x.RoundCeil(places)
	}
	q, r := x.QuoRem(step, 0)
	if r.Sign() > 0 {
		q = q.Add(decimal.NewFromInt(1))
	}
	return q.Mul(step)
}

// decimalPlaces reports whether step is 10^−places written with a
// coefficient of one (0.01, 1, 0.00001): the common case, which rounds
// without a division.
func decimalPlaces(step decimal.Decimal) (int32, bool) {
	if step.CoefficientInt64() != 1 {
		return 0, false
	}
	return -step.Exponent(), true
}

// LimitPrice rounds a limit price to the tick in the direction that never
// breaks the limit it came from: a sell's minimum rounds up, a buy's maximum
// rounds down.
func (in Instrument) LimitPrice(side Side, p decimal.Decimal) decimal.Decimal {
	if side == Sell {
		return CeilToStep(p, in.Tick)
	}
	return FloorToStep(p, in.Tick)
}

// Quantity rounds a quantity down to the step, so a rounded child never
// exceeds what it was allowed.
func (in Instrument) Quantity(q decimal.Decimal) decimal.Decimal {
	return FloorToStep(q, in.Step)
}

// Fee returns the fee on a fill of the given notional.
func (in Instrument) Fee(notional decimal.Decimal, liq Liquidity) decimal.Decimal {
	if liq == Maker {
		return notional.Mul(in.MakerFee)
	}
	return notional.Mul(in.TakerFee)
}

// RuleError says which venue rule an order breaks, with the numbers.
type RuleError struct {
	Rule    string // TICK, STEP, MIN_QTY, MIN_NOTIONAL, NON_POSITIVE
	Symbol  string
	Value   decimal.Decimal
	Allowed decimal.Decimal
}

func (e *RuleError) Error() string {
	switch e.Rule {
	case "TICK":
		return fmt.Sprintf("%s PRICE_NOT_ON_TICK: price=%s tick=%s", e.Symbol, e.Value, e.Allowed)
	case "STEP":
		return fmt.Sprintf("%s QTY_NOT_ON_STEP: qty=%s step=%s", e.Symbol, e.Value, e.Allowed)
	case "MIN_QTY":
		return fmt.Sprintf("%s QTY_BELOW_MIN: qty=%s min=%s", e.Symbol, e.Value, e.Allowed)
	case "MIN_NOTIONAL":
		return fmt.Sprintf("%s NOTIONAL_BELOW_MIN: notional=%s min=%s", e.Symbol, e.Value, e.Allowed)
	}
	return fmt.Sprintf("%s %s: value=%s", e.Symbol, e.Rule, e.Value)
}

// Check returns a *RuleError when price or quantity breaks the venue's rules.
func (in Instrument) Check(price, qty decimal.Decimal) error {
	switch {
	case price.Sign() <= 0:
		return &RuleError{Rule: "NON_POSITIVE_PRICE", Symbol: in.Symbol, Value: price}
	case qty.Sign() <= 0:
		return &RuleError{Rule: "NON_POSITIVE_QTY", Symbol: in.Symbol, Value: qty}
	case in.Tick.Sign() > 0 && !price.Mod(in.Tick).IsZero():
		return &RuleError{Rule: "TICK", Symbol: in.Symbol, Value: price, Allowed: in.Tick}
	case in.Step.Sign() > 0 && !qty.Mod(in.Step).IsZero():
		return &RuleError{Rule: "STEP", Symbol: in.Symbol, Value: qty, Allowed: in.Step}
	case qty.LessThan(in.MinQty):
		return &RuleError{Rule: "MIN_QTY", Symbol: in.Symbol, Value: qty, Allowed: in.MinQty}
	case price.Mul(qty).LessThan(in.MinNotional):
		return &RuleError{Rule: "MIN_NOTIONAL", Symbol: in.Symbol, Value: price.Mul(qty), Allowed: in.MinNotional}
	}
	return nil
}
