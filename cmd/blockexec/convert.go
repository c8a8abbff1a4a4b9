package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/configs"
	"github.com/blockexec/blockexec/engine"
	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/strategies/pov"
	"github.com/blockexec/blockexec/venues/sim"
)

var bps = decimal.NewFromInt(10_000)

// parentSpecs turns the config's parents into engine specs, each with its
// strategy's schedule.
func parentSpecs(cfg *configs.Config) ([]engine.ParentSpec, error) {
	out := make([]engine.ParentSpec, 0, len(cfg.Parents))
	for i, p := range cfg.Parents {
		limit := p.FloorPrice
		if p.Side == market.Buy {
			limit = p.CeilingPrice
		}
		notional := p.MaxChildNotional
		if notional.IsZero() {
			notional = cfg.Risk.MaxChildNotional
		}
		out = append(out, engine.ParentSpec{
			ID: p.ID, Side: p.Side, Symbol: p.Symbol, Qty: p.Quantity, Strategy: p.Strategy,
			Start: p.Start, End: p.End, SliceInterval: p.SliceInterval,
			ParticipationWindow: p.ParticipationWindow, MaxParticipation: p.MaxParticipation,
			BandBps: p.SlippageBandBps, LimitPrice: limit, MaxChildNotional: notional,
			Venues: p.Venues, MaxVenueShare: p.MaxVenueShare,
		})
		sched, err := schedule(cfg, p)
		if err != nil {
			return nil, cfg.FieldError(fmt.Sprintf("parents[%d].strategy", i), err.Error())
		}
		out[i].Schedule = sched
	}
	return out, nil
}

// schedule builds a parent's strategy schedule; nil means the engine's TWAP.
func schedule(cfg *configs.Config, p configs.Parent) (engine.Schedule, error) {
	switch p.Strategy {
	case configs.StrategyPOV:
		return pov.New(p.Quantity, p.Start, p.End, pov.Params{Rate: p.POV.Rate, MinRate: p.POV.MinRate, MaxRate: p.POV.MaxRate})
	case configs.StrategyVWAP:
		return vwapSchedule(cfg, p)
	case configs.StrategyAC:
		return acSchedule(cfg, p)
	}
	return nil, nil
}

func simMarketConfig(cfg *configs.Config) sim.MarketConfig {
	m := cfg.Market
	return sim.MarketConfig{
		Seed: cfg.Run.Seed, Symbol: m.Symbol, Base: m.Base, Quote: m.Quote,
		StartPrice: m.StartPrice, Start: m.Start, DailyVolume: m.DailyVolume,
		DailyVolatility: m.DailyVolatility.InexactFloat64(),
	}
}

func simVenueConfig(cfg *configs.Config, v configs.Venue) sim.Config {
	return sim.Config{
		Name:  v.Name,
		Share: v.Share.InexactFloat64(),
		Instrument: market.Instrument{
			Symbol: cfg.Market.Symbol, Base: cfg.Market.Base, Quote: cfg.Market.Quote,
			Tick: v.Tick, Step: v.Step, MinQty: v.MinQty, MinNotional: v.MinNotional,
			MakerFee: v.MakerFeeBps.Div(bps), TakerFee: v.TakerFeeBps.Div(bps),
		},
	}
}

// specFieldError places an engine rejection of a parent on the config line
// of the field at fault.
func specFieldError(cfg *configs.Config, err error) error {
	var se *engine.SpecError
	if !errors.As(err, &se) {
		return err
	}
	field := se.Field
	switch field {
	case "parent", "id":
		field = ""
	}
	path := cfg.ParentPath(se.ParentID, field)
	return cfg.FieldError(strings.TrimSuffix(path, "."), se.Msg)
}
