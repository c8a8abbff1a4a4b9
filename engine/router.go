package engine

import (
	"sort"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/market"
)

// venueQuote is what the router knows of one venue at a slice.
type venueQuote struct {
	venue  string
	inst   market.Instrument
	book   market.Book
	limit  decimal.Decimal // the parent's worst price on this venue's tick
	depth  decimal.Decimal // displayed depth inside limit, counted up to the slice's need
	room   decimal.Decimal // participation headroom
	capped bool            // false when participation is uncapped
}

func (q venueQuote) capacity() decimal.Decimal {
	if q.capped {
		return decimal.Min(q.depth, q.room)
	}
	return q.depth
}

// most is the most venue q may take of a slice of total: its capacity, and
// at most maxShare of total when maxShare is set.
func (q venueQuote) most(total, maxShare decimal.Decimal) decimal.Decimal {
	if maxShare.Sign() > 0 {
		return decimal.Min(q.capacity(), total.Mul(maxShare))
	}
	return q.capacity()
}

// split divides total across venues by the cost of walking each book
// inside the parent's worst price: levels of every venue are taken best
// net price first (a sell's price less the taker fee, a buy's price plus
// it), and levels at the same net price are shared in proportion to what
// each venue can take there. No venue gets more than its capacity (depth
// and participation headroom) or maxShare of total (zero: no share cap).
// Results are not yet rounded to step.
//
// Each book is already in price order, so the venues' levels are merged as
// they are needed: a slice that the touch covers reads one level a venue.
func split(side market.Side, total, maxShare decimal.Decimal, quotes []venueQuote) []decimal.Decimal {
	n := len(quotes)
	alloc := make([]decimal.Decimal, n)
	limit := make([]decimal.Decimal, n)
	factor := make([]decimal.Decimal, n) // net price = level price × factor
	next := make([]int, n)               // each venue's next level
	one := decimal.NewFromInt(1)
	for i, q := range quotes {
		limit[i] = q.most(total, maxShare)
		factor[i] = one.Sub(q.inst.TakerFee)
		if side == market.Buy {
			factor[i] = one.Add(q.inst.TakerFee)
		}
	}
	// head returns venue i's next level and its net price; ok is false when
	// the venue has nothing more inside its limit or no room left.
	head := func(i int) (l market.Level, net decimal.Decimal, ok bool) {
		opp := quotes[i].book.Opposite(side)
		if next[i] >= len(opp) || !alloc[i].LessThan(limit[i]) {
			return l, net, false
		}
		l = opp[next[i]]
		if !market.Within(side, l.Price, quotes[i].limit) {
			return l, net, false
		}
		return l, l.Price.Mul(factor[i]), true
	}
	group := make([]int, 0, n)
	avail := make([]decimal.Decimal, n)
	for left := total; left.Sign() > 0; {
		// One group: the venues whose next level has the best net price.
		group = group[:0]
		var best decimal.Decimal
		for i := range quotes {
			l, net, ok := head(i)
			if !ok {
				continue
			}
			switch {
			case len(group) == 0 || better(side, net, best):
				group, best = append(group[:0], i), net
			case net.Equal(best):
				group = append(group, i)
			default:
				continue
			}
			avail[i] = l.Qty
		}
		if len(group) == 0 {
			break
		}
		sum := decimal.Zero
		for _, i := range group {
			avail[i] = decimal.Max(decimal.Zero, decimal.Min(avail[i], limit[i].Sub(alloc[i])))
			sum = sum.Add(avail[i])
		}
		take := decimal.Min(left, sum)
		for _, i := range group {
			share := avail[i]
			if take.LessThan(sum) {
				share = take.Mul(avail[i]).Div(sum)
			}
			alloc[i] = alloc[i].Add(share)
			next[i]++
		}
		left = left.Sub(take)
	}
	return alloc
}

// usable reports whether venue q can take an order of quantity x: on its
// step, at least its minimum quantity, and its minimum notional at the touch.
func (q venueQuote) usable(side market.Side, x decimal.Decimal) bool {
	opp := q.book.Opposite(side)
	if x.Sign() <= 0 || x.LessThan(q.inst.MinQty) || len(opp) == 0 || !q.inst.Quantity(x).Equal(x) {
		return false
	}
	return opp[0].Price.Mul(x).GreaterThanOrEqual(q.inst.MinNotional)
}

// roundAlloc rounds each venue's share down to its step and drops shares
// below the venue's minimum quantity or notional (at the touch), then gives
// what rounding and dropping left over to the venues that can still take
// it, finest step first. The sum never exceeds total and no venue gets more
// than its capacity or maxShare of total (zero: no share cap).
func roundAlloc(side market.Side, total, maxShare decimal.Decimal, quotes []venueQuote, alloc []decimal.Decimal) []decimal.Decimal {
	out := make([]decimal.Decimal, len(alloc))
	left := total
	for i, a := range alloc {
		q := quotes[i].inst.Quantity(a)
		if quotes[i].usable(side, q) {
			out[i] = q
			left = left.Sub(q)
		}
	}
	for _, i := range byStep(quotes, true) {
		if left.Sign() <= 0 {
			break
		}
		spare := quotes[i].most(total, maxShare).Sub(out[i])
		add := quotes[i].inst.Quantity(decimal.Min(left, spare))
		if add.Sign() > 0 && quotes[i].usable(side, out[i].Add(add)) {
			out[i] = out[i].Add(add)
			left = left.Sub(add)
		}
	}
	return out
}

// avoidDust keeps a slice from leaving the parent a remainder that no venue
// could ever take (below every minimum, or off every step): when
// remaining − Σout is such dust, it gives back one step of the coarsest
// venue that can spare it, so the remainder becomes an order a venue
// accepts later. Otherwise out is returned as is.
func avoidDust(side market.Side, remaining decimal.Decimal, quotes []venueQuote, out []decimal.Decimal) []decimal.Decimal {
	rest := remaining
	for _, x := range out {
		rest = rest.Sub(x)
	}
	sellable := func(x decimal.Decimal) bool {
		for _, q := range quotes {
			if q.usable(side, x) {
				return true
			}
		}
		return false
	}
	if rest.Sign() <= 0 || sellable(rest) {
		return out
	}
	for _, i := range byStep(quotes, false) {
		step := quotes[i].inst.Step
		less := out[i].Sub(step)
		if out[i].Sign() <= 0 || step.Sign() <= 0 || (less.Sign() > 0 && !quotes[i].usable(side, less)) {
			continue
		}
		if sellable(rest.Add(step)) {
			fixed := append([]decimal.Decimal(nil), out...)
			fixed[i] = less
			return fixed
		}
	}
	return out
}

// byStep returns the quotes' indices by step, finest first or coarsest
// first.
func byStep(quotes []venueQuote, finestFirst bool) []int {
	order := make([]int, len(quotes))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		sa, sb := quotes[order[a]].inst.Step, quotes[order[b]].inst.Step
		if finestFirst {
			return sa.LessThan(sb)
		}
		return sa.GreaterThan(sb)
	})
	return order
}
