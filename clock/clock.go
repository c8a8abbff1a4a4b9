// Package clock is the only source of time: wall time for live runs and a
// virtual clock that jumps ahead as fast as the work allows for simulations.
package clock

import (
	"context"
	"sync"
	"time"
)

// Clock tells the time and waits for it.
type Clock interface {
	Now() time.Time
	// WaitUntil returns once the clock reads t or later, or when ctx ends.
	WaitUntil(ctx context.Context, t time.Time) error
}

// Wall is the real clock.
type Wall struct{}

var _ Clock = Wall{}

// Now returns the current UTC time.
func (Wall) Now() time.Time { return time.Now().UTC() }

// WaitUntil sleeps until t.
func (Wall) WaitUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// Virtual is a clock that moves only when someone waits: WaitUntil jumps
// straight to the requested time. It never moves backwards. Safe for
// concurrent use.
type Virtual struct {
	mu  sync.Mutex
	now time.Time
}

var _ Clock = (*Virtual)(nil)

// NewVirtual returns a virtual clock reading start.
func NewVirtual(start time.Time) *Virtual { return &Virtual{now: start.UTC()} }

// Now returns the virtual time.
func (v *Virtual) Now() time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.now
}

// WaitUntil advances the clock to t if t is later, and returns at once.
func (v *Virtual) WaitUntil(ctx context.Context, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	v.mu.Lock()
	if t.After(v.now) {
		v.now = t.UTC()
	}
	v.mu.Unlock()
	return nil
}

// Advance moves the clock forward by d (d ≤ 0 does nothing).
func (v *Virtual) Advance(d time.Duration) {
	v.mu.Lock()
	if d > 0 {
		v.now = v.now.Add(d)
	}
	v.mu.Unlock()
}

// Manual is a clock that moves only when told to (Set, Advance); WaitUntil
// blocks until it has. For tests of a long-running loop, where a Virtual
// clock would race to the end. Safe for concurrent use.
type Manual struct {
	mu      sync.Mutex
	now     time.Time
	changed chan struct{} // closed and replaced at every move
}

var _ Clock = (*Manual)(nil)

// NewManual returns a manual clock reading start.
func NewManual(start time.Time) *Manual {
	return &Manual{now: start.UTC(), changed: make(chan struct{})}
}

// Now returns the clock's time.
func (m *Manual) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now
}

// WaitUntil blocks until the clock reads t or later, or ctx ends.
func (m *Manual) WaitUntil(ctx context.Context, t time.Time) error {
	for {
		m.mu.Lock()
		now, changed := m.now, m.changed
		m.mu.Unlock()
		if !now.Before(t) {
			return ctx.Err()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// Advance moves the clock forward by d.
func (m *Manual) Advance(d time.Duration) { m.Set(m.Now().Add(d)) }

// Set moves the clock to t if t is later, and wakes the waiters.
func (m *Manual) Set(t time.Time) {
	m.mu.Lock()
	if t.After(m.now) {
		m.now = t.UTC()
		close(m.changed)
		m.changed = make(chan struct{})
	}
	m.mu.Unlock()
}
