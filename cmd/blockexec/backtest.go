package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shopspring/decimal"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/blockexec/blockexec/engine/backtest"
	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/marketdata"
	"github.com/blockexec/blockexec/strategies/pov"
	"github.com/blockexec/blockexec/venues/sim"
)

type backtestFlags struct {
	data       string
	days       []string
	side       string
	qty        string
	start      time.Duration
	duration   time.Duration
	slice      time.Duration
	cap        string
	band       string
	strategies []string
	history    int
	povRate    string
	povMax     string
	lambdas    []float64
	jsonOut    bool
	chart      string
}

// defaultBacktestFlags are the flags' defaults, for callers other than cobra.
func defaultBacktestFlags() backtestFlags {
	var f backtestFlags
	bindBacktestFlags(pflag.NewFlagSet("backtest", pflag.ContinueOnError), &f)
	return f
}

func newBacktestCmd() *cobra.Command {
	f := backtestFlags{}
	cmd := &cobra.Command{
		Use:   "backtest --data DIR",
		Short: "Run strategies side by side over recorded days and compare their costs",
		Long: `backtest replays recorded one-minute klines (Binance archive CSV, one file a
day, ms or µs timestamps) through three sim venues sharing the recorded
volume 0.5/0.3/0.2 with the sim's depth and impact model, and works the same
parent on every chosen day with each strategy, from the same arrival price:

  twap        the engine's TWAP across venues, inside the band and the cap
  vwap        VWAP on a curve learned from the --history days before each day
  pov         --pov-rate of market volume, up to --pov-max at the end
  ac          Almgren–Chriss trajectories, one per --lambda (the frontier)
  dump        everything at the start, walking the books (a baseline)
  twap-touch  one venue, slices at the touch, market sweep of the remainder
              at the deadline, no cap (the common open-source TWAP)

It prints per strategy the mean and spread of the shortfall against the
arrival price (bps, positive is a cost), fees, completion, the highest
participation seen and child orders; --json prints the same as JSON and
--chart writes the executed fraction of the first day per strategy.`,
		Example: `  blockexec backtest --data ../shared/data/binance-btcusdt-1m
  blockexec backtest --data DIR --days 2024-10-08,2024-10-09 --strategies twap,vwap,twap-touch --chart out.svg
  blockexec backtest --data DIR --qty 500 --start 8h --duration 8h --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return backtestCommand(cmd.Context(), f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	bindBacktestFlags(cmd.Flags(), &f)
	_ = cmd.MarkFlagRequired("data")
	return cmd
}

func bindBacktestFlags(fl *pflag.FlagSet, f *backtestFlags) {
	fl.StringVar(&f.data, "data", "", "directory of one-minute kline CSV files")
	fl.StringSliceVar(&f.days, "days", nil, "UTC dates to run (default: every complete day with --history days before it)")
	fl.StringVar(&f.side, "side", "sell", "sell or buy")
	fl.StringVar(&f.qty, "qty", "500", "parent quantity, base units")
	fl.DurationVar(&f.start, "start", 8*time.Hour, "start time of day, UTC, as an offset from midnight")
	fl.DurationVar(&f.duration, "duration", 8*time.Hour, "how long each parent runs")
	fl.DurationVar(&f.slice, "slice", time.Minute, "slice interval")
	fl.StringVar(&f.cap, "cap", "0.10", "max participation per venue and window")
	fl.StringVar(&f.band, "band", "75", "slippage band, bps from arrival")
	fl.StringSliceVar(&f.strategies, "strategies", []string{"vwap", "twap", "pov", "ac", "dump", "twap-touch"}, "strategies to compare")
	fl.IntVar(&f.history, "history", 7, "days of history for the VWAP curve")
	fl.StringVar(&f.povRate, "pov-rate", "0.05", "POV target rate")
	fl.StringVar(&f.povMax, "pov-max", "0.10", "POV max rate")
	fl.Float64SliceVar(&f.lambdas, "lambda", []float64{1e-10, 1e-9, 1e-8, 1e-7}, "Almgren–Chriss risk aversions (per USD, time in minutes), one run each")
	fl.BoolVar(&f.jsonOut, "json", false, "print JSON")
	fl.StringVar(&f.chart, "chart", "", "write a chart of the first day's schedules (.svg or .png)")
}

// btStrategies maps a strategy name to its backtest plans; filled in by
// the strategies' own files.
type btFactory func(f backtestFlags) ([]backtest.Strategy, error)

func btStrategies() map[string]btFactory {
	return map[string]btFactory{
		"twap": func(backtestFlags) ([]backtest.Strategy, error) { return []backtest.Strategy{backtest.TWAP()}, nil },
		"dump": func(backtestFlags) ([]backtest.Strategy, error) {
			return []backtest.Strategy{backtest.Dump("simA")}, nil
		},
		"twap-touch": func(backtestFlags) ([]backtest.Strategy, error) {
			return []backtest.Strategy{backtest.TWAPTouch("simA")}, nil
		},
		"pov":  povStrategy,
		"vwap": vwapStrategy,
		"ac":   acStrategies,
	}
}

func backtestCommand(ctx context.Context, f backtestFlags, stdout, stderr io.Writer) error {
	// Every flag is checked before the data is read or a run starts.
	cfg, err := f.config()
	if err != nil {
		return &exitError{exitBadConfig, err}
	}
	if err := checkChartPath(f.chart); err != nil {
		return &exitError{exitBadConfig, err}
	}
	asked, err := f.askedDays()
	if err != nil {
		return &exitError{exitBadConfig, err}
	}
	var strategies []backtest.Strategy
	known := btStrategies()
	for _, name := range f.strategies {
		mk, ok := known[name]
		if !ok {
			return &exitError{exitBadConfig, fmt.Errorf("--strategies: %q is not known; allowed: vwap, twap, pov, ac, dump, twap-touch", name)}
		}
		ss, err := mk(f)
		if err != nil {
			return &exitError{exitBadConfig, err}
		}
		strategies = append(strategies, ss...)
	}
	if len(strategies) == 0 {
		return &exitError{exitBadConfig, fmt.Errorf("--strategies: name at least one of vwap, twap, pov, ac, dump, twap-touch")}
	}
	series, badFiles, err := marketdata.ReadDirLenient(f.data)
	if err != nil {
		return &exitError{exitBadConfig, fmt.Errorf("--data: %w", err)}
	}
	for _, b := range badFiles {
		fmt.Fprintf(stderr, "warning: file left out, its minutes count as missing: %v\n", b.Err)
	}
	days, skipped, err := f.pickDays(series, asked)
	if err != nil {
		if len(badFiles) > 0 {
			err = fmt.Errorf("%w; %d files left out, the first: %w", err, len(badFiles), badFiles[0].Err)
		}
		return &exitError{exitBadConfig, err}
	}
	printSkips(stderr, skipped)
	minutes := toMinutes(series.Bars())
	var results []backtest.Result
	if len(days) > 0 {
		fmt.Fprintf(stderr, "backtest: %d strategies × %d days (%s to %s)\n", len(strategies), len(days),
			days[0].Format(time.DateOnly), days[len(days)-1].Format(time.DateOnly))
		var more []backtest.Skip
		results, more, err = backtest.Run(ctx, minutes, cfg, strategies, days, func(done, total int) {
			if done == total || done%max(1, total/10) == 0 {
				fmt.Fprintf(stderr, "  %d/%d runs\n", done, total)
			}
		})
		if err != nil {
			return &exitError{exitFailed, err}
		}
		printSkips(stderr, more)
		skipped = append(skipped, more...)
		sort.SliceStable(skipped, func(i, j int) bool { return skipped[i].Date.Before(skipped[j].Date) })
		days = ranDays(results)
	}
	if len(days) == 0 {
		return &exitError{exitBadConfig, noDaysError(skipped)}
	}
	rows := backtest.Table(results)
	if f.chart != "" {
		if err := writeChart(f.chart, days[0], results); err != nil {
			return &exitError{exitFailed, err}
		}
	}
	if f.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Days       []string       `json:"days"`
			Skipped    []skippedDay   `json:"skipped,omitempty"`
			Strategies []backtest.Row `json:"strategies"`
		}{dayStrings(days), skippedDays(skipped), rows})
	}
	if err := writeTable(stdout, rows); err != nil {
		return err
	}
	if len(skipped) > 0 {
		names := make([]string, len(skipped))
		for i, sk := range skipped {
			names[i] = sk.Date.Format(time.DateOnly)
		}
		_, err = fmt.Fprintf(stdout, "skipped (missing minutes, see stderr): %s\n", strings.Join(names, ", "))
	}
	return err
}

func printSkips(w io.Writer, skipped []backtest.Skip) {
	for _, sk := range skipped {
		fmt.Fprintf(w, "skipped %s: %v\n", sk.Date.Format(time.DateOnly), sk.Reason)
	}
}

// skippedDay is a day left out, as --json prints it.
type skippedDay struct {
	Date   string `json:"date"`
	Reason string `json:"reason"`
}

func skippedDays(skipped []backtest.Skip) []skippedDay {
	out := make([]skippedDay, len(skipped))
	for i, sk := range skipped {
		out[i] = skippedDay{Date: sk.Date.Format(time.DateOnly), Reason: sk.Reason.Error()}
	}
	return out
}

// noDaysError says that nothing could run, and why.
func noDaysError(skipped []backtest.Skip) error {
	return fmt.Errorf("--data: no day left to run; skipped: %s", skipReasons(skipped))
}

// skipReasons lists why the first three days were skipped.
func skipReasons(skipped []backtest.Skip) string {
	parts := make([]string, 0, min(len(skipped), 4))
	for i, sk := range skipped {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(skipped)-i))
			break
		}
		parts = append(parts, sk.Reason.Error())
	}
	return strings.Join(parts, "; ")
}

// ranDays lists the dates that have results, in order.
func ranDays(results []backtest.Result) []time.Time {
	var out []time.Time
	for _, r := range results {
		if n := len(out); n == 0 || !out[n-1].Equal(r.Date) {
			out = append(out, r.Date)
		}
	}
	return out
}

// checkChartPath refuses a --chart name the chart writer cannot serve, or
// one in a directory that does not exist, before any run.
func checkChartPath(path string) error {
	if path == "" {
		return nil
	}
	if _, err := chartFormat(path); err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("--chart %s: directory %s does not exist", path, dir)
	}
	return nil
}

func chartFormat(path string) (string, error) {
	format := strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), ".")
	if format != "svg" && format != "png" {
		return "", fmt.Errorf("--chart %s: the name must end in .svg or .png", path)
	}
	return format, nil
}

func (f backtestFlags) config() (backtest.Config, error) {
	side, err := market.ParseSide(f.side)
	if err != nil {
		return backtest.Config{}, fmt.Errorf("--side: %w", err)
	}
	dec := func(name, v string) (decimal.Decimal, error) {
		d, err := decimal.NewFromString(v)
		if err != nil || d.Sign() <= 0 {
			return d, fmt.Errorf("--%s: %q must be a positive decimal", name, v)
		}
		return d, nil
	}
	qty, err := dec("qty", f.qty)
	if err != nil {
		return backtest.Config{}, err
	}
	capFrac, err := dec("cap", f.cap)
	if err != nil || capFrac.GreaterThan(decimal.NewFromInt(1)) {
		return backtest.Config{}, fmt.Errorf("--cap: %q must be in (0, 1]", f.cap)
	}
	band, err := dec("band", f.band)
	if err != nil {
		return backtest.Config{}, err
	}
	if f.duration <= 0 || f.slice <= 0 || f.slice > f.duration || f.start < 0 || f.start+f.duration > 48*time.Hour {
		return backtest.Config{}, fmt.Errorf("--start %s, --duration %s, --slice %s: need 0 < slice ≤ duration and the window within the next day", f.start, f.duration, f.slice)
	}
	inst := func(step, minNotional, fee string) market.Instrument {
		d := decimal.RequireFromString
		return market.Instrument{Symbol: "BTCUSDT", Base: "BTC", Quote: "USDT", Tick: d("0.01"), Step: d(step), MinQty: d(step),
			MinNotional: d(minNotional), MakerFee: d("0.0001"), TakerFee: d(fee)}
	}
	return backtest.Config{Symbol: "BTCUSDT", Base: "BTC", Quote: "USDT", Side: side, Qty: qty,
		StartOfDay: f.start, Duration: f.duration, SliceInterval: f.slice, MaxParticipation: capFrac, BandBps: band,
		Venues: []backtest.VenueSpec{
			{Name: "simA", Share: 0.5, Instrument: inst("0.00001", "5", "0.0004")},
			{Name: "simB", Share: 0.3, Instrument: inst("0.0001", "10", "0.0005")},
			{Name: "simC", Share: 0.2, Instrument: inst("0.001", "1", "0.0006")},
		}}, nil
}

// askedDays parses --days.
func (f backtestFlags) askedDays() ([]time.Time, error) {
	var out []time.Time
	for _, v := range f.days {
		d, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return nil, fmt.Errorf("--days: %q is not a date like 2024-10-08", v)
		}
		out = append(out, d)
	}
	return out, nil
}

// pickDays returns the days asked for, or every complete day that has
// --history complete days before it and its window inside the data. A day
// with missing minutes, or none, is skipped with the reason (the gaps, or
// the left-out file); as history it is simply not learned from: the VWAP
// curve takes the --history complete days before, reaching further back
// past it. A day asked for outside the data is an error.
func (f backtestFlags) pickDays(s *marketdata.Series, asked []time.Time) ([]time.Time, []backtest.Skip, error) {
	all := s.Days()
	first, last := all[0], all[len(all)-1]
	var complete []time.Time
	var skipped []backtest.Skip
	incomplete := map[time.Time]error{}
	for _, d := range all {
		if _, err := s.Day(d); err != nil {
			incomplete[d] = err
			continue
		}
		complete = append(complete, d)
	}
	for _, d := range s.MissingDays() {
		incomplete[d] = fmt.Errorf("%w: %s: no minute recorded (a missing, empty or left-out file)", marketdata.ErrMissingDay, d.Format(time.DateOnly))
	}
	if len(asked) > 0 {
		var out []time.Time
		for _, d := range asked {
			if d.Before(first) || d.After(last) {
				return nil, nil, fmt.Errorf("--days: %s is outside the data (%s to %s)", d.Format(time.DateOnly),
					first.Format(time.DateOnly), last.Format(time.DateOnly))
			}
			if err, bad := incomplete[d]; bad {
				skipped = append(skipped, backtest.Skip{Date: d, Reason: err})
				continue
			}
			out = append(out, d)
		}
		return out, skipped, nil
	}
	for d := first; !d.After(last); d = d.Add(24 * time.Hour) {
		if err, bad := incomplete[d]; bad {
			skipped = append(skipped, backtest.Skip{Date: d, Reason: err})
		}
	}
	var out []time.Time
	end := s.Bars()[s.Len()-1].Open.Add(time.Minute)
	for i, d := range complete {
		if i < f.history || d.Add(f.start+f.duration+time.Hour).After(end) {
			continue
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		if len(skipped) > 0 {
			return nil, nil, fmt.Errorf("--data: no complete day has %d complete days of history before it and its window inside the data; skipped: %s",
				f.history, skipReasons(skipped))
		}
		return nil, nil, fmt.Errorf("--data: no complete day has %d days of history before it and its window inside the data", f.history)
	}
	return out, skipped, nil
}

// toMinutes converts bars for the replay venues; gaps are kept, and
// backtest.Run skips the days they fall in.
func toMinutes(bars []marketdata.Bar) []sim.Minute {
	out := make([]sim.Minute, len(bars))
	for i, b := range bars {
		out[i] = sim.Minute{Open: b.Open, OpenPx: b.OpenPx.InexactFloat64(), ClosePx: b.Close.InexactFloat64(),
			Volume: b.Volume.InexactFloat64(), QuoteVolume: b.QuoteVolume.InexactFloat64()}
	}
	return out
}

func dayStrings(days []time.Time) []string {
	out := make([]string, len(days))
	for i, d := range days {
		out[i] = d.Format(time.DateOnly)
	}
	return out
}

func writeTable(w io.Writer, rows []backtest.Row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "strategy\tdays\tshortfall bps\t± sd\tIS bps\t± sd\tfees bps\tcompletion %\tmax participation %\tchild orders\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.0f\t\n", r.Strategy, r.Days, r.MeanShortfallBps,
			r.StdShortfallBps, r.MeanISBps, r.StdISBps, r.MeanFeesBps, r.MeanCompletion*100, r.MaxParticipation*100, r.MeanChildOrders)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, "shortfall: average fill vs arrival; IS: the whole parent, the unfilled part valued at the end price; bps, positive is a cost")
	return err
}

func writeChart(path string, day time.Time, results []backtest.Result) error {
	format, err := chartFormat(path)
	if err != nil {
		return err
	}
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := backtest.WriteChart(fh, day, results, format); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}

// povStrategy checks the rates with pov's own rules on a dummy window, so
// that a bad --pov-rate stops the command before any data is read.
func povStrategy(f backtestFlags) ([]backtest.Strategy, error) {
	rate, err1 := decimal.NewFromString(f.povRate)
	maxRate, err2 := decimal.NewFromString(f.povMax)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("--pov-rate %q, --pov-max %q: decimals in (0, 1)", f.povRate, f.povMax)
	}
	t0 := time.Unix(0, 0).UTC()
	if _, err := pov.New(decimal.NewFromInt(1), t0, t0.Add(time.Hour), pov.Params{Rate: rate, MaxRate: maxRate}); err != nil {
		return nil, fmt.Errorf("--pov-rate %s, --pov-max %s: %w", f.povRate, f.povMax, err)
	}
	return []backtest.Strategy{{Name: "pov", Plan: func(d backtest.Day) (backtest.Plan, error) {
		s, err := pov.New(d.Config.Qty, d.Start, d.End, pov.Params{Rate: rate, MaxRate: maxRate})
		if err != nil {
			return backtest.Plan{}, err
		}
		return backtest.Plan{Strategy: "pov", Schedule: s}, nil
	}}}, nil
}
