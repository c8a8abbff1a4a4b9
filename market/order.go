package market

import (
	"time"

	"github.com/shopspring/decimal"
)

// OrderRequest is a child order as sent to a venue.
type OrderRequest struct {
	ClientID string
	Symbol   string
	Side     Side
	Price    decimal.Decimal // limit price, on the venue's tick
	Qty      decimal.Decimal // on the venue's step
	TIF      TimeInForce
}

// Notional returns price × quantity.
func (r OrderRequest) Notional() decimal.Decimal { return r.Price.Mul(r.Qty) }

// OrderStatus is a venue order's state. The zero value is invalid.
type OrderStatus int8

const (
	// New rests on the book with nothing filled.
	New OrderStatus = iota + 1
	// PartiallyFilled rests with some quantity filled.
	PartiallyFilled
	// Filled is done, fully executed.
	Filled
	// Canceled is done; Filled says how much executed before.
	Canceled
	// Rejected never reached the book.
	Rejected
	// Expired is done: an IOC remainder or a post-only that would have crossed.
	Expired
)

var statusNames = map[OrderStatus]string{
	New: "new", PartiallyFilled: "partially_filled", Filled: "filled",
	Canceled: "canceled", Rejected: "rejected", Expired: "expired",
}

// String returns the status in snake case.
func (s OrderStatus) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return "unknown"
}

// Done reports whether the order can no longer fill.
func (s OrderStatus) Done() bool {
	return s == Filled || s == Canceled || s == Rejected || s == Expired
}

// Order is a venue's view of one of our orders.
type Order struct {
	ClientID     string
	VenueOrderID string
	Symbol       string
	Side         Side
	Price        decimal.Decimal
	Qty          decimal.Decimal
	Filled       decimal.Decimal // executed base quantity
	Notional     decimal.Decimal // executed quote quantity
	Status       OrderStatus
	TIF          TimeInForce
	Created      time.Time
}

// Remaining returns the quantity not yet executed.
func (o Order) Remaining() decimal.Decimal { return o.Qty.Sub(o.Filled) }

// Fill is one execution of one of our orders.
type Fill struct {
	Venue     string
	TradeID   string // unique per venue
	OrderID   string // venue order id
	ClientID  string
	Symbol    string
	Side      Side
	Price     decimal.Decimal
	Qty       decimal.Decimal
	Fee       decimal.Decimal
	FeeAsset  string
	Liquidity Liquidity
	Time      time.Time
}

// Notional returns price × quantity.
func (f Fill) Notional() decimal.Decimal { return f.Price.Mul(f.Qty) }

// Key identifies a fill across venues: venue + ":" + trade id.
func (f Fill) Key() string { return f.Venue + ":" + f.TradeID }

// Tape is the public market volume traded on a venue over a window,
// ours included.
type Tape struct {
	Volume   decimal.Decimal // base
	Notional decimal.Decimal // quote
}

// VWAP returns Notional / Volume, or zero for an empty tape.
func (t Tape) VWAP() decimal.Decimal {
	if t.Volume.IsZero() {
		return decimal.Zero
	}
	return t.Notional.Div(t.Volume)
}

// Add returns the sum of two tapes.
func (t Tape) Add(o Tape) Tape {
	return Tape{Volume: t.Volume.Add(o.Volume), Notional: t.Notional.Add(o.Notional)}
}
