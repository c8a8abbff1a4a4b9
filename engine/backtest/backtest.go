// Package backtest runs strategies side by side over recorded days: each
// (strategy, day) is a fresh engine on replay venues driven by the same
// minutes, on a virtual clock, with no bus and no ledger, so that the
// comparison is the strategies' alone.
package backtest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/engine"
	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/marketdata"
	"github.com/blockexec/blockexec/risk"
	"github.com/blockexec/blockexec/venues/sim"
)

// VenueSpec is one replay venue.
type VenueSpec struct {
	Name       string
	Share      float64 // of the recorded volume and the depth model
	Instrument market.Instrument
}

// Config is the parent every strategy works each day.
type Config struct {
	Symbol, Base, Quote string
	Side                market.Side
	Qty                 decimal.Decimal
	StartOfDay          time.Duration // e.g. 8h: 08:00 UTC
	Duration            time.Duration
	SliceInterval       time.Duration
	MaxParticipation    decimal.Decimal
	BandBps             decimal.Decimal
	Venues              []VenueSpec
}

// Day is what a strategy may know when it plans a day: its window and
// every recorded minute before the start.
type Day struct {
	Date       time.Time // 00:00 UTC
	Start, End time.Time
	History    []sim.Minute
	Config     Config
}

// Plan is how a strategy works one day. Zero fields take the config's.
type Plan struct {
	Schedule         engine.Schedule // nil: TWAP
	Strategy         string          // engine strategy name; default "twap"
	Venues           []string        // default all
	Style            string
	BandBps          decimal.Decimal
	MaxParticipation decimal.Decimal
}

// Strategy names a way to plan a day.
type Strategy struct {
	Name string
	Plan func(Day) (Plan, error)
}

// Result is one strategy on one day.
type Result struct {
	Strategy string
	Date     time.Time
	Summary  engine.Summary
	Path     []Point         // after every slice
	EndPrice decimal.Decimal // the market's price at the end of the window
}

// ImplementationShortfallBps is the cost against arrival of the whole
// parent, the unfilled part valued at the end price (what it would fetch
// then): positive is a cost.
func (r Result) ImplementationShortfallBps() float64 {
	s := r.Summary
	if s.ArrivalPrice.IsZero() || s.Qty.IsZero() {
		return 0
	}
	arrival := s.ArrivalPrice.InexactFloat64()
	filled := s.Filled.InexactFloat64()
	cost := arrival*filled - s.Notional.InexactFloat64() + (arrival-r.EndPrice.InexactFloat64())*s.Unfilled().InexactFloat64()
	if s.Side == market.Buy {
		cost = -cost
	}
	return cost / (arrival * s.Qty.InexactFloat64()) * 1e4
}

// Point is a parent's progress after a slice.
type Point struct {
	Time   time.Time
	Filled decimal.Decimal
	Target decimal.Decimal
}

// recorder collects a run's path.
type recorder struct{ path []Point }

func (r *recorder) Progress(p engine.Progress) {
	r.path = append(r.path, Point{Time: p.Now, Filled: p.Filled, Target: p.Target})
}

// Skip is a day Run left out, and why.
type Skip struct {
	Date   time.Time
	Reason error // a *GapError for missing minutes
}

// GapError is a day whose replay window has missing minutes. The window
// runs from the day's midnight to an hour past the parent's end: the
// replay venues need the whole of it.
type GapError struct {
	Date     time.Time
	From, To time.Time // the window
	Missing  int       // minutes missing in it
	Gaps     []marketdata.Gap
}

// Error names the day, the window and the first gaps.
func (e *GapError) Error() string {
	parts := make([]string, 0, len(e.Gaps))
	for i, g := range e.Gaps {
		if i == 5 {
			parts = append(parts, fmt.Sprintf("and %d more", len(e.Gaps)-i))
			break
		}
		parts = append(parts, g.String())
	}
	return fmt.Sprintf("backtest: day %s: %d of the %d minutes it replays (%s to %s) missing: %s", e.Date.Format(time.DateOnly),
		e.Missing, int(e.To.Sub(e.From)/time.Minute), e.From.Format("2006-01-02 15:04"), e.To.Format("2006-01-02 15:04"),
		strings.Join(parts, ", "))
}

// Run works every strategy on every day. minutes is the recorded series in
// strictly increasing time, one a minute at most; it may have gaps. A day
// whose replay window (midnight to an hour past the parent's end) is not
// whole is left out and listed in skipped with a *GapError; the minutes
// before a day's start, gaps and all, are its History. A day outside the
// data is an error. progress, if not nil, is called after each run.
func Run(ctx context.Context, minutes []sim.Minute, cfg Config, strategies []Strategy, days []time.Time,
	progress func(done, total int)) (results []Result, skipped []Skip, err error) {
	if len(minutes) == 0 {
		return nil, nil, errors.New("backtest: no data")
	}
	if len(cfg.Venues) == 0 || len(strategies) == 0 || len(days) == 0 {
		return nil, nil, errors.New("backtest: need venues, strategies and days")
	}
	for i := 1; i < len(minutes); i++ {
		if !minutes[i].Open.After(minutes[i-1].Open) {
			return nil, nil, fmt.Errorf("backtest: minute %s does not follow %s: the data must be in strictly increasing time",
				minutes[i].Open.Format(time.RFC3339), minutes[i-1].Open.Format(time.RFC3339))
		}
	}
	var runs []window
	for _, date := range days {
		w, err := dayWindow(minutes, cfg, date)
		var ge *GapError
		switch {
		case errors.As(err, &ge):
			skipped = append(skipped, Skip{Date: ge.Date, Reason: ge})
		case err != nil:
			return nil, nil, err
		default:
			runs = append(runs, w)
		}
	}
	total, done := len(runs)*len(strategies), 0
	for _, w := range runs {
		date := w.day.Date
		w.day.History = minutes[:w.start]
		endPx := decimal.NewFromFloat(minutes[w.end].OpenPx)
		for _, st := range strategies {
			plan, err := st.Plan(w.day)
			if err != nil {
				return nil, nil, fmt.Errorf("backtest: %s on %s: %w", st.Name, date.Format(time.DateOnly), err)
			}
			sum, path, err := runOne(ctx, minutes[w.lo:w.hi], cfg, w.day, plan)
			if err != nil {
				return nil, nil, fmt.Errorf("backtest: %s on %s: %w", st.Name, date.Format(time.DateOnly), err)
			}
			results = append(results, Result{Strategy: st.Name, Date: date, Summary: sum, Path: path, EndPrice: endPx})
			done++
			if progress != nil {
				progress(done, total)
			}
		}
	}
	return results, skipped, nil
}

// window is a day to run: its replay minutes [lo, hi) and the indices of
// the parent's start and end minutes.
type window struct {
	day        Day
	lo, hi     int
	start, end int
}

// dayWindow locates date's replay window in minutes: an error for a day
// outside the data, a *GapError for one with minutes missing.
func dayWindow(minutes []sim.Minute, cfg Config, date time.Time) (window, error) {
	date = date.UTC().Truncate(24 * time.Hour)
	start := date.Add(cfg.StartOfDay)
	end := start.Add(cfg.Duration)
	from, to := date, end.Add(time.Hour)
	first, last := minutes[0].Open, minutes[len(minutes)-1].Open.Add(time.Minute)
	if from.Before(first) || to.After(last) {
		return window{}, fmt.Errorf("backtest: %s: the data (%s to %s) does not cover %s to %s", date.Format(time.DateOnly),
			first.Format(time.RFC3339), last.Format(time.RFC3339), from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	at := func(t time.Time) int {
		return sort.Search(len(minutes), func(i int) bool { return !minutes[i].Open.Before(t) })
	}
	lo, hi := at(from), at(to)
	want := int(to.Sub(from) / time.Minute)
	if hi-lo != want {
		e := &GapError{Date: date, From: from, To: to, Missing: want - (hi - lo)}
		next := from
		for i := lo; i <= hi; i++ {
			t := to
			if i < hi {
				t = minutes[i].Open
			}
			if t.After(next) {
				e.Gaps = append(e.Gaps, marketdata.Gap{From: next, To: t})
			}
			next = t.Add(time.Minute)
		}
		return window{}, e
	}
	return window{day: Day{Date: date, Start: start, End: end, Config: cfg}, lo: lo, hi: hi,
		start: lo + int(start.Sub(from)/time.Minute), end: lo + int(end.Sub(from)/time.Minute)}, nil
}

func runOne(ctx context.Context, minutes []sim.Minute, cfg Config, day Day, plan Plan) (engine.Summary, []Point, error) {
	// The impact model's σ comes from the data: the complete days before
	// this one (the replayed window alone is under two days).
	m, err := sim.NewReplay(sim.ReplayConfig{Symbol: cfg.Symbol, Base: cfg.Base, Quote: cfg.Quote,
		DailyVolatility: sim.DailySigma(day.History)}, minutes)
	if err != nil {
		return engine.Summary{}, nil, err
	}
	clk := clock.NewVirtual(day.Start)
	vs := make([]engine.Venue, 0, len(cfg.Venues))
	for _, vc := range cfg.Venues {
		v, err := sim.New(m, clk, sim.Config{Name: vc.Name, Share: vc.Share, Instrument: vc.Instrument, IDPrefix: vc.Name})
		if err != nil {
			return engine.Summary{}, nil, err
		}
		vs = append(vs, v)
	}
	kill := risk.NewKillSwitch(false)
	eng, err := engine.New(clk, vs, risk.NewChecker(kill), kill, discard{}, zerolog.Nop())
	if err != nil {
		return engine.Summary{}, nil, err
	}
	spec := engine.ParentSpec{ID: "bt", Side: cfg.Side, Symbol: cfg.Symbol, Qty: cfg.Qty, Strategy: "twap",
		Start: day.Start, End: day.End, SliceInterval: cfg.SliceInterval, MaxParticipation: cfg.MaxParticipation,
		BandBps: cfg.BandBps, Venues: plan.Venues, Style: plan.Style, Schedule: plan.Schedule}
	if plan.Strategy != "" {
		spec.Strategy = plan.Strategy
	}
	if plan.BandBps.Sign() > 0 {
		spec.BandBps = plan.BandBps
	}
	if plan.MaxParticipation.Sign() > 0 {
		spec.MaxParticipation = plan.MaxParticipation
	}
	rec := &recorder{}
	eng.SetObserver(rec)
	sums, err := eng.Run(ctx, []engine.ParentSpec{spec})
	if err != nil {
		return engine.Summary{}, nil, err
	}
	return sums[0], rec.path, nil
}

// discard is a publisher for runs with no bus.
type discard struct{}

func (discard) PublishFill(context.Context, bus.FillMsg) error   { return nil }
func (discard) PublishEvent(context.Context, bus.EventMsg) error { return nil }

// Row is one strategy's figures over the days.
type Row struct {
	Strategy         string  `json:"strategy"`
	Days             int     `json:"days"`
	MeanShortfallBps float64 `json:"mean_shortfall_bps"` // filled part vs arrival
	StdShortfallBps  float64 `json:"std_shortfall_bps"`
	MeanISBps        float64 `json:"mean_implementation_shortfall_bps"` // whole parent, unfilled at the end price
	StdISBps         float64 `json:"std_implementation_shortfall_bps"`
	MeanFeesBps      float64 `json:"mean_fees_bps"`
	MeanCompletion   float64 `json:"mean_completion"` // filled / quantity
	MaxParticipation float64 `json:"max_participation"`
	MeanChildOrders  float64 `json:"mean_child_orders"`
}

// Table summarises results per strategy, in the order strategies first
// appear. Shortfall is averaged over days with fills (bps vs arrival,
// positive is a cost); fees are in bps of the filled notional.
func Table(results []Result) []Row {
	var order []string
	by := map[string][]Result{}
	for _, r := range results {
		if _, ok := by[r.Strategy]; !ok {
			order = append(order, r.Strategy)
		}
		by[r.Strategy] = append(by[r.Strategy], r)
	}
	rows := make([]Row, 0, len(order))
	for _, name := range order {
		rs := by[name]
		row := Row{Strategy: name, Days: len(rs)}
		var sf, is []float64
		for _, r := range rs {
			is = append(is, r.ImplementationShortfallBps())
			s := r.Summary
			if s.Filled.IsPositive() {
				sf = append(sf, s.ShortfallBps().InexactFloat64())
				row.MeanFeesBps += s.Fees.Div(s.Notional).InexactFloat64() * 1e4
			}
			row.MeanCompletion += s.Filled.Div(s.Qty).InexactFloat64()
			row.MaxParticipation = math.Max(row.MaxParticipation, s.MaxParticipation.InexactFloat64())
			row.MeanChildOrders += float64(s.ChildOrders)
		}
		n := float64(len(rs))
		row.MeanCompletion /= n
		row.MeanChildOrders /= n
		if len(sf) > 0 {
			row.MeanFeesBps /= float64(len(sf))
			row.MeanShortfallBps, row.StdShortfallBps = meanStd(sf)
		}
		row.MeanISBps, row.StdISBps = meanStd(is)
		rows = append(rows, row)
	}
	return rows
}

func meanStd(xs []float64) (mean, std float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	if len(xs) < 2 {
		return mean, 0
	}
	for _, x := range xs {
		std += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(std / float64(len(xs)-1))
}

// Sorted returns rows by mean shortfall, cheapest first.
func Sorted(rows []Row) []Row {
	out := append([]Row(nil), rows...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].MeanShortfallBps < out[j].MeanShortfallBps })
	return out
}
