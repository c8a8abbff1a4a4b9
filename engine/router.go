package engine

import (
	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/market"
)

// venueQuote is what the router knows of one venue at a slice.
type venueQuote struct {
	venue  string
	inst   market.Instrument
	book   market.Book
	depth  decimal.Decimal // displayed depth inside the parent's worst price
	room   decimal.Decimal // participation headroom
	capped bool            // false when participation is uncapped
}

func (q venueQuote) capacity() decimal.Decimal {
	if q.capped {
		return decimal.Min(q.depth, q.room)
	}
	return q.depth
}

// split divides total across venues in proportion to their displayed depth
// inside the band, never giving a venue more than its capacity (depth and
// participation headroom); what a capped venue cannot take is offered again
// to the others in the same proportion. Results are not yet rounded to step.
func split(total decimal.Decimal, quotes []venueQuote) []decimal.Decimal {
	alloc := make([]decimal.Decimal, len(quotes))
	left := total
	open := make([]bool, len(quotes))
	for i, q := range quotes {
		open[i] = q.capacity().Sign() > 0
	}
	// Each pass either places everything left or closes at least one venue,
	// so len(quotes)+1 passes suffice.
	for pass := 0; pass <= len(quotes) && left.Sign() > 0; pass++ {
		weight := decimal.Zero
		for i, q := range quotes {
			if open[i] {
				weight = weight.Add(q.depth)
			}
		}
		if weight.Sign() <= 0 {
			break
		}
		placed := decimal.Zero
		for i, q := range quotes {
			if !open[i] {
				continue
			}
			share := left.Mul(q.depth).Div(weight)
			spare := q.capacity().Sub(alloc[i])
			if share.GreaterThanOrEqual(spare) {
				share = spare
				open[i] = false
			}
			alloc[i] = alloc[i].Add(share)
			placed = placed.Add(share)
		}
		left = left.Sub(placed)
	}
	return alloc
}
