package configs

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/market"
)

func TestLoad_EveryExampleLoads(t *testing.T) {
	files, err := filepath.Glob("examples/*.yaml")
	if err != nil || len(files) < 2 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := Load(f); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func TestLoad_UnwindExampleHasTheJob(t *testing.T) {
	cfg, err := Load("examples/unwind-btc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Parents[0]
	start := time.Date(2024, 10, 1, 8, 0, 0, 0, time.UTC)
	if start.Weekday() != time.Tuesday {
		t.Fatalf("start is a %s", start.Weekday())
	}
	checks := []struct {
		name string
		ok   bool
	}{
		{"seed", cfg.Run.Seed == 7},
		{"side", p.Side == market.Sell},
		{"quantity", p.Quantity.Equal(dec("400"))},
		{"start", p.Start.Equal(start)},
		{"end", p.End.Equal(start.Add(8 * time.Hour))},
		{"duration", p.Duration == 8*time.Hour},
		{"slice", p.SliceInterval == time.Minute && p.ParticipationWindow == time.Minute},
		{"participation", p.MaxParticipation.Equal(dec("0.1"))},
		{"band", p.SlippageBandBps.Equal(dec("75"))},
		{"floor", p.FloorPrice.Equal(dec("61000")) && p.CeilingPrice.IsZero()},
		{"child cap from risk", p.MaxChildNotional.Equal(dec("250000"))},
		{"venues", slices.Equal(p.Venues, []string{"simA", "simB", "simC"})},
		{"shares", cfg.Venues[0].Share.Equal(dec("0.5")) && cfg.Venues[1].Share.Equal(dec("0.3")) && cfg.Venues[2].Share.Equal(dec("0.2"))},
		{"fees", cfg.Venues[2].MakerFeeBps.Equal(dec("2")) && cfg.Venues[2].TakerFeeBps.Equal(dec("6"))},
		{"steps", cfg.Venues[1].Step.Equal(dec("0.0001")) && cfg.Venues[2].Step.Equal(dec("0.001"))},
		{"market", cfg.Market.StartPrice.Equal(dec("63000")) && cfg.Market.DailyVolume.Equal(dec("29700")) &&
			cfg.Market.DailyVolatility.Equal(dec("0.0275"))},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: not as in the example", c.name)
		}
	}
}

func TestLoad_AccumulateExampleIsABuyWithACeiling(t *testing.T) {
	cfg, err := Load("examples/accumulate-btc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Parents[0]
	if p.Side != market.Buy || !p.Quantity.Equal(dec("150")) || p.Duration != 4*time.Hour ||
		!p.CeilingPrice.Equal(dec("65000")) || !p.FloorPrice.IsZero() || p.Symbol != "BTCUSDT" {
		t.Fatalf("parent = %+v", p)
	}
}

func TestLoad_MissingFileIsAFieldError(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Line != 1 {
		t.Fatalf("err = %v", err)
	}
}

// minimal is the smallest valid config; tests edit it with strings.Replace.
const minimal = `market:
  symbol: BTCUSDT
  base: BTC
  quote: USDT
  start_price: "63000"
  start: 2024-10-01T00:00:00Z
  daily_volume: "29700"
  daily_volatility: 0.0275
venues:
  - name: simA
    share: 0.5
    tick: "0.01"
    step: "0.00001"
  - name: simB
    share: 0.5
    tick: "0.01"
    step: "0.001"
parents:
  - id: p1
    side: sell
    quantity: 0.1
    start: 2024-10-01T08:00:00Z
    duration: 8h
    max_participation: 0.10
    slippage_band_bps: 75
`

func TestParse_AppliesDefaults(t *testing.T) {
	cfg, err := Parse("min.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Run
	if r.Clock != "virtual" || r.DataDir != "./data" || r.LogLevel != "info" || r.LogFormat != "console" || r.Seed != 0 {
		t.Errorf("run = %+v", r)
	}
	if cfg.Ledger.Driver != "sqlite" || cfg.LedgerDSN() != filepath.Join("data", "ledger.db") {
		t.Errorf("ledger = %+v", cfg.Ledger)
	}
	if cfg.NATS.URL != "" || cfg.NATSStoreDir() != filepath.Join("data", "nats") {
		t.Errorf("nats = %+v, store %s", cfg.NATS, cfg.NATSStoreDir())
	}
	v := cfg.Venues[0]
	if v.Kind != "sim" || !v.MakerFeeBps.IsZero() || !v.MinQty.IsZero() || !v.MinNotional.IsZero() {
		t.Errorf("venue = %+v", v)
	}
	p := cfg.Parents[0]
	if p.Strategy != "twap" || p.SliceInterval != time.Minute || p.ParticipationWindow != time.Minute ||
		p.Symbol != "BTCUSDT" || !slices.Equal(p.Venues, []string{"simA", "simB"}) || !p.MaxChildNotional.IsZero() || p.Kill {
		t.Errorf("parent = %+v", p)
	}
}

func TestParse_ServiceMetricsListen(t *testing.T) {
	cfg, err := Parse("x.yaml", []byte("service:\n  metrics_listen: 127.0.0.1:9464\n"+minimal))
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Service; s.MetricsListen != "127.0.0.1:9464" || s.Listen != DefaultListen {
		t.Fatalf("service = %+v", s)
	}
	if cfg, _ = Parse("x.yaml", []byte(minimal)); cfg.Service.MetricsListen != "" {
		t.Fatalf("metrics_listen defaults to %q, want none: /metrics on listen", cfg.Service.MetricsListen)
	}
}

// serve records by default; service.record: false leaves it to recorders
// on a shared server, and is refused with the embedded one.
func TestParse_ServiceRecord(t *testing.T) {
	if cfg, err := Parse("x.yaml", []byte(minimal)); err != nil || !cfg.Service.Record {
		t.Fatalf("record by default: %v, %v", cfg.Service.Record, err)
	}
	cfg, err := Parse("x.yaml", []byte("nats:\n  url: nats://nats.internal:4222\nservice:\n  record: false\n"+minimal))
	if err != nil || cfg.Service.Record {
		t.Fatalf("record: false on a shared server: %v, %v", cfg.Service.Record, err)
	}
	_, err = Parse("x.yaml", []byte("service:\n  record: false\n"+minimal))
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Path != "service.record" || fe.Line != 2 || !strings.Contains(fe.Msg, "needs nats.url") {
		t.Fatalf("record: false on the embedded server: %v", err)
	}
}

func TestParse_ParticipationWindowDefaultsToSliceInterval(t *testing.T) {
	src := strings.Replace(minimal, "    duration: 8h\n", "    duration: 8h\n    slice_interval: 90s\n", 1)
	cfg, err := Parse("x.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.Parents[0]; p.SliceInterval != 90*time.Second || p.ParticipationWindow != 90*time.Second {
		t.Fatalf("slice %s window %s", p.SliceInterval, p.ParticipationWindow)
	}
}

func TestSetDataDir_MovesDefaultLedgerOnly(t *testing.T) {
	cfg, err := Parse("x.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	cfg.SetDataDir("/tmp/run1")
	if cfg.LedgerDSN() != "/tmp/run1/ledger.db" || cfg.NATSStoreDir() != "/tmp/run1/nats" {
		t.Fatalf("dsn %s store %s", cfg.LedgerDSN(), cfg.NATSStoreDir())
	}
	cfg, err = Parse("x.yaml", []byte("ledger: {dsn: /var/l.db}\n"+minimal))
	if err != nil {
		t.Fatal(err)
	}
	cfg.SetDataDir("/tmp/run2")
	if cfg.LedgerDSN() != "/var/l.db" {
		t.Fatalf("explicit dsn moved to %s", cfg.LedgerDSN())
	}
}

func TestParse_DecimalsAreExact(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`0.1`, "0.1"},
		{`"0.1"`, "0.1"},
		{`'0.1'`, "0.1"},
		{`0.30000000000000004`, "0.30000000000000004"},
		{`0.123456789012345678901234567890`, "0.12345678901234567890123456789"},
		{`12345678901234567890.00000001`, "12345678901234567890.00000001"},
		{`"400"`, "400"},
		{`400`, "400"},
		{`.5`, "0.5"},
	} {
		src := strings.Replace(minimal, "quantity: 0.1", "quantity: "+tc.src, 1)
		cfg, err := Parse("x.yaml", []byte(src))
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		if got := cfg.Parents[0].Quantity; !got.Equal(dec(tc.want)) {
			t.Errorf("%s: got %s want %s", tc.src, got, tc.want)
		}
	}
}

func TestParse_AliasesResolve(t *testing.T) {
	src := strings.Replace(minimal, "start_price: \"63000\"", "start_price: &px \"63000\"", 1)
	src = strings.Replace(src, "    slippage_band_bps: 75\n", "    slippage_band_bps: 75\n    floor_price: *px\n", 1)
	cfg, err := Parse("x.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Parents[0].FloorPrice.Equal(dec("63000")) {
		t.Fatalf("floor = %s", cfg.Parents[0].FloorPrice)
	}
}

func TestParentPath_AndFieldError_PointAtTheField(t *testing.T) {
	data, err := os.ReadFile("examples/unwind-btc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse("unwind.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	path := cfg.ParentPath("unwind-1", "floor_price")
	if path != "parents[0].floor_price" {
		t.Fatalf("path = %q", path)
	}
	if got := cfg.ParentPath("unwind-1", ""); got != "parents[0]" {
		t.Fatalf("parent path = %q", got)
	}
	if got := cfg.ParentPath("nope", "kill"); got != "parents" {
		t.Fatalf("unknown id path = %q", got)
	}
	lineOf := func(s string) int {
		for i, l := range strings.Split(string(data), "\n") {
			if strings.Contains(l, s) {
				return i + 1
			}
		}
		return -1
	}
	for _, tc := range []struct{ path, line string }{
		{path, `floor_price: "61000"`},
		{"parents[0].ceiling_price", "- id: unwind-1"}, // absent: the parent's first key
		{"venues[1].extra", "- name: simB"},            // absent: the list entry
		{"parents[0].venues[2]", "venues: [simA, simB, simC]"},
		{"risk", "risk:"},
	} {
		err := cfg.FieldError(tc.path, "floor above the market")
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Line != lineOf(tc.line) || fe.Path != tc.path || fe.File != "unwind.yaml" {
			t.Errorf("%s: %v, want line %d", tc.path, err, lineOf(tc.line))
		}
	}
	want := "unwind.yaml:82:18: parents[0].floor_price: floor above the market"
	if got := cfg.FieldError(path, "floor above the market").Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
