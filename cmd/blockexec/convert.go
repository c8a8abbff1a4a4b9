package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

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
		terms, err := json.Marshal(runTerms(cfg, p))
		if err != nil {
			return nil, err // a map of strings always encodes
		}
		out[i].Origin = terms
		sched, err := schedule(cfg, p)
		if err != nil {
			return nil, cfg.FieldError(fmt.Sprintf("parents[%d].strategy", i), err.Error())
		}
		out[i].Schedule = sched
	}
	return out, nil
}

// runTerms are a run parent's terms as its config gives them, by config
// field, each in one spelling (0.50 and 0.5 are one quantity): kept in its
// checkpoint as the spec's Origin (JSON), so that a run resumed after a
// crash can be checked to be the same order.
func runTerms(cfg *configs.Config, p configs.Parent) map[string]string {
	decs := func(ds []decimal.Decimal) string {
		out := make([]string, len(ds))
		for i, d := range ds {
			out[i] = d.String()
		}
		return strings.Join(out, ",")
	}
	terms := map[string]string{
		"side": p.Side.String(), "symbol": p.Symbol, "quantity": p.Quantity.String(), "strategy": p.Strategy,
		"start": p.Start.UTC().Format(time.RFC3339Nano), "end": p.End.UTC().Format(time.RFC3339Nano),
		"slice_interval": p.SliceInterval.String(), "participation_window": p.ParticipationWindow.String(),
		"max_participation": p.MaxParticipation.String(), "slippage_band_bps": p.SlippageBandBps.String(),
		"floor_price": p.FloorPrice.String(), "ceiling_price": p.CeilingPrice.String(),
		"max_child_notional": p.MaxChildNotional.String(),                               // the default filled in when left out
		"venues":             strings.Join(slices.Sorted(slices.Values(p.Venues)), ","), // a set: listed in another order, the same
		"max_venue_share":    p.MaxVenueShare.String(), "pov.rate": p.POV.Rate.String(),
		"pov.min_rate": p.POV.MinRate.String(), "pov.max_rate": p.POV.MaxRate.String(),
		"ac.lambda": p.ACLambda.String(), "volume_curve": decs(p.VolumeCurve),
	}
	// What a schedule reads elsewhere in the file is part of the order too:
	// AC's model (acSchedule) and VWAP's daily volume (vwapSchedule).
	shares := func(fees bool) {
		for _, v := range cfg.Venues {
			if slices.Contains(p.Venues, v.Name) {
				terms["venues."+v.Name+".share"] = v.Share.String()
				if fees {
					terms["venues."+v.Name+".taker_fee_bps"] = v.TakerFeeBps.String()
				}
			}
		}
	}
	switch p.Strategy {
	case configs.StrategyAC:
		terms["market.start_price"] = cfg.Market.StartPrice.String()
		terms["market.daily_volatility"] = cfg.Market.DailyVolatility.String()
		shares(true)
	case configs.StrategyVWAP:
		terms["market.daily_volume"] = cfg.Market.DailyVolume.String()
		shares(false)
	}
	return terms
}

// termPath is where term f of parent i (a runTerms key) is written in
// the config, for an error on its line.
func termPath(cfg *configs.Config, i int, f string) string {
	switch {
	case f == "max_child_notional" && cfg.Parents[i].MaxChildNotional.Equal(cfg.Risk.MaxChildNotional):
		return "risk.max_child_notional" // most likely the default, which the parser fills in
	case strings.HasPrefix(f, "market."):
		return f
	case strings.HasPrefix(f, "venues."):
		name, field, _ := strings.Cut(strings.TrimPrefix(f, "venues."), ".") // venue names have no dots
		for j, v := range cfg.Venues {
			if v.Name == name {
				return fmt.Sprintf("venues[%d].%s", j, field)
			}
		}
		return "venues"
	}
	return fmt.Sprintf("parents[%d].%s", i, f)
}

// sameTerms checks that the config's parent i is the order its checkpoint
// was written for (origin, its runTerms then): resuming an order the
// config was edited into since would work the old terms under the new
// ones' name. A checkpoint without terms (written before they were kept)
// is taken as it is.
func sameTerms(cfg *configs.Config, i int, origin []byte) error {
	if len(origin) == 0 {
		return nil
	}
	p := cfg.Parents[i]
	var was map[string]string
	if err := json.Unmarshal(origin, &was); err != nil {
		return cfg.FieldError(fmt.Sprintf("parents[%d].id", i),
			fmt.Sprintf("parent %q has a checkpoint on this NATS server that is not a run's (%v); use a new id", p.ID, err))
	}
	now := runTerms(cfg, p)
	for _, f := range slices.Sorted(maps.Keys(now)) {
		if old, ok := was[f]; ok && old != now[f] {
			show := func(v string) string {
				if v == "" {
					return "none"
				}
				return v
			}
			return cfg.FieldError(termPath(cfg, i, f),
				fmt.Sprintf("%s differs from %s in the interrupted run of parent %q (its checkpoint on this NATS server): "+
					"put the config back to resume that order, or give this one a new id", show(now[f]), show(was[f]), p.ID))
		}
	}
	return nil
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
