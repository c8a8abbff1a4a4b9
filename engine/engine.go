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
)

// Publisher carries fills and events to the settlement side.
type Publisher interface {
	PublishFill(ctx context.Context, m bus.FillMsg) error
	PublishEvent(ctx context.Context, m bus.EventMsg) error
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

// bookDepth is how many levels per side the router reads; enough to cover a
// 75 bps band on the sim's level spacing.
const bookDepth = 200

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
	log     zerolog.Logger
	obs     Observer
}

// New returns an engine over the given venues (names must be unique).
func New(clk clock.Clock, venues []Venue, checker Checker, kill Killer, pub Publisher, log zerolog.Logger) (*Engine, error) {
	e := &Engine{clk: clk, venues: map[string]Venue{}, checker: checker, kill: kill, pub: pub, log: log}
	for _, v := range venues {
		if _, dup := e.venues[v.Name()]; dup {
			return nil, fmt.Errorf("engine: venue %q configured twice", v.Name())
		}
		e.venues[v.Name()] = v
		e.names = append(e.names, v.Name())
	}
	if len(e.venues) == 0 {
		return nil, errors.New("engine: no venues")
	}
	sort.Strings(e.names)
	return e, nil
}

// SetObserver installs an observer of progress (nil removes it).
func (e *Engine) SetObserver(o Observer) { e.obs = o }

// VenueNames returns the venues' names, sorted.
func (e *Engine) VenueNames() []string { return append([]string(nil), e.names...) }

// Run accepts every parent, then works them all on the clock until each is
// done, cancelled or failed. If any parent cannot be accepted, nothing is
// placed and the *SpecError is returned. It returns one Summary per parent,
// in the order given.
func (e *Engine) Run(ctx context.Context, specs []ParentSpec) ([]Summary, error) {
	ps := make([]*parent, 0, len(specs))
	seen := map[string]bool{}
	for _, s := range specs {
		if seen[s.ID] {
			return nil, &SpecError{s.ID, "id", "used by two parents"}
		}
		seen[s.ID] = true
		p, err := e.prepare(ctx, s)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	var runErr error
	for runErr == nil {
		next, any := nextTick(ps)
		if !any {
			break
		}
		if err := e.clk.WaitUntil(ctx, next); err != nil {
			runErr = err
			break
		}
		now := e.clk.Now()
		for _, p := range ps {
			if p.state.Terminal() || p.next.After(now) {
				continue
			}
			if err := e.tick(ctx, p, now); err != nil {
				runErr = err
				break
			}
		}
	}
	out := make([]Summary, len(ps))
	for i, p := range ps {
		if runErr != nil && !p.state.Terminal() {
			e.finish(context.WithoutCancel(ctx), p, e.clk.Now(), Failed, runErr.Error())
		}
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
		if !found || p.next.Before(next) {
			next, found = p.next, true
		}
	}
	return next, found
}

// prepare validates a spec against the venues and the market, without
// placing anything.
func (e *Engine) prepare(ctx context.Context, s ParentSpec) (*parent, error) {
	if err := s.Validate(); err != nil {
		return nil, &SpecError{s.ID, "parent", err.Error()}
	}
	names := s.Venues
	if len(names) == 0 {
		names = e.names
	}
	p := &parent{spec: s, state: Accepted, next: s.Start, inst: map[string]market.Instrument{},
		maxID: map[string]int{}, tally: map[string]*VenueTally{}, ours: map[string]*fillLog{}}
	for _, n := range names {
		v, ok := e.venues[n]
		if !ok {
			return nil, &SpecError{s.ID, "venues", fmt.Sprintf("unknown venue %q; configured: %v", n, e.names)}
		}
		in, err := v.Instrument(ctx, s.Symbol)
		if err != nil {
			return nil, &SpecError{s.ID, "symbol", fmt.Sprintf("%s on %s: %v", s.Symbol, n, err)}
		}
		p.venues = append(p.venues, v)
		p.inst[n] = in
		p.maxID[n] = defaultClientIDLen
		if r, ok := v.(ClientIDRules); ok {
			p.maxID[n] = r.MaxClientIDLen()
		}
		p.tally[n] = &VenueTally{Venue: n}
		p.ours[n] = &fillLog{}
	}
	sort.Slice(p.venues, func(i, j int) bool { return p.venues[i].Name() < p.venues[j].Name() })
	sched, err := twap.New(s.Qty, s.Start, s.End)
	if err != nil {
		return nil, &SpecError{s.ID, "parent", err.Error()}
	}
	p.sched = sched
	if s.LimitPrice.Sign() > 0 {
		if err := e.checkLimitAgainstMarket(ctx, p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// checkLimitAgainstMarket refuses a sell whose floor is above every bid (or
// a buy whose ceiling is below every ask): nothing could ever trade.
func (e *Engine) checkLimitAgainstMarket(ctx context.Context, p *parent) error {
	s := p.spec
	best, ok, err := e.touch(ctx, p)
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

// touch returns the best price a parent's side can trade at across its
// venues: the highest bid for a sell, the lowest ask for a buy.
func (e *Engine) touch(ctx context.Context, p *parent) (decimal.Decimal, bool, error) {
	var best decimal.Decimal
	found := false
	for _, v := range p.venues {
		b, err := v.Book(ctx, p.spec.Symbol, 1)
		if err != nil {
			return best, false, fmt.Errorf("book %s: %w", v.Name(), err)
		}
		opp := b.Opposite(p.spec.Side)
		if len(opp) == 0 {
			continue
		}
		if !found || better(p.spec.Side, opp[0].Price, best) {
			best, found = opp[0].Price, true
		}
	}
	return best, found, nil
}

// arrival returns the consolidated mid across the parent's venues: the
// highest bid and the lowest ask.
func (e *Engine) arrival(ctx context.Context, p *parent) (decimal.Decimal, error) {
	var bid, ask decimal.Decimal
	for i, v := range p.venues {
		b, err := v.Book(ctx, p.spec.Symbol, 1)
		if err != nil {
			return decimal.Zero, fmt.Errorf("book %s: %w", v.Name(), err)
		}
		bb, ok1 := b.BestBid()
		ba, ok2 := b.BestAsk()
		if !ok1 || !ok2 {
			return decimal.Zero, fmt.Errorf("book %s: one side is empty", v.Name())
		}
		if i == 0 || bb.Price.GreaterThan(bid) {
			bid = bb.Price
		}
		if i == 0 || ba.Price.LessThan(ask) {
			ask = ba.Price
		}
	}
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
