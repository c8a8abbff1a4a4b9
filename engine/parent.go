package engine

import (
	"fmt"
	"slices"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/risk"
)

// ParentSpec is a parent order as the engine receives it.
type ParentSpec struct {
	ID       string
	Side     market.Side
	Symbol   string
	Qty      decimal.Decimal
	Strategy string // twap (default schedule), vwap, pov, ac
	// Schedule, when set, is the strategy's schedule built by the caller
	// (required for every strategy but twap). One that implements
	// VolumeObserver is fed the market volume on the parent's venues
	// before every slice.
	Schedule            Schedule
	Start, End          time.Time
	SliceInterval       time.Duration
	ParticipationWindow time.Duration   // default SliceInterval
	MaxParticipation    decimal.Decimal // (0, 1]
	BandBps             decimal.Decimal // slippage band vs arrival
	LimitPrice          decimal.Decimal // floor (sell) / ceiling (buy); zero = none
	MaxChildNotional    decimal.Decimal // zero = none
	MaxVenueShare       decimal.Decimal // most of a slice one venue may take, (0, 1]; zero = no cap
	// Style is how children are priced: "" walks the book as far as the
	// size needs within the band; StyleTouch places fixed slices (no
	// catch-up) at the best level until the end time, then whatever is left
	// at once (the common open-source TWAP, kept as a baseline).
	Style  string
	Venues []string // empty = every venue
	// Origin is the caller's own description of the parent (the service
	// keeps the order request and its client), stored in the checkpoint
	// so that a restarted caller can build the spec again.
	Origin []byte
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
	// Paused: held by the client; places nothing until resumed.
	Paused
)

var stateNames = map[State]string{Accepted: "accepted", Working: "working", Done: "done", Cancelled: "cancelled",
	Failed: "failed", Paused: "paused"}

// ParseState reads a state's name.
func ParseState(name string) (State, bool) {
	for s, n := range stateNames {
		if n == name {
			return s, true
		}
	}
	return 0, false
}

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
	Accepted: {Working, Paused, Cancelled, Failed},
	Working:  {Done, Paused, Cancelled, Failed},
	Paused:   {Accepted, Working, Done, Cancelled, Failed}, // Done: its end time passed while paused
}

func canMove(from, to State) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Validate checks the spec on its own, without the market. A refusal is
// a *SpecError naming the field as the config and the API spell it.
func (s ParentSpec) Validate() error {
	bad := func(field, format string, a ...any) error {
		return &SpecError{s.ID, field, fmt.Sprintf(format, a...)}
	}
	switch {
	case s.ID == "":
		return bad("id", "the id is empty")
	case !s.Side.Valid():
		return bad("side", "not buy or sell")
	case s.Qty.Sign() <= 0:
		return bad("quantity", "%s must be positive", s.Qty)
	case !s.End.After(s.Start):
		return bad("end", "%s is not after the start %s", s.End.Format(time.RFC3339), s.Start.Format(time.RFC3339))
	case s.SliceInterval <= 0:
		return bad("slice_interval", "%s must be positive", s.SliceInterval)
	case s.MaxParticipation.Sign() <= 0 || s.MaxParticipation.GreaterThan(decimal.NewFromInt(1)):
		return bad("max_participation", "%s must be in (0, 1]", s.MaxParticipation)
	case s.BandBps.Sign() <= 0:
		return bad("slippage_band_bps", "%s basis points must be positive", s.BandBps)
	case !knownStrategies[s.Strategy]:
		return bad("strategy", "%q: allowed: twap, vwap, pov, ac, dump", s.Strategy)
	case s.Strategy != "twap" && s.Schedule == nil:
		return bad("strategy", "%s needs its schedule", s.Strategy)
	}
	// A venue named twice would get two children per slice with one
	// client id: the venue refuses the twin and the slice comes up short.
	for i, v := range s.Venues {
		if slices.Contains(s.Venues[:i], v) {
			return bad("venues", "venue %q is listed twice", v)
		}
	}
	return nil
}

// StyleTouch prices every child at the touch until the end time.
const StyleTouch = "touch"

var knownStrategies = map[string]bool{"twap": true, "vwap": true, "pov": true, "ac": true, "dump": true}

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
	Fees             decimal.Decimal            // in the quote asset
	OtherFees        map[string]decimal.Decimal // fees charged in other assets, by asset
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
