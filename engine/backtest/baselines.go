package backtest

import (
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/engine"
)

// wide is a band that never binds: the baselines have no price guard.
var wide = decimal.NewFromInt(10_000)

// TWAP is the engine's TWAP on every venue, inside the band and the cap.
func TWAP() Strategy {
	return Strategy{Name: "twap", Plan: func(Day) (Plan, error) { return Plan{}, nil }}
}

// Dump sells everything at the start with one marketable order on one
// venue, walking its book, with no band and no participation cap.
func Dump(venue string) Strategy {
	return Strategy{Name: "dump", Plan: func(d Day) (Plan, error) {
		return Plan{Strategy: "dump", Schedule: allAt{qty: d.Config.Qty, at: d.Start}, Venues: []string{venue},
			BandBps: wide, MaxParticipation: decimal.NewFromInt(1)}, nil
	}}
}

// TWAPTouch is the common open-source TWAP: one venue, equal slices priced
// at the best bid (ask for a buy), and a sweep of whatever is left at the
// deadline, with no price guard and no participation cap.
func TWAPTouch(venue string) Strategy {
	return Strategy{Name: "twap-touch", Plan: func(Day) (Plan, error) {
		return Plan{Venues: []string{venue}, Style: engine.StyleTouch, BandBps: wide,
			MaxParticipation: decimal.NewFromInt(1)}, nil
	}}
}

// allAt targets the whole quantity from the start.
type allAt struct {
	qty decimal.Decimal
	at  time.Time
}

func (a allAt) Target(t time.Time) decimal.Decimal {
	if t.Before(a.at) {
		return decimal.Zero
	}
	return a.qty
}
