package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/risk"
	"github.com/blockexec/blockexec/venues"
)

// parent is a parent order's working state. Only the engine's run loop
// touches it.
type parent struct {
	spec    ParentSpec
	sched   Schedule
	venues  []Venue
	inst    map[string]market.Instrument
	maxID   map[string]int
	state   State
	reason  string
	limits  risk.Limits
	next    time.Time
	slice   int
	seq     int64
	filled  decimal.Decimal
	notion  decimal.Decimal
	fees    decimal.Decimal
	vwap    decimal.Decimal
	maxPart decimal.Decimal
	target  decimal.Decimal
	childs  int
	fills   int
	rejects int
	tally   map[string]*VenueTally
	ours    map[string]*fillLog
}

// fillLog is our filled quantity on one venue over time, for participation
// windows. Times only grow.
type fillLog struct {
	at  []time.Time
	qty []decimal.Decimal
}

func (l *fillLog) add(t time.Time, q decimal.Decimal) {
	l.at = append(l.at, t)
	l.qty = append(l.qty, q)
}

// sum returns our quantity with from < t ≤ to.
func (l *fillLog) sum(from, to time.Time) decimal.Decimal {
	s := decimal.Zero
	for i := len(l.at) - 1; i >= 0 && l.at[i].After(from); i-- {
		if !l.at[i].After(to) {
			s = s.Add(l.qty[i])
		}
	}
	return s
}

func (p *parent) summary() Summary {
	s := Summary{
		ParentID: p.spec.ID, State: p.state, Reason: p.reason, Side: p.spec.Side, Symbol: p.spec.Symbol,
		Qty: p.spec.Qty, Filled: p.filled, Notional: p.notion, Fees: p.fees, ArrivalPrice: p.limits.ArrivalPrice,
		MarketVWAP: p.vwap, MaxParticipation: p.maxPart, ChildOrders: p.childs, Fills: p.fills, Rejections: p.rejects,
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
	if p.state == Accepted {
		if err := e.start(ctx, p, now); err != nil {
			return err
		}
	}
	if scope, killed := e.kill.Killed(p.spec.ID); killed {
		return e.finish(ctx, p, now, Cancelled, "kill switch ("+scope+")")
	}
	end := !now.Before(p.spec.End)
	// Each slice releases the quantity due by the slice's end; the last one,
	// at the end time, works whatever is left inside the limits.
	due := now.Add(p.spec.SliceInterval)
	if due.After(p.spec.End) {
		due = p.spec.End
	}
	p.target = p.sched.Target(due)
	shortfall := p.target.Sub(p.filled)
	if shortfall.Sign() > 0 {
		if err := e.emit(ctx, p, now, bus.KindSlice, func(m *bus.EventMsg) {
			m.Slice = &bus.SliceInfo{Seq: p.slice, Target: p.target, Filled: p.filled, Shortfall: shortfall}
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
	arr, err := e.arrival(ctx, p)
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
		m.Parent = &bus.ParentInfo{Side: s.Side.String(), Symbol: s.Symbol, Quantity: s.Qty, Strategy: s.Strategy,
			Start: s.Start, End: s.End, ArrivalPrice: arr, LimitPrice: s.LimitPrice, SlippageBandBps: s.BandBps,
			MaxParticipation: s.MaxParticipation, Venues: names}
	})
}

// work splits a shortfall across venues and places one IOC child per venue.
func (e *Engine) work(ctx context.Context, p *parent, now time.Time, shortfall decimal.Decimal) error {
	worst := p.limits.WorstPrice()
	from := now.Add(-p.spec.window())
	quotes := make([]venueQuote, 0, len(p.venues))
	windows := map[string]risk.Window{}
	for _, v := range p.venues {
		n := v.Name()
		in := p.inst[n]
		book, err := v.Book(ctx, p.spec.Symbol, bookDepth)
		if err != nil {
			e.log.Warn().Str("parent", p.spec.ID).Str("venue", n).Err(err).Msg("book unavailable; venue skipped this slice")
			continue
		}
		tape, err := v.Tape(ctx, p.spec.Symbol, from, now)
		if err != nil {
			e.log.Warn().Str("parent", p.spec.ID).Str("venue", n).Err(err).Msg("tape unavailable; venue skipped this slice")
			continue
		}
		w := risk.Window{Market: tape.Volume, Ours: p.ours[n].sum(from, now)}
		windows[n] = w
		room, capped := risk.Headroom(p.spec.MaxParticipation, w)
		limit := in.LimitPrice(p.spec.Side, worst)
		quotes = append(quotes, venueQuote{venue: n, inst: in, book: book,
			depth: book.DepthWithin(p.spec.Side, limit), room: room, capped: capped})
	}
	alloc := split(shortfall, quotes)
	for i, q := range quotes {
		if err := e.child(ctx, p, now, q, alloc[i], windows[q.venue], worst); err != nil {
			return err
		}
	}
	return nil
}

// child sizes, prices, checks and places one venue's share of a slice.
func (e *Engine) child(ctx context.Context, p *parent, now time.Time, q venueQuote, want decimal.Decimal,
	w risk.Window, worst decimal.Decimal) error {
	side := p.spec.Side
	qty := q.inst.Quantity(want)
	if qty.Sign() <= 0 || qty.LessThan(q.inst.MinQty) {
		return nil
	}
	limit := q.inst.LimitPrice(side, worst)
	price, _, ok := q.book.Reach(side, qty, limit)
	if !ok {
		return nil
	}
	if p.spec.MaxChildNotional.Sign() > 0 && price.Mul(qty).GreaterThan(p.spec.MaxChildNotional) {
		qty = q.inst.Quantity(p.spec.MaxChildNotional.Div(price))
	}
	if price.Mul(qty).LessThan(q.inst.MinNotional) {
		return nil // dust: it stays in the schedule and is reported if never placed
	}
	req := market.OrderRequest{Symbol: p.spec.Symbol, Side: side, Price: price, Qty: qty, TIF: market.IOC,
		ClientID: ChildID(p.spec.ID, p.slice, q.venue, 0, p.maxID[q.venue])}
	if rej := e.checker.Check(p.limits, risk.Child{Venue: q.venue, Instrument: q.inst, Req: req, Window: w}); rej != nil {
		return e.reject(ctx, p, now, q.venue, req, rej.Check, rej.Reason)
	}
	v := e.venueOf(p, q.venue)
	ord, fills, err := e.place(ctx, p, v, req)
	if err != nil {
		if venues.IsReject(err) {
			return e.reject(ctx, p, now, q.venue, req, "venue", err.Error())
		}
		e.log.Warn().Str("parent", p.spec.ID).Str("venue", q.venue).Str("child", req.ClientID).Err(err).
			Msg("child state unknown after retry; remainder returns to the schedule")
		return e.reject(ctx, p, now, q.venue, req, "venue_unavailable", err.Error())
	}
	p.childs++
	for _, f := range fills {
		if err := e.record(ctx, p, f); err != nil {
			return err
		}
	}
	if len(fills) > 0 {
		e.observeParticipation(ctx, p, v, now)
	}
	info := &bus.ChildInfo{ClientID: req.ClientID, Venue: q.venue, Side: side.String(), Price: req.Price, Qty: req.Qty,
		TIF: req.TIF.String(), Filled: ord.Filled, Status: ord.Status.String()}
	if err := e.emit(ctx, p, now, bus.KindChildPlaced, func(m *bus.EventMsg) { m.Child = info }); err != nil {
		return err
	}
	if ord.Status == market.Expired || ord.Status == market.Canceled {
		if ord.Remaining().Sign() > 0 {
			return e.emit(ctx, p, now, bus.KindChildCancelled, func(m *bus.EventMsg) { m.Child = info })
		}
	}
	return nil
}

// place sends a child. A failure that is not a rejection means the order
// may exist: look it up by client id before trying once more with the next
// attempt's id.
func (e *Engine) place(ctx context.Context, p *parent, v Venue, req market.OrderRequest) (market.Order, []market.Fill, error) {
	ord, fills, err := v.Place(ctx, req)
	if err == nil || venues.IsReject(err) {
		return ord, fills, err
	}
	got, lerr := v.Order(ctx, req.Symbol, req.ClientID)
	if lerr == nil {
		fl, ferr := e.fillsOf(ctx, v, req)
		return got, fl, ferr
	}
	if !errors.Is(lerr, venues.ErrUnknownOrder) {
		return ord, nil, fmt.Errorf("place %s: %w; lookup: %v", req.ClientID, err, lerr)
	}
	req.ClientID = ChildID(p.spec.ID, p.slice, v.Name(), 1, p.maxID[v.Name()])
	return v.Place(ctx, req)
}

// fillsOf recovers the fills of an order found after an unknown outcome.
func (e *Engine) fillsOf(ctx context.Context, v Venue, req market.OrderRequest) ([]market.Fill, error) {
	fl, ok := v.(FillLister)
	if !ok {
		return nil, fmt.Errorf("venue %s cannot list fills of %s", v.Name(), req.ClientID)
	}
	now := e.clk.Now()
	all, err := fl.Fills(ctx, req.Symbol, now.Add(-time.Hour), now)
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

// record books one fill into the parent's tallies and publishes it.
func (e *Engine) record(ctx context.Context, p *parent, f market.Fill) error {
	t := p.tally[f.Venue]
	n := f.Notional()
	p.filled, p.notion, p.fees = p.filled.Add(f.Qty), p.notion.Add(n), p.fees.Add(f.Fee)
	t.Filled, t.Notional, t.Fees = t.Filled.Add(f.Qty), t.Notional.Add(n), t.Fees.Add(f.Fee)
	t.Fills++
	p.fills++
	p.ours[f.Venue].add(f.Time, f.Qty)
	msg := bus.FillMsg{Schema: bus.FillSchema, ParentID: p.spec.ID, ClientID: f.ClientID, OrderID: f.OrderID,
		Venue: f.Venue, TradeID: f.TradeID, Symbol: f.Symbol, Side: f.Side.String(), Price: f.Price, Qty: f.Qty,
		Fee: f.Fee, FeeAsset: f.FeeAsset, Liquidity: f.Liquidity.String(), Time: f.Time}
	return retry(func() error { return e.pub.PublishFill(ctx, msg) })
}

func (e *Engine) reject(ctx context.Context, p *parent, now time.Time, venue string, req market.OrderRequest, check, reason string) error {
	p.rejects++
	e.log.Debug().Str("parent", p.spec.ID).Str("venue", venue).Str("check", check).Str("reason", reason).Msg("child rejected")
	return e.emit(ctx, p, now, bus.KindChildRejected, func(m *bus.EventMsg) {
		m.Rejection = &bus.RejectionInfo{Venue: venue, Check: check, Reason: reason, Price: req.Price, Qty: req.Qty}
	})
}

// finish ends a parent: market VWAP over its window, then the done event.
func (e *Engine) finish(ctx context.Context, p *parent, now time.Time, to State, reason string) error {
	total := market.Tape{}
	for _, v := range p.venues {
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
	return e.emit(ctx, p, now, bus.KindDone, func(m *bus.EventMsg) {
		m.Summary = &bus.SummaryInfo{State: to.String(), Filled: s.Filled, Unfilled: s.Unfilled(), MarketVWAP: s.MarketVWAP,
			MaxParticipation: s.MaxParticipation, ChildOrders: s.ChildOrders, Fills: s.Fills, Rejections: s.Rejections, Reason: reason}
	})
}

func (e *Engine) emit(ctx context.Context, p *parent, now time.Time, kind string, fill func(*bus.EventMsg)) error {
	p.seq++
	m := bus.EventMsg{Schema: bus.EventSchema, ParentID: p.spec.ID, Kind: kind, Seq: p.seq, Time: now}
	fill(&m)
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
