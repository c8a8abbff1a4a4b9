package configs

import (
	"errors"
	"strings"
	"testing"
)

// The line numbers below refer to minimal (config_test.go): market on 1-8,
// venues on 9-17 (simA at 10, simB at 14), parents on 18-25 (p1 at 19,
// quantity 21, start 22, duration 23, max_participation 24, band 25).
func TestParse_RejectsBadInput(t *testing.T) {
	const (
		band     = "    slippage_band_bps: 75\n"
		dur      = "    duration: 8h\n"
		simA     = "  - name: simA\n"
		qty      = "    quantity: 0.1\n"
		share    = "    share: 0.5\n"
		simAReal = simA + share + "    tick: \"0.01\"\n    step: \"0.00001\"\n"
		vens     = "venues:\n" + simA + share + "    tick: \"0.01\"\n    step: \"0.00001\"\n  - name: simB\n" + share + "    tick: \"0.01\"\n    step: \"0.001\"\n"
	)
	for _, tc := range []struct {
		name     string
		old, new string // replace old by new in minimal; empty old prepends new
		path     string
		line     int
		msg      string
	}{
		{"unknown parent field", band, band + "    max_partcipation: 0.2\n", "parents[0].max_partcipation", 26,
			`unknown field "max_partcipation" (did you mean "max_participation"?); allowed fields are id, side`},
		{"unknown section", "", "colour: red\n", "colour", 1, `unknown field "colour"; allowed fields are run, nats`},
		{"unknown market field", "  base: BTC\n", "  base: BTC\n  bse: BTC\n", "market.bse", 4, `did you mean "base"?`},
		{"first unknown of two", band, band + "    zzz: 1\n    aaa: 2\n", "parents[0].zzz", 26, `unknown field "zzz"`},
		{"syntax error", "  base: BTC\n", "  base: [BTC\n", "", 4, "',' or ']' must be specified"},
		{"duplicate key", "  base: BTC\n", "  base: BTC\n  base: ETH\n", "", 4, `"base" already defined`},
		{"section not a mapping", "", "run: 5\n", "run", 1, "want a mapping of run settings with fields seed, clock, data_dir, log_level, log_format, got the number 5"},
		{"list not a list", vens, "venues: simA\n", "venues", 9, "want a list of venues, each a mapping with fields name, kind"},
		{"bool not a bool", "", "risk: {kill_switch: yes}\n", "risk.kill_switch", 1, `want true or false, got the string "yes"`},
		{"seed not a number", "", "run: {seed: seven}\n", "run.seed", 1, "want a whole number such as 7"},
		{"seed a float", "", "run: {seed: 7.5}\n", "run.seed", 1, "want a whole number such as 7, got the number 7.5"},
		{"missing quantity", qty, "", "parents[0].quantity", 19, "missing: a positive decimal is required"},
		{"zero quantity", qty, "    quantity: 0\n", "parents[0].quantity", 21, "must be > 0, got 0"},
		{"negative quantity", qty, "    quantity: \"-5\"\n", "parents[0].quantity", 21, "must be > 0, got -5"},
		{"quantity a mapping", qty, "    quantity: {amount: 5}\n", "parents[0].quantity", 21, "want a decimal such as 0.1"},
		{"exponent rejected", qty, "    quantity: 1e-8\n", "parents[0].quantity", 21, `no exponent, separators or units), got "1e-8"`},
		{"separator rejected", qty, "    quantity: 1,000\n", "parents[0].quantity", 21, `got "1,000"`},
		{"units rejected", qty, "    quantity: 400 BTC\n", "parents[0].quantity", 21, `got "400 BTC"`},
		{"hex rejected", qty, "    quantity: 0x10\n", "parents[0].quantity", 21, `got "0x10"`},
		{"end before start", dur, "    end: 2024-10-01T07:00:00Z\n", "parents[0].end", 23, "must be after start 2024-10-01T08:00:00Z"},
		{"end equal start", dur, "    end: 2024-10-01T08:00:00Z\n", "parents[0].end", 23, "must be after start"},
		{"duration and end", dur, dur + "    end: 2024-10-01T16:00:00Z\n", "parents[0].end", 24, "either duration or end, not both"},
		{"neither duration nor end", dur, "", "parents[0].duration", 19, "exactly one of them"},
		{"malformed duration", dur, "    duration: 8 hours\n", "parents[0].duration", 23, `want a duration such as 8h, 90s or 1h30m, got "8 hours"`},
		{"duration without unit", dur, "    duration: 90\n", "parents[0].duration", 23, `got "90"`},
		{"negative duration", dur, "    duration: -8h\n", "parents[0].duration", 23, "must be > 0"},
		{"malformed time", "    start: 2024-10-01T08:00:00Z\n", "    start: 2024-10-01 08:00\n", "parents[0].start", 22, "want an RFC 3339 time"},
		{"start before market", "    start: 2024-10-01T08:00:00Z\n", "    start: 2024-09-30T08:00:00Z\n", "parents[0].start", 22, "before market.start"},
		{"slice longer than window", dur, dur + "    slice_interval: 9h\n", "parents[0].slice_interval", 24, "longer than the parent's window of 8h0m0s"},
		{"participation zero", "max_participation: 0.10", "max_participation: 0", "parents[0].max_participation", 24, "must be in (0, 1], got 0"},
		{"participation above one", "max_participation: 0.10", "max_participation: 1.01", "parents[0].max_participation", 24, "must be in (0, 1], got 1.01"},
		{"band zero", band, "    slippage_band_bps: 0\n", "parents[0].slippage_band_bps", 25, "must be > 0"},
		{"band negative", band, "    slippage_band_bps: -1\n", "parents[0].slippage_band_bps", 25, "must be > 0, got -1"},
		{"floor on a buy", "side: sell", "side: buy\n    floor_price: \"61000\"", "parents[0].floor_price", 21, "floor_price applies to sells only"},
		{"ceiling on a sell", band, band + "    ceiling_price: \"65000\"\n", "parents[0].ceiling_price", 26, "ceiling_price applies to buys only"},
		{"negative floor", band, band + "    floor_price: \"-1\"\n", "parents[0].floor_price", 26, "must be > 0, got -1 (leave it empty for no floor)"},
		{"negative start price", `start_price: "63000"`, `start_price: "-63000"`, "market.start_price", 5, "must be > 0"},
		{"missing market symbol", "  symbol: BTCUSDT\n", "", "market.symbol", 1, "missing"}, // absent: at its section
		{"unknown venue in parent", band, band + "    venues: [simA, simX]\n", "parents[0].venues[1]", 26, `unknown venue "simX"; configured venues are simA, simB`},
		{"venue listed twice", band, band + "    venues: [simA, simA]\n", "parents[0].venues[1]", 26, `venue "simA" is listed twice`},
		{"empty parent venues", band, band + "    venues: []\n", "parents[0].venues", 26, "list at least one venue"},
		{"duplicate venue", "  - name: simB\n", simA, "venues[1].name", 14, `duplicate venue name "simA" (first at venues[0].name)`},
		{"duplicate parent id", band, band + "  - {id: p1, side: buy, quantity: 1, start: 2024-10-01T08:00:00Z, duration: 1h, max_participation: 0.1, slippage_band_bps: 5}\n",
			"parents[1].id", 26, `duplicate parent id "p1"`},
		{"bad parent id", "id: p1", "id: p 1", "parents[0].id", 19, "1 to 64 letters, digits"},
		{"venue kind unknown", simA, simA + "    kind: ftx\n", "venues[0].kind", 11, `"ftx" is not allowed; allowed values are sim, binance, coinbase, kraken`},
		{"real venue with sim rules", simA, simA + "    kind: binance\n", "venues[0].share", 12, "a real exchange states its own rules"},
		{"real venue without a key", simAReal, simA + "    kind: kraken\n    api_secret_env: KRAKEN_SECRET\n", "venues[0].api_key_env", 10, "missing: name the environment variable"},
		{"real venue key in two places", simAReal, simA + "    kind: kraken\n    api_key_env: K\n    api_key_file: /k\n    api_secret_env: S\n", "venues[0].api_key_file", 13, "not both"},
		{"secret written in the config", simAReal, simA + "    kind: binance\n    api_key: abcdef\n", "venues[0].api_key", 12, "secrets never go in the config"},
		{"env name that is a secret", simAReal, simA + "    kind: binance\n    api_key_env: \"sk-live 123\"\n    api_secret_env: S\n", "venues[0].api_key_env", 12, "not an environment variable's name (letters"},
		{"testnet off binance", simAReal, simA + "    kind: coinbase\n    testnet: true\n    api_key_env: K\n    api_secret_env: S\n", "venues[0].testnet", 12, "only for kind binance"},
		{"base url with a password", simAReal, simA + "    kind: binance\n    base_url: \"https://u:hunter2pw@api.binance.com\"\n    api_key_env: K\n    api_secret_env: S\n", "venues[0].base_url", 12, "without credentials; got \"https://u:xxxxx@api.binance.com\""},
		{"fake with credentials", simA, simA + "    kind: binance\n    fake: true\n    api_key_env: K\n", "venues[0].api_key_env", 13, "credentials generated for the run"},
		{"sim venue fake", simA, simA + "    fake: true\n", "venues[0].fake", 11, "simulated already"},
		{"share zero", share, "    share: 0\n", "venues[0].share", 11, "must be in (0, 1]"},
		{"share above one", share, "    share: 1.5\n", "venues[0].share", 11, "must be in (0, 1], got 1.5"},
		{"shares sum above one", "    share: 0.5\n    tick: \"0.01\"\n    step: \"0.001\"", "    share: 0.6\n    tick: \"0.01\"\n    step: \"0.001\"",
			"venues[1].share", 15, "add up to 1.1"},
		{"negative taker fee", share, share + "    taker_fee_bps: -1\n", "venues[0].taker_fee_bps", 12, "only maker fees may be negative"},
		{"negative min qty", share, share + "    min_qty: \"-0.1\"\n", "venues[0].min_qty", 12, "must be >= 0"},
		{"no venues", vens, "venues: []\n", "venues", 9, "at least one venue"},
		{"symbol not the market's", "side: sell", "side: sell\n    symbol: ETHUSDT", "parents[0].symbol", 21, `"ETHUSDT" is not the market's symbol "BTCUSDT"`},
		{"unknown side", "side: sell", "side: short", "parents[0].side", 20, `"short" is not allowed; allowed values are buy, sell`},
		{"missing side", "    side: sell\n", "", "parents[0].side", 19, "missing: allowed values are buy, sell"},
		{"unknown strategy", band, band + "    strategy: is\n", "parents[0].strategy", 26, `"is" is not allowed; allowed values are twap, vwap, pov, ac`},
		{"ac without lambda", band, band + "    strategy: ac\n", "parents[0].strategy", 26, "needs its risk aversion"},
		{"ac lambda zero", band, band + "    strategy: ac\n    ac: {lambda: 0}\n", "parents[0].ac.lambda", 27, "must be > 0"},
		{"ac on a twap", band, band + "    ac: {lambda: 0.01}\n", "parents[0].ac", 26, "applies to strategy ac only"},
		{"venue share above one", band, band + "    max_venue_share: 1.2\n", "parents[0].max_venue_share", 26, "must be in (0, 1]"},
		{"pov without rates", band, band + "    strategy: pov\n", "parents[0].strategy", 26, "needs a pov section"},
		{"pov rate of one", band, band + "    strategy: pov\n    pov: {rate: 1}\n", "parents[0].pov.rate", 27, "must be in (0, 1)"},
		{"pov max above the cap", band, band + "    strategy: pov\n    pov: {rate: 0.05, max_rate: 0.2}\n", "parents[0].pov.max_rate", 27, "above max_participation"},
		{"pov on a twap", band, band + "    pov: {rate: 0.05}\n", "parents[0].pov", 26, "applies to strategy pov only"},
		{"pov unknown field", band, band + "    strategy: pov\n    pov: {rate: 0.05, speed: 2}\n", "parents[0].pov.speed", 27, "allowed fields are rate, min_rate, max_rate"},
		{"curve of 23 hours", band, band + "    strategy: vwap\n    volume_curve: [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]\n", "parents[0].volume_curve", 27, "give 24"},
		{"curve negative", band, band + "    strategy: vwap\n    volume_curve: [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,-1]\n", "parents[0].volume_curve[23]", 27, "must be >= 0"},
		{"unknown clock", "", "run: {clock: fast}\n", "run.clock", 1, `"fast" is not allowed; allowed values are virtual, wall`},
		{"unknown log level", "", "run:\n  log_level: verbose\n", "run.log_level", 2, "allowed values are debug, info, warn, error"},
		{"unknown log format", "", "run:\n  log_format: xml\n", "run.log_format", 2, "allowed values are console, json"},
		{"nats url not nats", "", "nats: {url: \"http://x:4222\"}\n", "nats.url", 1, "want nats://host:port"},
		{"ledger driver", "", "ledger: {driver: mysql}\n", "ledger.driver", 1, `"mysql" is not allowed; allowed values are sqlite, postgres`},
		{"postgres without dsn", "", "ledger:\n  driver: postgres\n", "ledger.dsn", 1, "missing: driver postgres needs dsn"},
		{"postgres dsn not a dsn", "", "ledger:\n  driver: postgres\n  dsn: ledger.db\n", "ledger.dsn", 3, `want a postgres:// URL or key=value settings`},
		{"sqlite given a postgres url", "", "ledger:\n  dsn: postgres://u:hunter2@db/x\n", "ledger.dsn", 2, `"postgres://u:xxxxx@db/x" is a PostgreSQL URL; set ledger.driver: postgres`},
		{"nats url password not echoed", "", "nats: {url: \"http://u:hunter2@x:4222\"}\n", "nats.url", 1, `got "http://u:xxxxx@x:4222"`},
		{"nats creds for the embedded server", "", "nats: {creds_file: /etc/hosts}\n", "nats.creds_file", 1, "only with nats.url: the embedded server takes no credentials"},
		{"nats creds missing", "", "nats:\n  url: nats://x:4222\n  creds_file: /nonexistent/blockexec.creds\n", "nats.creds_file", 3, "cannot use /nonexistent/blockexec.creds: no such file or directory"},
		{"nats field misspelt", "", "nats:\n  creds_fil: x\n", "nats.creds_fil", 2, `did you mean "creds_file"?`},
		{"metrics listen not host:port", "", "service:\n  metrics_listen: \"9464\"\n", "service.metrics_listen", 2, `want host:port such as 127.0.0.1:9464 (or leave it out: /metrics on listen), got "9464"`},
		{"metrics on the API's listener", "", "service:\n  listen: 0.0.0.0:8480\n  metrics_listen: 0.0.0.0:8480\n", "service.metrics_listen", 3, "is service.listen; give /metrics a listener of its own"},
		{"metrics listen misspelt", "", "service:\n  metric_listen: 127.0.0.1:9464\n", "service.metric_listen", 2, `did you mean "metrics_listen"?`},
		{"tag", qty, "    quantity: !!str 0.1\n", "parents[0].quantity", 21, "YAML tags such as !!str are not supported"},
		{"tag on a list", "", "run: {seed: 1}\nrisk: ! 5\n", "risk", 2, "YAML tags"},
		{"two documents", band, band + "---\nrun: {}\n", "", 27, "one YAML document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.new + minimal
			if tc.old != "" {
				if !strings.Contains(minimal, tc.old) {
					t.Fatalf("minimal has no %q", tc.old)
				}
				src = strings.Replace(minimal, tc.old, tc.new, 1)
			}
			cfg, err := Parse("bad.yaml", []byte(src))
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("got cfg=%v err=%v, want a *FieldError", cfg != nil, err)
			}
			if fe.Path != tc.path || fe.Line != tc.line || !strings.Contains(fe.Msg, tc.msg) || fe.File != "bad.yaml" {
				t.Errorf("got  %v\nwant bad.yaml:%d:_: %s: ...%s...", err, tc.line, tc.path, tc.msg)
			}
		})
	}
}

func TestParse_EmptyFileIsAnErrorOnLineOne(t *testing.T) {
	for _, src := range []string{"", "\n\n", "# only a comment\n", "---\n"} {
		_, err := Parse("e.yaml", []byte(src))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Line != 1 || !strings.Contains(fe.Msg, "empty") {
			t.Errorf("%q: %v", src, err)
		}
	}
}

func TestFieldError_Format(t *testing.T) {
	for _, tc := range []struct {
		e    FieldError
		want string
	}{
		{FieldError{"a.yaml", 3, 5, "parents[0].quantity", "must be > 0"}, "a.yaml:3:5: parents[0].quantity: must be > 0"},
		{FieldError{"a.yaml", 1, 1, "", "bad"}, "a.yaml:1:1: bad"},
		{FieldError{"", 2, 4, "run", "bad"}, "2:4: run: bad"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("got %q want %q", got, tc.want)
		}
	}
}
