// Package engine runs parent orders: it accepts them, ticks their schedules
// on the injected clock, splits each slice across venues, checks every child
// with risk, places it, and publishes fills and events.
package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/risk"
	"github.com/blockexec/blockexec/strategies/twap"
	"github.com/blockexec/blockexec/venues"
)

// Publisher carries fills and events to the settlement side.
type Publisher interface {
	PublishFill(ctx context.Context, m bus.FillMsg) error
	PublishEvent(ctx context.Context, m bus.EventMsg) error
}

// resumeOrPrepare restores a parent from its checkpoint, or prepares it
// new when it has none (or the engine keeps no journal).
func (e *Engine) resumeOrPrepare(ctx context.Context, s ParentSpec) (*parent, bool, error) {
	if e.journal == nil {
		p, err := e.prepare(ctx, s, true)
		return p, false, err
	}
	cp, found, err := e.journal.Load(ctx, s.ID)
	if err != nil {
		return nil, false, fmt.Errorf("checkpoint %s: %w", s.ID, err)
	}
	if !found {
		p, err := e.prepare(ctx, s, true)
		return p, false, err
	}
	if st, ok := ParseState(cp.State); ok && st.Terminal() {
		return nil, false, fmt.Errorf("%w: %s ended %s at %s", ErrDuplicateParent, s.ID, cp.State, cp.Saved.UTC().Format(time.RFC3339))
	}
	p, err := e.restore(ctx, s, cp, true)
	if err != nil {
		return nil, false, err
	}
	e.log.Info().Str("parent", s.ID).Str("state", cp.State).Stringer("filled", p.filled).Int("open_children", len(p.open)).
		Msg("resumed from its checkpoint; open children are asked for at the venues first")
	return p, true, nil
}

// Flusher is a Publisher that queues (bus.AsyncPublisher): a nil error
// from PublishFill or PublishEvent means queued, and Flush returns once
// everything queued is stored, with what could not be. The engine flushes
// at the end of every round of slices and after every command.
type Flusher interface {
	Flush(ctx context.Context) []bus.PublishFailure
}

// Checker is the pre-trade risk gate.
type Checker interface {
	Check(l risk.Limits, ch risk.Child) *risk.Rejection
}

// Killer reports whether a parent has been stopped by a kill switch.
type Killer interface {
	Killed(parentID string) (scope string, killed bool)
}

// Observer receives progress after every slice. It must return quickly.
type Observer interface {
	Progress(Progress)
}

// Schedule gives a parent's cumulative target quantity at a time.
type Schedule interface {
	Target(t time.Time) decimal.Decimal
}

// VolumeObserver is a schedule that follows the market: before each slice
// it is told the volume the others printed on the parent's venues in
// (from, to], our own fills (every parent's) left out.
type VolumeObserver interface {
	Observe(from, to time.Time, volume decimal.Decimal)
}

// StatefulSchedule is a schedule that learns as it runs (POV: the volume
// it has observed, the target it has promised): a checkpoint keeps its
// State, and a restarted engine hands it to the schedule rebuilt from the
// same order, which goes on where the first was.
type StatefulSchedule interface {
	State() ([]byte, error)
	Restore(state []byte) error
}

// The router reads minBookDepth levels a side, and more (up to
// maxBookDepth, enough for a 75 bps band on the sim's level spacing) only
// when the slice needs them.
const (
	minBookDepth = 16
	maxBookDepth = 256
)

// publishAttempts bounds retries of a publish before the run fails: a fill
// that cannot be published must stop the run, not vanish.
const publishAttempts = 3

// SpecError is a parent that cannot be accepted; Field names the parent's
// field at fault (e.g. "floor_price", "venues", "symbol").
type SpecError struct {
	ParentID string
	Field    string
	Msg      string
}

func (e *SpecError) Error() string {
	return fmt.Sprintf("parent %s: %s: %s", e.ParentID, e.Field, e.Msg)
}

// Engine runs parent orders. Construct with New.
type Engine struct {
	clk     clock.Clock
	venues  map[string]Venue
	names   []string
	checker Checker
	kill    Killer
	pub     Publisher
	journal Journal      // nil: no checkpoints
	fence   func() error // nil: nothing to ask before placing
	log     zerolog.Logger
	obs     Observer
	health  map[string]*venueHealth
	ours    map[string]*fillLog // every parent's fills, by venue
	desk    *desk               // the serving loop's state
	// measureLoop locks the serving loop to its thread (MeasureLoopCPU).
	measureLoop bool
}

// New returns an engine over the given venues (names must be unique).
func New(clk clock.Clock, venues []Venue, checker Checker, kill Killer, pub Publisher, log zerolog.Logger) (*Engine, error) {
	e := &Engine{clk: clk, venues: map[string]Venue{}, checker: checker, kill: kill, pub: pub, log: log,
		health: map[string]*venueHealth{}, ours: map[string]*fillLog{}}
	for _, v := range venues {
		if _, dup := e.venues[v.Name()]; dup {
			return nil, fmt.Errorf("engine: venue %q configured twice", v.Name())
		}
		e.venues[v.Name()] = v
		e.health[v.Name()] = &venueHealth{}
		e.ours[v.Name()] = &fillLog{}
		e.names = append(e.names, v.Name())
	}
	if len(e.venues) == 0 {
		return nil, errors.New("engine: no venues")
	}
	e.deskInit()
	sort.Strings(e.names)
	return e, nil
}

// SetObserver installs an observer of progress (nil removes it).
func (e *Engine) SetObserver(o Observer) { e.obs = o }

// Venue returns the venue of that name.
func (e *Engine) Venue(name string) (Venue, bool) {
	v, ok := e.venues[name]
	return v, ok
}

// VenueNames returns the venues' names, sorted.
func (e *Engine) VenueNames() []string { return append([]string(nil), e.names...) }

// Run accepts every parent, then works them all on the clock until each is
// done, cancelled or failed. If any parent cannot be accepted, nothing is
// placed and the *SpecError is returned. It returns one Summary per parent,
// in the order given.
//
// With a journal (UseJournal), a parent whose checkpoint says it is still
// working is resumed from it, after its open children are asked for at
// the venues; one whose checkpoint says it ended is refused
// (ErrDuplicateParent), and nothing is placed.
func (e *Engine) Run(ctx context.Context, specs []ParentSpec) ([]Summary, error) {
	ps := make([]*parent, 0, len(specs))
	seen := map[string]bool{}
	var fresh []*parent
	for _, s := range specs {
		if seen[s.ID] {
			return nil, &SpecError{s.ID, "id", "used by two parents"}
		}
		seen[s.ID] = true
		p, resumed, err := e.resumeOrPrepare(ctx, s)
		if err != nil {
			return nil, err
		}
		if !resumed {
			fresh = append(fresh, p)
		}
		ps = append(ps, p)
	}
	for _, p := range fresh {
		if err := e.save(ctx, p); err != nil {
			return nil, err
		}
	}
	var runErr error
	for round := 0; runErr == nil; round++ {
		next, any := nextTick(ps)
		if !any {
			break
		}
		if err := e.clk.WaitUntil(ctx, next); err != nil {
			runErr = err
			break
		}
		now := e.clk.Now()
		if !e.busUp(ctx) {
			e.holdAll(ctx, ps, now)
			continue
		}
		// Parents due together take turns going first: they share the
		// participation cap, and the first to place takes the room.
		for k := range ps {
			p := ps[(k+round)%len(ps)]
			if p.state.Terminal() || p.next.After(now) {
				continue
			}
			before := p.state
			err := e.tick(ctx, p, now)
			switch {
			case errors.Is(err, ErrBusDown):
				e.holdForBus(p, now, err)
				continue
			case err != nil:
				runErr = err
			case p.state != before:
				// A slice that placed children wrote their intents, which
				// is all a restart needs; a change of state is written
				// here (or again when the bus takes it).
				_ = e.keep(ctx, p)
			}
			if runErr != nil {
				break
			}
		}
		_ = e.flushLoop(ctx) // a bus that is down holds the next round
	}
	for _, p := range ps {
		if runErr != nil && !p.state.Terminal() {
			e.finish(context.WithoutCancel(ctx), p, e.clk.Now(), Failed, runErr.Error())
			_ = e.keep(ctx, p)
		}
	}
	ferr := e.flushLoop(context.WithoutCancel(ctx))
	if ferr == nil {
		e.writeUnsaved(context.WithoutCancel(ctx))
	}
	switch {
	case runErr != nil:
	case ferr != nil:
		runErr = fmt.Errorf("the bus did not store the run's last messages: %w", ferr)
	case len(e.desk.unsaved) > 0:
		runErr = fmt.Errorf("%w: the checkpoints of %d parents could not be written", ErrBusDown, len(e.desk.unsaved))
	}
	out := make([]Summary, len(ps))
	for i, p := range ps {
		out[i] = p.summary()
	}
	return out, runErr
}

func nextTick(ps []*parent) (time.Time, bool) {
	var next time.Time
	found := false
	for _, p := range ps {
		if p.state.Terminal() {
			continue
		}
		at := p.next
		if p.state == Paused {
			at = p.spec.End // a paused parent wakes only to end
		}
		if !found || at.Before(next) {
			next, found = at, true
		}
	}
	return next, found
}

// prepare validates a spec against the venues and the market, without
// placing anything. A patient prepare waits for a venue that is rate
// limited or unavailable (Run, before anything starts); an impatient one
// asks once (a serving engine, whose other parents must not wait).
func (e *Engine) prepare(ctx context.Context, s ParentSpec, patient bool) (*parent, error) {
	return e.prepareFor(ctx, s, patient, true)
}

// prepareFor is prepare; a parent restored from its checkpoint skips the
// floor-against-the-market check (it was accepted already, and must be
// settled whatever the market did meanwhile).
func (e *Engine) prepareFor(ctx context.Context, s ParentSpec, patient, fresh bool) (*parent, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	names := s.Venues
	if len(names) == 0 {
		names = e.names
	}
	p := &parent{spec: s, state: Accepted, next: s.Start, patient: patient, inst: map[string]market.Instrument{},
		idRule: map[string]IDRule{}, tally: map[string]*VenueTally{}, ours: map[string]*fillLog{},
		otherFees: map[string]decimal.Decimal{}}
	for _, n := range names {
		v, ok := e.venues[n]
		if !ok {
			return nil, &SpecError{s.ID, "venues", fmt.Sprintf("unknown venue %q; configured: %v", n, e.names)}
		}
		var in market.Instrument
		deadline := s.End
		switch {
		case !patient:
			deadline = e.clk.Now()
		case len(names) > 1:
			deadline = e.clk.Now().Add(acceptPatience)
		}
		err := e.patiently(ctx, deadline, func() (err error) {
			in, err = v.Instrument(ctx, s.Symbol)
			return err
		})
		if errors.Is(err, venues.ErrUnavailable) && len(names) > 1 {
			// Rate limited or dark for minutes: work the parent on the others.
			e.log.Warn().Str("parent", s.ID).Str("venue", n).Err(err).Msg("venue unavailable at acceptance; the parent runs without it")
			continue
		}
		if err != nil {
			return nil, &SpecError{s.ID, "symbol", fmt.Sprintf("%s on %s: %v", s.Symbol, n, err)}
		}
		p.venues = append(p.venues, v)
		p.inst[n] = in
		rule := IDRule{MaxLen: defaultClientIDLen}
		if r, ok := v.(ClientIDRules); ok {
			rule.MaxLen = r.MaxClientIDLen()
		}
		if a, ok := v.(ClientIDAlphabet); ok {
			rule.Allowed = a.ClientIDAllowed
		}
		p.idRule[n] = rule
		p.tally[n] = &VenueTally{Venue: n}
		p.ours[n] = &fillLog{keep: 2 * s.window()}
		if l := e.ours[n]; l.keep < 2*s.window() {
			l.keep = 2 * s.window() // the longest window any parent sums over
		}
	}
	if len(p.venues) == 0 {
		return nil, &SpecError{s.ID, "venues", fmt.Sprintf("none of %v is available", names)}
	}
	sort.Slice(p.venues, func(i, j int) bool { return p.venues[i].Name() < p.venues[j].Name() })
	p.sched = s.Schedule
	if p.sched == nil {
		sched, err := twap.New(s.Qty, s.Start, s.End)
		if err != nil {
			return nil, &SpecError{s.ID, "parent", err.Error()}
		}
		p.sched = sched
	}
	p.seen = s.Start
	p.origin = s.Origin
	if s.LimitPrice.Sign() > 0 && fresh {
		if err := e.checkLimitAgainstMarket(ctx, p, patient); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// checkLimitAgainstMarket refuses a sell whose floor is above every bid (or
// a buy whose ceiling is below every ask): nothing could ever trade.
func (e *Engine) checkLimitAgainstMarket(ctx context.Context, p *parent, patient bool) error {
	s := p.spec
	var best decimal.Decimal
	var ok bool
	deadline := s.End
	if !patient {
		deadline = e.clk.Now()
	}
	err := e.patiently(ctx, deadline, func() (err error) {
		best, ok, err = e.touch(ctx, p)
		return err
	})
	if err != nil || !ok {
		return &SpecError{s.ID, "symbol", fmt.Sprintf("no market for %s: %v", s.Symbol, err)}
	}
	if !market.Within(s.Side, best, s.LimitPrice) {
		field, rel := "floor_price", "above the best bid"
		if s.Side == market.Buy {
			field, rel = "ceiling_price", "below the best ask"
		}
		return &SpecError{s.ID, field, fmt.Sprintf("%s is %s %s across %d venues at %s; nothing could trade",
			s.LimitPrice, rel, best, len(p.venues), e.clk.Now().Format(time.RFC3339))}
	}
	return nil
}

// acceptPatience is how long acceptance waits for an unavailable venue
// when the parent has others to work on; with no other, it waits up to the
// parent's end.
const acceptPatience = 2 * time.Minute

// patiently runs fn until it succeeds, fails for another reason than an
// unavailable venue (a rate limit, a ban, a timeout), or the clock passes
// deadline, waiting on the engine's clock in between (1 s, doubling, at
// most a minute): a 429 storm at acceptance slows a parent down instead of
// failing it.
func (e *Engine) patiently(ctx context.Context, deadline time.Time, fn func() error) error {
	wait := time.Second
	for {
		err := fn()
		now := e.clk.Now()
		if err == nil || !errors.Is(err, venues.ErrUnavailable) || !now.Before(deadline) {
			return err
		}
		next := now.Add(wait)
		if next.After(deadline) {
			next = deadline
		}
		if werr := e.clk.WaitUntil(ctx, next); werr != nil {
			return werr
		}
		wait = min(2*wait, time.Minute)
	}
}

// touch returns the best price a parent's side can trade at across its
// venues: the highest bid for a sell, the lowest ask for a buy.
func (e *Engine) touch(ctx context.Context, p *parent) (decimal.Decimal, bool, error) {
	var best decimal.Decimal
	found := false
	var errs []error
	for _, v := range p.venues {
		b, err := v.Book(ctx, p.spec.Symbol, 1)
		if err != nil {
			errs = append(errs, fmt.Errorf("book %s: %w", v.Name(), err))
			e.venueFailed(v.Name(), e.clk.Now(), p.spec.SliceInterval, err.Error())
			continue
		}
		opp := b.Opposite(p.spec.Side)
		if len(opp) == 0 {
			continue
		}
		if !found || better(p.spec.Side, opp[0].Price, best) {
			best, found = opp[0].Price, true
		}
	}
	if !found && len(errs) > 0 {
		return best, false, errors.Join(errs...)
	}
	return best, found, nil
}

// arrival returns the consolidated mid across the parent's venues: the
// highest bid and the lowest ask.
func (e *Engine) arrival(ctx context.Context, p *parent) (decimal.Decimal, error) {
	var bid, ask decimal.Decimal
	var errs []error
	seen := false
	for _, v := range p.venues {
		b, err := v.Book(ctx, p.spec.Symbol, 1)
		if err != nil {
			errs = append(errs, fmt.Errorf("book %s: %w", v.Name(), err))
			continue
		}
		bb, ok1 := b.BestBid()
		ba, ok2 := b.BestAsk()
		if !ok1 || !ok2 {
			errs = append(errs, fmt.Errorf("book %s: one side is empty", v.Name()))
			continue
		}
		if !seen || bb.Price.GreaterThan(bid) {
			bid = bb.Price
		}
		if !seen || ba.Price.LessThan(ask) {
			ask = ba.Price
		}
		seen = true
	}
	if !seen {
		return decimal.Zero, errors.Join(errs...)
	}
	// The arrival is the mid of the venues that answered.
	return bid.Add(ask).Div(decimal.NewFromInt(2)), nil
}

// better reports whether price a is better than b for an order of side: a
// higher bid to sell into, a lower ask to buy from.
func better(side market.Side, a, b decimal.Decimal) bool {
	if side == market.Sell {
		return a.GreaterThan(b)
	}
	return a.LessThan(b)
}
