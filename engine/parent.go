package engine

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/risk"
)

// ParentSpec is a parent order as the engine receives it.
type ParentSpec struct {
	ID                  string
	Side                market.Side
	Symbol              string
	Qty                 decimal.Decimal
	Strategy            string // "twap"
	Start, End          time.Time
	SliceInterval       time.Duration
	ParticipationWindow time.Duration   // default SliceInterval
	MaxParticipation    decimal.Decimal // (0, 1]
	BandBps             decimal.Decimal // slippage band vs arrival
	LimitPrice          decimal.Decimal // floor (sell) / ceiling (buy); zero = none
	MaxChildNotional    decimal.Decimal // zero = none
	Venues              []string        // empty = every venue
}

// State is a parent's lifecycle state. The zero value is invalid.
type State int8

const (
	// Accepted: validated, waiting for its start time.
	Accepted State = iota + 1
	// Working: slicing.
	Working
	// Done: the schedule ended; any unfilled remainder is reported.
	Done
	// Cancelled: stopped by the kill switch or the caller.
	Cancelled
	// Failed: stopped by an error.
	Failed
)

var stateNames = map[State]string{Accepted: "accepted", Working: "working", Done: "done", Cancelled: "cancelled", Failed: "failed"}

// String returns the state's name.
func (s State) String() string {
	if n, ok := stateNames[s]; ok {
		return n
	}
	return fmt.Sprintf("state(%d)", int8(s))
}

// Terminal reports whether no further transition is possible.
func (s State) Terminal() bool { return s == Done || s == Cancelled || s == Failed }

// transitions is the lifecycle as a table: (from, to) allowed.
var transitions = map[State][]State{
	Accepted: {Working, Cancelled, Failed},
	Working:  {Done, Cancelled, Failed},
}

func canMove(from, to State) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Validate checks the spec on its own, without the market.
func (s ParentSpec) Validate() error {
	switch {
	case s.ID == "":
		return fmt.Errorf("parent: id is empty")
	case !s.Side.Valid():
		return fmt.Errorf("parent %s: side is not buy or sell", s.ID)
	case s.Qty.Sign() <= 0:
		return fmt.Errorf("parent %s: quantity %s must be positive", s.ID, s.Qty)
	case !s.End.After(s.Start):
		return fmt.Errorf("parent %s: end %s is not after start %s", s.ID, s.End.Format(time.RFC3339), s.Start.Format(time.RFC3339))
	case s.SliceInterval <= 0:
		return fmt.Errorf("parent %s: slice interval %s must be positive", s.ID, s.SliceInterval)
	case s.MaxParticipation.Sign() <= 0 || s.MaxParticipation.GreaterThan(decimal.NewFromInt(1)):
		return fmt.Errorf("parent %s: max participation %s must be in (0, 1]", s.ID, s.MaxParticipation)
	case s.BandBps.Sign() <= 0:
		return fmt.Errorf("parent %s: slippage band %s bps must be positive", s.ID, s.BandBps)
	case s.Strategy != "twap":
		return fmt.Errorf("parent %s: strategy %q: allowed: twap", s.ID, s.Strategy)
	}
	return nil
}

func (s ParentSpec) window() time.Duration {
	if s.ParticipationWindow > 0 {
		return s.ParticipationWindow
	}
	return s.SliceInterval
}

// VenueTally is one venue's share of a parent's execution.
type VenueTally struct {
	Venue    string
	Filled   decimal.Decimal
	Notional decimal.Decimal
	Fees     decimal.Decimal
	Fills    int
}

// AvgPrice returns Notional / Filled, or zero.
func (v VenueTally) AvgPrice() decimal.Decimal {
	if v.Filled.IsZero() {
		return decimal.Zero
	}
	return v.Notional.Div(v.Filled)
}

// Summary is the engine's own tally of a parent.
type Summary struct {
	ParentID         string
	State            State
	Reason           string
	Side             market.Side
	Symbol           string
	Qty              decimal.Decimal
	Filled           decimal.Decimal
	Notional         decimal.Decimal
	Fees             decimal.Decimal
	ArrivalPrice     decimal.Decimal
	MarketVWAP       decimal.Decimal
	MaxParticipation decimal.Decimal
	ChildOrders      int
	Fills            int
	Rejections       int
	Venues           []VenueTally // sorted by venue name
}

// Unfilled returns Qty − Filled.
func (s Summary) Unfilled() decimal.Decimal { return s.Qty.Sub(s.Filled) }

// AvgPrice returns Notional / Filled, or zero.
func (s Summary) AvgPrice() decimal.Decimal {
	if s.Filled.IsZero() {
		return decimal.Zero
	}
	return s.Notional.Div(s.Filled)
}

// ShortfallBps is the cost against arrival in basis points, positive when
// the execution did worse than the arrival price.
func (s Summary) ShortfallBps() decimal.Decimal {
	if s.Filled.IsZero() || s.ArrivalPrice.IsZero() {
		return decimal.Zero
	}
	diff := s.ArrivalPrice.Sub(s.AvgPrice())
	if s.Side == market.Buy {
		diff = diff.Neg()
	}
	return diff.Div(s.ArrivalPrice).Mul(decimal.NewFromInt(10_000))
}

// Progress is what an observer sees after every slice of a parent.
type Progress struct {
	ParentID     string
	State        State
	Qty          decimal.Decimal
	Filled       decimal.Decimal
	Target       decimal.Decimal // cumulative schedule target
	AvgPrice     decimal.Decimal
	ShortfallBps decimal.Decimal
	Now          time.Time
}

// limits returns the risk limits of a parent once its arrival is known.
func (s ParentSpec) limits(arrival decimal.Decimal) risk.Limits {
	return risk.Limits{
		ParentID: s.ID, Side: s.Side, ArrivalPrice: arrival, BandBps: s.BandBps,
		LimitPrice: s.LimitPrice, MaxChildNotional: s.MaxChildNotional, MaxParticipation: s.MaxParticipation,
	}
}
