package configs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// secretFiles writes a seed, creds, CA, cert and key file with the given
// modes into a fresh directory and returns their paths by name.
func secretFiles(t *testing.T, modes map[string]os.FileMode) map[string]string {
	t.Helper()
	dir := t.TempDir()
	out := map[string]string{}
	for name, mode := range modes {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		out[name] = p
	}
	return out
}

func TestParse_NATSCredentialsAndTLS(t *testing.T) {
	f := secretFiles(t, map[string]os.FileMode{"seed": 0o600, "creds": 0o400, "ca.pem": 0o644,
		"cert.pem": 0o644, "key.pem": 0o600, "open-seed": 0o640, "open-key": 0o604})
	for _, tc := range []struct {
		name, nats string
		path, want string // want "" parses
	}{
		{"nkey and client TLS", "  url: tls://nats.internal:4222\n  nkey_seed_file: " + f["seed"] + "\n  tls_ca_file: " +
			f["ca.pem"] + "\n  tls_cert_file: " + f["cert.pem"] + "\n  tls_key_file: " + f["key.pem"] + "\n", "", ""},
		{"creds", "  url: nats://u:pw@nats.internal:4222\n  creds_file: " + f["creds"] + "\n", "", ""},
		{"seed readable by the group", "  url: nats://x:4222\n  nkey_seed_file: " + f["open-seed"] + "\n",
			"nats.nkey_seed_file", "has mode 0640: group or others can access it; chmod 600 it"},
		{"key readable by others", "  url: nats://x:4222\n  tls_cert_file: " + f["cert.pem"] + "\n  tls_key_file: " + f["open-key"] + "\n",
			"nats.tls_key_file", "has mode 0604"},
		{"creds and seed", "  url: nats://x:4222\n  creds_file: " + f["creds"] + "\n  nkey_seed_file: " + f["seed"] + "\n",
			"nats.nkey_seed_file", "not both"},
		{"cert without key", "  url: nats://x:4222\n  tls_cert_file: " + f["cert.pem"] + "\n",
			"nats.tls_cert_file", "give both tls_cert_file and tls_key_file"},
		{"ca is a directory", "  url: nats://x:4222\n  tls_ca_file: " + filepath.Dir(f["seed"]) + "\n",
			"nats.tls_ca_file", "is not a regular file"},
		{"three replicas on a cluster", "  url: nats://x:4222\n  replicas: 3\n", "", ""},
		{"replicas on the embedded server", "  replicas: 3\n", "nats.replicas", "needs a NATS cluster (nats.url)"},
		{"six replicas", "  url: nats://x:4222\n  replicas: 6\n", "nats.replicas", "want 1 to 5"},
		{"replicas in words", "  url: nats://x:4222\n  replicas: three\n", "nats.replicas", "whole number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("prod.yaml", []byte("nats:\n"+tc.nats+minimal))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if want := strings.Contains(tc.nats, "replicas: 3"); (cfg.NATS.Replicas == 3) != want || cfg.NATS.Replicas == 0 {
					t.Errorf("replicas %d", cfg.NATS.Replicas)
				}
				if s := cfg.NATS.String(); strings.Contains(s, "pw") || strings.Contains(s, f["key.pem"]) {
					t.Errorf("NATS.String() = %q shows a secret", s)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Path != tc.path || !strings.Contains(fe.Msg, tc.want) || fe.File != "prod.yaml" || fe.Line < 2 {
				t.Fatalf("got %v, want prod.yaml:line: %s: …%s…", err, tc.path, tc.want)
			}
		})
	}
}

func TestParse_PostgresLedgerKeepsItsDSN(t *testing.T) {
	cfg, err := Parse("prod.yaml", []byte("ledger:\n  driver: postgres\n  dsn: postgres://blockexec:hunter2@db:5432/ledger\n"+minimal))
	if err != nil {
		t.Fatal(err)
	}
	cfg.SetDataDir("/tmp/elsewhere")
	if cfg.Ledger.Driver != LedgerPostgres || cfg.LedgerDSN() != "postgres://blockexec:hunter2@db:5432/ledger" {
		t.Fatalf("ledger %s %s", cfg.Ledger.Driver, cfg.LedgerName())
	}
	if got := cfg.LedgerName(); got != "postgres://blockexec:xxxxx@db:5432/ledger" {
		t.Errorf("LedgerName() = %q", got)
	}
	kv, err := Parse("prod.yaml", []byte("ledger:\n  driver: postgres\n  dsn: host=db dbname=ledger password=hunter2\n"+minimal))
	if err != nil {
		t.Fatal(err)
	}
	if got := kv.LedgerName(); got != "host=db dbname=ledger password=xxxxx" {
		t.Errorf("LedgerName() = %q", got)
	}
}

func TestParse_PostgresDSNThatDoesNotParseIsNotEchoed(t *testing.T) {
	_, err := Parse("prod.yaml", []byte("ledger:\n  driver: postgres\n  dsn: \"postgres://u:hun%zzter2@db/x\"\n"+minimal))
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Path != "ledger.dsn" || fe.Line != 3 || strings.Contains(err.Error(), "hun") {
		t.Fatalf("err = %v, want ledger.dsn on line 3 without the DSN", err)
	}
}
