package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/spf13/cobra"

	"github.com/blockexec/blockexec/configs"
	"github.com/blockexec/blockexec/settlement"
)

// TestRun_BadConfigNamesFileLineAndField edits the example one field at a
// time and expects exit code 2 with file:line, the field path and what is
// allowed, and nothing placed.
func TestRun_BadConfigNamesFileLineAndField(t *testing.T) {
	example, err := os.ReadFile("../../configs/examples/unwind-btc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, old, new string
		path, msg      string
	}{
		{"unknown field", "    slice_interval:", "    slice_intervall:", "slice_intervall", "unknown"},
		{"negative quantity", `quantity: "400"`, `quantity: "-400"`, "parents[0].quantity", "> 0"},
		{"participation zero", "max_participation: 0.10", "max_participation: 0", "parents[0].max_participation", "(0, 1]"},
		{"participation above one", "max_participation: 0.10", "max_participation: 1.5", "parents[0].max_participation", "(0, 1]"},
		{"malformed duration", "duration: 8h", "duration: 8hours", "parents[0].duration", "duration"},
		{"malformed decimal", `floor_price: "61000"`, `floor_price: "61,000"`, "parents[0].floor_price", "decimal"},
		{"unknown venue", "venues: [simA, simB, simC]", "venues: [simA, simX]", "parents[0].venues", "simX"},
		{"floor above the market", `floor_price: "61000"`, `floor_price: "90000"`, "parents[0].floor_price", "above the best bid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !bytes.Contains(example, []byte(tc.old)) {
				t.Fatalf("example no longer contains %q; update the test", tc.old)
			}
			text := strings.Replace(string(example), tc.old, tc.new, 1)
			line := strings.Count(text[:strings.Index(text, tc.new)], "\n") + 1
			dir := t.TempDir()
			file := filepath.Join(dir, "bad.yaml")
			if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			err := runCommand(context.Background(), runFlags{config: file, dataDir: filepath.Join(dir, "data"), quiet: true}, &out, &out)
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != exitBadConfig {
				t.Fatalf("err = %v (%T), want exit code %d", err, err, exitBadConfig)
			}
			msg := err.Error()
			for _, want := range []string{fmt.Sprintf("%s:%d:", file, line), tc.path, tc.msg} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not contain %q", msg, want)
				}
			}
			ledger := filepath.Join(dir, "data", "ledger.db")
			if _, err := os.Stat(ledger); err == nil {
				l, err := settlement.OpenSQLite(ledger)
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				fills, err := l.Fills(context.Background(), "")
				if err != nil {
					t.Fatal(err)
				}
				if len(fills) != 0 {
					t.Errorf("a bad config placed orders: %d fills in the ledger", len(fills))
				}
			}
		})
	}
}

// TestRun_RefusesParentAlreadyInLedger: running the same file twice into
// one data dir must not sell twice: the parent's checkpoint says it ended.
func TestRun_RefusesParentAlreadyInLedger(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the example twice")
	}
	dir := t.TempDir()
	f := runFlags{config: "../../configs/examples/accumulate-btc.yaml", dataDir: dir, quiet: true,
		reportJSON: filepath.Join(dir, "report.json")}
	var out bytes.Buffer
	if err := runCommand(context.Background(), f, &out, &out); err != nil {
		t.Fatalf("first run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "filled") {
		t.Errorf("report missing from output:\n%s", out.String())
	}
	if _, err := os.Stat(f.reportJSON); err != nil {
		t.Errorf("--report-json: %v", err)
	}
	err := runCommand(context.Background(), f, &out, &out)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitBadConfig || !strings.Contains(err.Error(), "already ended (done)") {
		t.Fatalf("second run: err = %v, want a refusal with exit code %d", err, exitBadConfig)
	}
}

// TestHelp_EveryCommandTeaches: --help on every command explains it with a
// long description and examples.
func TestHelp_EveryCommandTeaches(t *testing.T) {
	root := newRoot()
	var walk func(c *cobra.Command, path []string)
	type named struct {
		c    *cobra.Command
		path []string
	}
	var cmds []named
	walk = func(c *cobra.Command, path []string) {
		if c.Name() == "help" || c.Name() == "completion" {
			return
		}
		cmds = append(cmds, named{c, path})
		for _, sub := range c.Commands() {
			walk(sub, append(append([]string(nil), path...), sub.Name()))
		}
	}
	walk(root, nil)
	for _, n := range cmds {
		c := n.c
		t.Run(strings.Join(append([]string{"blockexec"}, n.path...), " "), func(t *testing.T) {
			var out bytes.Buffer
			r := newRoot()
			r.SetOut(&out)
			r.SetArgs(append(append([]string(nil), n.path...), "--help"))
			if err := r.Execute(); err != nil {
				t.Fatal(err)
			}
			if len(c.Long) < 40 {
				t.Fatalf("%s has no long description", c.Name())
			}
			for _, want := range []string{c.Long[:40], "Examples:", "Flags:"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("%s --help lacks %q:\n%s", c.Name(), want, out.String())
				}
			}
		})
	}
}

// TestRun_ParentKillSwitchPlacesNothing: kill: true on a parent cancels it
// before its first child.
func TestRun_ParentKillSwitchPlacesNothing(t *testing.T) {
	example, err := os.ReadFile("../../configs/examples/accumulate-btc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(example), "    side: buy\n", "    side: buy\n    kill: true\n", 1)
	if text == string(example) {
		t.Fatal("example has no buy parent to kill")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "killed.yaml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := runCommand(context.Background(), runFlags{config: file, dataDir: dir, quiet: true}, &out, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "cancelled") || !strings.Contains(out.String(), "child orders       0") {
		t.Fatalf("killed parent report:\n%s", out.String())
	}
}

// TestRun_POVParentFollowsTheMarket runs the unwind as POV at 5 % with a
// 10 % maximum and checks the outcome is volume-driven and within caps.
func TestRun_POVParentFollowsTheMarket(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a simulated day")
	}
	cfg := loadExample(t, "unwind-btc.yaml")
	p := &cfg.Parents[0]
	p.Strategy = configs.StrategyPOV
	p.POV = configs.POV{Rate: decimal.RequireFromString("0.02"), MinRate: decimal.RequireFromString("0.02"), MaxRate: decimal.RequireFromString("0.05")}
	res, err := execute(context.Background(), cfg, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := res.reports[0]
	if len(res.mismatches) > 0 {
		t.Fatalf("ledger mismatch: %v", res.mismatches)
	}
	// 2 % of ~8 h of flow on three venues (about 8,000 BTC) is far less than
	// 400: POV sells what the rate allows, forcing only up to 5 % at the end,
	// and reports the rest unfilled.
	if r.FilledQuantity.IsZero() || !r.UnfilledQuantity.IsPositive() {
		t.Fatalf("filled %s unfilled %s: want a partial, volume-limited fill", r.FilledQuantity, r.UnfilledQuantity)
	}
	if r.MaxParticipation.GreaterThan(decimal.RequireFromString("0.1")) {
		t.Fatalf("max participation %s above the cap", r.MaxParticipation)
	}
	// At most the max rate of the day's whole market (29,700 BTC).
	if r.FilledQuantity.GreaterThan(decimal.RequireFromString("0.05").Mul(decimal.NewFromInt(29700))) {
		t.Fatalf("filled %s, more than 5 %% of a whole day's market", r.FilledQuantity)
	}
}

// TestRun_VWAPParentFollowsTheCurve runs the unwind as VWAP on the default
// curve: it completes, and by 13:00 it is behind a TWAP (the afternoon is
// busier) but within the caps.
func TestRun_VWAPParentFollowsTheCurve(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a simulated day")
	}
	cfg := loadExample(t, "unwind-btc.yaml")
	cfg.Parents[0].Strategy = configs.StrategyVWAP
	specs, err := parentSpecs(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sched := specs[0].Schedule
	noon := cfg.Parents[0].Start.Add(5 * time.Hour) // 13:00
	twapNoon := cfg.Parents[0].Quantity.Mul(decimal.NewFromInt(5)).Div(decimal.NewFromInt(8))
	if got := sched.Target(noon); !got.LessThan(twapNoon) {
		t.Fatalf("VWAP target at 13:00 = %s, TWAP's %s: the 14:00 peak should hold it back", got, twapNoon)
	}
	res, err := execute(context.Background(), cfg, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := res.reports[0]
	if len(res.mismatches) > 0 || !r.UnfilledQuantity.IsZero() || r.MaxParticipation.GreaterThan(decimal.RequireFromString("0.1")) {
		t.Fatalf("vwap run: %+v mismatches %v", r, res.mismatches)
	}
}

// TestRun_ACParentIsFrontLoaded runs the unwind on an Almgren–Chriss
// trajectory: ahead of TWAP at mid-window, and complete within the caps.
func TestRun_ACParentIsFrontLoaded(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a simulated day")
	}
	cfg := loadExample(t, "unwind-btc.yaml")
	p := &cfg.Parents[0]
	p.Strategy, p.ACLambda = configs.StrategyAC, decimal.RequireFromString("0.0000001")
	specs, err := parentSpecs(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mid := specs[0].Schedule.Target(p.Start.Add(4 * time.Hour))
	if !mid.GreaterThan(p.Quantity.Div(decimal.NewFromInt(2))) {
		t.Fatalf("AC target at mid-window %s, want more than half of %s", mid, p.Quantity)
	}
	res, err := execute(context.Background(), cfg, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := res.reports[0]; len(res.mismatches) > 0 || r.FilledQuantity.IsZero() || r.MaxParticipation.GreaterThan(decimal.RequireFromString("0.1")) {
		t.Fatalf("ac run: %+v %v", r, res.mismatches)
	}
}
