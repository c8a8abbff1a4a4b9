// Package venues holds what every exchange adapter shares: the errors the
// engine tells apart. Adapters live in sub-packages (sim, and real venues).
package venues

import (
	"errors"
	"fmt"
)

// Sentinel errors adapters wrap so the engine can tell cases apart.
var (
	// ErrUnknownOrder: no order with that client id at the venue.
	ErrUnknownOrder = errors.New("unknown order")
	// ErrUnknownSymbol: the venue does not list the symbol.
	ErrUnknownSymbol = errors.New("unknown symbol")
	// ErrDuplicateClientID: an order with that client id already exists.
	ErrDuplicateClientID = errors.New("duplicate client order id")
	// ErrWouldTake: a post-only order would have crossed the spread.
	ErrWouldTake = errors.New("post-only order would take liquidity")
	// ErrUnavailable: the venue did not answer; state unknown.
	ErrUnavailable = errors.New("venue unavailable")
)

// RejectError is a definite refusal by the venue: nothing was placed.
type RejectError struct {
	Venue  string
	Code   string
	Reason string
}

func (e *RejectError) Error() string {
	return fmt.Sprintf("%s rejected order: %s: %s", e.Venue, e.Code, e.Reason)
}

// IsReject reports whether err is a definite venue rejection.
func IsReject(err error) bool {
	var re *RejectError
	return errors.As(err, &re) || errors.Is(err, ErrDuplicateClientID) || errors.Is(err, ErrWouldTake) || errors.Is(err, ErrUnknownSymbol)
}
