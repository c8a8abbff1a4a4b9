package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/strategies/twap"
)

// Errors of the service calls.
var (
	// ErrNotServing: Serve is not running (not started, or stopped).
	ErrNotServing = errors.New("engine: not serving")
	// ErrUnknownParent: no parent with that id.
	ErrUnknownParent = errors.New("engine: unknown parent")
	// ErrDuplicateParent: a parent with that id exists already.
	ErrDuplicateParent = errors.New("engine: parent id in use")
	// ErrParentEnded: the parent is done, cancelled or failed.
	ErrParentEnded = errors.New("engine: parent has ended")
	// ErrKilled: the kill switch is engaged; nothing new is accepted
	// until it is released.
	ErrKilled = errors.New("engine: the kill switch is engaged")
)

// KillState is the serving engine's kill switch. Engaged by KillAll, it
// stays engaged (new parents are refused) until ReleaseKill: a desk that
// pulled the switch decides when trading starts again, not the next
// client to submit.
type KillState struct {
	Engaged bool
	Reason  string
	Since   time.Time
}

// Status is a parent as the service shows it: its spec's terms, its
// state and its tallies, as of its last slice or command.
type Status struct {
	Summary
	Strategy         string
	Start, End       time.Time
	LimitPrice       decimal.Decimal
	BandBps          decimal.Decimal
	MaxParticipation decimal.Decimal
	VenueNames       []string
	Target           decimal.Decimal // cumulative schedule target at the last slice
	Pending          decimal.Decimal // quantity of children of unknown outcome
	Updated          time.Time
}

// Amendment changes a working parent's terms; nil fields stay as they are.
// Every change is checked as at submission: a band must be positive, a
// participation in (0, 1], a floor (sell) or ceiling (buy) not beyond the
// market, an end after the start and not in the past.
type Amendment struct {
	LimitPrice       *decimal.Decimal // floor (sell) or ceiling (buy); zero removes it
	BandBps          *decimal.Decimal
	MaxParticipation *decimal.Decimal
	End              *time.Time
}

// Rescheduler is a schedule whose end can move: an amended end time
// rebuilds the schedule with it.
type Rescheduler interface {
	WithEnd(end time.Time) (Schedule, error)
}

// desk is the state of a serving engine: its parents and the commands
// waiting for the loop.
type desk struct {
	mu      sync.Mutex // guards serving, stopped, status and kill
	serving bool
	kill    KillState
	stopped chan struct{} // closed when the current Serve returns
	status  map[string]Status
	cmds    chan func(ctx context.Context)
	parents map[string]*parent // owned by the loop: parents that have not ended
	ended   map[string]bool    // owned by the loop: ids of parents that have
	order   []*parent          // owned by the loop: live parents, in submission order
	round   []*parent          // owned by the loop: the parents of the round under way
	busDown bool               // owned by the loop: the bus did not store the last flush
	unsaved map[string]*parent // owned by the loop: parents whose last checkpoint the bus did not take

	// The loop's own CPU time and the slices it has worked, for the
	// metrics (and the benchmark's CPU per parent-tick).
	loopCPU  atomic.Int64 // nanoseconds; stays 0 where threads are not measured
	cpuKnown atomic.Bool
	slices   atomic.Int64
}

func (e *Engine) deskInit() {
	e.desk = &desk{status: map[string]Status{}, cmds: make(chan func(ctx context.Context)), parents: map[string]*parent{},
		ended: map[string]bool{}, unsaved: map[string]*parent{}}
}

// Serve works parents as they are submitted until ctx ends: each on its
// own schedule, with pause, resume, amend and cancel between slices. Every
// call on the parents runs in this loop, so a parent is never changed
// during its slice. When ctx ends, working parents stay as they are (a
// restart resumes them, issue 7); Serve returns ctx's error.
func (e *Engine) Serve(ctx context.Context) error {
	d := e.desk
	d.mu.Lock()
	if d.serving {
		d.mu.Unlock()
		return errors.New("engine: already serving")
	}
	d.serving = true
	stopped := make(chan struct{})
	d.stopped = stopped
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.serving = false
		d.mu.Unlock()
		close(stopped) // callers waiting on a command give up
	}()
	// Measured, the loop keeps one OS thread, so that thread's CPU clock
	// is the loop's: what the engine itself spends, apart from the bus,
	// the recorder and the API.
	known := false
	var cpu0 time.Duration
	if e.measureLoop {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		cpu0, known = threadCPU()
	}
	d.cpuKnown.Store(known)
	spent := time.Duration(d.loopCPU.Load()) // a second Serve counts on
	account := func() {
		if !known {
			return
		}
		if now, ok := threadCPU(); ok {
			d.loopCPU.Store(int64(spent + now - cpu0))
		}
	}
	defer account()
	defer e.checkpointAll(ctx)
	for round := 0; ; round++ {
		account()
		next, any := nextTick(d.order)
		if !any {
			// Nothing to slice; checkpoints the bus did not take are
			// tried again every second (network time) until it does.
			var retry <-chan time.Time
			var timer *time.Timer
			if len(d.unsaved) > 0 {
				timer = time.NewTimer(time.Second)
				retry = timer.C
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case cmd := <-d.cmds:
				cmd(ctx)
			case <-retry:
				e.busUp(ctx)
			}
			if timer != nil {
				timer.Stop()
			}
			continue
		}
		if cmd, ok := e.waitOrCommand(ctx, next); ok {
			cmd(ctx)
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		now := e.clk.Now()
		if !e.busUp(ctx) {
			e.holdAll(ctx, d.order, now)
			for _, p := range d.order {
				e.publishAt(p, now)
			}
			e.sweep()
			continue
		}
		// The round works a snapshot of the parents: commands run between
		// two parents' slices (not only between rounds, which can be long
		// with many parents), and may change d.order meanwhile.
		d.round = append(d.round[:0], d.order...)
		for k := range d.round {
			e.commandsWaiting(ctx)
			p := d.round[(k+round)%len(d.round)]
			if d.busDown {
				// A command's flush found the bus down: the rest of the
				// round waits, as the next rounds will.
				e.holdAll(ctx, []*parent{p}, now)
				continue
			}
			if p.moved {
				continue
			}
			if p.state == Paused && !now.Before(p.spec.End) {
				// Its window has closed while it was held: it ends with
				// what it filled, rather than working the rest at once
				// when resumed.
				to := Done
				if p.resumeTo == Accepted { // it never started
					to = Cancelled
				}
				e.finish(context.WithoutCancel(ctx), p, now, to, "the end time passed while it was paused")
				e.keep(ctx, p)
				e.publishAt(p, now)
				continue
			}
			if !p.state.Terminal() && !p.moved && p.state != Paused && !p.next.After(now) {
				before := p.state
				err := e.tick(ctx, p, now)
				switch {
				case errors.Is(err, ErrJournalConflict):
					e.drop(p, err)
					continue
				case errors.Is(err, ErrBusDown):
					// Its checkpoint could not be written: held, not
					// failed. A new slice number, as this one's may have
					// been sent already.
					e.holdForBus(p, now, err)
				case err != nil:
					e.finish(context.WithoutCancel(ctx), p, e.clk.Now(), Failed, err.Error())
				}
				// A slice that placed children wrote their intents, which
				// is all a restart needs; a change of state is written here.
				if p.state != before {
					e.keep(ctx, p)
				}
				e.publishAt(p, now)
				d.slices.Add(1)
			}
		}
		clear(d.round)
		e.flushLoop(ctx)
		e.sweep()
	}
}

// commandsWaiting runs the commands sent while a round is under way.
func (e *Engine) commandsWaiting(ctx context.Context) {
	for {
		select {
		case cmd := <-e.desk.cmds:
			cmd(ctx)
		default:
			return
		}
	}
}

// drop lets a parent go that another engine has taken over: it is not
// ended (the other engine works it), and no more is placed or written for
// it here. The loop's sweep removes it.
func (e *Engine) drop(p *parent, why error) {
	if p.moved {
		return
	}
	p.moved = true
	e.log.Warn().Str("parent", p.spec.ID).Err(why).Msg("another engine works this parent now; this one lets it go")
}

// checkpointAll writes every live parent's checkpoint as the loop stops,
// after a last flush: a service stopped in good order leaves nothing open,
// so its restart needs no venue to answer for children it recorded.
func (e *Engine) checkpointAll(ctx context.Context) {
	if e.journal == nil {
		return
	}
	if err := e.flushLoop(context.WithoutCancel(ctx)); err != nil {
		return // what was not stored stays open in the checkpoints
	}
	for _, p := range e.desk.order {
		if p.moved {
			continue
		}
		p.flushed()
		if err := e.save(ctx, p); err != nil {
			e.log.Error().Str("parent", p.spec.ID).Err(err).Msg("checkpoint at shutdown failed; a restart asks the venues for its open children")
		}
	}
}

// keep checkpoints a parent from the serving loop. A parent whose
// checkpoint the bus does not take (ErrBusDown) joins the unsaved set,
// written again before anything more is placed, ended parents included (a
// cancel that was not written must not come back as working after a
// restart); the error is returned so that a command can say its effect is
// not durable yet. One another engine took over (ErrJournalConflict) is
// let go. Another failure stops the parent: failed, as a parent whose
// fills cannot be published.
func (e *Engine) keep(ctx context.Context, p *parent) error {
	err := e.save(ctx, p)
	switch {
	case err == nil:
		delete(e.desk.unsaved, p.spec.ID)
		return nil
	case errors.Is(err, ErrJournalConflict):
		e.drop(p, err)
		return err
	case errors.Is(err, ErrBusDown):
		e.desk.busDown = true
		e.desk.unsaved[p.spec.ID] = p
		return err
	case p.state.Terminal():
		e.log.Error().Str("parent", p.spec.ID).Err(err).Msg("the ended parent's checkpoint could not be written")
		return err
	}
	e.log.Error().Str("parent", p.spec.ID).Err(err).Msg("checkpoint failed; the parent stops")
	e.finish(context.WithoutCancel(ctx), p, e.clk.Now(), Failed, err.Error())
	if err := e.save(ctx, p); err != nil {
		e.log.Error().Str("parent", p.spec.ID).Err(err).Msg("the failed parent's checkpoint could not be written")
	}
	return err
}

// writeUnsaved writes again the checkpoints the bus did not take; it
// reports whether all are written.
func (e *Engine) writeUnsaved(ctx context.Context) bool {
	for _, p := range e.desk.unsaved {
		if !p.moved {
			if err := e.keep(ctx, p); errors.Is(err, ErrBusDown) {
				return false
			}
		} else {
			delete(e.desk.unsaved, p.spec.ID)
		}
	}
	return len(e.desk.unsaved) == 0
}

// Adopt takes over a parent from its checkpoint (a restarted service, or
// an engine taking over another's): one that ended becomes a status and a
// taken id; one still working is restored (its open children go to the
// venues first, by client id) and worked from its next slice. s is the
// spec as the caller built it again from cp.Origin.
func (e *Engine) Adopt(ctx context.Context, s ParentSpec, cp Checkpoint) (Status, error) {
	var st Status
	err := e.do(ctx, func(lctx context.Context) error {
		if _, dup := e.desk.parents[s.ID]; dup || e.desk.ended[s.ID] {
			return fmt.Errorf("%w: %s", ErrDuplicateParent, s.ID)
		}
		if state, ok := ParseState(cp.State); ok && state.Terminal() {
			st = checkpointStatus(s, cp)
			e.desk.ended[s.ID] = true
			e.desk.mu.Lock()
			e.desk.status[s.ID] = st
			e.desk.mu.Unlock()
			return nil
		}
		p, err := e.restore(lctx, s, cp, false)
		if err == nil {
			// Claimed: the checkpoint now names this engine. One written
			// since cp was read (its owner not stopped after all) makes it
			// a conflict, and the parent stays the other's.
			err = e.save(lctx, p)
		}
		if err != nil {
			return err
		}
		if now := e.clk.Now(); p.next.Before(now) {
			p.next = now
		}
		e.desk.parents[s.ID] = p
		e.desk.order = append(e.desk.order, p)
		st = e.publish(p)
		e.log.Info().Str("parent", s.ID).Str("state", cp.State).Stringer("filled", p.filled).Int("open_children", len(p.open)).
			Msg("adopted from its checkpoint; open children are asked for at the venues first")
		return nil
	})
	return st, err
}

// checkpointStatus is an ended parent's status from its checkpoint.
func checkpointStatus(s ParentSpec, cp Checkpoint) Status {
	state, _ := ParseState(cp.State)
	sum := Summary{ParentID: s.ID, State: state, Reason: cp.Reason, Side: s.Side, Symbol: s.Symbol, Qty: s.Qty,
		Filled: cp.Filled, Notional: cp.Notional, Fees: cp.Fees, ArrivalPrice: cp.ArrivalPrice, MaxParticipation: cp.MaxPart,
		ChildOrders: cp.Children, Fills: cp.Fills, Rejections: cp.Rejects, OtherFees: cp.OtherFees, Venues: cp.Venues}
	names := make([]string, len(cp.Venues))
	for i, v := range cp.Venues {
		names[i] = v.Venue
	}
	return Status{Summary: sum, Strategy: s.Strategy, Start: s.Start, End: cp.End, LimitPrice: cp.LimitPrice,
		BandBps: cp.BandBps, MaxParticipation: cp.MaxParticipation, VenueNames: names, Target: cp.Target, Updated: cp.Saved}
}

// flushLoop flushes the bus from the serving loop. What cannot be stored
// (the bus is down) is kept by the publisher and sent again at the next
// flush; meanwhile the loop places nothing (busUp). No parent fails for
// it: a lost connection must not end an order, nor lose its fills.
func (e *Engine) flushLoop(ctx context.Context) error {
	f, ok := e.pub.(Flusher)
	if !ok {
		return nil
	}
	fs := f.Flush(context.WithoutCancel(ctx))
	d := e.desk
	if len(fs) > 0 {
		if !d.busDown {
			e.log.Error().Err(fs[0].Err).Int("unstored", len(fs)).
				Msg("the bus does not store what the engine publishes: nothing is placed until it does; the messages are kept")
		}
		d.busDown = true
		return fmt.Errorf("%w: %d messages kept for later: %v", ErrBusDown, len(fs), fs[0].Err)
	}
	if d.busDown {
		e.log.Warn().Msg("the bus stores again: trading resumes")
	}
	d.busDown = false
	return nil
}

// busUp flushes what the bus could not store before, if anything, and
// writes the checkpoints it did not take; it reports whether the bus is
// up.
func (e *Engine) busUp(ctx context.Context) bool {
	d := e.desk
	if !d.busDown && len(d.unsaved) == 0 {
		return true
	}
	if e.flushLoop(ctx) != nil || !e.writeUnsaved(ctx) {
		d.busDown = true
		return false
	}
	d.busDown = false // the fence, if any, is asked again at the next place
	return true
}

// holdAll skips the due parents' slice while the bus is down: nothing is
// placed that could not be recorded, and they catch up, within their
// caps, once it is back. One whose end time passes meanwhile ends failed,
// with what it filled: what it did is kept for the bus, and its
// checkpoint written when the bus is back.
func (e *Engine) holdAll(ctx context.Context, ps []*parent, now time.Time) {
	for _, p := range ps {
		if p.state.Terminal() || p.moved || p.state == Paused || p.next.After(now) {
			continue
		}
		if !now.Before(p.spec.End) {
			e.finish(context.WithoutCancel(ctx), p, now, Failed, "the bus was down until the end time")
			if e.journal != nil {
				e.desk.unsaved[p.spec.ID] = p
			}
			continue
		}
		p.next = now.Add(p.spec.SliceInterval)
	}
}

// holdForBus holds a parent whose slice stopped because the bus is down.
func (e *Engine) holdForBus(p *parent, now time.Time, why error) {
	if !e.desk.busDown {
		e.log.Error().Str("parent", p.spec.ID).Err(why).Msg("the bus is down: nothing is placed until it is back")
	}
	e.desk.busDown = true
	if e.journal != nil {
		e.desk.unsaved[p.spec.ID] = p
	}
	p.slice++
	p.next = now.Add(p.spec.SliceInterval)
}

// sweep drops ended parents from the loop's working set; their last
// status stays readable and their ids stay taken.
func (e *Engine) sweep() {
	d := e.desk
	live := d.order[:0]
	for _, p := range d.order {
		if p.moved {
			delete(d.parents, p.spec.ID)
			d.mu.Lock()
			delete(d.status, p.spec.ID)
			d.mu.Unlock()
			continue
		}
		if p.state.Terminal() {
			delete(d.parents, p.spec.ID)
			d.ended[p.spec.ID] = true
			continue
		}
		live = append(live, p)
	}
	clear(d.order[len(live):])
	d.order = live
}

// waitOrCommand waits for the clock to reach t, or for a command, which it
// returns instead.
func (e *Engine) waitOrCommand(ctx context.Context, t time.Time) (func(context.Context), bool) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	reached := make(chan struct{})
	go func() {
		_ = e.clk.WaitUntil(wctx, t)
		close(reached)
	}()
	select {
	case <-reached:
		// Time won the race; a command waiting now runs after the slice.
		return nil, false
	case cmd := <-e.desk.cmds:
		cancel()
		<-reached
		return cmd, true
	}
}

// do runs fn in the serving loop and waits for it.
func (e *Engine) do(ctx context.Context, fn func(ctx context.Context) error) error {
	d := e.desk
	d.mu.Lock()
	serving, stopped := d.serving, d.stopped
	d.mu.Unlock()
	if !serving {
		return ErrNotServing
	}
	done := make(chan error, 1)
	select {
	case d.cmds <- func(lctx context.Context) {
		err := fn(lctx)
		// What the command published is stored before it is answered, or,
		// with the bus down, kept and stored when it is back; what makes
		// a command durable is its checkpoint, whose failure the command
		// itself reports.
		_ = e.flushLoop(lctx)
		if len(d.unsaved) > 0 {
			e.busUp(lctx) // a command is a chance to write them
		}
		done <- err
	}:
	case <-ctx.Done():
		return ctx.Err()
	case <-stopped:
		return ErrNotServing
	}
	// Once the loop has the command it runs it to the end: wait for its
	// answer (a caller that gave up would not know what was done).
	select {
	case err := <-done:
		return err
	case <-stopped:
		// Serve returned while running it: done may still have the answer.
		select {
		case err := <-done:
			return err
		default:
			return ErrNotServing
		}
	}
}

// Submit accepts a parent: validated against the venues and the market as
// Run does, then worked from its start time. A refused spec is a
// *SpecError and nothing is placed.
func (e *Engine) Submit(ctx context.Context, s ParentSpec) (Status, error) {
	var st Status
	err := e.do(ctx, func(lctx context.Context) error {
		if k := e.KillState(); k.Engaged {
			return fmt.Errorf("%w since %s (%s): release it first", ErrKilled, k.Since.UTC().Format(time.RFC3339), k.Reason)
		}
		if _, dup := e.desk.parents[s.ID]; dup || e.desk.ended[s.ID] {
			return fmt.Errorf("%w: %s", ErrDuplicateParent, s.ID)
		}
		p, err := e.prepare(lctx, s, false)
		if err != nil {
			return err
		}
		if now := e.clk.Now(); p.next.Before(now) {
			p.next = now // a start in the past begins at once
		}
		// Checkpointed before it is accepted: an order the client was
		// told exists survives a restart, on this engine or another.
		if err := e.save(lctx, p); err != nil {
			return err
		}
		e.desk.parents[s.ID] = p
		e.desk.order = append(e.desk.order, p)
		st = e.publish(p)
		return nil
	})
	return st, err
}

// Pause holds a parent: it places nothing until resumed. Its schedule runs
// on, so a resumed parent catches up, within its caps.
func (e *Engine) Pause(ctx context.Context, id string) (Status, error) {
	return e.command(ctx, id, func(lctx context.Context, p *parent) error {
		if p.state == Paused {
			return nil
		}
		p.resumeTo = p.state
		e.move(p, Paused, "paused by the client")
		return e.emit(lctx, p, e.clk.Now(), bus.KindPaused, func(*bus.EventMsg) {})
	})
}

// Resume lets a paused parent work again from its next slice.
func (e *Engine) Resume(ctx context.Context, id string) (Status, error) {
	return e.command(ctx, id, func(lctx context.Context, p *parent) error {
		if p.state != Paused {
			return nil
		}
		e.move(p, p.resumeTo, "")
		now := e.clk.Now()
		if p.next.Before(now) {
			p.next = now
		}
		return e.emit(lctx, p, now, bus.KindResumed, func(*bus.EventMsg) {})
	})
}

// Cancel ends a parent now: nothing more is placed, what filled stays.
func (e *Engine) Cancel(ctx context.Context, id string) (Status, error) {
	return e.command(ctx, id, func(lctx context.Context, p *parent) error {
		return e.finish(lctx, p, e.clk.Now(), Cancelled, "cancelled by the client")
	})
}

// Amend changes a parent's terms between slices, checked as at submission.
// A refused amendment is a *SpecError and changes nothing.
func (e *Engine) Amend(ctx context.Context, id string, a Amendment) (Status, error) {
	return e.command(ctx, id, func(lctx context.Context, p *parent) error {
		return e.amend(lctx, p, a)
	})
}

// KillAll engages the kill switch and cancels every parent that has not
// ended, all of them whatever fails on the way: a parent whose last events
// cannot be published is cancelled all the same and the errors are
// returned together. New parents are refused until ReleaseKill, also
// when the cancel pass could not run in time (ctx ended first; the error
// says so): then a working parent is cancelled at its next slice.
func (e *Engine) KillAll(ctx context.Context, reason string) ([]Status, error) {
	d := e.desk
	engage := func() {
		d.mu.Lock()
		if !d.kill.Engaged {
			d.kill = KillState{Engaged: true, Reason: reason, Since: e.clk.Now()}
		}
		d.mu.Unlock()
	}
	var out []Status
	err := e.do(ctx, func(lctx context.Context) error {
		// In the loop, with the cancel pass: no slice runs in between.
		engage()
		var errs []error
		for _, p := range d.order {
			if p.state.Terminal() {
				continue
			}
			if err := e.finish(lctx, p, e.clk.Now(), Cancelled, "kill switch: "+reason); err != nil {
				errs = append(errs, fmt.Errorf("parent %s: %w", p.spec.ID, err))
			}
			if err := e.keep(lctx, p); err != nil {
				errs = append(errs, fmt.Errorf("parent %s: cancelled here, not durable yet: %w", p.spec.ID, err))
			}
			out = append(out, e.publish(p))
		}
		e.sweep()
		return errors.Join(errs...)
	})
	if err != nil {
		// The loop may not have taken the pass (stuck on a venue, or not
		// running): engaged all the same, so no submit gets in and a
		// working parent is cancelled at its next slice.
		engage()
	}
	return out, err
}

// Ping waits for the serving loop to run an empty command: nil when the
// loop answers, ErrNotServing when it is not running, ctx's error when it
// does not answer in time (a slice stuck on a venue).
func (e *Engine) Ping(ctx context.Context) error {
	return e.do(ctx, func(context.Context) error { return nil })
}

// ReleaseKill releases the kill switch: parents may be submitted again.
// Those it cancelled stay cancelled.
func (e *Engine) ReleaseKill() KillState {
	d := e.desk
	d.mu.Lock()
	defer d.mu.Unlock()
	d.kill = KillState{}
	return d.kill
}

// KillState says whether the kill switch is engaged, since when and why.
func (e *Engine) KillState() KillState {
	d := e.desk
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.kill
}

// command runs fn on a parent that has not ended, and returns its status.
func (e *Engine) command(ctx context.Context, id string, fn func(ctx context.Context, p *parent) error) (Status, error) {
	var st Status
	err := e.do(ctx, func(lctx context.Context) error {
		p, ok := e.desk.parents[id]
		switch {
		case !ok && e.desk.ended[id]:
			st, _ = e.Status(id)
			return fmt.Errorf("%w: %s is %s", ErrParentEnded, id, st.State)
		case !ok:
			return fmt.Errorf("%w: %s", ErrUnknownParent, id)
		case p.state.Terminal():
			st = e.publish(p)
			return fmt.Errorf("%w: %s is %s", ErrParentEnded, id, p.state)
		}
		err := fn(lctx, p)
		if kerr := e.keep(lctx, p); err == nil && kerr != nil {
			// Done here, and written again as soon as the bus takes it;
			// until then a restart would not know.
			err = fmt.Errorf("%s, but not durable yet: %w", id, kerr)
		}
		st = e.publish(p)
		if p.state.Terminal() {
			e.sweep()
		}
		return err
	})
	return st, err
}

// amend applies a, or nothing when any part of it is refused.
func (e *Engine) amend(ctx context.Context, p *parent, a Amendment) error {
	s := p.spec
	if a.LimitPrice != nil {
		s.LimitPrice = *a.LimitPrice
	}
	if a.BandBps != nil {
		s.BandBps = *a.BandBps
	}
	if a.MaxParticipation != nil {
		s.MaxParticipation = *a.MaxParticipation
	}
	sched := p.sched
	if a.End != nil {
		now := e.clk.Now()
		if !a.End.After(now) {
			return &SpecError{s.ID, "end", fmt.Sprintf("%s is not after now (%s)", a.End.Format(time.RFC3339), now.Format(time.RFC3339))}
		}
		var err error
		switch r := p.sched.(type) {
		case *twap.Schedule:
			sched, err = r.WithEnd(*a.End)
		case Rescheduler:
			sched, err = r.WithEnd(*a.End)
		default:
			return &SpecError{s.ID, "end", fmt.Sprintf("the end time of a %s parent cannot be moved", s.Strategy)}
		}
		if err != nil {
			return &SpecError{s.ID, "end", err.Error()}
		}
		s.End = *a.End
	}
	if err := s.Validate(); err != nil {
		return err
	}
	old := p.spec
	p.spec = s
	if s.LimitPrice.Sign() > 0 && !s.LimitPrice.Equal(old.LimitPrice) {
		if err := e.checkLimitAgainstMarket(ctx, p, false); err != nil {
			p.spec = old
			return err
		}
	}
	p.sched = sched
	if !p.limits.ArrivalPrice.IsZero() {
		p.limits = s.limits(p.limits.ArrivalPrice)
	}
	if p.next.After(s.End) {
		p.next = s.End
	}
	return e.emit(ctx, p, e.clk.Now(), bus.KindAmended, func(m *bus.EventMsg) {
		m.Parent = &bus.ParentInfo{Side: s.Side.String(), Symbol: s.Symbol, QuoteAsset: p.quote(), Quantity: s.Qty,
			Strategy: s.Strategy, Start: s.Start, End: s.End, ArrivalPrice: p.limits.ArrivalPrice, LimitPrice: s.LimitPrice,
			SlippageBandBps: s.BandBps, MaxParticipation: s.MaxParticipation, Venues: p.venueNames()}
	})
}

// publish records a parent's status for readers outside the loop.
func (e *Engine) publish(p *parent) Status { return e.publishAt(p, e.clk.Now()) }

// publishAt records a parent's status as of at: a slice's status carries
// the slice's time, not the time it was published (the clock may have
// moved on during a long round).
func (e *Engine) publishAt(p *parent, at time.Time) Status {
	st := p.status(at)
	e.desk.mu.Lock()
	e.desk.status[p.spec.ID] = st
	e.desk.mu.Unlock()
	return st
}

// Status returns a parent's status as of its last slice or command.
func (e *Engine) Status(id string) (Status, bool) {
	e.desk.mu.Lock()
	defer e.desk.mu.Unlock()
	st, ok := e.desk.status[id]
	return st, ok
}

// MeasureLoopCPU makes the serving loop keep one OS thread, so that
// LoopCPU can read the loop's CPU time from that thread's clock. Call it
// before Serve. It is for benchmarks: a loop locked to its thread hands
// the thread over each time it waits (for a checkpoint's write, say),
// which costs the process about a tenth more CPU.
func (e *Engine) MeasureLoopCPU() { e.measureLoop = true }

// LoopCPU returns the CPU time the serving loop has spent (its thread's
// clock, so the bus, recorder and API are not in it) and how many slices
// it has worked; ok is false unless MeasureLoopCPU was called before
// Serve and the platform measures a thread's CPU.
func (e *Engine) LoopCPU() (cpu time.Duration, slices int64, ok bool) {
	d := e.desk
	return time.Duration(d.loopCPU.Load()), d.slices.Load(), d.cpuKnown.Load()
}

// Behind counts the parents still working (neither ended nor paused)
// whose last slice or command came before t: how far the loop lags the
// clock. It copies nothing, so a monitor may ask often.
func (e *Engine) Behind(t time.Time) int {
	e.desk.mu.Lock()
	defer e.desk.mu.Unlock()
	n := 0
	for _, st := range e.desk.status {
		if !st.State.Terminal() && st.State != Paused && st.Updated.Before(t) {
			n++
		}
	}
	return n
}

// Statuses returns every parent's status, by start time then id.
func (e *Engine) Statuses() []Status {
	e.desk.mu.Lock()
	out := make([]Status, 0, len(e.desk.status))
	for _, st := range e.desk.status {
		out = append(out, st)
	}
	e.desk.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Start.Equal(out[j].Start) {
			return out[i].Start.Before(out[j].Start)
		}
		return out[i].ParentID < out[j].ParentID
	})
	return out
}

func (p *parent) venueNames() []string {
	names := make([]string, len(p.venues))
	for i, v := range p.venues {
		names[i] = v.Name()
	}
	return names
}

func (p *parent) status(now time.Time) Status {
	s := p.spec
	st := Status{Summary: p.summary(), Strategy: s.Strategy, Start: s.Start, End: s.End, LimitPrice: s.LimitPrice,
		BandBps: s.BandBps, MaxParticipation: s.MaxParticipation, VenueNames: p.venueNames(), Target: p.target,
		Pending: p.pendingQty(), Updated: now}
	// The summary's maps are the loop's: readers get a copy.
	st.OtherFees = make(map[string]decimal.Decimal, len(p.otherFees))
	for k, v := range p.otherFees {
		st.OtherFees[k] = v
	}
	return st
}
