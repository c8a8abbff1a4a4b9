package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/venues"
)

// errOutcomeUnknown marks a child the venue may hold: the placement and the
// lookup after it both failed, or the fills found do not add up to what
// the venue says the order filled. The child joins the parent's pending
// list until a later lookup settles it.
var errOutcomeUnknown = errors.New("child outcome unknown")

// pendingChild is a child whose outcome is unknown. Until it is settled its
// quantity counts as sold (bought): the schedule never places it again, so
// the parent can never trade more than its quantity, whatever the venue did.
type pendingChild struct {
	venue string
	req   market.OrderRequest
	since time.Time
}

// pendingQty is the quantity of a parent's unsettled children.
func (p *parent) pendingQty() decimal.Decimal {
	q := decimal.Zero
	for _, c := range p.pending {
		q = q.Add(c.req.Qty)
	}
	return q
}

// lookUp asks a venue for a child after an unknown outcome. found is false
// when the venue says it has no such order; err is errOutcomeUnknown (with
// the cause) when the venue could not say, or when the fills it lists do
// not add up to the order's filled quantity.
func (e *Engine) lookUp(ctx context.Context, v Venue, req market.OrderRequest) (ord market.Order, fills []market.Fill, found bool, err error) {
	ord, err = v.Order(ctx, req.Symbol, req.ClientID)
	if errors.Is(err, venues.ErrUnknownOrder) {
		return ord, nil, false, nil
	}
	if err != nil {
		return ord, nil, false, fmt.Errorf("%w: lookup %s: %v", errOutcomeUnknown, req.ClientID, err)
	}
	fills, err = e.fillsOf(ctx, v, req, ord.Created)
	if err != nil {
		return ord, nil, true, fmt.Errorf("%w: fills of %s: %v", errOutcomeUnknown, req.ClientID, err)
	}
	sum := decimal.Zero
	for _, f := range fills {
		sum = sum.Add(f.Qty)
	}
	if !sum.Equal(ord.Filled) {
		// A fill not yet listed (a stream behind, an eventually consistent
		// history): recording part of it would under-count what was sold.
		return ord, nil, true, fmt.Errorf("%w: %s filled %s at %s but its listed fills add up to %s", errOutcomeUnknown,
			req.ClientID, ord.Filled, v.Name(), sum)
	}
	return ord, fills, true, nil
}

// settle asks the venues about a parent's pending children: one the venue
// holds is recorded (its fills, a late child_placed event); one the venue
// does not know after a slice interval was never placed (a child_rejected
// event); one the venue still cannot answer for stays pending.
func (e *Engine) settle(ctx context.Context, p *parent, now time.Time) error {
	kept := p.pending[:0]
	for i, c := range p.pending {
		// On a publish error c has been taken into the parent's tallies
		// (only the bus failed); the children after it stay pending, once
		// each: kept shares p.pending's array, so the list is rebuilt, not
		// left half overwritten.
		keepRest := func() { p.pending = append(kept, p.pending[i+1:]...) }
		v := e.venueOf(p, c.venue)
		ord, fills, found, err := e.lookUp(ctx, v, c.req)
		switch {
		case err != nil:
			e.log.Debug().Str("parent", p.spec.ID).Str("child", c.req.ClientID).Err(err).Msg("child outcome still unknown")
			kept = append(kept, c)
		case found:
			if err := e.recordChild(ctx, p, now, v, c.req, ord, fills, decimal.Zero); err != nil {
				keepRest()
				return err
			}
			e.log.Info().Str("parent", p.spec.ID).Str("child", c.req.ClientID).Stringer("filled", ord.Filled).
				Msg("child with an unknown outcome found at the venue and recorded")
		case now.Sub(c.since) < p.spec.SliceInterval:
			kept = append(kept, c) // an order in flight may still arrive
		default:
			if oc := p.opened(c.req.ClientID); oc != nil {
				oc.recorded = true // its outcome is known: nothing to record
			}
			if err := e.reject(ctx, p, now, c.venue, c.req, "venue", "not at the venue after an unknown outcome: never placed"); err != nil {
				keepRest()
				return err
			}
		}
	}
	p.pending = kept
	return nil
}

// unsettled describes the children still pending, for a parent that ends
// with some.
func (p *parent) unsettled() string {
	ids := make([]string, len(p.pending))
	for i, c := range p.pending {
		ids[i] = c.venue + ":" + c.req.ClientID
	}
	return fmt.Sprintf("the outcome of %d child orders (%s, %s in all) is unknown: check them at the venue",
		len(p.pending), strings.Join(ids, ", "), p.pendingQty())
}

// markUnknown puts a child on the pending list and says so in an event.
func (e *Engine) markUnknown(ctx context.Context, p *parent, now time.Time, venue string, req market.OrderRequest, cause error) error {
	p.pending = append(p.pending, pendingChild{venue: venue, req: req, since: now})
	e.log.Warn().Str("parent", p.spec.ID).Str("venue", venue).Str("child", req.ClientID).Err(cause).
		Msg("child outcome unknown; its quantity is held back until the venue answers")
	info := &bus.ChildInfo{ClientID: req.ClientID, Venue: venue, Side: req.Side.String(), Price: req.Price, Qty: req.Qty,
		TIF: req.TIF.String(), Filled: decimal.Zero, Status: "unknown"}
	return e.emitAt(ctx, p, now, bus.KindChildUnknown, p.childSeq(req.ClientID, slotUnknown), func(m *bus.EventMsg) { m.Child = info })
}
