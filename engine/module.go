package engine

import (
	"github.com/rs/zerolog"
	"go.uber.org/fx"

	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/risk"
)

// Params are the engine's dependencies in the fx graph. Venue adapters join
// the "venues" value group.
type Params struct {
	fx.In
	Clock   clock.Clock
	Venues  []Venue `group:"venues"`
	Checker *risk.Checker
	Kill    *risk.KillSwitch
	Pub     Publisher
	Log     zerolog.Logger
}

// NewFromParams builds the engine from the fx graph.
func NewFromParams(p Params) (*Engine, error) {
	return New(p.Clock, p.Venues, p.Checker, p.Kill, p.Pub, p.Log)
}

// Module provides *Engine.
var Module = fx.Module("engine", fx.Provide(NewFromParams))
