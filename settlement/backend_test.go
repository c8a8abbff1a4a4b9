package settlement

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx", for creating and dropping the test schemas
)

// pgEnv names the PostgreSQL server the tests may use; unset, they run on
// SQLite only.
const pgEnv = "BLOCKEXEC_TEST_PG_DSN"

// backend opens an empty ledger of one driver for a test, closed (and,
// for PostgreSQL, dropped) at its end.
type backend struct {
	name string
	open func(t *testing.T) *Ledger
}

// backends are SQLite always, and PostgreSQL when BLOCKEXEC_TEST_PG_DSN
// is set (or, with skip, a backend whose open skips the test saying so).
func backends() []backend {
	return []backend{
		{DriverSQLite, func(t *testing.T) *Ledger {
			t.Helper()
			l, err := OpenSQLite(filepath.Join(t.TempDir(), "ledger.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			return l
		}},
		{DriverPostgres, func(t *testing.T) *Ledger {
			t.Helper()
			l, err := OpenPostgres(pgSchema(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			return l
		}},
	}
}

// eachBackend runs f as a subtest per backend.
func eachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

// pgSchema creates a schema of its own for the test on the server of
// BLOCKEXEC_TEST_PG_DSN (runs share the server), drops it at the end, and
// returns a DSN whose search_path is that schema. It skips the test when
// the variable is unset.
func pgSchema(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(pgEnv)
	if dsn == "" {
		t.Skip(pgEnv + " not set: skipping the PostgreSQL ledger (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "blockexec_test_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema on %s: %v", RedactDSN(dsn), err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return withSearchPath(t, dsn, schema)
}

func withSearchPath(t testing.TB, dsn, schema string) string {
	if !IsPostgresURL(dsn) {
		return dsn + " search_path=" + schema
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("%s: %v", pgEnv, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
