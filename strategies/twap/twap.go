// Package twap is the time-weighted schedule: the cumulative target grows
// linearly from nothing at the start to the whole quantity at the end.
package twap

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// Schedule is target(t) = Q·(t−start)/(end−start), clamped to [0, Q].
type Schedule struct {
	qty        decimal.Decimal
	start, end time.Time
}

// New returns the schedule for qty over [start, end].
func New(qty decimal.Decimal, start, end time.Time) (*Schedule, error) {
	if qty.Sign() <= 0 {
		return nil, fmt.Errorf("twap: quantity %s must be positive", qty)
	}
	if !end.After(start) {
		return nil, fmt.Errorf("twap: end %s must be after start %s", end.Format(time.RFC3339), start.Format(time.RFC3339))
	}
	return &Schedule{qty: qty, start: start, end: end}, nil
}

// Target returns the cumulative quantity due by t. It is exact at the ends:
// zero at or before start, Q at or after end.
func (s *Schedule) Target(t time.Time) decimal.Decimal {
	switch {
	case !t.After(s.start):
		return decimal.Zero
	case !t.Before(s.end):
		return s.qty
	}
	elapsed := decimal.NewFromInt(int64(t.Sub(s.start)))
	total := decimal.NewFromInt(int64(s.end.Sub(s.start)))
	// Multiply first: Q·elapsed is exact, leaving one rounding in the division.
	return s.qty.Mul(elapsed).Div(total)
}

// WithEnd returns the same schedule ending at end instead: an amended
// parent's.
func (s *Schedule) WithEnd(end time.Time) (*Schedule, error) { return New(s.qty, s.start, end) }
