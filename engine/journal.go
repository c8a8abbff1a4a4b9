package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/venues"
)

// Journal keeps each parent's checkpoint where a restarted engine finds
// it (kvjournal.Journal: JetStream KeyValue, revision-checked). Save must be
// durable when it returns: the engine writes a child's intent before it
// places the child.
type Journal interface {
	Load(ctx context.Context, id string) (Checkpoint, bool, error)
	Save(ctx context.Context, cp Checkpoint) error
}

// ErrBusDown is a checkpoint or a flush the bus did not take: nothing is
// placed until it does.
var ErrBusDown = errors.New("the bus is down")

// ErrJournalConflict is a Save refused because the checkpoint changed
// since this engine last read or wrote it: another engine works the
// parent.
var ErrJournalConflict = errors.New("the parent's checkpoint was written by another engine")

// seqReserve is how many event sequence numbers a checkpoint reserves: a
// restarted parent numbers its events after the reservation, so an event
// published after the last checkpoint and before a crash is never
// overwritten by a new one under the same Nats-Msg-Id (which the bus would
// drop as a duplicate). The engine saves again before it runs out.
const seqReserve = 256

// Checkpoint is a parent's durable state: its terms as amended, where its
// schedule stands, its tallies, and every child it placed whose record
// may not be on the bus yet (with the fills already counted in the
// tallies). The checkpoint is consistent at every save: the tallies count
// exactly the fills of the children no longer open plus those listed.
type Checkpoint struct {
	ParentID string    `json:"parent_id"`
	Saved    time.Time `json:"saved"`
	// Owner is the engine that wrote it (the journal fills it in): the
	// one working the parent while its heartbeat lives.
	Owner string `json:"owner,omitempty"`
	// Origin is what the caller needs to rebuild the spec (the service
	// keeps the order request and its client here); the engine keeps it.
	Origin []byte `json:"origin,omitempty"`

	State    string `json:"state"`
	ResumeTo string `json:"resume_to,omitempty"`
	Reason   string `json:"reason,omitempty"`

	// Amended terms.
	End              time.Time       `json:"end"`
	LimitPrice       decimal.Decimal `json:"limit_price"`
	BandBps          decimal.Decimal `json:"band_bps"`
	MaxParticipation decimal.Decimal `json:"max_participation"`

	ArrivalPrice decimal.Decimal `json:"arrival_price"`
	Next         time.Time       `json:"next"`
	Seen         time.Time       `json:"seen"`
	Slice        int             `json:"slice"`
	SeqReserved  int64           `json:"seq_reserved"`

	Filled    decimal.Decimal            `json:"filled"`
	Notional  decimal.Decimal            `json:"notional"`
	Fees      decimal.Decimal            `json:"fees"`
	MaxPart   decimal.Decimal            `json:"max_participation_seen"`
	Target    decimal.Decimal            `json:"target"`
	Children  int                        `json:"children"`
	Fills     int                        `json:"fills"`
	Rejects   int                        `json:"rejections"`
	Venues    []VenueTally               `json:"venues"`
	OtherFees map[string]decimal.Decimal `json:"other_fees,omitempty"`

	Open []OpenChild `json:"open,omitempty"`
	// Recent are the parent's fills within its participation windows, so
	// that a restarted engine counts them against the cap.
	Recent []RecentFill `json:"recent,omitempty"`
	// Events are those published since the bus was last flushed: a
	// restart publishes them again under their sequence numbers.
	Events []bus.EventMsg `json:"events,omitempty"`
	// Schedule is a StatefulSchedule's state (POV's observed volume).
	Schedule json.RawMessage `json:"schedule,omitempty"`
}

// RecentFill is a quantity filled on a venue at a time.
type RecentFill struct {
	Venue string          `json:"venue"`
	Time  time.Time       `json:"time"`
	Qty   decimal.Decimal `json:"qty"`
}

// OpenChild is a child placed (or about to be) whose record may not be
// on the bus: its order, whether the engine recorded its outcome, and the
// fills it counted.
type OpenChild struct {
	Venue    string          `json:"venue"`
	ClientID string          `json:"client_id"`
	Symbol   string          `json:"symbol"`
	Side     string          `json:"side"`
	Price    decimal.Decimal `json:"price"`
	Qty      decimal.Decimal `json:"qty"`
	TIF      string          `json:"tif"`
	Since    time.Time       `json:"since"`
	Seq      int64           `json:"seq"` // the first of its event numbers
	Recorded bool            `json:"recorded"`
	Fills    []bus.FillMsg   `json:"fills,omitempty"`
}

// Each child placed gets three event numbers at its intent, one per kind
// of event it can have: its outcome (placed or rejected), its cancel (the
// unfilled rest of an IOC), its unknown outcome. An event a restart
// publishes again for the child keeps its number, so the bus and the
// ledger take it once.
const (
	slotOutcome = iota
	slotCancelled
	slotUnknown
	childSlots
)

// childSeq is the event number reserved for a child's event in slot, or 0
// (the next number) for a child with no reservation.
func (p *parent) childSeq(clientID string, slot int64) int64 {
	if c := p.opened(clientID); c != nil && c.seq > 0 {
		return c.seq + slot
	}
	return 0
}

// openChild is an OpenChild in the parent's working state.
type openChild struct {
	seq      int64 // the first of its event numbers
	venue    string
	req      market.OrderRequest
	since    time.Time
	recorded bool
	fills    []bus.FillMsg
}

// UseJournal makes the engine checkpoint every parent in j. Call it
// before Run or Serve.
func (e *Engine) UseJournal(j Journal) { e.journal = j }

// UseFence makes the engine ask fence before every order it places; an
// error holds trading as a bus outage does (kvjournal.Heartbeat.Fence:
// nothing is placed once another engine may take the orders over). Call
// it before Serve.
func (e *Engine) UseFence(fence func() error) { e.fence = fence }

// checkpoint is p's durable state now.
func (p *parent) checkpoint(now time.Time) Checkpoint {
	cp := Checkpoint{ParentID: p.spec.ID, Saved: now, Origin: p.origin, State: p.state.String(), Reason: p.reason,
		End: p.spec.End, LimitPrice: p.spec.LimitPrice, BandBps: p.spec.BandBps, MaxParticipation: p.spec.MaxParticipation,
		ArrivalPrice: p.limits.ArrivalPrice, Next: p.next, Seen: p.seen, Slice: p.slice, SeqReserved: p.seq + seqReserve,
		Filled: p.filled, Notional: p.notion, Fees: p.fees, MaxPart: p.maxPart, Target: p.target,
		Children: p.childs, Fills: p.fills, Rejects: p.rejects, OtherFees: p.otherFees, Events: p.unflushed}
	if p.state == Paused {
		cp.ResumeTo = p.resumeTo.String()
	}
	for _, v := range p.venues {
		cp.Venues = append(cp.Venues, *p.tally[v.Name()])
	}
	for _, v := range p.venues {
		for _, f := range p.ours[v.Name()].recent() {
			cp.Recent = append(cp.Recent, RecentFill{Venue: v.Name(), Time: f.at, Qty: f.qty})
		}
	}
	for _, c := range p.open {
		cp.Open = append(cp.Open, OpenChild{Venue: c.venue, ClientID: c.req.ClientID, Symbol: c.req.Symbol,
			Side: c.req.Side.String(), Price: c.req.Price, Qty: c.req.Qty, TIF: c.req.TIF.String(), Since: c.since,
			Seq: c.seq, Recorded: c.recorded, Fills: c.fills})
	}
	return cp
}

// save writes p's checkpoint, if the engine keeps a journal.
func (e *Engine) save(ctx context.Context, p *parent) error {
	if e.journal == nil {
		return nil
	}
	cp := p.checkpoint(e.clk.Now())
	if st, ok := p.sched.(StatefulSchedule); ok {
		state, err := st.State()
		if err != nil {
			return fmt.Errorf("checkpoint %s: schedule: %w", p.spec.ID, err)
		}
		cp.Schedule = state
	}
	if err := e.journal.Save(context.WithoutCancel(ctx), cp); errors.Is(err, ErrJournalConflict) {
		return fmt.Errorf("checkpoint %s: %w", p.spec.ID, err)
	} else if err != nil {
		return fmt.Errorf("checkpoint %s: %w: %v", p.spec.ID, ErrBusDown, err)
	}
	p.seqReserved = cp.SeqReserved
	return nil
}

// intend records a slice's children in p's checkpoint before they are
// placed (one write for the slice), so that a restarted engine asks the
// venues about them instead of placing the slice again under new ids.
func (e *Engine) intend(ctx context.Context, p *parent, now time.Time, plan []plannedChild) error {
	if len(plan) == 0 {
		return nil
	}
	for _, c := range plan {
		p.open = append(p.open, openChild{seq: p.seq + 1, venue: c.q.venue, req: c.req, since: now})
		p.seq += childSlots
	}
	return e.save(ctx, p)
}

// opened returns p's open child with this client id, or nil.
func (p *parent) opened(clientID string) *openChild {
	for i := range p.open {
		if p.open[i].req.ClientID == clientID {
			return &p.open[i]
		}
	}
	return nil
}

// flushed forgets what the checkpoint kept for a flush that has now
// happened (every round ends with one): the open children whose outcome
// is recorded, and the events.
func (p *parent) flushed() {
	p.closeRecorded()
	clear(p.unflushed)
	p.unflushed = p.unflushed[:0]
}

// closeRecorded drops the open children whose record the engine has
// flushed to the bus: a checkpoint no longer needs them.
func (p *parent) closeRecorded() {
	kept := p.open[:0]
	for _, c := range p.open {
		if !c.recorded {
			kept = append(kept, c)
		}
	}
	clear(p.open[len(kept):])
	p.open = kept
}

// Restore rebuilds a parent from spec (as the caller built it again: from
// the config, or from the checkpoint's origin) and its checkpoint. The
// terms amended before the crash are applied; the fills counted for open
// children are published again (the bus drops what it already holds); an
// open child whose outcome was not recorded goes on the pending list, so
// the next slice asks the venue for it by client id before anything else
// is placed. A restored parent numbers its slices after the checkpoint's,
// so no client id is used twice.
func (e *Engine) restore(ctx context.Context, s ParentSpec, cp Checkpoint, patient bool) (*parent, error) {
	state, ok := ParseState(cp.State)
	if !ok {
		return nil, fmt.Errorf("checkpoint %s: unknown state %q", cp.ParentID, cp.State)
	}
	s.End, s.LimitPrice, s.BandBps, s.MaxParticipation = cp.End, cp.LimitPrice, cp.BandBps, cp.MaxParticipation
	if s.End.After(s.Start) {
		switch r := s.Schedule.(type) {
		case nil:
		case Rescheduler:
			if sched, err := r.WithEnd(s.End); err == nil {
				s.Schedule = sched
			}
		}
	}
	p, err := e.prepareFor(ctx, s, patient, false)
	if err != nil {
		return nil, err
	}
	// A venue left out at acceptance (unavailable) may hold an open child
	// of unknown outcome: working on without it could sell its quantity
	// twice. The restore waits for the venue instead.
	for _, c := range cp.Open {
		if !c.Recorded && e.venueOf(p, c.Venue) == nil {
			return nil, fmt.Errorf("%w: %s holds the open child %s of %s and does not answer; the parent is restored once it does",
				venues.ErrUnavailable, c.Venue, c.ClientID, cp.ParentID)
		}
	}
	if st, ok := p.sched.(StatefulSchedule); ok && len(cp.Schedule) > 0 {
		if err := st.Restore(cp.Schedule); err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w", cp.ParentID, err)
		}
	}
	p.origin = cp.Origin
	p.state, p.reason = state, cp.Reason
	if cp.ResumeTo != "" {
		p.resumeTo, _ = ParseState(cp.ResumeTo)
	}
	if !cp.ArrivalPrice.IsZero() {
		p.limits = p.spec.limits(cp.ArrivalPrice)
	}
	p.next, p.seen, p.slice = cp.Next, cp.Seen, cp.Slice+1
	p.seq, p.seqReserved = cp.SeqReserved, cp.SeqReserved
	p.filled, p.notion, p.fees, p.maxPart, p.target = cp.Filled, cp.Notional, cp.Fees, cp.MaxPart, cp.Target
	p.childs, p.fills, p.rejects = cp.Children, cp.Fills, cp.Rejects
	for _, t := range cp.Venues {
		if _, ok := p.tally[t.Venue]; ok {
			t := t
			p.tally[t.Venue] = &t
		}
	}
	for a, f := range cp.OtherFees {
		p.otherFees[a] = f
	}
	for _, f := range cp.Recent {
		if l, ok := p.ours[f.Venue]; ok {
			l.add(f.Time, f.Qty)
			e.ours[f.Venue].add(f.Time, f.Qty)
		}
	}
	for _, c := range cp.Open {
		side, err := market.ParseSide(c.Side)
		if err != nil {
			return nil, fmt.Errorf("checkpoint %s: child %s: %w", cp.ParentID, c.ClientID, err)
		}
		req := market.OrderRequest{ClientID: c.ClientID, Symbol: c.Symbol, Side: side, Price: c.Price, Qty: c.Qty, TIF: market.IOC}
		oc := openChild{seq: c.Seq, venue: c.Venue, req: req, since: c.Since, recorded: c.Recorded, fills: c.Fills}
		p.open = append(p.open, oc)
		for _, f := range c.Fills {
			if err := retry(func() error { return e.pub.PublishFill(ctx, f) }); err != nil {
				return nil, err
			}
		}
		if !c.Recorded {
			p.pending = append(p.pending, pendingChild{venue: c.Venue, req: req, since: c.Since})
		}
	}
	for _, m := range cp.Events {
		if err := retry(func() error { return e.pub.PublishEvent(ctx, m) }); err != nil {
			return nil, err
		}
	}
	p.unflushed = append(p.unflushed, cp.Events...) // until the next flush
	return p, nil
}

// counted reports whether a fill is among those an open child counted
// before a restart.
func (c *openChild) counted(f market.Fill) bool {
	for _, m := range c.fills {
		if m.TradeID == f.TradeID && m.Venue == f.Venue {
			return true
		}
	}
	return false
}
