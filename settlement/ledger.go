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
	"sync"
	"time"

	"github.com/shopspring/decimal"
	_ "modernc.org/sqlite" // the pure-Go SQLite driver, "sqlite"

	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/market"
)

// Ledger is the settlement record: fills, events and parent orders.
// Decimals are stored as text, exactly; times as RFC 3339 UTC text. The
// same schema and queries run on SQLite and PostgreSQL.
type Ledger struct {
	db     *sqlDB
	driver string // DriverSQLite or DriverPostgres

	fillStmts sync.Map // rows -> *sql.Stmt, see fillInsert

	// failAfterFills, set by tests, runs inside RecordFills' transaction
	// after its inserts: an error there is a failure in mid-batch.
	failAfterFills func([]bus.FillMsg) error
}

// Ledger drivers, the values of ledger.driver in a config.
const (
	DriverSQLite   = "sqlite"   // a file, through the pure-Go modernc.org/sqlite
	DriverPostgres = "postgres" // a server, through pgx
)

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
		reason TEXT NOT NULL DEFAULT '', terms_seq BIGINT NOT NULL DEFAULT 0)`,
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
	l := &Ledger{db: &sqlDB{DB: db}, driver: DriverSQLite}
	if err := l.migrate(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("ledger %s: %w", path, err)
	}
	return l, nil
}

// Open opens a ledger by driver name: DriverSQLite (or "") with a file
// path, DriverPostgres with a PostgreSQL URL or key=value DSN. Errors
// never repeat a password given in the DSN.
func Open(driver, dsn string) (*Ledger, error) {
	switch driver {
	case "", DriverSQLite:
		return OpenSQLite(dsn)
	case DriverPostgres:
		return OpenPostgres(dsn)
	}
	return nil, fmt.Errorf("ledger: driver %q not supported; allowed: %s, %s", driver, DriverSQLite, DriverPostgres)
}

// OpenURL opens a ledger named by one string, as a command line gives it:
// a postgres:// or postgresql:// URL opens PostgreSQL, anything else is a
// SQLite file path.
func OpenURL(s string) (*Ledger, error) {
	if IsPostgresURL(s) {
		return OpenPostgres(s)
	}
	return OpenSQLite(s)
}

// IsPostgresURL reports whether s is a postgres:// or postgresql:// URL.
func IsPostgresURL(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://")
}

// Driver is the ledger's driver, DriverSQLite or DriverPostgres.
func (l *Ledger) Driver() string { return l.driver }

// Writers is how many of a recorder's transactions the ledger takes at
// once on a stream: two on PostgreSQL, where one commit's flush to disk
// overlaps the other's inserts (the pool has room for both streams' and
// the readers'); one on SQLite, which has one writer.
func (l *Ledger) Writers() int {
	if l.driver == DriverPostgres {
		return 2
	}
	return 1
}

var _ ConcurrentStore = (*Ledger)(nil)

func (l *Ledger) migrate(ctx context.Context) error {
	err := l.tx(ctx, func(tx *sqlTx) error {
		if l.driver == DriverPostgres {
			// Recorders starting together would race CREATE TABLE IF NOT
			// EXISTS (a unique violation in pg_type); one at a time.
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7146033)`); err != nil {
				return err
			}
		}
		for _, q := range schema {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		return l.addTermsSeq(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// addTermsSeq adds parents.terms_seq to a ledger made before it existed:
// the sequence number of the event whose terms the row holds.
func (l *Ledger) addTermsSeq(ctx context.Context, tx *sqlTx) error {
	if l.driver == DriverPostgres {
		_, err := tx.ExecContext(ctx, `ALTER TABLE parents ADD COLUMN IF NOT EXISTS terms_seq BIGINT NOT NULL DEFAULT 0`)
		return err
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_table_info('parents') WHERE name = 'terms_seq'`).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		_, err := tx.ExecContext(ctx, `ALTER TABLE parents ADD COLUMN terms_seq BIGINT NOT NULL DEFAULT 0`)
		return err
	}
	return nil
}

// Close closes the database.
func (l *Ledger) Close() error {
	l.fillStmts.Range(func(_, st any) bool {
		st.(*sql.Stmt).Close()
		return true
	})
	return l.db.Close()
}

// RecordFill stores a fill once; it reports whether it was new.
func (l *Ledger) RecordFill(ctx context.Context, m bus.FillMsg) (bool, error) {
	n, err := l.RecordFills(ctx, []bus.FillMsg{m})
	if err != nil {
		return false, fmt.Errorf("record fill %s: %w", m.MsgID(), err)
	}
	return n == 1, nil
}

// fillColumns are the fills table's columns in insert order.
const fillColumns = `venue, trade_id, parent_id, client_order_id, order_id, symbol, side, price, qty, fee,
	fee_asset, liquidity, time`

// fillsPerInsert is the most rows one INSERT statement carries: 13
// parameters a row stays far below SQLite's 32766 and PostgreSQL's 65535.
// A batch is cut into powers of two (256, 128, …, 1) so that a handful of
// prepared statements serve every batch size.
const fillsPerInsert = 256

// fillInsert returns SQLite's prepared INSERT of n fills, preparing it
// once (PostgreSQL has fillsUnnest). It is INSERT OR IGNORE rather than
// ON CONFLICT (venue, trade_id) DO NOTHING: the same rows for this table,
// whose one uniqueness constraint is that key and whose values are never
// NULL, but a statement that can not abort halfway needs no statement
// journal, which SQLite otherwise writes a copy of every page it changes
// to (a tenth of the insert's work).
func (l *Ledger) fillInsert(ctx context.Context, n int) (*sql.Stmt, error) {
	if st, ok := l.fillStmts.Load(n); ok {
		return st.(*sql.Stmt), nil
	}
	var q strings.Builder
	q.WriteString(`INSERT OR IGNORE INTO fills (` + fillColumns + `) VALUES `)
	for i := range n {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
	}
	st, err := l.db.DB.PrepareContext(ctx, l.db.rebind(q.String()))
	if err != nil {
		return nil, err
	}
	if prev, loaded := l.fillStmts.LoadOrStore(n, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// RecordFills stores fills in one transaction, each once (a fill already
// recorded, or twice in ms, is skipped): nil means all are committed, an
// error means none of them is. It returns how many were new.
func (l *Ledger) RecordFills(ctx context.Context, ms []bus.FillMsg) (int, error) {
	if len(ms) == 0 {
		return 0, nil
	}
	if l.driver == DriverPostgres {
		return l.recordFillsUnnest(ctx, ms)
	}
	// The statements are prepared before the transaction begins: SQLite
	// has one connection, which the transaction holds.
	var chunks [][]bus.FillMsg
	var stmts []*sql.Stmt
	for rest := ms; len(rest) > 0; {
		n := fillsPerInsert
		for n > len(rest) {
			n /= 2
		}
		st, err := l.fillInsert(ctx, n)
		if err != nil {
			return 0, err
		}
		chunks, stmts = append(chunks, rest[:n]), append(stmts, st)
		rest = rest[n:]
	}
	var added int64
	err := l.tx(ctx, func(tx *sqlTx) error {
		args := make([]any, 0, 13*len(chunks[0]))
		for i, chunk := range chunks {
			st := stmts[i]
			args = args[:0]
			for _, m := range chunk {
				args = append(args, m.Venue, m.TradeID, m.ParentID, m.ClientID, m.OrderID, m.Symbol, m.Side,
					m.Price.String(), m.Qty.String(), m.Fee.String(), m.FeeAsset, m.Liquidity, fmtTime(m.Time))
			}
			res, err := tx.StmtContext(ctx, st).ExecContext(ctx, args...)
			if err != nil {
				return err
			}
			n64, err := res.RowsAffected()
			if err != nil {
				return err
			}
			added += n64
		}
		if l.failAfterFills != nil {
			return l.failAfterFills(ms)
		}
		return nil
	})
	if err != nil {
		return 0, fillsErr(ms, err) // rolled back: nothing added
	}
	return int(added), nil
}

// fillsErr names the batch a write failed on.
func fillsErr(ms []bus.FillMsg, err error) error {
	if len(ms) == 1 {
		return err
	}
	return fmt.Errorf("record %d fills (%s … %s): %w", len(ms), ms[0].MsgID(), ms[len(ms)-1].MsgID(), err)
}

// fillsUnnest inserts a batch of fills in one PostgreSQL statement, one
// text array per column: one round trip and one plan whatever the size.
var fillsUnnest = `INSERT INTO fills (` + fillColumns + `)
	SELECT * FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[],
		?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[])
	ON CONFLICT (venue, trade_id) DO NOTHING`

// recordFillsUnnest is RecordFills for PostgreSQL.
func (l *Ledger) recordFillsUnnest(ctx context.Context, ms []bus.FillMsg) (int, error) {
	cols := make([][]string, 13)
	for i := range cols {
		cols[i] = make([]string, len(ms))
	}
	for j, m := range ms {
		for i, v := range [...]string{m.Venue, m.TradeID, m.ParentID, m.ClientID, m.OrderID, m.Symbol, m.Side,
			m.Price.String(), m.Qty.String(), m.Fee.String(), m.FeeAsset, m.Liquidity, fmtTime(m.Time)} {
			cols[i][j] = v
		}
	}
	args := make([]any, len(cols))
	for i, c := range cols {
		args[i] = c
	}
	var added int64
	err := l.tx(ctx, func(tx *sqlTx) error {
		res, err := tx.ExecContext(ctx, fillsUnnest, args...)
		if err != nil {
			return err
		}
		if added, err = res.RowsAffected(); err != nil {
			return err
		}
		if l.failAfterFills != nil {
			return l.failAfterFills(ms)
		}
		return nil
	})
	if err != nil {
		return 0, fillsErr(ms, err) // rolled back: nothing added
	}
	return int(added), nil
}

// RecordEvent stores an event once and applies it to its parent: an
// accepted event creates the parent, an amended one changes its terms, a
// done event closes it.
func (l *Ledger) RecordEvent(ctx context.Context, m bus.EventMsg) (bool, error) {
	n, err := l.RecordEvents(ctx, []bus.EventMsg{m})
	if err != nil {
		return false, fmt.Errorf("record event %s: %w", m.MsgID(), err)
	}
	return n == 1, nil
}

// RecordEvents stores events in one transaction, in order, each once, as
// RecordEvent does: nil means all are committed, an error means none is.
// It returns how many were new.
func (l *Ledger) RecordEvents(ctx context.Context, ms []bus.EventMsg) (int, error) {
	added := 0
	err := l.tx(ctx, func(tx *sqlTx) error {
		for _, m := range ms {
			ok, err := recordEvent(ctx, tx, m)
			if err != nil {
				return fmt.Errorf("event %s: %w", m.MsgID(), err)
			}
			if ok {
				added++
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return added, nil
}

// newerTerms is the SET list of a parents upsert that takes the amendable
// terms of the excluded row only if its event is newer than the one the
// row holds.
const newerTerms = `end_time = CASE WHEN excluded.terms_seq > parents.terms_seq THEN excluded.end_time ELSE parents.end_time END,
	limit_price = CASE WHEN excluded.terms_seq > parents.terms_seq THEN excluded.limit_price ELSE parents.limit_price END,
	slippage_band_bps = CASE WHEN excluded.terms_seq > parents.terms_seq THEN excluded.slippage_band_bps ELSE parents.slippage_band_bps END,
	max_participation = CASE WHEN excluded.terms_seq > parents.terms_seq THEN excluded.max_participation ELSE parents.max_participation END,
	terms_seq = CASE WHEN excluded.terms_seq > parents.terms_seq THEN excluded.terms_seq ELSE parents.terms_seq END`

func recordEvent(ctx context.Context, tx *sqlTx, m bus.EventMsg) (bool, error) {
	body, err := json.Marshal(m)
	if err != nil {
		return false, err
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO events (parent_id, seq, kind, time, body)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (parent_id, seq) DO NOTHING`,
		m.ParentID, m.Seq, m.Kind, fmtTime(m.Time), string(body))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return false, err
	}
	// Events may be committed out of order (recorders sharing the durable,
	// a batch redelivered after a later one committed): the amendable
	// terms are those of the highest-numbered accepted or amended event,
	// whichever order they come in (terms_seq).
	switch {
	case m.Kind == bus.KindAccepted && m.Parent != nil:
		p := m.Parent
		_, err = tx.ExecContext(ctx, `INSERT INTO parents (parent_id, side, symbol, quantity, strategy,
			start_time, arrival_price, venues, end_time, limit_price, slippage_band_bps, max_participation, terms_seq)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (parent_id) DO UPDATE SET side = excluded.side, symbol = excluded.symbol,
			quantity = excluded.quantity, strategy = excluded.strategy, start_time = excluded.start_time,
			arrival_price = excluded.arrival_price, venues = excluded.venues, `+newerTerms,
			m.ParentID, p.Side, p.Symbol, p.Quantity.String(), p.Strategy, fmtTime(p.Start),
			p.ArrivalPrice.String(), strings.Join(p.Venues, ","), fmtTime(p.End), p.LimitPrice.String(),
			p.SlippageBandBps.String(), p.MaxParticipation.String(), m.Seq)
	case m.Kind == bus.KindAmended && m.Parent != nil:
		p := m.Parent
		_, err = tx.ExecContext(ctx, `INSERT INTO parents (parent_id, end_time, limit_price, slippage_band_bps,
			max_participation, terms_seq) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (parent_id) DO UPDATE SET `+newerTerms,
			m.ParentID, fmtTime(p.End), p.LimitPrice.String(), p.SlippageBandBps.String(),
			p.MaxParticipation.String(), m.Seq)
	case m.Kind == bus.KindDone && m.Summary != nil:
		s := m.Summary
		_, err = tx.ExecContext(ctx, `INSERT INTO parents (parent_id, state, market_vwap, observed_participation, reason)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (parent_id) DO UPDATE SET state = excluded.state, market_vwap = excluded.market_vwap,
			observed_participation = excluded.observed_participation, reason = excluded.reason`,
			m.ParentID, s.State, s.MarketVWAP.String(), s.MaxParticipation.String(), s.Reason)
	}
	return err == nil, err
}

func (l *Ledger) tx(ctx context.Context, fn func(*sqlTx) error) error {
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
