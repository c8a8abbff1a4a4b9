package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/configs"
	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/settlement"
	"github.com/blockexec/blockexec/venues/binance/binancefake"
	"github.com/blockexec/blockexec/venues/sim"
	"github.com/blockexec/blockexec/venues/venuetest"
)

// liveBinance is a Binance fake on wall time, as a real exchange would be,
// with credentials made up for the test.
type liveBinance struct {
	fake        *binancefake.Server
	key, secret string
}

func startLiveBinance(t *testing.T, res *binancefake.Restrictions) liveBinance {
	t.Helper()
	now := clock.Wall{}.Now()
	m, err := sim.NewMarket(sim.MarketConfig{Seed: 11, Symbol: "BTCUSDT", Base: "BTC", Quote: "USDT",
		StartPrice: decimal.RequireFromString("63000"), Start: now.Add(-time.Hour).Truncate(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	core, err := sim.New(m, clock.Wall{}, sim.Config{Name: "core", Share: 0.5, Instrument: market.Instrument{
		Tick: decimal.RequireFromString("0.01"), Step: decimal.RequireFromString("0.00001"),
		MinQty: decimal.RequireFromString("0.00001"), MinNotional: decimal.RequireFromString("5"),
		MakerFee: decimal.RequireFromString("0.0001"), TakerFee: decimal.RequireFromString("0.0004")}})
	if err != nil {
		t.Fatal(err)
	}
	l := liveBinance{key: "test-key-" + randomToken(), secret: "test-secret-" + randomToken()}
	l.fake, err = binancefake.New(binancefake.Options{Venue: core, APIKey: l.key, Secret: l.secret, Clock: clock.Wall{},
		Restrictions: res})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.fake.Close)
	return l
}

// liveConfig is a wall-clock config selling 0.9 BTC over six seconds on one
// real binance venue at baseURL, its key from $envKey and its secret from
// secretFile.
func liveConfig(t *testing.T, baseURL, envKey, secretFile string) string {
	t.Helper()
	start := clock.Wall{}.Now().Add(2 * time.Second).Truncate(time.Second)
	src := fmt.Sprintf(`run: {clock: wall, log_level: warn}
market:
  symbol: BTCUSDT
  base: BTC
  quote: USDT
  start_price: "63000"
  start: %s
  daily_volume: "29700"
  daily_volatility: 0.0275
venues:
  - name: binance
    kind: binance
    base_url: %q
    api_key_env: %s
    api_secret_file: %q
parents:
  - id: live-1
    side: sell
    symbol: BTCUSDT
    quantity: "0.9"
    start: %s
    duration: 6s
    slice_interval: 1s
    participation_window: 1m
    max_participation: 1
    slippage_band_bps: 100
`, start.Add(-time.Hour).Format(time.RFC3339), baseURL, envKey, secretFile, start.Format(time.RFC3339))
	path := filepath.Join(t.TempDir(), "live.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeSecret(t *testing.T, secret string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "binance.secret")
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRun_BinanceAtItsBaseURLWithKeysFromEnvAndFile runs the engine in real
// time against a Binance fake reached by base_url, the key read from the
// environment and the secret from a 0600 file, and checks the run settles
// and no credential reaches the output.
func TestRun_BinanceAtItsBaseURLWithKeysFromEnvAndFile(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about ten seconds of wall time")
	}
	l := startLiveBinance(t, &binancefake.Restrictions{EnableReading: true, EnableSpotAndMarginTrading: true, IPRestrict: true})
	t.Setenv("BLOCKEXEC_TEST_BINANCE_KEY", l.key)
	cfg := liveConfig(t, l.fake.URL(), "BLOCKEXEC_TEST_BINANCE_KEY", writeSecret(t, l.secret, 0o600))
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	err := runCommand(context.Background(), runFlags{config: cfg, dataDir: dir, reportJSON: filepath.Join(dir, "r.json")},
		&out, &errOut)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "filled             0.9 (100.00%)") {
		t.Fatalf("report:\n%s", out.String())
	}
	if len(l.fake.Placed()) == 0 {
		t.Fatal("no order reached the exchange")
	}
	report, err := os.ReadFile(filepath.Join(dir, "r.json"))
	if err != nil {
		t.Fatal(err)
	}
	ledger, err := os.ReadFile(filepath.Join(dir, "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	for where, text := range map[string]string{"report": out.String(), "logs": errOut.String(), "report.json": string(report),
		"ledger": string(ledger)} {
		if strings.Contains(text, l.key) || strings.Contains(text, l.secret) {
			t.Fatalf("a credential reached the %s", where)
		}
	}
}

func TestKeysCheck_ReportsAndRefuses(t *testing.T) {
	good := &binancefake.Restrictions{EnableReading: true, EnableSpotAndMarginTrading: true, IPRestrict: true}
	withdraw := &binancefake.Restrictions{EnableReading: true, EnableSpotAndMarginTrading: true, EnableWithdrawals: true}
	for _, tc := range []struct {
		name string
		res  *binancefake.Restrictions
		mode os.FileMode
		env  bool // set the key's variable
		code int
		want string
	}{
		{"fit to trade", good, 0o600, true, 0, "reading, spot and margin trading"},
		{"key can withdraw", withdraw, 0o600, true, exitBadConfig, "can withdraw"},
		{"secret file readable by others", good, 0o644, true, exitBadConfig, "venues[0].api_secret_file: the file it names has mode 0644: group or others can access it"},
		{"key variable unset", good, 0o600, false, exitBadConfig, "venues[0].api_key_env: the environment variable it names is not set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := startLiveBinance(t, tc.res)
			if tc.env {
				t.Setenv("BLOCKEXEC_TEST_BINANCE_KEY2", l.key)
			}
			cfg := liveConfig(t, l.fake.URL(), "BLOCKEXEC_TEST_BINANCE_KEY2", writeSecret(t, l.secret, tc.mode))
			var out bytes.Buffer
			err := keysCheck(context.Background(), cfg, false, &out)
			code := 0
			var ee *exitError
			if errors.As(err, &ee) {
				code = ee.code
			} else if err != nil {
				code = -1
			}
			text := out.String()
			if err != nil {
				text += err.Error()
			}
			if code != tc.code || !strings.Contains(text, tc.want) {
				t.Fatalf("exit %d (want %d): %v\n%s", code, tc.code, err, out.String())
			}
			if strings.Contains(text, l.secret) || strings.Contains(text, l.key) {
				t.Fatal("a credential reached the output")
			}
			if len(l.fake.Placed()) != 0 {
				t.Fatal("keys check placed an order")
			}
		})
	}
}

func TestRun_RefusesAKeyThatCanWithdrawBeforePlacingAnything(t *testing.T) {
	l := startLiveBinance(t, &binancefake.Restrictions{EnableReading: true, EnableSpotAndMarginTrading: true,
		PermitsUniversalTransfer: true, IPRestrict: true})
	t.Setenv("BLOCKEXEC_TEST_BINANCE_KEY3", l.key)
	cfg := liveConfig(t, l.fake.URL(), "BLOCKEXEC_TEST_BINANCE_KEY3", writeSecret(t, l.secret, 0o600))
	var out bytes.Buffer
	err := runCommand(context.Background(), runFlags{config: cfg, dataDir: t.TempDir(), quiet: true}, &out, &out)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitBadConfig || !strings.Contains(err.Error(), "venues[0]") ||
		!strings.Contains(err.Error(), "can withdraw") {
		t.Fatalf("err = %v, want exit %d naming venues[0] and the withdrawal permission", err, exitBadConfig)
	}
	if len(l.fake.Placed()) != 0 {
		t.Fatal("orders were placed with a key that can withdraw")
	}
}

// TestExchanges_NoSecretInLogsEventsLedgerOrReports runs the three exchange
// adapters against their fakes with debug logging and looks for every
// credential, and for the shape of a JWT, a signature or an auth header,
// in the logs, every message on the bus, the ledger file and the reports.
func TestExchanges_NoSecretInLogsEventsLedgerOrReports(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a simulated hour on three exchange fakes")
	}
	cfg := loadExample(t, "unwind-btc-exchanges.yaml")
	cfg.Run.LogLevel = "debug"
	p := &cfg.Parents[0]
	p.End, p.Duration, p.Quantity = p.Start.Add(time.Hour), time.Hour, decimal.RequireFromString("50")
	logs := &venuetest.LogBuffer{}
	j, err := newJob(cfg, logs)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := j.start(ctx); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = j.stop()
		}
	}()
	res, err := j.run(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(j.secrets) != 6 {
		t.Fatalf("%d credentials handed out, want a key and a secret for each of 3 venues", len(j.secrets))
	}
	report, _ := json.Marshal(res.reports)
	var text bytes.Buffer
	settlement.WriteText(&text, res.reports)
	var bus bytes.Buffer
	for _, stream := range []string{"BLOCKEXEC_FILLS", "BLOCKEXEC_EVENTS"} {
		c, err := j.conn.JS.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		for {
			batch, err := c.FetchNoWait(1000)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for m := range batch.Messages() {
				n++
				bus.Write(m.Data())
				for k, vs := range m.Headers() {
					bus.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
				}
			}
			if n == 0 {
				break
			}
		}
	}
	stopped = true
	if err := j.stop(); err != nil { // flush the ledger file before reading it
		t.Fatal(err)
	}
	var ledger []byte
	for _, suffix := range []string{"", "-wal"} {
		b, _ := os.ReadFile(cfg.LedgerDSN() + suffix)
		ledger = append(ledger, b...)
	}
	if bus.Len() == 0 || len(ledger) == 0 || !strings.Contains(logs.String(), "DBG") {
		t.Fatalf("nothing to search: bus %d bytes, ledger %d bytes, debug logs %v", bus.Len(), len(ledger),
			strings.Contains(logs.String(), "DBG"))
	}
	places := map[string]string{"logs": logs.String(), "bus": bus.String(), "ledger": string(ledger),
		"report.json": string(report), "report": text.String()}
	for where, body := range places {
		for _, s := range j.secrets {
			for _, line := range strings.Split(s.Reveal(), "\n") {
				line = strings.TrimSpace(line)
				if strings.HasPrefix(line, "-----") {
					continue
				}
				for i := 0; i+12 <= len(line); i += 12 {
					if strings.Contains(body, line[i:i+12]) {
						t.Fatalf("a credential reached the %s", where)
					}
				}
			}
		}
		for _, shape := range []string{"eyJhbGciOi", "Bearer ", "signature=", "API-Sign", "X-MBX-APIKEY", "BEGIN EC PRIVATE"} {
			if strings.Contains(body, shape) {
				t.Fatalf("%q appears in the %s", shape, where)
			}
		}
	}
}

func TestRun_AVenueDarkAtTheKeyCheckIsLeftToAcceptance(t *testing.T) {
	t.Setenv("BLOCKEXEC_TEST_BINANCE_KEY4", "test-key-"+randomToken())
	// Nothing listens on port 1: the venue is dark.
	path := liveConfig(t, "http://127.0.0.1:1", "BLOCKEXEC_TEST_BINANCE_KEY4", writeSecret(t, "test-secret-"+randomToken(), 0o600))
	cfg, err := configs.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.SetDataDir(t.TempDir())
	logs := &venuetest.LogBuffer{}
	j, err := newJob(cfg, logs)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.checkKeys(context.Background()); err != nil {
		t.Fatalf("a dark venue at the key check stopped the run: %v", err)
	}
	if !strings.Contains(logs.String(), "venue unavailable for the key check") {
		t.Fatalf("no warning: %s", logs.String())
	}
}
