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
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/marketdata"
	"github.com/blockexec/blockexec/venues/sim"
)

// calDay0 is the first day of the calibration fixture.
var calDay0 = time.Date(2024, 10, 1, 0, 0, 0, 0, time.UTC)

// calReturns are the fixture's daily open-to-close log returns.
var calReturns = []float64{0.02, -0.01, 0.03, -0.025, 0.005, -0.015}

// writeCalibrationKlines writes one file a day: each day opens at 50,000
// and drifts log-linearly to 50,000·e^r by its close; volume follows a
// daily wave. It returns the closes and volumes as written (after the
// files' rounding), and each day's first open and last close.
func writeCalibrationKlines(t *testing.T, dir string) (closes, volumes [][]float64, opens, lasts []float64) {
	t.Helper()
	num := func(format string, v float64) (string, float64) {
		s := fmt.Sprintf(format, v)
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatal(err)
		}
		return s, f
	}
	for d, r := range calReturns {
		date := calDay0.Add(time.Duration(d) * 24 * time.Hour)
		var b strings.Builder
		var dc, dv []float64
		for m := 0; m < marketdata.MinutesPerDay; m++ {
			at := date.Add(time.Duration(m) * time.Minute)
			ops, o := num("%.2f", 50000*math.Exp(r*float64(m)/1440))
			cs, c := num("%.2f", 50000*math.Exp(r*float64(m+1)/1440))
			vs, v := num("%.5f", 4+2*math.Sin(2*math.Pi*float64(m)/1440+float64(d)))
			fmt.Fprintf(&b, "%d,%s,%.2f,%.2f,%s,%s,%d,%.4f,50,%.5f,%.4f,0\n", at.UnixMilli(), ops, math.Max(o, c)+1,
				math.Min(o, c)-1, cs, vs, at.Add(time.Minute).UnixMilli()-1, v*(o+c)/2, v/2, v*(o+c)/4)
			if m == 0 {
				opens = append(opens, o)
			}
			dc, dv = append(dc, c), append(dv, v)
		}
		closes, volumes, lasts = append(closes, dc), append(volumes, dv), append(lasts, dc[len(dc)-1])
		if err := os.WriteFile(filepath.Join(dir, "BTCUSDT-1m-"+date.Format(time.DateOnly)+".csv"), []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return closes, volumes, opens, lasts
}

func near(got, want, rel float64) bool { return math.Abs(got-want) <= rel*math.Abs(want) }

// TestPlan_CalibrateEstimatesMatchTheDataAndTheSim checks every estimate of
// --calibrate against a figure worked out here without it: σ, V and P
// straight from the rows written, the half-spread in ε from the books of a
// sim venue replaying the data, and η from selling the parent's children
// into that venue and measuring what they cost.
func TestPlan_CalibrateEstimatesMatchTheDataAndTheSim(t *testing.T) {
	dir := t.TempDir()
	closes, volumes, opens, lasts := writeCalibrationKlines(t, dir)
	const X, T, N, feeBps = 60.0, 0.25, 360, 4.0 // 60 BTC over 6 h in one-minute children

	var out, log bytes.Buffer
	cmd := newPlanCmd()
	cmd.SetOut(&out)
	cmd.SetErr(&log)
	cmd.SetArgs([]string{"--calibrate", dir, "--X", "60", "--T", "0.25", "--N", "360", "--fee-bps", "4", "--share", "1",
		"--lambda", "1e-6", "--json"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	var plans []planOut
	if err := json.Unmarshal(out.Bytes(), &plans); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(plans) != 1 || plans[0].Calibration == nil {
		t.Fatalf("want one plan with its calibration: %s", out.String())
	}
	c, p := *plans[0].Calibration, plans[0].Params

	// The data.
	var priceSum, volSum float64
	var rets []float64
	for d := range closes {
		for i := range closes[d] {
			priceSum += closes[d][i]
			volSum += volumes[d][i]
		}
		rets = append(rets, math.Log(lasts[d]/opens[d]))
	}
	days := float64(len(closes))
	price, daily := priceSum/(days*1440), volSum/days
	var mean, ss float64
	for _, r := range rets {
		mean += r / days
	}
	for _, r := range rets {
		ss += (r - mean) * (r - mean)
	}
	sigmaD := math.Sqrt(ss / (days - 1))
	for _, chk := range []struct {
		name      string
		got, want float64
	}{
		{"complete days", float64(c.Days), days},
		{"price P", c.Price, price},
		{"daily volume V", c.DailyVolume, daily},
		{"daily σ_d", c.DailySigma, sigmaD},
		{"σ = P·σ_d", p.Sigma, price * sigmaD},
		{"ε from the fee asked for", p.Epsilon, price * (c.HalfSpreadBps + feeBps) / 1e4},
		{"params carry η", p.Eta, c.Eta},
	} {
		if !near(chk.got, chk.want, 1e-9) {
			t.Errorf("%s = %.10g, want %.10g", chk.name, chk.got, chk.want)
		}
	}
	if c.Warning != "" {
		t.Errorf("children of 1/6 BTC warned: %s", c.Warning)
	}
	if p.Gamma != 0 || c.Gamma != 0 {
		t.Errorf("γ = %g: the sim's impact is transient, so γ must be 0", p.Gamma)
	}
	for _, want := range []string{"γ    0", "transient", "σ_d", "--fee-bps", "6 complete days"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the calibration note does not say %q:\n%s", want, log.String())
		}
	}

	// The sim replaying the same rows.
	s, err := marketdata.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := sim.NewReplay(sim.ReplayConfig{Symbol: "BTCUSDT", Base: "BTC", Quote: "USDT"}, toMinutes(s.Bars()))
	if err != nil {
		t.Fatal(err)
	}
	start := calDay0.Add(48 * time.Hour)
	clk := clock.NewVirtual(start)
	dec := decimal.RequireFromString
	v, err := sim.New(m, clk, sim.Config{Name: "sim", Share: 1, IDPrefix: "sim", Instrument: market.Instrument{
		Tick: dec("0.01"), Step: dec("0.00001"), MinQty: dec("0.00001")}}) // no fees: they are ε's other part
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// The half-spread: the touch against the fundamental, every 7 s for a day.
	var spread float64
	n := 0
	for at := start; at.Before(start.Add(24 * time.Hour)); at = at.Add(7 * time.Second) {
		_ = clk.WaitUntil(ctx, at)
		bk, err := v.Book(ctx, "BTCUSDT", 1)
		if err != nil {
			t.Fatal(err)
		}
		mid := m.Price(at)
		spread += ((mid-bk.Bids[0].Price.InexactFloat64())/mid + (bk.Asks[0].Price.InexactFloat64()-mid)/mid) / 2 * 1e4
		n++
	}
	spread /= float64(n)
	if !near(c.HalfSpreadBps, spread, 0.05) {
		t.Errorf("ε's half-spread %.3f bps; the sim's books show %.3f bps", c.HalfSpreadBps, spread)
	}

	// η: sell X/N every T/N and measure the cost per share against the
	// fundamental once impact and consumed depth are steady (after an hour).
	_ = clk.WaitUntil(ctx, start.Add(36*time.Hour))
	q := decimal.NewFromFloat(X / N).RoundDown(5)
	var cost, qty float64
	for k := 0; k < N; k++ {
		now := clk.Now()
		o, fills, err := v.Place(ctx, market.OrderRequest{ClientID: fmt.Sprintf("c%d", k), Symbol: "BTCUSDT",
			Side: market.Sell, Price: dec("1000"), Qty: q, TIF: market.IOC})
		if err != nil || !o.Filled.Equal(q) {
			t.Fatalf("child %d: filled %s of %s: %v", k, o.Filled, q, err)
		}
		if k >= 60 {
			fair := m.Price(now)
			for _, f := range fills {
				cost += (fair - f.Price.InexactFloat64()) / fair * 1e4 * f.Qty.InexactFloat64()
				qty += f.Qty.InexactFloat64()
			}
		}
		clk.Advance(time.Duration(T / N * float64(24*time.Hour)))
	}
	measured := cost / qty
	rate := X / T
	model := c.HalfSpreadBps + c.Eta*rate/c.Price*1e4 // ε's spread part plus η·v, in bps
	if !near(model, measured, 0.10) {
		t.Errorf("children of %s every %s cost %.3f bps in the sim; the calibrated model says %.3f bps (half-spread %.3f + η·X/T %.3f)",
			q, c.ChildInterval, measured, model, c.HalfSpreadBps, c.Eta*rate/c.Price*1e4)
	}
	t.Logf("sim %.3f bps, model %.3f bps (impact %.3f, walk %.3f, half-spread %.3f)", measured, model, c.ImpactBps, c.WalkBps, c.HalfSpreadBps)
}

func TestPlan_CalibrateWarnsOfChildrenBeyondTheSimsBook(t *testing.T) {
	dir := t.TempDir()
	writeCalibrationKlines(t, dir)
	var out, log bytes.Buffer
	cmd := newPlanCmd()
	cmd.SetOut(&out)
	cmd.SetErr(&log)
	cmd.SetArgs([]string{"--calibrate", dir}) // the paper's X = 10⁶ shares, read as BTC
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "warning: a child of X/N = 200000") || !strings.Contains(log.String(), "would not fill it") {
		t.Fatalf("no warning:\n%s", log.String())
	}
}

func TestPlan_CalibrateRefusesWhatItCannotFit(t *testing.T) {
	dir := t.TempDir()
	writeCalibrationKlines(t, dir)
	short := t.TempDir()
	writeKlines(t, short, calDay0, 2, nil)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"two days", []string{"--calibrate", short}, "at least 3 complete days"},
		{"no periods", []string{"--calibrate", dir, "--N", "0"}, "N ≥ 1"},
		{"negative fee", []string{"--calibrate", dir, "--fee-bps", "-1"}, "--fee-bps"},
		{"share above one", []string{"--calibrate", dir, "--share", "1.5"}, "--share"},
		{"no such dir", []string{"--calibrate", filepath.Join(dir, "nope")}, "--calibrate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			cmd := newPlanCmd()
			cmd.SetOut(&out)
			cmd.SetErr(&out)
			cmd.SetArgs(tc.args)
			err := cmd.Execute()
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != exitBadConfig || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want exit %d naming %q", err, exitBadConfig, tc.want)
			}
		})
	}
}
