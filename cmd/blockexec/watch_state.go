package main

import (
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/market"
)

// tailLen is how many recent fills and rejections a parent keeps for the
// terminal view.
const tailLen = 3

// parentView is what the watcher knows of one parent, folded from the
// events and fills it has seen.
type parentView struct {
	ID   string
	Info *bus.ParentInfo // nil until an accepted (or amended) event is seen or looked up
	// Late: the parent was accepted before the watch started, so its fills
	// before then are not counted here (terms come from a look-up).
	Late bool

	Target   decimal.Decimal // cumulative schedule target, from the last slice
	Filled   decimal.Decimal
	Gross    decimal.Decimal            // Σ price × qty
	Venues   map[string]decimal.Decimal // filled quantity per venue
	Fills    int
	Children int
	Rejects  int
	State    string // waiting, working, paused, done, cancelled, failed
	Reason   string
	MaxPart  decimal.Decimal // realised so far (slice events), then the done summary's
	Updated  time.Time

	LastFills   []bus.FillMsg // newest last
	LastRejects []rejectNote  // newest last
}

// rejectNote is a rejection with the time of its event.
type rejectNote struct {
	Time time.Time
	bus.RejectionInfo
}

// watchState is every parent the watcher has seen, in the order first seen.
type watchState struct {
	parents map[string]*parentView
	order   []string
	fills   int
	events  int
	last    time.Time // time of the latest message folded
}

func newWatchState() *watchState { return &watchState{parents: map[string]*parentView{}} }

// parent returns the view of id, creating it.
func (s *watchState) parent(id string) *parentView {
	p := s.parents[id]
	if p == nil {
		p = &parentView{ID: id, State: "waiting", Venues: map[string]decimal.Decimal{}}
		s.parents[id] = p
		s.order = append(s.order, id)
	}
	return p
}

// known reports whether the terms of parent id are known.
func (s *watchState) known(id string) bool {
	p := s.parents[id]
	return p != nil && p.Info != nil
}

// foldFill counts a fill into its parent.
func (s *watchState) foldFill(f bus.FillMsg) *parentView {
	p := s.parent(f.ParentID)
	s.fills++
	s.seen(f.Time)
	p.Filled = p.Filled.Add(f.Qty)
	p.Gross = p.Gross.Add(f.Price.Mul(f.Qty))
	p.Venues[f.Venue] = p.Venues[f.Venue].Add(f.Qty)
	p.Fills++
	if p.State == "waiting" {
		p.State = "working"
	}
	p.LastFills = appendTail(p.LastFills, f)
	p.touch(f.Time)
	return p
}

// foldEvent applies an event to its parent.
func (s *watchState) foldEvent(e bus.EventMsg) *parentView {
	p := s.parent(e.ParentID)
	s.events++
	s.seen(e.Time)
	p.touch(e.Time)
	switch e.Kind {
	case bus.KindAccepted, bus.KindAmended:
		if e.Parent != nil {
			info := *e.Parent
			p.Info = &info
		}
		if p.State == "waiting" {
			p.State = "working"
		}
	case bus.KindSlice:
		if e.Slice != nil {
			p.Target = e.Slice.Target
			p.MaxPart = decimal.Max(p.MaxPart, e.Slice.MaxParticipation)
		}
	case bus.KindChildPlaced:
		p.Children++
	case bus.KindChildRejected:
		p.Rejects++
		if e.Rejection != nil {
			p.LastRejects = appendTail(p.LastRejects, rejectNote{Time: e.Time, RejectionInfo: *e.Rejection})
		}
	case bus.KindPaused:
		p.State = "paused"
	case bus.KindResumed:
		p.State = "working"
	case bus.KindDone:
		p.State = "done"
		if e.Summary != nil {
			if e.Summary.State != "" {
				p.State = e.Summary.State
			}
			p.Reason = e.Summary.Reason
			p.MaxPart = e.Summary.MaxParticipation
		}
	}
	return p
}

// adopt takes the terms of a parent accepted before the watch started.
func (s *watchState) adopt(e bus.EventMsg) {
	p := s.parent(e.ParentID)
	if p.Info != nil || e.Parent == nil {
		return
	}
	info := *e.Parent
	p.Info, p.Late = &info, true
	if p.State == "waiting" {
		p.State = "working"
	}
}

func (s *watchState) seen(t time.Time) {
	if t.After(s.last) {
		s.last = t
	}
}

func (p *parentView) touch(t time.Time) {
	if t.After(p.Updated) {
		p.Updated = t
	}
}

func appendTail[T any](tail []T, v T) []T {
	tail = append(tail, v)
	if len(tail) > tailLen {
		tail = append(tail[:0:0], tail[len(tail)-tailLen:]...)
	}
	return tail
}

// Quantity is the parent's size, zero while unknown.
func (p *parentView) Quantity() decimal.Decimal {
	if p.Info == nil {
		return decimal.Zero
	}
	return p.Info.Quantity
}

// Arrival is the arrival price, zero while unknown.
func (p *parentView) Arrival() decimal.Decimal {
	if p.Info == nil {
		return decimal.Zero
	}
	return p.Info.ArrivalPrice
}

// AvgPrice is the volume-weighted price of the fills seen.
func (p *parentView) AvgPrice() decimal.Decimal {
	if p.Filled.IsZero() {
		return decimal.Zero
	}
	return p.Gross.Div(p.Filled).Round(8)
}

// ShortfallBps is the implementation shortfall of the fills seen against
// the arrival price, as settlement's report defines it: positive is a
// cost, (arrival − avg) / arrival for a sell, mirrored for a buy, 4 places.
func (p *parentView) ShortfallBps() decimal.Decimal {
	arrival := p.Arrival()
	if p.Filled.IsZero() || arrival.IsZero() {
		return decimal.Zero
	}
	diff := arrival.Sub(p.Gross.Div(p.Filled))
	if p.Info.Side == market.Buy.String() {
		diff = diff.Neg()
	}
	return diff.Div(arrival).Mul(decimal.NewFromInt(10_000)).Round(4)
}

// Finished reports whether the parent has ended.
func (p *parentView) Finished() bool {
	switch p.State {
	case "done", "cancelled", "failed":
		return true
	}
	return false
}

// venueSplit returns the venues by name with their share of the filled
// quantity.
func (p *parentView) venueSplit() []venueShare {
	out := make([]venueShare, 0, len(p.Venues))
	for name, q := range p.Venues {
		out = append(out, venueShare{Venue: name, Qty: q, Pct: pct(q, p.Filled)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Venue < out[j].Venue })
	return out
}

// venueShare is one venue's part of a parent's fills.
type venueShare struct {
	Venue string          `json:"venue"`
	Qty   decimal.Decimal `json:"filled_quantity"`
	Pct   decimal.Decimal `json:"pct"`
}
