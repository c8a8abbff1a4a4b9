package settlement

import (
	"context"

	"github.com/rs/zerolog"
	"go.uber.org/fx"

	"github.com/blockexec/blockexec/bus"
)

// LedgerOptions say which ledger to open.
type LedgerOptions struct {
	Driver string // DriverSQLite ("" too) or DriverPostgres
	DSN    string // the SQLite file, or the PostgreSQL URL or key=value DSN
}

// Module provides the *Ledger (closed on stop) and the *Recorder (started
// on start, stopped before the ledger closes).
var Module = fx.Module("settlement",
	fx.Provide(newLedgerFx, newRecorderFx),
)

func newLedgerFx(lc fx.Lifecycle, o LedgerOptions) (*Ledger, error) {
	l, err := Open(o.Driver, o.DSN)
	if err != nil {
		return nil, err
	}
	lc.Append(fx.StopHook(l.Close))
	return l, nil
}

func newRecorderFx(lc fx.Lifecycle, c *bus.Conn, l *Ledger, log zerolog.Logger) *Recorder {
	r := NewRecorder(c.JS, l, log, "")
	lc.Append(fx.Hook{
		OnStart: func(ctx context.Context) error { return r.Start(ctx) },
		OnStop:  func(context.Context) error { r.Stop(); return nil },
	})
	return r
}
