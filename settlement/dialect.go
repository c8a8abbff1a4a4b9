package settlement

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"sync"
)

// sqlDB is the ledger's database handle. Every query in this package is
// written once, with ? placeholders; for PostgreSQL they are rewritten to
// $1, $2, … on the way in, so the Ledger stays one implementation over
// both drivers. The methods shadow *sql.DB's, so a query can not bypass
// the rewrite by accident.
type sqlDB struct {
	*sql.DB
	dollar bool // PostgreSQL: $n placeholders

	cache sync.Map // query text -> rewritten text
}

func (d *sqlDB) rebind(q string) string {
	if !d.dollar {
		return q
	}
	if r, ok := d.cache.Load(q); ok {
		return r.(string)
	}
	r := dollarPlaceholders(q)
	d.cache.Store(q, r)
	return r
}

// ExecContext is (*sql.DB).ExecContext in the ledger's dialect.
func (d *sqlDB) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return d.DB.ExecContext(ctx, d.rebind(q), args...)
}

// QueryContext is (*sql.DB).QueryContext in the ledger's dialect.
func (d *sqlDB) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return d.DB.QueryContext(ctx, d.rebind(q), args...)
}

// QueryRowContext is (*sql.DB).QueryRowContext in the ledger's dialect.
func (d *sqlDB) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return d.DB.QueryRowContext(ctx, d.rebind(q), args...)
}

// Exec is ExecContext with a background context.
func (d *sqlDB) Exec(q string, args ...any) (sql.Result, error) {
	return d.ExecContext(context.Background(), q, args...)
}

// Query is QueryContext with a background context.
func (d *sqlDB) Query(q string, args ...any) (*sql.Rows, error) {
	return d.QueryContext(context.Background(), q, args...)
}

// QueryRow is QueryRowContext with a background context.
func (d *sqlDB) QueryRow(q string, args ...any) *sql.Row {
	return d.QueryRowContext(context.Background(), q, args...)
}

// BeginTx starts a transaction in the ledger's dialect.
func (d *sqlDB) BeginTx(ctx context.Context, opts *sql.TxOptions) (*sqlTx, error) {
	tx, err := d.DB.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &sqlTx{Tx: tx, db: d}, nil
}

// sqlTx is a transaction of a sqlDB; see sqlDB.
type sqlTx struct {
	*sql.Tx
	db *sqlDB
}

// ExecContext is (*sql.Tx).ExecContext in the ledger's dialect.
func (t *sqlTx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.Tx.ExecContext(ctx, t.db.rebind(q), args...)
}

// QueryContext is (*sql.Tx).QueryContext in the ledger's dialect.
func (t *sqlTx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return t.Tx.QueryContext(ctx, t.db.rebind(q), args...)
}

// QueryRowContext is (*sql.Tx).QueryRowContext in the ledger's dialect.
func (t *sqlTx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return t.Tx.QueryRowContext(ctx, t.db.rebind(q), args...)
}

// PrepareContext is (*sql.Tx).PrepareContext in the ledger's dialect.
func (t *sqlTx) PrepareContext(ctx context.Context, q string) (*sql.Stmt, error) {
	return t.Tx.PrepareContext(ctx, t.db.rebind(q))
}

// dollarPlaceholders rewrites ? to $1, $2, … outside quoted text
// ('literals', "identifiers") and comments.
func dollarPlaceholders(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'' || c == '"':
			j := strings.IndexByte(q[i+1:], c)
			if j < 0 {
				b.WriteString(q[i:])
				return b.String()
			}
			b.WriteString(q[i : i+j+2])
			i += j + 1
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				b.WriteString(q[i:])
				return b.String()
			}
			b.WriteString(q[i : i+j])
			i += j - 1
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
