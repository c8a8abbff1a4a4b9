package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/configs"
	"github.com/blockexec/blockexec/engine"
	"github.com/blockexec/blockexec/risk"
	"github.com/blockexec/blockexec/settlement"
	"github.com/blockexec/blockexec/venues"
	"github.com/blockexec/blockexec/venues/sim"
)

// job is one run of a config file: the fx graph and the pieces the run
// command (and the end-to-end test) drive.
type job struct {
	cfg       *configs.Config
	app       *fx.App
	clk       clock.Clock
	log       zerolog.Logger
	eng       *engine.Engine
	ledger    *settlement.Ledger
	rec       *settlement.Recorder
	conn      *bus.Conn
	sims      []*sim.Venue
	secrets   []venues.Secret
	wrapVenue func(engine.Venue) engine.Venue
}

// jobOptions change how a job is built: serve's clock, and the metrics
// that wrap the venues and the publisher.
type jobOptions struct {
	clk       clock.Clock // nil: newClock(cfg)
	wrapVenue func(engine.Venue) engine.Venue
	wrapPub   func(engine.Publisher) engine.Publisher
	// noRecorder leaves the recorder out (serve with service.record:
	// false): job.rec stays nil, and other processes record.
	noRecorder bool
}

// newJob builds the graph for cfg: clock, bus, ledger and recorder, risk,
// the configured venues in the "venues" group, and the engine.
func newJob(cfg *configs.Config, logOut io.Writer) (*job, error) {
	return newJobWith(cfg, logOut, jobOptions{})
}

func newJobWith(cfg *configs.Config, logOut io.Writer, o jobOptions) (*job, error) {
	log, err := newLogger(cfg, logOut)
	if err != nil {
		return nil, err
	}
	j := &job{cfg: cfg, log: log, wrapVenue: o.wrapVenue}
	if j.clk = o.clk; j.clk == nil {
		if j.clk, err = newClock(cfg); err != nil {
			return nil, err
		}
	}
	opts := []fx.Option{
		fx.WithLogger(func() fxevent.Logger { return fxevent.NopLogger }),
		fx.Supply(log),
		fx.Provide(func() clock.Clock { return j.clk }),
		fx.Supply(busOptions(cfg)),
		bus.Module,
		fx.Provide(func(p *bus.Publisher) engine.Publisher {
			// The engine queues its messages and flushes once a round and
			// after each command, instead of waiting for each one's ack.
			a := p.Async()
			if o.wrapPub != nil {
				return o.wrapPub(a)
			}
			return a
		}),
		fx.Supply(settlement.LedgerOptions{Driver: cfg.Ledger.Driver, DSN: cfg.LedgerDSN()}),
		settlement.Module,
		fx.Supply(killSwitch(cfg)),
		risk.Module,
		engine.Module,
		venueOptions(cfg, j),
		fx.Populate(&j.eng, &j.ledger, &j.conn),
	}
	if !o.noRecorder {
		// fx builds (and starts) only what is asked for.
		opts = append(opts, fx.Populate(&j.rec))
	}
	j.app = fx.New(opts...)
	if err := j.app.Err(); err != nil {
		return nil, fmt.Errorf("wire: %w", err)
	}
	return j, nil
}

// busOptions are the config's NATS settings: the embedded server under
// the data dir, or an external one with its credentials and TLS files.
func busOptions(cfg *configs.Config) bus.Options {
	n := cfg.NATS
	return bus.Options{URL: n.URL, StoreDir: cfg.NATSStoreDir(), Name: "blockexec",
		CredsFile: n.CredsFile, NKeySeedFile: n.NKeySeedFile,
		TLSCAFile: n.TLSCAFile, TLSCertFile: n.TLSCertFile, TLSKeyFile: n.TLSKeyFile, Replicas: n.Replicas}
}

// killSwitch is the config's global switch and its parents' own.
func killSwitch(cfg *configs.Config) *risk.KillSwitch {
	k := risk.NewKillSwitch(cfg.Risk.KillSwitch)
	for _, p := range cfg.Parents {
		if p.Kill {
			k.SetParent(p.ID, true)
		}
	}
	return k
}

// newClock returns the virtual clock set to the earliest parent start, or
// the wall clock.
func newClock(cfg *configs.Config) (clock.Clock, error) {
	if cfg.Run.Clock == configs.ClockWall {
		// A parent that ends in the past is refused by run, unless it is
		// an interrupted one resuming (checkWallEnds).
		return clock.Wall{}, nil
	}
	start := cfg.Market.Start
	for i, p := range cfg.Parents {
		if i == 0 || p.Start.Before(start) {
			start = p.Start
		}
	}
	return clock.NewVirtual(start), nil
}

// checkWallEnds refuses, on the wall clock, a parent whose end has passed,
// unless it is resuming from its checkpoint: that one settles its open
// children at its venues and ends.
func checkWallEnds(cfg *configs.Config, now time.Time, resuming map[string]bool) error {
	if cfg.Run.Clock != configs.ClockWall {
		return nil
	}
	for i, p := range cfg.Parents {
		if !p.End.After(now) && !resuming[p.ID] {
			return cfg.FieldError(fmt.Sprintf("parents[%d].start", i),
				fmt.Sprintf("ends at %s, in the past for clock: wall; use clock: virtual to replay it", p.End.Format(time.RFC3339)))
		}
	}
	return nil
}

func newLogger(cfg *configs.Config, out io.Writer) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(cfg.Run.LogLevel)
	if err != nil {
		return zerolog.Nop(), fmt.Errorf("log_level %q: %w", cfg.Run.LogLevel, err)
	}
	if cfg.Run.LogFormat == "json" {
		return zerolog.New(out).Level(lvl).With().Timestamp().Logger(), nil
	}
	noColor := true
	if f, ok := out.(*os.File); ok {
		noColor = !isTerminal(f)
	}
	w := zerolog.ConsoleWriter{Out: out, TimeFormat: time.TimeOnly, NoColor: noColor}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

// start starts the graph: embedded NATS, streams, ledger, recorder.
func (j *job) start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return j.app.Start(ctx)
}

// stop drains the recorder, closes the ledger and stops NATS.
func (j *job) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return j.app.Stop(ctx)
}
