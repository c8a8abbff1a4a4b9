// Package settlement records what the engine publishes: a durable
// JetStream consumer writes every fill once (keyed by venue and venue trade
// id) and every event to a ledger, acknowledging only after the commit, and
// the reports are computed from the ledger alone.
package settlement

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	_ "modernc.org/sqlite" // the pure-Go SQLite driver, "sqlite"

	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/market"
)

// Ledger is the settlement record: fills, events and parent orders.
// Decimals are stored as text, exactly; times as RFC 3339 UTC text.
type Ledger struct {
	db *sql.DB
}

// schema is portable SQL (SQLite and PostgreSQL).
var schema = []string{
	`CREATE TABLE IF NOT EXISTS fills (
		venue TEXT NOT NULL, trade_id TEXT NOT NULL, parent_id TEXT NOT NULL,
		client_order_id TEXT NOT NULL, order_id TEXT NOT NULL, symbol TEXT NOT NULL,
		side TEXT NOT NULL, price TEXT NOT NULL, qty TEXT NOT NULL, fee TEXT NOT NULL,
		fee_asset TEXT NOT NULL, liquidity TEXT NOT NULL, time TEXT NOT NULL,
		PRIMARY KEY (venue, trade_id))`,
	`CREATE INDEX IF NOT EXISTS fills_by_parent ON fills (parent_id, time)`,
	`CREATE TABLE IF NOT EXISTS events (
		parent_id TEXT NOT NULL, seq BIGINT NOT NULL, kind TEXT NOT NULL,
		time TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (parent_id, seq))`,
	`CREATE TABLE IF NOT EXISTS parents (
		parent_id TEXT PRIMARY KEY, side TEXT NOT NULL DEFAULT '', symbol TEXT NOT NULL DEFAULT '',
		quantity TEXT NOT NULL DEFAULT '0', strategy TEXT NOT NULL DEFAULT '',
		start_time TEXT NOT NULL DEFAULT '', end_time TEXT NOT NULL DEFAULT '',
		arrival_price TEXT NOT NULL DEFAULT '0', limit_price TEXT NOT NULL DEFAULT '0',
		slippage_band_bps TEXT NOT NULL DEFAULT '0', max_participation TEXT NOT NULL DEFAULT '0',
		venues TEXT NOT NULL DEFAULT '', state TEXT NOT NULL DEFAULT 'accepted',
		market_vwap TEXT NOT NULL DEFAULT '0', observed_participation TEXT NOT NULL DEFAULT '0',
		reason TEXT NOT NULL DEFAULT '')`,
}

// OpenSQLite opens (creating if needed) a SQLite ledger file.
func OpenSQLite(path string) (*Ledger, error) {
	if path == "" {
		return nil, errors.New("ledger: empty SQLite path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("ledger %s: %w", path, err)
	}
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("ledger %s: %w", path, err)
	}
	// One writer at a time is SQLite's model; one connection keeps it simple
	// and avoids SQLITE_BUSY between the fills and events consumers.
	db.SetMaxOpenConns(1)
	l := &Ledger{db: db}
	if err := l.migrate(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("ledger %s: %w", path, err)
	}
	return l, nil
}

// Open opens a ledger by driver name. Only "sqlite" for now.
func Open(driver, dsn string) (*Ledger, error) {
	switch driver {
	case "", "sqlite":
		return OpenSQLite(dsn)
	}
	return nil, fmt.Errorf("ledger: driver %q not supported; allowed: sqlite", driver)
}

func (l *Ledger) migrate(ctx context.Context) error {
	for _, q := range schema {
		if _, err := l.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	return nil
}

// Close closes the database.
func (l *Ledger) Close() error { return l.db.Close() }

// RecordFill stores a fill once; it reports whether it was new.
func (l *Ledger) RecordFill(ctx context.Context, m bus.FillMsg) (bool, error) {
	var added bool
	err := l.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO fills (venue, trade_id, parent_id, client_order_id, order_id,
			symbol, side, price, qty, fee, fee_asset, liquidity, time)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (venue, trade_id) DO NOTHING`,
			m.Venue, m.TradeID, m.ParentID, m.ClientID, m.OrderID, m.Symbol, m.Side,
			m.Price.String(), m.Qty.String(), m.Fee.String(), m.FeeAsset, m.Liquidity, fmtTime(m.Time))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		added = n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("record fill %s: %w", m.MsgID(), err)
	}
	return added, nil
}

// RecordEvent stores an event once and applies it to its parent: an
// accepted event creates the parent, an amended one changes its terms, a
// done event closes it.
func (l *Ledger) RecordEvent(ctx context.Context, m bus.EventMsg) (bool, error) {
	body, err := json.Marshal(m)
	if err != nil {
		return false, err
	}
	var added bool
	err = l.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO events (parent_id, seq, kind, time, body)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (parent_id, seq) DO NOTHING`,
			m.ParentID, m.Seq, m.Kind, fmtTime(m.Time), string(body))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil || n == 0 {
			return err
		}
		added = true
		switch {
		case m.Kind == bus.KindAccepted && m.Parent != nil:
			p := m.Parent
			_, err = tx.ExecContext(ctx, `INSERT INTO parents (parent_id, side, symbol, quantity, strategy,
				start_time, end_time, arrival_price, limit_price, slippage_band_bps, max_participation, venues)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (parent_id) DO UPDATE SET side = excluded.side, symbol = excluded.symbol,
				quantity = excluded.quantity, strategy = excluded.strategy, start_time = excluded.start_time,
				end_time = excluded.end_time, arrival_price = excluded.arrival_price,
				limit_price = excluded.limit_price, slippage_band_bps = excluded.slippage_band_bps,
				max_participation = excluded.max_participation, venues = excluded.venues`,
				m.ParentID, p.Side, p.Symbol, p.Quantity.String(), p.Strategy, fmtTime(p.Start), fmtTime(p.End),
				p.ArrivalPrice.String(), p.LimitPrice.String(), p.SlippageBandBps.String(),
				p.MaxParticipation.String(), strings.Join(p.Venues, ","))
		case m.Kind == bus.KindAmended && m.Parent != nil:
			p := m.Parent
			_, err = tx.ExecContext(ctx, `UPDATE parents SET end_time = ?, limit_price = ?, slippage_band_bps = ?,
				max_participation = ? WHERE parent_id = ?`, fmtTime(p.End), p.LimitPrice.String(),
				p.SlippageBandBps.String(), p.MaxParticipation.String(), m.ParentID)
		case m.Kind == bus.KindDone && m.Summary != nil:
			s := m.Summary
			_, err = tx.ExecContext(ctx, `INSERT INTO parents (parent_id, state, market_vwap, observed_participation, reason)
				VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (parent_id) DO UPDATE SET state = excluded.state, market_vwap = excluded.market_vwap,
				observed_participation = excluded.observed_participation, reason = excluded.reason`,
				m.ParentID, s.State, s.MarketVWAP.String(), s.MaxParticipation.String(), s.Reason)
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("record event %s: %w", m.MsgID(), err)
	}
	return added, nil
}

func (l *Ledger) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// HasParent reports whether the ledger knows parent id (from any event or
// fill).
func (l *Ledger) HasParent(ctx context.Context, id string) (bool, error) {
	var n int
	err := l.db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM parents WHERE parent_id = ?)
		+ (SELECT COUNT(*) FROM fills WHERE parent_id = ?)`, id, id).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("ledger: look up parent %s: %w", id, err)
	}
	return n > 0, nil
}

// Fill is a recorded fill with the parent it belongs to.
type Fill struct {
	market.Fill
	ParentID string
}

// Fills returns the fills of a parent (every fill when parentID is empty),
// by time then venue and trade id.
func (l *Ledger) Fills(ctx context.Context, parentID string) ([]Fill, error) {
	q := `SELECT venue, trade_id, parent_id, client_order_id, order_id, symbol, side, price, qty, fee,
		fee_asset, liquidity, time FROM fills`
	var args []any
	if parentID != "" {
		q += ` WHERE parent_id = ?`
		args = append(args, parentID)
	}
	rows, err := l.db.QueryContext(ctx, q+` ORDER BY time, venue, trade_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("ledger: fills: %w", err)
	}
	defer rows.Close()
	var out []Fill
	for rows.Next() {
		var f Fill
		var side, price, qty, fee, liq, at string
		if err := rows.Scan(&f.Venue, &f.TradeID, &f.ParentID, &f.ClientID, &f.OrderID, &f.Symbol, &side,
			&price, &qty, &fee, &f.FeeAsset, &liq, &at); err != nil {
			return nil, fmt.Errorf("ledger: fills: %w", err)
		}
		if f.Side, err = market.ParseSide(side); err != nil {
			return nil, fmt.Errorf("ledger: fill %s:%s: %w", f.Venue, f.TradeID, err)
		}
		f.Liquidity = parseLiquidity(liq)
		if err := parseDecimals(map[string]*decimal.Decimal{"price": &f.Price, "qty": &f.Qty, "fee": &f.Fee},
			map[string]string{"price": price, "qty": qty, "fee": fee}); err != nil {
			return nil, fmt.Errorf("ledger: fill %s:%s: %w", f.Venue, f.TradeID, err)
		}
		if f.Time, err = time.Parse(time.RFC3339Nano, at); err != nil {
			return nil, fmt.Errorf("ledger: fill %s:%s: %w", f.Venue, f.TradeID, err)
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

func parseLiquidity(s string) market.Liquidity {
	switch s {
	case "maker":
		return market.Maker
	case "taker":
		return market.Taker
	}
	return 0
}

func parseDecimals(dst map[string]*decimal.Decimal, src map[string]string) error {
	for k, p := range dst {
		d, err := decimal.NewFromString(src[k])
		if err != nil {
			return fmt.Errorf("%s %q: %w", k, src[k], err)
		}
		*p = d
	}
	return nil
}

// timeLayout has fixed-width nanoseconds so that the text sorts as time.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

func fmtTime(t time.Time) string { return t.UTC().Format(timeLayout) }
