package main

import (
	"fmt"

	"github.com/blockexec/blockexec/api"
	"github.com/blockexec/blockexec/configs"
	"github.com/blockexec/blockexec/engine"
	"github.com/blockexec/blockexec/service"
)

// apiSchedules builds an API order's strategy schedule as run builds a
// config parent's: the same strategies, curves and models.
type apiSchedules struct{ cfg *configs.Config }

var _ service.Schedules = apiSchedules{}

// Schedule returns nil for TWAP (the engine's own), else the strategy's.
func (a apiSchedules) Schedule(req api.OrderRequest, spec engine.ParentSpec) (engine.Schedule, error) {
	p := configs.Parent{ID: spec.ID, Side: spec.Side, Symbol: spec.Symbol, Quantity: spec.Qty, Strategy: spec.Strategy,
		Start: spec.Start, End: spec.End, Duration: spec.End.Sub(spec.Start), SliceInterval: spec.SliceInterval,
		ParticipationWindow: spec.ParticipationWindow, MaxParticipation: spec.MaxParticipation,
		SlippageBandBps: spec.BandBps, Venues: spec.Venues, VolumeCurve: req.VolumeCurve}
	if len(p.Venues) == 0 {
		for _, v := range a.cfg.Venues {
			p.Venues = append(p.Venues, v.Name)
		}
	}
	switch spec.Strategy {
	case configs.StrategyPOV:
		if req.POV == nil || req.POV.Rate.Sign() <= 0 {
			return nil, fmt.Errorf("pov needs pov.rate, a fraction in (0, 1)")
		}
		p.POV.Rate = req.POV.Rate
		if req.POV.MinRate != nil {
			p.POV.MinRate = *req.POV.MinRate
		}
		if req.POV.MaxRate != nil {
			p.POV.MaxRate = *req.POV.MaxRate
		}
	case configs.StrategyAC:
		if req.ACLambda == nil || req.ACLambda.Sign() <= 0 {
			return nil, fmt.Errorf("ac needs ac_lambda > 0")
		}
		p.ACLambda = *req.ACLambda
	case configs.StrategyVWAP:
		if n := len(req.VolumeCurve); n != 0 && n != 24 {
			return nil, fmt.Errorf("volume_curve has %d weights; give 24 (hourly, UTC) or none", n)
		}
	}
	return schedule(a.cfg, p)
}
