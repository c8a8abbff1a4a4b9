package configs

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Ledger drivers, the allowed values of ledger.driver.
const (
	LedgerSQLite   = "sqlite"   // a file, ledger.dsn its path
	LedgerPostgres = "postgres" // a server, ledger.dsn a postgres:// URL or key=value DSN
)

// nats reads the nats section: the URL of an external server and how to
// authenticate to it. The embedded server (no url) takes none of the
// options. Files are checked here so that a run fails on the config's
// line, not at the first connection.
// maxReplicas is JetStream's own bound on a stream's replicas.
const maxReplicas = 5

func (c *conv) nats(cfg *Config, r rawNATS) {
	n := NATS{
		URL:          c.str("nats.url", r.URL, false),
		CredsFile:    c.str("nats.creds_file", r.CredsFile, false),
		NKeySeedFile: c.str("nats.nkey_seed_file", r.NKeySeedFile, false),
		TLSCAFile:    c.str("nats.tls_ca_file", r.TLSCAFile, false),
		TLSCertFile:  c.str("nats.tls_cert_file", r.TLSCertFile, false),
		TLSKeyFile:   c.str("nats.tls_key_file", r.TLSKeyFile, false),
		Replicas:     int(c.integer("nats.replicas", r.Replicas)),
	}
	switch {
	case n.Replicas == 0:
		n.Replicas = 1
	case n.Replicas < 1 || n.Replicas > maxReplicas:
		c.fail("nats.replicas", "want 1 to %d servers keeping each stream and bucket (3 on a three-server cluster), got %d", maxReplicas, n.Replicas)
	case n.Replicas > 1 && n.URL == "":
		c.fail("nats.replicas", "%d needs a NATS cluster (nats.url): the embedded server is one server, so 1", n.Replicas)
	}
	if u := n.URL; u != "" {
		p, err := url.Parse(u)
		switch {
		case err != nil:
			// Not echoed: it may hold a password.
			c.fail("nats.url", "want nats://host:port (or tls://host:port), or empty for the embedded server: it does not parse as a URL")
		case (p.Scheme != "nats" && p.Scheme != "tls") || p.Host == "":
			c.fail("nats.url", "want nats://host:port (or tls://host:port), or empty for the embedded server; got %q", p.Redacted())
		}
	}
	files := []struct {
		path, file string
		secret     bool
	}{
		{"nats.creds_file", n.CredsFile, true},
		{"nats.nkey_seed_file", n.NKeySeedFile, true},
		{"nats.tls_ca_file", n.TLSCAFile, false},
		{"nats.tls_cert_file", n.TLSCertFile, false},
		{"nats.tls_key_file", n.TLSKeyFile, true},
	}
	for _, f := range files {
		if f.file == "" {
			continue
		}
		if n.URL == "" {
			c.fail(f.path, "only with nats.url: the embedded server takes no credentials")
			continue
		}
		c.readableFile(f.path, f.file, f.secret)
	}
	switch {
	case n.CredsFile != "" && n.NKeySeedFile != "":
		c.fail("nats.nkey_seed_file", "give creds_file (a JWT and its seed) or nkey_seed_file, not both")
	case (n.TLSCertFile == "") != (n.TLSKeyFile == ""):
		c.fail("nats.tls_cert_file", "give both tls_cert_file and tls_key_file for a client certificate, or neither")
	}
	cfg.NATS = n
}

// readableFile checks that file exists, is a regular file this process
// can read and, for a secret, that group and others cannot.
func (c *conv) readableFile(path, file string, secret bool) {
	fi, err := os.Stat(file)
	switch {
	case err != nil:
		c.fail(path, "cannot use %s: %v", file, unwrapPathError(err))
		return
	case !fi.Mode().IsRegular():
		c.fail(path, "%s is not a regular file", file)
		return
	case secret && fi.Mode().Perm()&0o077 != 0:
		c.fail(path, "%s has mode %04o: group or others can access it; chmod 600 it", file, fi.Mode().Perm())
		return
	}
	f, err := os.Open(file)
	if err != nil {
		c.fail(path, "cannot read %s: %v", file, unwrapPathError(err))
		return
	}
	f.Close()
}

// unwrapPathError drops the *PathError's repetition of the file name.
func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// ledger reads the ledger section. SQLite's file defaults to
// <data_dir>/ledger.db; PostgreSQL needs its DSN.
func (c *conv) ledger(cfg *Config, r rawLedger) {
	l := Ledger{
		Driver: c.oneOf("ledger.driver", r.Driver, DefaultLedgerDriver, LedgerSQLite, LedgerPostgres),
		DSN:    c.str("ledger.dsn", r.DSN, false),
	}
	switch l.Driver {
	case LedgerSQLite:
		if l.DSN == "" {
			cfg.dsnDefault = true
			l.DSN = filepath.Join(cfg.Run.DataDir, "ledger.db")
		} else if isPostgresURL(l.DSN) {
			c.fail("ledger.dsn", "%q is a PostgreSQL URL; set ledger.driver: postgres, or give a file path for sqlite", RedactDSN(l.DSN))
		}
	case LedgerPostgres:
		switch {
		case l.DSN == "":
			c.fail("ledger.dsn", "missing: driver postgres needs dsn, e.g. postgres://blockexec@db.internal:5432/ledger?sslmode=verify-full (the password from PGPASSWORD or ~/.pgpass)")
		case isPostgresURL(l.DSN):
			if _, err := url.Parse(l.DSN); err != nil {
				// Not echoed: an unparsable URL cannot be redacted.
				c.fail("ledger.dsn", "want postgres://user@host:5432/database: it does not parse as a URL")
			}
		case !strings.Contains(l.DSN, "="):
			c.fail("ledger.dsn", "want a postgres:// URL or key=value settings (host=… dbname=…) for driver postgres; got %q", RedactDSN(l.DSN))
		}
	}
	cfg.Ledger = l
}

func isPostgresURL(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://")
}

// kvPassword finds the password of a key=value DSN.
var kvPassword = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s]*)`)

// RedactDSN returns a ledger DSN fit for a log line or an error: a URL's
// password, or a key=value DSN's password=…, becomes xxxxx. A SQLite path
// is returned as it is.
func RedactDSN(dsn string) string {
	if isPostgresURL(dsn) {
		u, err := url.Parse(dsn)
		if err != nil {
			return "[unparsable postgres URL]"
		}
		if q := u.Query(); q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	return kvPassword.ReplaceAllString(dsn, "${1}xxxxx")
}

// LedgerName is the ledger as it may be shown in a message or a log: the
// SQLite file, or the PostgreSQL DSN with its password redacted. Open the
// ledger with LedgerDSN.
func (c *Config) LedgerName() string { return RedactDSN(c.Ledger.DSN) }

// String describes the NATS settings without secrets: the URL with any
// password redacted, and the names of the files in use.
func (n NATS) String() string {
	if n.URL == "" {
		return "embedded"
	}
	s := n.URL
	if u, err := url.Parse(n.URL); err == nil {
		s = u.Redacted()
	} else {
		s = "[unparsable url]"
	}
	for _, f := range []struct{ name, file string }{{"creds", n.CredsFile}, {"nkey", n.NKeySeedFile},
		{"ca", n.TLSCAFile}, {"cert", n.TLSCertFile}} {
		if f.file != "" {
			s += fmt.Sprintf(" %s=%s", f.name, f.file)
		}
	}
	if n.Replicas > 1 {
		s += fmt.Sprintf(" replicas=%d", n.Replicas)
	}
	return s
}
