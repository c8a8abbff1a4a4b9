package settlement

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestDollarPlaceholders_SkipQuotedTextAndComments(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"SELECT 1", "SELECT 1"},
		{"a = ? AND b = ?", "a = $1 AND b = $2"},
		{"kind = 'what?' AND x = ?", "kind = 'what?' AND x = $1"},
		{`"odd?col" = ? -- why?` + "\n AND y = ?", `"odd?col" = $1 -- why?` + "\n AND y = $2"},
		{"'it''s?' || ?", "'it''s?' || $1"},
		{"x = 'unterminated ?", "x = 'unterminated ?"},
	} {
		if got := dollarPlaceholders(tc.in); got != tc.want {
			t.Errorf("dollarPlaceholders(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRedactDSN_HidesPasswords(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://u:hunter2@db:5432/x?sslmode=require", "postgres://u:xxxxx@db:5432/x?sslmode=require"},
		{"postgresql://u@db/x?password=hunter2", "postgresql://u@db/x?password=xxxxx"},
		{"host=db user=u password=hunter2 dbname=x", "host=db user=u password=xxxxx dbname=x"},
		{"host=db password='hun ter2' dbname=x", "host=db password=xxxxx dbname=x"},
		{"data/ledger.db", "data/ledger.db"},
	} {
		if got := RedactDSN(tc.in); got != tc.want {
			t.Errorf("RedactDSN(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestOpenPostgres_ErrorsNeverShowThePassword: a server that is not there
// fails the open with the DSN in the message, its password redacted.
func TestOpenPostgres_ErrorsNeverShowThePassword(t *testing.T) {
	for _, dsn := range []string{
		"postgres://blockexec:hunter2secret@127.0.0.1:1/ledger?connect_timeout=2",
		"host=127.0.0.1 port=1 user=blockexec password=hunter2secret connect_timeout=2",
		"postgres://blockexec:hunter2secret@127.0.0.1:1/ledger?sslmode=nonsense",
	} {
		_, err := Open(DriverPostgres, dsn)
		if err == nil {
			t.Fatalf("open %s: no error", RedactDSN(dsn))
		}
		if strings.Contains(err.Error(), "hunter2secret") || !strings.Contains(err.Error(), "ledger ") {
			t.Errorf("error %q: want the redacted DSN and no password", err)
		}
	}
}

func TestOpen_UnknownDriverNamesTheAllowedOnes(t *testing.T) {
	_, err := Open("mysql", "x")
	if err == nil || !strings.Contains(err.Error(), `"mysql" not supported; allowed: sqlite, postgres`) {
		t.Fatalf("err = %v", err)
	}
}

// TestOpenURL_PicksTheDriverFromTheString: a path is a SQLite file, a
// postgres:// URL a PostgreSQL server.
func TestOpenURL_PicksTheDriverFromTheString(t *testing.T) {
	l, err := OpenURL(filepath.Join(t.TempDir(), "l.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Driver() != DriverSQLite {
		t.Errorf("a path opened %s", l.Driver())
	}
	pg, err := OpenURL(pgSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if pg.Driver() != DriverPostgres {
		t.Errorf("a postgres URL opened %s", pg.Driver())
	}
	if ok, err := pg.HasParent(context.Background(), "p1"); err != nil || ok {
		t.Errorf("HasParent on an empty ledger = %v, %v", ok, err)
	}
}
