package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
	"github.com/rs/zerolog"

	"github.com/blockexec/blockexec/configs"
)

// TestExample_PostgresLedgerOverNkeyNATS runs the unwind example with the
// production backends written in its YAML: a PostgreSQL ledger (a fresh
// schema on BLOCKEXEC_TEST_PG_DSN's server) and an external NATS server
// that takes an nkey seed file.
func TestExample_PostgresLedgerOverNkeyNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run skipped in -short mode")
	}
	dsn := os.Getenv("BLOCKEXEC_TEST_PG_DSN")
	if dsn == "" {
		t.Skip("BLOCKEXEC_TEST_PG_DSN not set: skipping the example on a PostgreSQL ledger")
	}
	dsn = pgTestSchema(t, dsn)
	natsURL, seedFile := nkeyServer(t)

	src, err := os.ReadFile("../../configs/examples/unwind-btc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	yaml := string(src)
	for old, repl := range map[string]string{
		"nats:\n  url: \"\"":                 "nats:\n  url: " + natsURL + "\n  nkey_seed_file: " + seedFile + "\n ",
		"driver: sqlite":                     "driver: postgres",
		"dsn: \"\"                  # empty": "dsn: \"" + dsn + "\" #",
	} {
		if !strings.Contains(yaml, old) {
			t.Fatalf("the example no longer has %q", old)
		}
		yaml = strings.Replace(yaml, old, repl, 1)
	}
	cfg, err := configs.Parse("unwind-btc-production.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	cfg.SetDataDir(t.TempDir())
	cfg.Run.LogLevel = zerolog.WarnLevel.String()
	if cfg.Ledger.Driver != configs.LedgerPostgres || cfg.LedgerDSN() != dsn || cfg.NATS.NKeySeedFile != seedFile {
		t.Fatalf("config: ledger %s %s, nats %s", cfg.Ledger.Driver, cfg.LedgerName(), cfg.NATS)
	}
	runExample(t, cfg)

	// report reads the same ledger by its URL.
	var out bytes.Buffer
	if err := reportCommand(context.Background(), reportFlags{ledger: dsn, format: "json"}, &out); err != nil {
		t.Fatalf("report --ledger <postgres url>: %v", err)
	}
	if !strings.Contains(out.String(), `"parent_id": "unwind-1"`) {
		t.Fatalf("report from PostgreSQL:\n%s", out.String())
	}
}

// pgTestSchema creates a schema for this test on the server of dsn,
// dropped at the end, and returns dsn with search_path set to it.
func pgTestSchema(t *testing.T, dsn string) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "blockexec_e2e_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Error(err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// nkeyServer runs a nats-server with JetStream on loopback that admits one
// nkey user, and returns its URL and the user's seed file (mode 0600).
func nkeyServer(t *testing.T) (string, string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	pub, _ := kp.PublicKey()
	seedFile := filepath.Join(t.TempDir(), "blockexec.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		NoSigs: true, NoLog: true, Nkeys: []*natsserver.NkeyUser{{Nkey: pub}}})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	return srv.ClientURL(), seedFile
}
