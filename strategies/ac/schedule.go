package ac

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// qtyPlaces is the rounding of targets: down to 1e-8 of a share, so a
// target never exceeds what the trajectory allows.
const qtyPlaces = 8

// Schedule releases a parent along an optimal trajectory: the target at t
// is qty·(1 − x(t)/X), x interpolated linearly between the N+1 grid points.
type Schedule struct {
	qty        decimal.Decimal
	start, end time.Time
	done       []float64 // fraction done at each grid point, 0 … 1
}

// NewSchedule returns the optimal schedule for qty over [start, end] in n
// periods; p gives the model (its X, T and N are taken from qty, the
// window and n only through their ratios, so any units will do).
func NewSchedule(qty decimal.Decimal, start, end time.Time, n int, p Params) (*Schedule, error) {
	if qty.Sign() <= 0 {
		return nil, fmt.Errorf("ac: quantity %s must be positive", qty)
	}
	if !end.After(start) {
		return nil, fmt.Errorf("ac: end %s must be after start %s", end.Format(time.RFC3339), start.Format(time.RFC3339))
	}
	p.N = n
	x, err := Trajectory(p)
	if err != nil {
		return nil, err
	}
	done := make([]float64, len(x))
	for j, h := range x {
		done[j] = 1 - h/p.X
	}
	done[len(done)-1] = 1
	return &Schedule{qty: qty, start: start, end: end, done: done}, nil
}

// Target returns the quantity due by t: zero at the start, the whole
// quantity at the end, monotone in between, never above the quantity.
func (s *Schedule) Target(t time.Time) decimal.Decimal {
	switch {
	case !t.After(s.start):
		return decimal.Zero
	case !t.Before(s.end):
		return s.qty
	}
	n := len(s.done) - 1
	pos := float64(t.Sub(s.start)) / float64(s.end.Sub(s.start)) * float64(n)
	j := int(pos)
	if j >= n {
		return s.qty
	}
	f := s.done[j] + (pos-float64(j))*(s.done[j+1]-s.done[j])
	frac := decimal.NewFromFloat(f).Round(12) // float noise must not cost a step
	return decimal.Min(s.qty, s.qty.Mul(frac).RoundDown(qtyPlaces))
}
