package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPlan_PaperExampleClosedFormEqualsSum(t *testing.T) {
	var out bytes.Buffer
	cmd := newPlanCmd()
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--json"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	var plans []planOut
	if err := json.Unmarshal(out.Bytes(), &plans); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(plans) != 2 || plans[0].Lambda != 1e-6 || plans[1].Lambda != 2e-6 {
		t.Fatalf("plans for %v", plans)
	}
	for _, p := range plans {
		if p.Holdings[0] != 1e6 || p.Holdings[5] != 0 || len(p.Trades) != 5 {
			t.Fatalf("λ=%g holdings %v", p.Lambda, p.Holdings)
		}
		if math.Abs(p.E-p.ClosedFormE) > 1e-9*p.E || math.Abs(p.V-p.ClosedFormV) > 1e-9*p.V {
			t.Fatalf("λ=%g: summed E=%g V=%g, closed form E=%g V=%g", p.Lambda, p.E, p.V, p.ClosedFormE, p.ClosedFormV)
		}
	}
	if !(plans[1].E > plans[0].E && plans[1].V < plans[0].V) {
		t.Fatalf("λ 2e-6 vs 1e-6: E %g vs %g, V %g vs %g", plans[1].E, plans[0].E, plans[1].V, plans[0].V)
	}
}

func TestPlan_BadParametersExitWithTheReason(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--lambda", "0"}, "λ"},
		{[]string{"--lambda", "-1e-6"}, "λ"},
		{[]string{"--gamma", "1", "--eta", "1e-6"}, "η̃"},
		{[]string{"--N", "0"}, "N = 0"},
		{[]string{"--strategy", "vwap"}, "allowed: ac, twap"},
	} {
		var out bytes.Buffer
		cmd := newPlanCmd()
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(tc.args)
		err := cmd.Execute()
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != exitBadConfig || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want exit %d naming %q", tc.args, err, exitBadConfig, tc.want)
		}
	}
}

// writeKlines writes synthetic one-minute klines for days from day0, one
// file per day, leaving out the minutes in skip.
func writeKlines(t *testing.T, dir string, day0 time.Time, days int, skip map[time.Time]bool) {
	t.Helper()
	for d := 0; d < days; d++ {
		date := day0.Add(time.Duration(d) * 24 * time.Hour)
		var b strings.Builder
		for m := 0; m < 1440; m++ {
			at := date.Add(time.Duration(m) * time.Minute)
			if skip[at] {
				continue
			}
			px := 60000 + 50*math.Sin(float64(d*1440+m)/90)
			vol := 10 + 5*math.Sin(float64(m)/200)
			fmt.Fprintf(&b, "%d,%.2f,%.2f,%.2f,%.2f,%.5f,%d,%.2f,100,%.5f,%.2f,0\n", at.UnixMilli(), px, px+5, px-5, px,
				vol, at.Add(time.Minute).UnixMilli()-1, vol*px, vol/2, vol*px/2)
		}
		if err := os.WriteFile(filepath.Join(dir, "BTCUSDT-1m-"+date.Format(time.DateOnly)+".csv"), []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBacktest_BadDataIsExplained(t *testing.T) {
	day0 := time.Date(2024, 10, 1, 0, 0, 0, 0, time.UTC)
	empty := t.TempDir()
	corrupt := t.TempDir()
	writeKlines(t, corrupt, day0, 2, nil)
	f := filepath.Join(corrupt, "BTCUSDT-1m-2024-10-02.csv")
	body, _ := os.ReadFile(f)
	lines := strings.SplitN(string(body), "\n", 4)
	_ = os.WriteFile(f, []byte(lines[0]+"\n"+lines[1]+"\n1727827320000,oops\n"+lines[3]), 0o600)
	gappy := t.TempDir()
	writeKlines(t, gappy, day0, 3, map[time.Time]bool{day0.Add(24*time.Hour + 10*time.Hour): true})
	short := t.TempDir()
	writeKlines(t, short, day0, 2, nil)

	for _, tc := range []struct {
		name string
		f    backtestFlags
		want string
	}{
		{"missing dir", backtestFlags{data: filepath.Join(empty, "nope")}, "--data"},
		{"no files", backtestFlags{data: empty}, "no csv files"},
		{"corrupt row", backtestFlags{data: corrupt}, "BTCUSDT-1m-2024-10-02.csv:3"},
		{"gap in the asked day", backtestFlags{data: gappy, days: []string{"2024-10-02"}}, "gaps"},
		{"no history for the curve", backtestFlags{data: short, history: 7}, "7 days of history"},
		{"bad lambda", backtestFlags{data: short, strategies: []string{"ac"}, lambdas: []float64{0}}, "λ → 0 is TWAP"},
		{"unknown strategy", backtestFlags{data: short, strategies: []string{"best"}}, "allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := defaultBacktestFlags()
			f.data = tc.f.data
			if tc.f.days != nil {
				f.days = tc.f.days
			}
			if tc.f.history != 0 {
				f.history = tc.f.history
			}
			if tc.f.strategies != nil {
				f.strategies = tc.f.strategies
			}
			if tc.f.lambdas != nil {
				f.lambdas = tc.f.lambdas
			}
			var out bytes.Buffer
			err := backtestCommand(context.Background(), f, &out, &out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
		})
	}
}

func TestBacktest_SyntheticDaysSideBySide(t *testing.T) {
	if testing.Short() {
		t.Skip("runs several simulated days")
	}
	dir := t.TempDir()
	writeKlines(t, dir, time.Date(2024, 10, 1, 0, 0, 0, 0, time.UTC), 3, nil)
	f := defaultBacktestFlags()
	f.data, f.history, f.jsonOut = dir, 1, true
	f.qty = "100"
	f.chart = filepath.Join(dir, "chart.svg")
	var out, log bytes.Buffer
	if err := backtestCommand(context.Background(), f, &out, &log); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	var got struct {
		Days       []string
		Strategies []struct {
			Strategy         string
			MaxParticipation float64 `json:"max_participation"`
			MeanCompletion   float64 `json:"mean_completion"`
			MeanISBps        float64 `json:"mean_implementation_shortfall_bps"`
		}
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(got.Days) != 2 || len(got.Strategies) != 9 {
		t.Fatalf("days %v, %d strategies", got.Days, len(got.Strategies))
	}
	by := map[string]float64{}
	for _, s := range got.Strategies {
		by[s.Strategy] = s.MeanISBps
		capped := s.Strategy != "dump" && s.Strategy != "twap-touch"
		if capped && s.MaxParticipation > 0.1+1e-9 {
			t.Errorf("%s: participation %.4f above the cap", s.Strategy, s.MaxParticipation)
		}
	}
	if !(by["dump"] > by["twap"]) {
		t.Errorf("dump %.2f bps vs twap %.2f: dumping should cost more", by["dump"], by["twap"])
	}
	if fi, err := os.Stat(f.chart); err != nil || fi.Size() < 1000 {
		t.Errorf("chart: %v", err)
	}
}
