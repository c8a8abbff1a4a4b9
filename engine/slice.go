package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/engine/failpoint"
	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/risk"
	"github.com/blockexec/blockexec/venues"
)

// parent is a parent order's working state. Only the engine's run loop
// touches it.
type parent struct {
	spec     ParentSpec
	sched    Schedule
	seen     time.Time // market volume observed up to here
	venues   []Venue
	inst     map[string]market.Instrument
	idRule   map[string]IDRule
	state    State
	resumeTo State // the state a paused parent returns to
	patient  bool  // waits for unavailable venues (Run) instead of retrying next slice (Serve)
	reason   string
	limits   risk.Limits
	next     time.Time
	slice    int
	seq      int64
	filled   decimal.Decimal
	notion   decimal.Decimal
	fees     decimal.Decimal
	vwap     decimal.Decimal
	maxPart  decimal.Decimal
	target   decimal.Decimal
	childs   int
	fills    int
	rejects  int
	tally    map[string]*VenueTally
	ours     map[string]*fillLog
	pending  []pendingChild // children of unknown outcome
	open     []openChild    // children whose record may not be on the bus yet (the checkpoint's)
	// unflushed are the events since the bus was last flushed, kept in the
	// checkpoint and published again (same sequence) after a restart.
	unflushed []bus.EventMsg
	origin    []byte // the caller's description, kept in the checkpoint
	// seqReserved is the event sequence the last checkpoint reserved up to.
	seqReserved int64
	// moved: another engine took the parent over (its checkpoint changed
	// hands); this one drops it without ending it.
	moved bool
	// otherFees are fees charged in another asset than the quote, by asset.
	otherFees map[string]decimal.Decimal
}

// fillLog is our filled quantity on one venue over time, for participation
// windows. It keeps running totals, so a window's sum is two binary
// searches and one subtraction however many fills the log holds: the
// engine's log (every parent's fills on a venue) is summed once per
// parent per slice.
type fillLog struct {
	at   []time.Time       // non-decreasing
	cum  []decimal.Decimal // cum[i] = base + qty of entries 0..i
	base decimal.Decimal   // the total of the entries dropped from the front
	keep time.Duration     // entries older than this before the newest are dropped; zero keeps all
}

func (l *fillLog) add(t time.Time, q decimal.Decimal) {
	n := len(l.at)
	if n > 0 && t.Before(l.at[n-1]) {
		// A fill stamped before the newest (a venue's clock): insert it in
		// order and carry it into every later total.
		i := sort.Search(n, func(i int) bool { return l.at[i].After(t) })
		prev := l.base
		if i > 0 {
			prev = l.cum[i-1]
		}
		l.at = slices.Insert(l.at, i, t)
		l.cum = slices.Insert(l.cum, i, prev.Add(q))
		for j := i + 1; j <= n; j++ {
			l.cum[j] = l.cum[j].Add(q)
		}
	} else {
		last := l.base
		if n > 0 {
			last = l.cum[n-1]
		}
		l.at = append(l.at, t)
		l.cum = append(l.cum, last.Add(q))
	}
	// Only a trailing window is ever summed: drop what no window reaches,
	// so a long-running parent's log stays small.
	if newest := l.at[len(l.at)-1]; l.keep > 0 && len(l.at) > 64 && newest.Sub(l.at[0]) > l.keep {
		i := sort.Search(len(l.at), func(i int) bool { return newest.Sub(l.at[i]) <= l.keep })
		l.base = l.cum[i-1]
		n := copy(l.at, l.at[i:])
		copy(l.cum, l.cum[i:])
		clear(l.cum[n:])
		l.at, l.cum = l.at[:n], l.cum[:n]
	}
}

// loggedFill is one entry of a fillLog.
type loggedFill struct {
	at  time.Time
	qty decimal.Decimal
}

// recent returns the entries a window can still reach (within keep of the
// newest; all when keep is zero), oldest first.
func (l *fillLog) recent() []loggedFill {
	if len(l.at) == 0 {
		return nil
	}
	newest := l.at[len(l.at)-1]
	var out []loggedFill
	for i, t := range l.at {
		if l.keep > 0 && newest.Sub(t) > l.keep {
			continue
		}
		prev := l.base
		if i > 0 {
			prev = l.cum[i-1]
		}
		out = append(out, loggedFill{at: t, qty: l.cum[i].Sub(prev)})
	}
	return out
}

// total returns the running total of the entries at or before t.
func (l *fillLog) total(t time.Time) decimal.Decimal {
	i := sort.Search(len(l.at), func(i int) bool { return l.at[i].After(t) })
	if i == 0 {
		return l.base
	}
	return l.cum[i-1]
}

// sum returns our quantity with from < t ≤ to.
func (l *fillLog) sum(from, to time.Time) decimal.Decimal {
	if len(l.at) == 0 || !to.After(from) || !l.at[len(l.at)-1].After(from) {
		return decimal.Zero
	}
	return l.total(to).Sub(l.total(from))
}

func (p *parent) summary() Summary {
	s := Summary{
		ParentID: p.spec.ID, State: p.state, Reason: p.reason, Side: p.spec.Side, Symbol: p.spec.Symbol,
		Qty: p.spec.Qty, Filled: p.filled, Notional: p.notion, Fees: p.fees, ArrivalPrice: p.limits.ArrivalPrice,
		MarketVWAP: p.vwap, MaxParticipation: p.maxPart, ChildOrders: p.childs, Fills: p.fills, Rejections: p.rejects,
		OtherFees: p.otherFees,
	}
	for _, v := range p.venues {
		s.Venues = append(s.Venues, *p.tally[v.Name()])
	}
	return s
}

func (p *parent) progress(now time.Time) Progress {
	s := p.summary()
	return Progress{ParentID: p.spec.ID, State: p.state, Qty: p.spec.Qty, Filled: p.filled, Target: p.target,
		AvgPrice: s.AvgPrice(), ShortfallBps: s.ShortfallBps(), Now: now}
}

func (e *Engine) move(p *parent, to State, reason string) {
	if !canMove(p.state, to) {
		// A programming error, not a market event: make it loud in the log.
		e.log.Error().Str("parent", p.spec.ID).Stringer("from", p.state).Stringer("to", to).Msg("illegal parent transition")
		return
	}
	p.state, p.reason = to, reason
}

// tick runs one slice of a parent at now.
func (e *Engine) tick(ctx context.Context, p *parent, now time.Time) error {
	// The last round's records were flushed at its end.
	p.flushed()
	if p.state == Accepted {
		if err := e.start(ctx, p, now); err != nil {
			return err
		}
		if p.state == Accepted { // no arrival price yet: try again next slice
			p.next = now.Add(p.spec.SliceInterval)
			return nil
		}
		if p.state.Terminal() {
			return nil
		}
	}
	if scope, killed := e.kill.Killed(p.spec.ID); killed {
		return e.finish(ctx, p, now, Cancelled, "kill switch ("+scope+")")
	}
	if k := e.KillState(); k.Engaged { // a kill whose cancel pass did not run
		return e.finish(ctx, p, now, Cancelled, "kill switch: "+k.Reason)
	}
	end := !now.Before(p.spec.End)
	// Each slice releases the quantity due by the slice's end; the last one,
	// at the end time, works whatever is left inside the limits.
	due := now.Add(p.spec.SliceInterval)
	if due.After(p.spec.End) {
		due = p.spec.End
	}
	if obs, ok := p.sched.(VolumeObserver); ok && now.After(p.seen) {
		// The others' volume: the tape less every parent's own fills.
		vol := decimal.Zero
		for _, v := range p.venues {
			tp, err := v.Tape(ctx, p.spec.Symbol, p.seen, now)
			if err != nil {
				e.log.Warn().Str("parent", p.spec.ID).Str("venue", v.Name()).Err(err).Msg("tape unavailable; its volume is missing from the schedule")
				continue
			}
			vol = vol.Add(decimal.Max(decimal.Zero, tp.Volume.Sub(e.ours[v.Name()].sum(p.seen, now))))
		}
		obs.Observe(p.seen, now, vol)
		p.seen = now
	}
	if len(p.pending) > 0 {
		if err := e.settle(ctx, p, now); err != nil {
			return err
		}
	}
	// Whatever a schedule says, a parent never trades more than its
	// quantity; children of unknown outcome count as traded until settled.
	prev := p.target
	p.target = decimal.Min(p.sched.Target(due), p.spec.Qty)
	shortfall := p.target.Sub(p.filled).Sub(p.pendingQty())
	if p.spec.Style == StyleTouch && !end {
		// Fixed slices: this slice's share of the schedule, no catch-up.
		shortfall = decimal.Min(shortfall, p.target.Sub(prev))
	}
	if shortfall.Sign() > 0 {
		if err := e.emit(ctx, p, now, bus.KindSlice, func(m *bus.EventMsg) {
			m.Slice = &bus.SliceInfo{Seq: p.slice, Target: p.target, Filled: p.filled, Shortfall: shortfall,
				MaxParticipation: p.maxPart}
		}); err != nil {
			return err
		}
		if err := e.work(ctx, p, now, shortfall); err != nil {
			return err
		}
	}
	p.slice++
	if e.obs != nil {
		e.obs.Progress(p.progress(now))
	}
	if end || p.filled.GreaterThanOrEqual(p.spec.Qty) {
		return e.finish(ctx, p, now, Done, "")
	}
	p.next = now.Add(p.spec.SliceInterval)
	if p.next.After(p.spec.End) {
		p.next = p.spec.End
	}
	return nil
}

// start measures the arrival price and announces the parent.
func (e *Engine) start(ctx context.Context, p *parent, now time.Time) error {
	var arr decimal.Decimal
	deadline := p.spec.End
	if !p.patient {
		deadline = now // a serving engine's other parents must not wait: try again next slice
	}
	err := e.patiently(ctx, deadline, func() (err error) {
		arr, err = e.arrival(ctx, p)
		return err
	})
	now = e.clk.Now()
	if err != nil && !p.patient && errors.Is(err, venues.ErrUnavailable) && now.Before(p.spec.End) {
		e.log.Warn().Str("parent", p.spec.ID).Err(err).Msg("no arrival price yet; the parent starts when a venue answers")
		return nil
	}
	if err != nil {
		return e.finish(ctx, p, now, Failed, "arrival price: "+err.Error())
	}
	p.limits = p.spec.limits(arr)
	e.move(p, Working, "")
	names := make([]string, len(p.venues))
	for i, v := range p.venues {
		names[i] = v.Name()
	}
	s := p.spec
	return e.emit(ctx, p, now, bus.KindAccepted, func(m *bus.EventMsg) {
		m.Parent = &bus.ParentInfo{Side: s.Side.String(), Symbol: s.Symbol, QuoteAsset: p.quote(), Quantity: s.Qty, Strategy: s.Strategy,
			Start: s.Start, End: s.End, ArrivalPrice: arr, LimitPrice: s.LimitPrice, SlippageBandBps: s.BandBps,
			MaxParticipation: s.MaxParticipation, Venues: names}
	})
}

// work splits a shortfall across venues and places one IOC child per venue.
// When less than the shortfall goes out, a slice_short event says why, per
// venue: nothing is held back silently.
func (e *Engine) work(ctx context.Context, p *parent, now time.Time, shortfall decimal.Decimal) error {
	worst := p.limits.WorstPrice()
	from := now.Add(-p.spec.window())
	quotes := make([]venueQuote, 0, len(p.venues))
	windows := map[string]risk.Window{}
	var why []bus.VenueShort
	short := func(venue, format string, a ...any) {
		why = append(why, bus.VenueShort{Venue: venue, Reason: fmt.Sprintf(format, a...)})
	}
	for _, v := range p.venues {
		n := v.Name()
		in := p.inst[n]
		if h := e.health[n]; !e.healthy(n, now) {
			short(n, "sitting out after %d failures until %s", h.failures, h.downUntil.Format(time.RFC3339))
			continue
		}
		limit := in.LimitPrice(p.spec.Side, worst)
		book, depth, err := e.bookFor(ctx, v, p.spec.Symbol, p.spec.Side, shortfall, limit)
		if err != nil {
			e.venueFailed(n, now, p.spec.SliceInterval, "book: "+err.Error())
			short(n, "book: %v", err)
			continue
		}
		if age := now.Sub(book.Time); !book.Time.IsZero() && age > staleBook {
			e.venueFailed(n, now, p.spec.SliceInterval, fmt.Sprintf("book is %s old", age))
			short(n, "book is %s old", age)
			continue
		}
		tape, err := v.Tape(ctx, p.spec.Symbol, from, now)
		if err != nil {
			e.venueFailed(n, now, p.spec.SliceInterval, "tape: "+err.Error())
			short(n, "tape: %v", err)
			continue
		}
		// The cap bounds our footprint: every parent's fills on the venue
		// count, not just this one's.
		w := risk.Window{Market: tape.Volume, Ours: e.ours[n].sum(from, now)}
		windows[n] = w
		room, capped := risk.Headroom(p.spec.MaxParticipation, w)
		if p.spec.Style == StyleTouch && now.Before(p.spec.End) {
			// Touch style takes only the best level; the band still bounds it.
			if opp := book.Opposite(p.spec.Side); len(opp) > 0 && market.Within(p.spec.Side, opp[0].Price, limit) {
				limit = opp[0].Price
				depth = book.DepthUpTo(p.spec.Side, limit, shortfall)
			}
		}
		quotes = append(quotes, venueQuote{venue: n, inst: in, book: book, limit: limit, depth: depth, room: room, capped: capped})
	}
	share := p.spec.MaxVenueShare
	alloc := roundAlloc(p.spec.Side, shortfall, share, quotes, split(p.spec.Side, shortfall, share, quotes))
	alloc = avoidDust(p.spec.Side, p.spec.Qty.Sub(p.filled), quotes, alloc)
	// Size and check every child first, then write their intents in one
	// checkpoint, then place them.
	var plan []plannedChild
	for i, q := range quotes {
		if alloc[i].Sign() <= 0 {
			if r := q.idle(p.spec.Side, windows[q.venue]); r != "" {
				short(q.venue, "%s", r)
			}
			continue
		}
		c, reason, err := e.child(ctx, p, now, q, alloc[i], windows[q.venue])
		if err != nil {
			return err
		}
		if reason != "" {
			short(q.venue, "%s", reason)
		}
		if c.req.ClientID != "" {
			plan = append(plan, c)
		}
	}
	if err := e.intend(ctx, p, now, plan); err != nil {
		return err
	}
	placed := decimal.Zero
	for _, c := range plan {
		sent, err := e.send(ctx, p, now, c)
		if err != nil {
			return err
		}
		placed = placed.Add(sent)
	}
	if shortfall.Sub(placed).LessThan(p.lot()) {
		return nil // rounding to the venues' steps: the next slice carries it
	}
	if len(why) == 0 {
		why = append(why, bus.VenueShort{Reason: "the venues' books, rules and caps left no order to place"})
	}
	return e.emit(ctx, p, now, bus.KindSliceShort, func(m *bus.EventMsg) {
		m.Short = &bus.ShortInfo{Shortfall: shortfall, Placed: placed, Venues: why}
	})
}

// bookFor reads as few levels of a venue's book as cover need inside
// limit: first minBookDepth, then four times more while every level shown
// is inside the limit and together they hold less than need, up to
// maxBookDepth. It returns the depth inside the limit, counted up to need
// (all the router has to know).
func (e *Engine) bookFor(ctx context.Context, v Venue, symbol string, side market.Side, need, limit decimal.Decimal) (market.Book, decimal.Decimal, error) {
	for depth := minBookDepth; ; depth = min(4*depth, maxBookDepth) {
		b, err := v.Book(ctx, symbol, depth)
		if err != nil {
			return b, decimal.Zero, err
		}
		opp := b.Opposite(side)
		got := b.DepthUpTo(side, limit, need)
		if depth == maxBookDepth || len(opp) < depth || !market.Within(side, opp[len(opp)-1].Price, limit) ||
			got.GreaterThanOrEqual(need) {
			return b, got, nil
		}
	}
}

// idle says why a venue got nothing of a slice, or "" when the others
// simply took it all.
func (q venueQuote) idle(side market.Side, w risk.Window) string {
	switch {
	case q.depth.Sign() <= 0:
		return fmt.Sprintf("no depth inside the limit %s", q.limit)
	case q.capped && (q.room.Sign() <= 0 || q.room.LessThan(q.inst.MinQty)):
		return fmt.Sprintf("participation cap: room %s (ours %s of %s traded in the window)", q.room, w.Ours, w.Market)
	}
	return ""
}

// plannedChild is one venue's child of a slice, sized, priced and passed
// by risk, not yet placed.
type plannedChild struct {
	q   venueQuote
	req market.OrderRequest
}

// child sizes, prices and checks one venue's share of a slice. It returns
// the child to place, or why there is none (a refusal by risk is a
// child_rejected event instead); the reason also says when a cap held the
// child below its share.
func (e *Engine) child(ctx context.Context, p *parent, now time.Time, q venueQuote, want decimal.Decimal,
	w risk.Window) (plannedChild, string, error) {
	side := p.spec.Side
	qty := q.inst.Quantity(want)
	if qty.Sign() <= 0 || qty.LessThan(q.inst.MinQty) {
		return plannedChild{}, fmt.Sprintf("%s is below the minimum quantity %s on the step %s", want, q.inst.MinQty, q.inst.Step), nil
	}
	price, _, ok := q.book.Reach(side, qty, q.limit)
	if !ok {
		return plannedChild{}, fmt.Sprintf("the book cannot take %s inside the limit %s", qty, q.limit), nil
	}
	capped := ""
	if p.spec.MaxChildNotional.Sign() > 0 && price.Mul(qty).GreaterThan(p.spec.MaxChildNotional) {
		qty = q.inst.Quantity(p.spec.MaxChildNotional.Div(price))
		capped = fmt.Sprintf("max child notional %s holds the child to %s of %s", p.spec.MaxChildNotional, qty, want)
	}
	if n := price.Mul(qty); n.LessThan(q.inst.MinNotional) {
		// Dust: it stays in the schedule and is reported if never placed.
		return plannedChild{}, fmt.Sprintf("%s at %s is %s, below the minimum notional %s", qty, price, n, q.inst.MinNotional), nil
	}
	req := market.OrderRequest{Symbol: p.spec.Symbol, Side: side, Price: price, Qty: qty, TIF: market.IOC,
		ClientID: ChildID(p.spec.ID, p.slice, q.venue, 0, p.idRule[q.venue])}
	if rej := e.checker.Check(p.limits, risk.Child{Venue: q.venue, Instrument: q.inst, Req: req, Window: w}); rej != nil {
		return plannedChild{}, "", e.reject(ctx, p, now, q.venue, req, rej.Check, rej.Reason)
	}
	return plannedChild{q: q, req: req}, capped, nil
}

// send places a planned child whose intent is checkpointed, and records
// the outcome. It returns the quantity sent (a child of unknown outcome
// counts as sent; a refusal by the venue is a child_rejected event).
func (e *Engine) send(ctx context.Context, p *parent, now time.Time, c plannedChild) (decimal.Decimal, error) {
	q, req := c.q, c.req
	if e.fence != nil {
		if err := e.fence(); err != nil {
			return decimal.Zero, fmt.Errorf("%w: %v", ErrBusDown, err)
		}
	}
	failpoint.Hit("before-place")
	v := e.venueOf(p, q.venue)
	ord, fills, err := e.place(ctx, v, req)
	failpoint.Hit("after-place")
	switch {
	case venues.IsReject(err):
		return decimal.Zero, e.reject(ctx, p, now, q.venue, req, "venue", err.Error())
	case err != nil:
		e.venueFailed(q.venue, now, p.spec.SliceInterval, "place: "+err.Error())
		return req.Qty, e.markUnknown(ctx, p, now, q.venue, req, err)
	}
	mid, _ := q.book.Mid()
	return req.Qty, e.recordChild(ctx, p, now, v, req, ord, fills, mid)
}

// recordChild books a child the venue holds: its fills, then its events.
func (e *Engine) recordChild(ctx context.Context, p *parent, now time.Time, v Venue, req market.OrderRequest,
	ord market.Order, fills []market.Fill, mid decimal.Decimal) error {
	p.childs++
	e.venueOK(v.Name())
	oc := p.opened(req.ClientID)
	for _, f := range fills {
		if oc != nil && oc.counted(f) {
			continue // counted before a restart, and published again then
		}
		if len(fills) > 1 {
			failpoint.Hit("mid-fill")
		}
		msg, err := e.record(ctx, p, f)
		if oc != nil {
			oc.fills = append(oc.fills, msg)
		}
		if err != nil {
			return err
		}
	}
	if oc != nil {
		oc.recorded = true
	}
	if len(fills) > 0 {
		e.observeParticipation(ctx, p, v, now)
	}
	info := &bus.ChildInfo{ClientID: req.ClientID, Venue: v.Name(), Side: req.Side.String(), Price: req.Price, Qty: req.Qty,
		TIF: req.TIF.String(), Filled: ord.Filled, Status: ord.Status.String(), Mid: mid}
	if err := e.emitAt(ctx, p, now, bus.KindChildPlaced, p.childSeq(req.ClientID, slotOutcome), func(m *bus.EventMsg) { m.Child = info }); err != nil {
		return err
	}
	if (ord.Status == market.Expired || ord.Status == market.Canceled) && ord.Remaining().Sign() > 0 {
		return e.emitAt(ctx, p, now, bus.KindChildCancelled, p.childSeq(req.ClientID, slotCancelled), func(m *bus.EventMsg) { m.Child = info })
	}
	return nil
}

// lot is the smallest order any of the parent's venues takes: a shortfall
// below it is rounding, not something held back.
func (p *parent) lot() decimal.Decimal {
	var lot decimal.Decimal
	for _, in := range p.inst {
		l := decimal.Max(in.MinQty, in.Step)
		if lot.IsZero() || l.LessThan(lot) {
			lot = l
		}
	}
	return lot
}

// place sends a child. A failure that is not a rejection means the order
// may exist: it is looked up by client id at once, and if the venue cannot
// say, or says it has none (the order may still be in flight), the outcome
// is unknown (errOutcomeUnknown): the child waits on the parent's pending
// list, never placed again under another id.
func (e *Engine) place(ctx context.Context, v Venue, req market.OrderRequest) (market.Order, []market.Fill, error) {
	ord, fills, err := v.Place(ctx, req)
	if err == nil || venues.IsReject(err) {
		return ord, fills, err
	}
	got, fl, found, lerr := e.lookUp(ctx, v, req)
	switch {
	case lerr != nil:
		return got, nil, fmt.Errorf("place %s: %v; %w", req.ClientID, err, lerr)
	case !found:
		return got, nil, fmt.Errorf("place %s: %v; not at the venue yet: %w", req.ClientID, err, errOutcomeUnknown)
	}
	return got, fl, nil
}

// fillsOf recovers the fills of an order found after an unknown outcome:
// those since the order was created (a second of slack), or over the last
// hour when the venue gave no creation time.
func (e *Engine) fillsOf(ctx context.Context, v Venue, req market.OrderRequest, created time.Time) ([]market.Fill, error) {
	fl, ok := v.(FillLister)
	if !ok {
		return nil, fmt.Errorf("venue %s cannot list fills of %s", v.Name(), req.ClientID)
	}
	now := e.clk.Now()
	from := now.Add(-time.Hour)
	if !created.IsZero() && created.After(from) && !created.After(now) {
		from = created.Add(-time.Second)
	}
	all, err := fl.Fills(ctx, req.Symbol, from, now)
	if err != nil {
		return nil, err
	}
	var out []market.Fill
	for _, f := range all {
		if f.ClientID == req.ClientID {
			out = append(out, f)
		}
	}
	return out, nil
}

func (e *Engine) venueOf(p *parent, name string) Venue {
	for _, v := range p.venues {
		if v.Name() == name {
			return v
		}
	}
	return nil
}

// observeParticipation records our realised share of a venue's volume over
// the window ending now, after our fills printed.
func (e *Engine) observeParticipation(ctx context.Context, p *parent, v Venue, now time.Time) {
	from := now.Add(-p.spec.window())
	tape, err := v.Tape(ctx, p.spec.Symbol, from, now)
	if err != nil || tape.Volume.Sign() <= 0 {
		return
	}
	share := p.ours[v.Name()].sum(from, now).Div(tape.Volume)
	if share.GreaterThan(p.maxPart) {
		p.maxPart = share
	}
}

// quote is the asset the parent's prices and proceeds are in.
func (p *parent) quote() string {
	for _, v := range p.venues {
		return p.inst[v.Name()].Quote
	}
	return ""
}

// record books one fill into the parent's tallies and publishes it. Fees
// in the quote asset count against the proceeds; a fee charged in another
// asset (BNB, or the base asset on a buy) is kept apart: it cannot be added
// to quote without a price.
func (e *Engine) record(ctx context.Context, p *parent, f market.Fill) (bus.FillMsg, error) {
	t := p.tally[f.Venue]
	n := f.Notional()
	fee := f.Fee
	if q := p.inst[f.Venue].Quote; f.FeeAsset != q && q != "" {
		p.otherFees[f.FeeAsset] = p.otherFees[f.FeeAsset].Add(f.Fee)
		fee = decimal.Zero
	}
	p.filled, p.notion, p.fees = p.filled.Add(f.Qty), p.notion.Add(n), p.fees.Add(fee)
	t.Filled, t.Notional, t.Fees = t.Filled.Add(f.Qty), t.Notional.Add(n), t.Fees.Add(fee)
	t.Fills++
	p.fills++
	p.ours[f.Venue].add(f.Time, f.Qty)
	e.ours[f.Venue].add(f.Time, f.Qty)
	msg := bus.FillMsg{Schema: bus.FillSchema, ParentID: p.spec.ID, ClientID: f.ClientID, OrderID: f.OrderID,
		Venue: f.Venue, TradeID: f.TradeID, Symbol: f.Symbol, Side: f.Side.String(), Price: f.Price, Qty: f.Qty,
		Fee: f.Fee, FeeAsset: f.FeeAsset, Liquidity: f.Liquidity.String(), Time: f.Time}
	return msg, retry(func() error { return e.pub.PublishFill(ctx, msg) })
}

func (e *Engine) reject(ctx context.Context, p *parent, now time.Time, venue string, req market.OrderRequest, check, reason string) error {
	p.rejects++
	e.log.Debug().Str("parent", p.spec.ID).Str("venue", venue).Str("check", check).Str("reason", reason).Msg("child rejected")
	return e.emitAt(ctx, p, now, bus.KindChildRejected, p.childSeq(req.ClientID, slotOutcome), func(m *bus.EventMsg) {
		m.Rejection = &bus.RejectionInfo{Venue: venue, Check: check, Reason: reason, Price: req.Price, Qty: req.Qty}
	})
}

// finish ends a parent: market VWAP over its window, then the done event.
func (e *Engine) finish(ctx context.Context, p *parent, now time.Time, to State, reason string) error {
	// The parent ends whatever settling does: a parent left working after
	// a cancel or a kill because the bus failed would go on trading.
	var settleErr error
	if len(p.pending) > 0 {
		settleErr = e.settle(ctx, p, now)
	}
	if len(p.pending) > 0 {
		// What was traded is not known: the parent cannot be called done.
		if to == Done {
			to = Failed
		}
		reason = strings.TrimPrefix(reason+"; "+p.unsettled(), "; ")
	}
	if settleErr != nil {
		reason = strings.TrimPrefix(reason+"; settling: "+settleErr.Error(), "; ")
	}
	total := market.Tape{}
	for _, v := range p.venues {
		if !e.healthy(v.Name(), now) {
			continue // a venue known to be down is not waited for at the end
		}
		if tp, err := v.Tape(ctx, p.spec.Symbol, p.spec.Start, now); err == nil {
			total = total.Add(tp)
		}
	}
	p.vwap = total.VWAP().Round(8)
	e.move(p, to, reason)
	if e.obs != nil {
		e.obs.Progress(p.progress(now))
	}
	s := p.summary()
	err := e.emit(ctx, p, now, bus.KindDone, func(m *bus.EventMsg) {
		m.Summary = &bus.SummaryInfo{State: to.String(), Filled: s.Filled, Unfilled: s.Unfilled(), MarketVWAP: s.MarketVWAP,
			MaxParticipation: s.MaxParticipation, ChildOrders: s.ChildOrders, Fills: s.Fills, Rejections: s.Rejections, Reason: reason}
	})
	return errors.Join(settleErr, err)
}

func (e *Engine) emit(ctx context.Context, p *parent, now time.Time, kind string, fill func(*bus.EventMsg)) error {
	return e.emitAt(ctx, p, now, kind, 0, fill)
}

// emitAt publishes an event under seq, a number reserved for it before
// (a child's slots, see intend), or under the next number when seq is 0.
func (e *Engine) emitAt(ctx context.Context, p *parent, now time.Time, kind string, seq int64, fill func(*bus.EventMsg)) error {
	if seq == 0 {
		if e.journal != nil && p.seq+1 >= p.seqReserved {
			// A restart numbers its events after the reservation: reserve
			// more before using the last.
			if err := e.save(ctx, p); err != nil {
				return err
			}
		}
		p.seq++
		seq = p.seq
	}
	m := bus.EventMsg{Schema: bus.EventSchema, ParentID: p.spec.ID, Kind: kind, Seq: seq, Time: now}
	fill(&m)
	if e.journal != nil {
		p.unflushed = append(p.unflushed, m)
	}
	return retry(func() error { return e.pub.PublishEvent(ctx, m) })
}

func retry(f func() error) error {
	var err error
	for i := 0; i < publishAttempts; i++ {
		if err = f(); err == nil {
			return nil
		}
	}
	return fmt.Errorf("publish failed %d times: %w", publishAttempts, err)
}
