package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/blockexec/blockexec/marketdata"
	"github.com/blockexec/blockexec/strategies/ac"
	"github.com/blockexec/blockexec/venues/sim"
)

type planFlags struct {
	strategy  string
	p         ac.Params
	lambdas   []float64
	calibrate string
	feeBps    float64
	share     float64
	jsonOut   bool
}

func newPlanCmd() *cobra.Command {
	f := planFlags{}
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Pre-trade estimate: a schedule's trajectory, expected cost E and variance V",
		Long: `plan prints the holdings trajectory x_0..x_N of a schedule and its expected
cost E and variance V under the Almgren–Chriss model (Almgren & Chriss,
"Optimal execution of portfolio transactions", 2000):

  E = ½γX² + ε·Σ|n_k| + (η̃/τ)·Σn_k²,   V = σ²τ·Σx_k²,   η̃ = η − γτ/2, τ = T/N

For --strategy ac the trajectory is the optimal x_j = X·sinh(κ(T−t_j))/sinh(κT)
with κ from (2/τ²)(cosh(κτ)−1) = λσ²/η̃, once per --lambda; for twap it is
linear. E and V are summed directly over the trajectory and, for ac, also
given by the paper's closed form.

Units are the caller's: X in shares, T in any time unit, σ in price per
√time unit, ε in price per share, η in price·time per share², γ in price per
share. The defaults are the paper's example (X = 10⁶, T = 5 days, N = 5,
σ = 0.95, ε = 0.0625, η = 2.5e-6, γ = 2.5e-7, λ = 1e-6 and 2e-6).

--calibrate DIR fits the model to the sim venues replaying one-minute klines
(complete days only; T in days, σ per √day): σ = P·σ_d from the sd of a
day's open-to-close log return and the mean price P; the mean daily volume
V; ε = P × (the sim's mean half-spread + --fee-bps); η from the sim's
steady-state cost (transient square-root impact and book walk) of children
of X/N every T/N, divided by the average rate X/T; γ = 0 because the sim's
impact is transient. It prints each estimate and what it came from.`,
		Example: `  blockexec plan
  blockexec plan --lambda 1e-6,2e-6 --json
  blockexec plan --strategy twap
  blockexec plan --calibrate ../shared/data/binance-btcusdt-1m --X 500 --T 0.3333 --N 480 --lambda 1e-4`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return planCommand(f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.strategy, "strategy", "ac", "ac or twap")
	fl.Float64Var(&f.p.X, "X", 1e6, "shares to sell")
	fl.Float64Var(&f.p.T, "T", 5, "horizon (time units)")
	fl.IntVar(&f.p.N, "N", 5, "number of periods")
	fl.Float64Var(&f.p.Sigma, "sigma", 0.95, "volatility, price per √time unit")
	fl.Float64Var(&f.p.Epsilon, "epsilon", 0.0625, "fixed cost per share (half spread + fees)")
	fl.Float64Var(&f.p.Eta, "eta", 2.5e-6, "temporary impact η")
	fl.Float64Var(&f.p.Gamma, "gamma", 2.5e-7, "permanent impact γ")
	fl.Float64SliceVar(&f.lambdas, "lambda", []float64{1e-6, 2e-6}, "risk aversion λ (> 0); several give the frontier")
	share, fee := backtestVenues()
	fl.StringVar(&f.calibrate, "calibrate", "", "estimate σ, ε, η (and γ = 0) from a directory of one-minute klines")
	fl.Float64Var(&f.feeBps, "fee-bps", fee, "with --calibrate: taker fee in ε, bps (default: the backtest venues' fees weighted by share)")
	fl.Float64Var(&f.share, "share", share, "with --calibrate: share of the market's volume and depth on the venues (default: the backtest's)")
	fl.BoolVar(&f.jsonOut, "json", false, "print JSON")
	return cmd
}

// planOut is one schedule's plan.
type planOut struct {
	Strategy    string    `json:"strategy"`
	Lambda      float64   `json:"lambda,omitempty"`
	Kappa       float64   `json:"kappa,omitempty"`
	Holdings    []float64 `json:"holdings"`
	Trades      []float64 `json:"trades"`
	E           float64   `json:"expected_cost"`
	V           float64   `json:"variance"`
	ClosedFormE float64   `json:"closed_form_expected_cost,omitempty"`
	ClosedFormV float64   `json:"closed_form_variance,omitempty"`
	Params      ac.Params `json:"params"`
	// Calibration is what --calibrate estimated the parameters from.
	Calibration *calibration `json:"calibration,omitempty"`
}

func planCommand(f planFlags, stdout, stderr io.Writer) error {
	var cal *calibration
	if f.calibrate != "" {
		p, c, err := calibrate(f.calibrate, f.p, f.feeBps, f.share)
		if err != nil {
			return &exitError{exitBadConfig, fmt.Errorf("--calibrate: %w", err)}
		}
		f.p, cal = p, &c
		writeCalibration(stderr, c)
	}
	var outs []planOut
	switch f.strategy {
	case "twap":
		p := f.p
		p.Lambda = 1 // unused by a linear trajectory, but Validate wants λ > 0
		if err := p.Validate(); err != nil {
			return &exitError{exitBadConfig, err}
		}
		x := make([]float64, p.N+1)
		for j := range x {
			x[j] = p.X * float64(p.N-j) / float64(p.N)
		}
		e, v := ac.Cost(p, x)
		outs = append(outs, planOut{Strategy: "twap", Holdings: x, Trades: ac.Trades(x), E: e, V: v, Params: f.p, Calibration: cal})
	case "ac":
		if len(f.lambdas) == 0 {
			return &exitError{exitBadConfig, fmt.Errorf("--lambda: give at least one λ > 0")}
		}
		for _, l := range f.lambdas {
			p := f.p
			p.Lambda = l
			x, err := ac.Trajectory(p)
			if err != nil {
				return &exitError{exitBadConfig, fmt.Errorf("λ = %g: %w", l, err)}
			}
			k, _ := ac.Kappa(p)
			e, v := ac.Cost(p, x)
			ce, cv, err := ac.ClosedForm(p)
			if err != nil {
				return &exitError{exitBadConfig, fmt.Errorf("λ = %g: %w", l, err)}
			}
			outs = append(outs, planOut{Strategy: "ac", Lambda: l, Kappa: k, Holdings: x, Trades: ac.Trades(x),
				E: e, V: v, ClosedFormE: ce, ClosedFormV: cv, Params: p, Calibration: cal})
		}
	default:
		return &exitError{exitBadConfig, fmt.Errorf("--strategy %q: allowed: ac, twap", f.strategy)}
	}
	if f.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(outs)
	}
	for _, o := range outs {
		if o.Strategy == "ac" {
			fmt.Fprintf(stdout, "ac  λ = %g  κ = %.6g\n", o.Lambda, o.Kappa)
		} else {
			fmt.Fprintln(stdout, "twap")
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "j\tholdings x_j\ttrade n_j\t")
		for j, x := range o.Holdings {
			n := ""
			if j > 0 {
				n = fmt.Sprintf("%.6g", o.Trades[j-1])
			}
			fmt.Fprintf(tw, "%d\t%.6g\t%s\t\n", j, x, n)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "E = %.6g  V = %.6g  √V = %.6g\n", o.E, o.V, math.Sqrt(o.V))
		if o.Strategy == "ac" {
			fmt.Fprintf(stdout, "closed form: E = %.6g  V = %.6g\n", o.ClosedFormE, o.ClosedFormV)
		}
		fmt.Fprintln(stdout)
	}
	return nil
}

// calibration is what plan --calibrate estimated, and from what.
type calibration struct {
	Dir          string   `json:"dir"`
	Days         int      `json:"complete_days"`
	First        string   `json:"first_day"`
	Last         string   `json:"last_day"`
	Incomplete   []string `json:"incomplete_days,omitempty"` // days with gaps, left out
	Missing      []string `json:"missing_days,omitempty"`    // days without a minute inside the data's span
	LeftOutFiles []string `json:"left_out_files,omitempty"`  // unreadable files, left out

	Price       float64 `json:"price"`           // mean close of the complete days' minutes
	DailyVolume float64 `json:"daily_volume"`    // mean base volume of a complete day
	DailySigma  float64 `json:"daily_log_sigma"` // sd of a complete day's open-to-close log return

	FeeBps        float64 `json:"fee_bps"`
	HalfSpreadBps float64 `json:"half_spread_bps"`
	Share         float64 `json:"share"`
	ChildQty      float64 `json:"child_qty"`      // X/N
	ChildInterval string  `json:"child_interval"` // T/N days, as a duration
	ImpactBps     float64 `json:"impact_bps"`     // steady-state transient impact per share
	WalkBps       float64 `json:"walk_bps"`       // steady-state book walk per share
	Consumed      float64 `json:"consumed"`       // depth consumed by earlier children, base
	ReachBps      float64 `json:"reach_bps"`      // how far from the mid a child's walk ends
	Warning       string  `json:"warning,omitempty"`

	Sigma   float64 `json:"sigma"`
	Epsilon float64 `json:"epsilon"`
	Eta     float64 `json:"eta"`
	Gamma   float64 `json:"gamma"`
}

// backtestVenues is the share of the market on the backtest's venues and
// their taker fee weighted by share, in bps: what plan --calibrate models
// unless told otherwise.
func backtestVenues() (share, feeBps float64) {
	cfg, err := defaultBacktestFlags().config()
	if err != nil {
		panic(fmt.Sprintf("backtest defaults: %v", err)) // the defaults are constants
	}
	for _, v := range cfg.Venues {
		share += v.Share
		feeBps += v.Share * v.Instrument.TakerFee.InexactFloat64() * 1e4
	}
	return share, feeBps / share
}

// calibrate fits the model to the sim venues replaying the klines in dir,
// days as the time unit (T, and σ per √day):
//
//   - σ = P·σ_d, σ_d the sd of the complete days' open-to-close log
//     returns (the sim's own estimate of a replay's volatility) and P their
//     mean close;
//   - V, the mean volume of a complete day;
//   - ε = P·(the sim's mean half-spread + feeBps);
//   - η the sim's steady-state cost per share (simCost: transient impact
//     and book walk) of children of X/N every T/N, divided by the average
//     rate X/T: the secant of a concave cost at the parent's pace;
//   - γ = 0: the sim's impact is transient, nothing of it is permanent.
//
// Days with gaps and unreadable files are left out and named.
func calibrate(dir string, p ac.Params, feeBps, share float64) (ac.Params, calibration, error) {
	c := calibration{Dir: dir, FeeBps: feeBps, HalfSpreadBps: sim.HalfSpreadBps, Share: share}
	switch {
	case !(p.X > 0) || !(p.T > 0) || p.N < 1:
		return p, c, fmt.Errorf("need X > 0, T > 0 and N ≥ 1 to size the children; got X = %g, T = %g, N = %d", p.X, p.T, p.N)
	case !(feeBps >= 0 && feeBps < 100):
		return p, c, fmt.Errorf("--fee-bps %g: must be in [0, 100)", feeBps)
	case !(share > 0 && share <= 1):
		return p, c, fmt.Errorf("--share %g: must be in (0, 1]", share)
	}
	s, bad, err := marketdata.ReadDirLenient(dir)
	if err != nil {
		return p, c, err
	}
	for _, b := range bad {
		c.LeftOutFiles = append(c.LeftOutFiles, b.Err.Error())
	}
	var rets []float64
	var priceSum, volume float64
	minutes := 0
	for _, d := range s.Days() {
		day, err := s.Day(d)
		if err != nil {
			c.Incomplete = append(c.Incomplete, d.Format(time.DateOnly))
			continue
		}
		if c.First == "" {
			c.First = d.Format(time.DateOnly)
		}
		c.Last = d.Format(time.DateOnly)
		rets = append(rets, math.Log(day[len(day)-1].Close.InexactFloat64()/day[0].OpenPx.InexactFloat64()))
		for _, b := range day {
			priceSum += b.Close.InexactFloat64()
			volume += b.Volume.InexactFloat64()
		}
		minutes += len(day)
	}
	for _, d := range s.MissingDays() {
		c.Missing = append(c.Missing, d.Format(time.DateOnly))
	}
	c.Days = len(rets)
	if c.Days < 3 {
		return p, c, fmt.Errorf("%s: need at least 3 complete days, found %d", dir, c.Days)
	}
	c.Price = priceSum / float64(minutes)
	c.DailyVolume = volume / float64(c.Days)
	var mean, ss float64
	for _, r := range rets {
		mean += r
	}
	mean /= float64(len(rets))
	for _, r := range rets {
		ss += (r - mean) * (r - mean)
	}
	c.DailySigma = math.Sqrt(ss / float64(len(rets)-1))
	if !(c.DailyVolume > 0) {
		return p, c, fmt.Errorf("%s: no volume traded on the complete days", dir)
	}

	tau := p.T / float64(p.N)
	q := p.X / float64(p.N)
	dt := time.Duration(tau * float64(24*time.Hour))
	if dt <= 0 {
		return p, c, fmt.Errorf("T/N = %g days is shorter than a nanosecond", tau)
	}
	impact, walk, consumed := simCost{Price: c.Price, DailySigma: c.DailySigma, DailyVolume: c.DailyVolume, Share: share}.steady(q, dt)
	shown := dt
	if dt >= time.Second {
		shown = dt.Round(time.Millisecond)
	}
	c.ChildQty, c.ChildInterval, c.Consumed = q, shown.String(), consumed
	c.ImpactBps, c.WalkBps = impact/c.Price*1e4, walk/c.Price*1e4
	c.ReachBps = math.Pow((consumed+q)/(share*sim.DefaultDepthCoef), 1/sim.DepthExponent)
	if book := sim.MaxLevels * sim.GridBps; c.ReachBps > book {
		c.Warning = fmt.Sprintf("a child of X/N = %.6g walks to %.0f bps from the mid, past the %.0f bps the sim's book holds: "+
			"the sim would not fill it, and η extrapolates the depth law (X is in base units of the data)", q, c.ReachBps, book)
	}
	c.Sigma = c.Price * c.DailySigma
	c.Epsilon = c.Price * (sim.HalfSpreadBps + feeBps) / 1e4
	c.Eta = (impact + walk) / (q / tau)
	c.Gamma = 0
	p.Sigma, p.Epsilon, p.Eta, p.Gamma = c.Sigma, c.Epsilon, c.Eta, c.Gamma
	return p, c, nil
}

// writeCalibration prints what was estimated and from what.
func writeCalibration(w io.Writer, c calibration) {
	fmt.Fprintf(w, "calibrated on %s (time unit: day)\n", c.Dir)
	fmt.Fprintf(w, "  data  %d complete days, %s to %s", c.Days, c.First, c.Last)
	if len(c.Incomplete) > 0 {
		fmt.Fprintf(w, "; left out, with gaps: %s", strings.Join(c.Incomplete, ", "))
	}
	if len(c.Missing) > 0 {
		fmt.Fprintf(w, "; no data: %s", strings.Join(c.Missing, ", "))
	}
	fmt.Fprintln(w)
	for _, f := range c.LeftOutFiles {
		fmt.Fprintf(w, "  left out: %s\n", f)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  P\t%.2f\tmean close of the complete days' minutes\n", c.Price)
	fmt.Fprintf(tw, "  V\t%.1f\tmean volume of a complete day, base units\n", c.DailyVolume)
	fmt.Fprintf(tw, "  σ_d\t%.4f\tsd of a day's open-to-close log return (%.2f %%)\n", c.DailySigma, c.DailySigma*100)
	fmt.Fprintf(tw, "  σ\t%.6g\tP·σ_d, price per √day\n", c.Sigma)
	fmt.Fprintf(tw, "  ε\t%.6g\tP × (half-spread %.2f bps, sim.HalfSpreadBps + fee %.2f bps, --fee-bps), price per share\n",
		c.Epsilon, c.HalfSpreadBps, c.FeeBps)
	fmt.Fprintf(tw, "  η\t%.6g\tthe sim's steady cost of children of X/N = %.6g every T/N = %s on %.2f of the market:\n",
		c.Eta, c.ChildQty, c.ChildInterval, c.Share)
	fmt.Fprintf(tw, "\t\t  transient impact %.3f bps (%.2g·σ_d·√(q/(share·V)) a child, half-life %s) + book walk %.3f bps\n",
		c.ImpactBps, sim.DefaultImpactCoef, sim.DefaultImpactHalfLife, c.WalkBps)
	fmt.Fprintf(tw, "\t\t  (D(x) = %.2f·%g·x^%g within x bps, past %.4g consumed), divided by the average rate X/T\n",
		c.Share, sim.DefaultDepthCoef, sim.DepthExponent, c.Consumed)
	fmt.Fprintf(tw, "  γ\t0\tthe sim's impact is transient (half-life %s): no permanent part\n", sim.DefaultImpactHalfLife)
	_ = tw.Flush()
	if c.Warning != "" {
		fmt.Fprintf(w, "warning: %s\n", c.Warning)
	}
}
