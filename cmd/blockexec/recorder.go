package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/configs"
	"github.com/blockexec/blockexec/settlement"
)

type recorderFlags struct {
	config string
	every  time.Duration
}

func newRecorderCmd() *cobra.Command {
	var f recorderFlags
	cmd := &cobra.Command{
		Use:   "recorder -c FILE",
		Short: "Record the fills and events of a shared NATS server into the ledger, beside the engines",
		Long: `recorder runs the settlement recorder alone: the durable consumer
"settlement" on the BLOCKEXEC_FILLS and BLOCKEXEC_EVENTS streams of the
config's nats.url, writing each fill and event once into the config's
ledger and acknowledging it after the commit. run and serve record with
the same durable; recorders started beside them share the work (each
message goes to one of them), so a busy bus gets more recorders on other
hosts. Give them all the one PostgreSQL ledger: recorders writing
separate SQLite files would each hold part of the fills.

It needs nats.url: with the embedded server, run and serve record their
own fills and no other process can reach them. The file is checked whole,
but only nats, ledger and run.log_level are used, so the serve config
will do. A serve whose config says service.record: false records nothing
itself and leaves the ledger to recorders like this one.

Every --every it logs how far the durable has settled each stream (every
recorder on it counts) and how many messages wait. Ctrl-C
(or SIGTERM) stops taking messages, writes and acknowledges what it holds
and closes the ledger; what it was handed and had not acknowledged goes to
another recorder after 5 s.`,
		Example: `  blockexec recorder -c configs/prod.yaml
  blockexec recorder -c configs/prod.yaml --every 1m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return recorderCommand(ctx, f, cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVarP(&f.config, "config", "c", "", "config file (YAML) with nats.url and ledger")
	cmd.Flags().DurationVar(&f.every, "every", 10*time.Second, "how often to log progress")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// recorderCommand records until ctx ends, then stops in good order.
func recorderCommand(ctx context.Context, f recorderFlags, logOut io.Writer) error {
	cfg, err := configs.Load(f.config)
	if err != nil {
		return &exitError{exitBadConfig, err}
	}
	if cfg.NATS.URL == "" {
		return &exitError{exitBadConfig, cfg.FieldError("nats.url",
			"the recorder works beside engines on a shared NATS server: set nats.url (with the embedded server, run and serve record their own fills)")}
	}
	if f.every <= 0 {
		return &exitError{exitBadConfig, fmt.Errorf("--every %s: want a positive duration such as 10s", f.every)}
	}
	log, err := newLogger(cfg, logOut)
	if err != nil {
		return &exitError{exitBadConfig, err}
	}
	var rec *settlement.Recorder
	var conn *bus.Conn
	app := fx.New(
		fx.WithLogger(func() fxevent.Logger { return fxevent.NopLogger }),
		fx.Supply(log),
		fx.Supply(busOptions(cfg)),
		bus.Module,
		fx.Supply(settlement.LedgerOptions{Driver: cfg.Ledger.Driver, DSN: cfg.LedgerDSN()}),
		settlement.Module,
		fx.Populate(&rec, &conn), // the recorder starts with the graph
	)
	if err := app.Err(); err != nil {
		return &exitError{exitFailed, fmt.Errorf("wire: %w", err)}
	}
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := app.Start(startCtx); err != nil {
		return &exitError{exitFailed, fmt.Errorf("start: %w", err)}
	}
	log.Info().Str("nats", cfg.NATS.String()).Str("ledger", cfg.LedgerName()).Str("durable", settlement.DefaultDurable).
		Msg("recording")
	tick := time.NewTicker(f.every) //nolint:forbidigo // progress is reported in real time
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
			logProgress(ctx, log, conn.JS)
		}
	}
	log.Info().Msg("stopping: writing what this recorder holds")
	stopCtx, cancelStop := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelStop()
	if err := app.Stop(stopCtx); err != nil {
		return &exitError{exitFailed, fmt.Errorf("stop: %w", err)}
	}
	return nil
}

// logProgress logs, for each stream, how far the shared durable has
// settled it (every recorder on it counts) and how many messages wait:
// stored and not yet handed out, or handed out and not yet acknowledged.
func logProgress(ctx context.Context, log zerolog.Logger, js jetstream.JetStream) {
	ev := log.Info()
	for _, stream := range []string{bus.FillsStream, bus.EventsStream} {
		c, err := js.Consumer(ctx, stream, settlement.DefaultDurable)
		if err != nil {
			log.Warn().Err(err).Str("stream", stream).Msg("progress")
			return
		}
		info, err := c.Info(ctx)
		if err != nil {
			log.Warn().Err(err).Str("stream", stream).Msg("progress")
			return
		}
		ev = ev.Dict(stream, zerolog.Dict().Uint64("settled_through", info.AckFloor.Stream).
			Uint64("waiting", info.NumPending+uint64(info.NumAckPending)))
	}
	ev.Msg("recording")
}
