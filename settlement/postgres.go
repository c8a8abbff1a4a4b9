package settlement

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// pgConns bounds the PostgreSQL pool: the recorder writes from two
// consumers (fills, events) and the service reads reports beside them.
const pgConns = 8

// pgConnectTimeout bounds the first connection when none is set in the DSN
// (connect_timeout), so a wrong host fails the start instead of hanging it.
const pgConnectTimeout = 10 * time.Second

// OpenPostgres opens a PostgreSQL ledger, creating its tables if needed,
// in the schema the DSN's search_path names (default public). dsn is a
// postgres:// URL or a key=value string; a password may come from the DSN,
// PGPASSWORD or ~/.pgpass. Errors show the DSN with its password
// redacted.
func OpenPostgres(dsn string) (*Ledger, error) {
	shown := RedactDSN(dsn)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, scrub(fmt.Errorf("ledger %s: %w", shown, err), dsn)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = pgConnectTimeout
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(pgConns)
	db.SetMaxIdleConns(pgConns)
	l := &Ledger{db: &sqlDB{DB: db, dollar: true}, driver: DriverPostgres}
	ctx, cancel := context.WithTimeout(context.Background(), 2*pgConnectTimeout)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, scrub(fmt.Errorf("ledger %s: %w", shown, err), dsn)
	}
	if err := l.migrate(ctx); err != nil {
		db.Close()
		return nil, scrub(fmt.Errorf("ledger %s: %w", shown, err), dsn)
	}
	return l, nil
}

// kvPassword finds the password of a key=value DSN: password=secret or
// password='se cret'.
var kvPassword = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s]*)`)

// RedactDSN returns dsn fit for a log line or an error: a URL's password,
// or a key=value DSN's password=…, becomes xxxxx. Anything else is
// returned as it is (a SQLite path has no password).
func RedactDSN(dsn string) string {
	if IsPostgresURL(dsn) {
		u, err := url.Parse(dsn)
		if err != nil {
			return "[unparsable postgres URL]"
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	return kvPassword.ReplaceAllString(dsn, "${1}xxxxx")
}

// dsnPassword is the password written in dsn, if any.
func dsnPassword(dsn string) string {
	if IsPostgresURL(dsn) {
		u, err := url.Parse(dsn)
		if err != nil {
			return ""
		}
		if p, ok := u.User.Password(); ok {
			return p
		}
		return u.Query().Get("password")
	}
	m := kvPassword.FindStringSubmatch(dsn)
	if m == nil {
		return ""
	}
	return strings.Trim(m[2], "'")
}

// scrub makes sure err's text does not hold dsn's password, whatever a
// driver put in it; errors.Is and As still see the cause.
func scrub(err error, dsn string) error {
	pw := dsnPassword(dsn)
	if err == nil || pw == "" || !strings.Contains(err.Error(), pw) {
		return err
	}
	return &scrubbedError{msg: strings.ReplaceAll(err.Error(), pw, "xxxxx"), err: err}
}

type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }
