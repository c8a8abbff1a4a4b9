package main

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/configs"
	"github.com/blockexec/blockexec/engine"
	"github.com/blockexec/blockexec/engine/backtest"
	"github.com/blockexec/blockexec/marketdata"
	"github.com/blockexec/blockexec/strategies/vwap"
	"github.com/blockexec/blockexec/venues/sim"
)

// vwapSchedule builds a config parent's VWAP schedule: on its volume_curve
// when given, else on the sim's calibrated weekday and weekend curves, with
// the expected daily volume of the parent's venues.
func vwapSchedule(cfg *configs.Config, p configs.Parent) (engine.Schedule, error) {
	var c vwap.Curve
	if len(p.VolumeCurve) > 0 {
		var hourly [24]float64
		for i, w := range p.VolumeCurve {
			hourly[i] = w.InexactFloat64()
		}
		var err error
		if c, err = vwap.FromHourly(hourly); err != nil {
			return nil, err
		}
	} else {
		wd, err := vwap.FromHourly(sim.HourlyCurve(false))
		if err != nil {
			return nil, err
		}
		we, err := vwap.FromHourly(sim.HourlyCurve(true))
		if err != nil {
			return nil, err
		}
		c = vwap.Curve{Weekday: wd.Weekday, Weekend: we.Weekend}
	}
	share := decimal.Zero
	for _, v := range cfg.Venues {
		for _, n := range p.Venues {
			if n == v.Name {
				share = share.Add(v.Share)
			}
		}
	}
	daily := cfg.Market.DailyVolume.Mul(share)
	return vwap.New(p.Quantity, p.Start, p.End, c, vwap.WithDailyVolume(daily, daily))
}

// vwapStrategy learns each day's curve from the --history days before it.
func vwapStrategy(f backtestFlags) ([]backtest.Strategy, error) {
	if f.history < 1 {
		return nil, fmt.Errorf("--history %d: VWAP needs at least one day of history", f.history)
	}
	return []backtest.Strategy{{Name: "vwap", Plan: func(d backtest.Day) (backtest.Plan, error) {
		learned, err := vwap.Learn(historyBars(d.History, d.Date, f.history), d.Date, f.history)
		if err != nil {
			return backtest.Plan{}, fmt.Errorf("vwap curve before %s: %w", d.Date.Format(time.DateOnly), err)
		}
		s, err := vwap.New(d.Config.Qty, d.Start, d.End, learned.Curve,
			vwap.WithDailyVolume(learned.WeekdayVolume, learned.WeekendVolume))
		if err != nil {
			return backtest.Plan{}, err
		}
		return backtest.Plan{Strategy: "vwap", Schedule: s}, nil
	}}}, nil
}

// historyBars turns the recorded minutes of the days before date into bars
// for the curve (only time and volume matter to it).
func historyBars(ms []sim.Minute, date time.Time, days int) []marketdata.Bar {
	from := date.Add(-time.Duration(days+7) * 24 * time.Hour) // slack for incomplete days
	var out []marketdata.Bar
	for _, m := range ms {
		if m.Open.Before(from) || !m.Open.Before(date) {
			continue
		}
		out = append(out, marketdata.Bar{Open: m.Open, Volume: decimal.NewFromFloat(m.Volume)})
	}
	return out
}
