package market

import (
	"time"

	"github.com/shopspring/decimal"
)

// Level is one price level of a book.
type Level struct {
	Price decimal.Decimal
	Qty   decimal.Decimal
}

// Book is a depth snapshot: bids best (highest) first, asks best (lowest) first.
type Book struct {
	Symbol string
	Bids   []Level
	Asks   []Level
	Time   time.Time
}

// BestBid returns the highest bid, ok=false on an empty side.
func (b Book) BestBid() (Level, bool) {
	if len(b.Bids) == 0 {
		return Level{}, false
	}
	return b.Bids[0], true
}

// BestAsk returns the lowest ask, ok=false on an empty side.
func (b Book) BestAsk() (Level, bool) {
	if len(b.Asks) == 0 {
		return Level{}, false
	}
	return b.Asks[0], true
}

// Mid returns the mid price, ok=false when either side is empty.
func (b Book) Mid() (decimal.Decimal, bool) {
	bid, ok1 := b.BestBid()
	ask, ok2 := b.BestAsk()
	if !ok1 || !ok2 {
		return decimal.Zero, false
	}
	return bid.Price.Add(ask.Price).Div(decimal.NewFromInt(2)), true
}

// Opposite returns the levels an order of the given side trades against:
// bids for a sell, asks for a buy.
func (b Book) Opposite(side Side) []Level {
	if side == Sell {
		return b.Bids
	}
	return b.Asks
}

// Within reports whether price p is at or inside limit for side: a sell
// accepts p ≥ limit, a buy accepts p ≤ limit.
func Within(side Side, p, limit decimal.Decimal) bool {
	if side == Sell {
		return p.GreaterThanOrEqual(limit)
	}
	return p.LessThanOrEqual(limit)
}

// DepthWithin returns the quantity an order of side could take from the
// book without trading beyond limit.
func (b Book) DepthWithin(side Side, limit decimal.Decimal) decimal.Decimal {
	sum := decimal.Zero
	for _, l := range b.Opposite(side) {
		if !Within(side, l.Price, limit) {
			break
		}
		sum = sum.Add(l.Qty)
	}
	return sum
}

// DepthUpTo is DepthWithin that stops counting once the sum reaches need:
// the result is the whole depth inside limit when that is less than need,
// else a value ≥ need.
func (b Book) DepthUpTo(side Side, limit, need decimal.Decimal) decimal.Decimal {
	sum := decimal.Zero
	for _, l := range b.Opposite(side) {
		if !Within(side, l.Price, limit) || sum.GreaterThanOrEqual(need) {
			break
		}
		sum = sum.Add(l.Qty)
	}
	return sum
}

// Reach returns the worst price an order of side must accept to take qty
// from the book, never beyond limit, and the quantity available up to it.
// ok is false when there is no level inside the limit.
func (b Book) Reach(side Side, qty, limit decimal.Decimal) (price, avail decimal.Decimal, ok bool) {
	for _, l := range b.Opposite(side) {
		if !Within(side, l.Price, limit) {
			break
		}
		price, ok = l.Price, true
		avail = avail.Add(l.Qty)
		if avail.GreaterThanOrEqual(qty) {
			break
		}
	}
	return price, avail, ok
}
