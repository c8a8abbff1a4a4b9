package main

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/configs"
)

// exampleAs parses the unwind example with its parent's strategy and
// venue list replaced.
func exampleAs(t *testing.T, strategy, venues string) *configs.Config {
	t.Helper()
	src, err := os.ReadFile("../../configs/examples/unwind-btc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	yaml := strings.Replace(string(src), "strategy: twap ", "strategy: "+strategy+" ", 1)
	yaml = strings.Replace(yaml, "venues: [simA, simB, simC]", "venues: "+venues, 1)
	if strategy == configs.StrategyAC {
		yaml = strings.Replace(yaml, "    kill: false", "    kill: false\n    ac: {lambda: 0.000001}", 1)
	}
	cfg, err := configs.Parse("unwind.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// A run resumed after a crash must be the order it was: every term a
// parent's schedule reads counts, wherever the file writes it, and the
// refusal points at that line; what does not change the order (venues
// listed in another order) is not refused.
func TestSameTerms_RefusesEveryEditThatChangesTheOrder(t *testing.T) {
	for _, tc := range []struct {
		name, strategy string
		edit           func(*configs.Config)
		path           string // "" resumes
	}{
		{"nothing changed", "twap", func(*configs.Config) {}, ""},
		{"venues in another order", "twap", func(c *configs.Config) { c.Parents[0].Venues = []string{"simC", "simA", "simB"} }, ""},
		{"quantity", "twap", func(c *configs.Config) { c.Parents[0].Quantity = decimal.NewFromInt(300) }, "parents[0].quantity"},
		{"a venue left out", "twap", func(c *configs.Config) { c.Parents[0].Venues = []string{"simA", "simB"} }, "parents[0].venues"},
		{"the default child cap", "twap", func(c *configs.Config) { // as the parser gives it to the parent
			c.Risk.MaxChildNotional, c.Parents[0].MaxChildNotional = decimal.NewFromInt(1000), decimal.NewFromInt(1000)
		}, "risk.max_child_notional"},
		{"the parent's own child cap", "twap", func(c *configs.Config) { c.Parents[0].MaxChildNotional = decimal.NewFromInt(1000) },
			"parents[0].max_child_notional"},
		{"AC's volatility", "ac", func(c *configs.Config) { c.Market.DailyVolatility = decimal.RequireFromString("0.04") }, "market.daily_volatility"},
		{"AC's venue fee", "ac", func(c *configs.Config) { c.Venues[1].TakerFeeBps = decimal.NewFromInt(9) }, "venues[1].taker_fee_bps"},
		{"VWAP's daily volume", "vwap", func(c *configs.Config) { c.Market.DailyVolume = decimal.NewFromInt(1000) }, "market.daily_volume"},
		{"VWAP's venue share", "vwap", func(c *configs.Config) { c.Venues[2].Share = decimal.RequireFromString("0.25") }, "venues[2].share"},
		{"TWAP ignores the market", "twap", func(c *configs.Config) { c.Market.DailyVolume = decimal.NewFromInt(1000) }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := exampleAs(t, tc.strategy, "[simA, simB, simC]")
			origin, err := json.Marshal(runTerms(cfg, cfg.Parents[0]))
			if err != nil {
				t.Fatal(err)
			}
			tc.edit(cfg)
			err = sameTerms(cfg, 0, origin)
			var fe *configs.FieldError
			switch {
			case tc.path == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.path != "" && (!errors.As(err, &fe) || fe.Path != tc.path || !strings.Contains(fe.Msg, "differs from")):
				t.Fatalf("err = %v, want a refusal at %s", err, tc.path)
			}
		})
	}
}
