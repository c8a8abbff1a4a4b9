package settlement

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/shopspring/decimal"
	chart "github.com/wcharczuk/go-chart/v2"
	"github.com/wcharczuk/go-chart/v2/drawing"

	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/plot"
)

// The execution chart's size in pixels: two panels of ChartWidth ×
// ChartHeight/2, quantity above, prices below.
const (
	ChartWidth  = 1200
	ChartHeight = 800
)

// Execution is how one parent was worked, as the ledger holds it: its
// settlement, the schedule's cumulative target as the engine released it
// slice by slice, and its fills by time.
type Execution struct {
	Report   Report
	Schedule []SchedulePoint
	Fills    []Fill
	// Market is the mid price of the book each child was priced on, by
	// time (the child_placed events' mid): the market the fills met.
	Market []PricePoint
}

// PricePoint is a price at a time.
type PricePoint struct {
	Time  time.Time
	Price decimal.Decimal
}

// SchedulePoint is the cumulative target quantity a slice released at Time.
type SchedulePoint struct {
	Time   time.Time
	Target decimal.Decimal
}

// Execution reads one parent's execution from the ledger: the report, the
// slice events' targets and the fills.
func (l *Ledger) Execution(ctx context.Context, parentID string) (Execution, error) {
	r, err := l.Report(ctx, parentID)
	if err != nil {
		return Execution{}, err
	}
	x := Execution{Report: r}
	rows, err := l.db.QueryContext(ctx, `SELECT body FROM events WHERE parent_id = ? AND kind IN (?, ?) ORDER BY seq`,
		parentID, bus.KindSlice, bus.KindChildPlaced)
	if err != nil {
		return x, fmt.Errorf("ledger: parent %s slices: %w", parentID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return x, fmt.Errorf("ledger: parent %s slices: %w", parentID, err)
		}
		var m bus.EventMsg
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			return x, fmt.Errorf("ledger: parent %s slice event: %w", parentID, err)
		}
		switch {
		case m.Slice != nil:
			x.Schedule = append(x.Schedule, SchedulePoint{Time: m.Time, Target: m.Slice.Target})
		case m.Child != nil && m.Child.Mid.IsPositive():
			x.Market = append(x.Market, PricePoint{Time: m.Time, Price: m.Child.Mid})
		}
	}
	if err := rows.Err(); err != nil {
		return x, fmt.Errorf("ledger: parent %s slices: %w", parentID, err)
	}
	if x.Fills, err = l.Fills(ctx, parentID); err != nil {
		return x, err
	}
	return x, nil
}

// WriteChart draws an execution as two panels, ChartWidth × ChartHeight
// in all: the cumulative filled quantity against the schedule's target
// over time, and each fill's price (a dot per fill, a colour per venue)
// against the arrival price and the market's VWAP over the parent's
// window. format is "png" or "svg".
func WriteChart(w io.Writer, format string, x Execution) error {
	r := x.Report
	from, to := r.Start, r.End
	for _, f := range x.Fills {
		from, to = minTime(from, f.Time), maxTime(to, f.Time)
	}
	for _, s := range x.Schedule {
		from, to = minTime(from, s.Time), maxTime(to, s.Time)
	}
	if from.IsZero() || !to.After(from) {
		return fmt.Errorf("chart %s: no time span to draw (start %s, end %s)", r.ParentID, from, to)
	}
	xAxis := chart.XAxis{Name: "time (UTC)", ValueFormatter: chart.TimeMinuteValueFormatter,
		Range: &chart.ContinuousRange{Min: chart.TimeToFloat64(from), Max: chart.TimeToFloat64(to)}}
	top := panel(fmt.Sprintf("%s: %s %s %s, filled against the schedule", r.ParentID, r.Side, r.Quantity, r.Symbol),
		xAxis, chart.YAxis{Name: "cumulative quantity", Range: &chart.ContinuousRange{Min: 0, Max: qtyCeiling(x)}},
		quantitySeries(x, to))
	bottom := panel("Fill prices against the market ("+r.FeeAsset+")", xAxis,
		chart.YAxis{Name: "price", Range: priceRange(x)}, priceSeries(x, from, to))
	return plot.Stack(w, format, top, bottom)
}

func panel(title string, x chart.XAxis, y chart.YAxis, series []chart.Series) chart.Chart {
	g := chart.Chart{
		Title:      title,
		Width:      ChartWidth,
		Height:     ChartHeight / 2,
		Background: chart.Style{Padding: chart.Box{Top: 50, Left: 20, Right: 20, Bottom: 20}},
		XAxis:      x,
		YAxis:      y,
		Series:     series,
	}
	g.Elements = []chart.Renderable{chart.Legend(&g)}
	return g
}

// quantitySeries are the schedule's released target and the filled
// quantity, both cumulative steps from zero at the start, drawn to the end.
func quantitySeries(x Execution, to time.Time) []chart.Series {
	target := step{name: "schedule target", color: plot.Color(7)}
	target.add(x.Report.Start, decimal.Zero)
	for _, s := range x.Schedule {
		target.add(s.Time, s.Target)
	}
	target.add(to, target.last)
	filled := step{name: "filled", color: plot.Color(0)}
	filled.add(x.Report.Start, decimal.Zero)
	for _, f := range x.Fills {
		filled.add(f.Time, filled.last.Add(f.Qty))
	}
	filled.add(to, filled.last)
	// The target goes on top, dashed: a schedule followed exactly hides it
	// otherwise.
	ts := target.series()
	ts.Style.StrokeDashArray = []float64{6, 4}
	return []chart.Series{filled.series(), ts}
}

// step is a cumulative series drawn as steps: flat until the next change.
type step struct {
	name  string
	color drawing.Color
	last  decimal.Decimal
	xs    []time.Time
	ys    []float64
}

func (s *step) add(t time.Time, v decimal.Decimal) {
	if len(s.xs) > 0 {
		s.xs = append(s.xs, t)
		s.ys = append(s.ys, s.last.InexactFloat64())
	}
	s.xs = append(s.xs, t)
	s.ys = append(s.ys, v.InexactFloat64())
	s.last = v
}

func (s *step) series() chart.TimeSeries {
	return chart.TimeSeries{Name: s.name, XValues: s.xs, YValues: s.ys,
		Style: chart.Style{StrokeWidth: 2, StrokeColor: s.color}}
}

// priceSeries are the fills, one dot series per venue, the market's mid
// as each child was priced, and the arrival price and market VWAP as flat
// lines over the window.
func priceSeries(x Execution, from, to time.Time) []chart.Series {
	var out []chart.Series
	flat := func(name string, price decimal.Decimal, c drawing.Color) {
		if price.IsPositive() {
			out = append(out, chart.TimeSeries{Name: name, XValues: []time.Time{from, to},
				YValues: []float64{price.InexactFloat64(), price.InexactFloat64()},
				Style:   chart.Style{StrokeWidth: 2, StrokeColor: c, StrokeDashArray: []float64{6, 4}}})
		}
	}
	flat("arrival "+x.Report.ArrivalPrice.StringFixed(2), x.Report.ArrivalPrice, plot.Color(7))
	flat("market VWAP "+x.Report.MarketVWAP.StringFixed(2), x.Report.MarketVWAP, plot.Color(10))
	if len(x.Market) > 0 {
		mid := chart.TimeSeries{Name: "market mid", Style: chart.Style{StrokeWidth: 1.5, StrokeColor: plot.Color(8)}}
		for _, m := range x.Market {
			mid.XValues = append(mid.XValues, m.Time)
			mid.YValues = append(mid.YValues, m.Price.InexactFloat64())
		}
		out = append(out, mid)
	}
	byVenue := map[string]*chart.TimeSeries{}
	var names []string
	for _, f := range x.Fills {
		s := byVenue[f.Venue]
		if s == nil {
			s = &chart.TimeSeries{Name: "fills " + f.Venue}
			byVenue[f.Venue] = s
			names = append(names, f.Venue)
		}
		s.XValues = append(s.XValues, f.Time)
		s.YValues = append(s.YValues, f.Price.InexactFloat64())
	}
	sort.Strings(names)
	for i, n := range names {
		s := byVenue[n]
		c := plot.Color(i + 1)
		s.Style = chart.Style{StrokeWidth: chart.Disabled, StrokeColor: c, DotWidth: 3, DotColor: c}
		out = append(out, *s)
	}
	return out
}

// qtyCeiling is the top of the quantity axis: the parent's quantity, or
// more when the schedule or the fills went past it, with some headroom.
func qtyCeiling(x Execution) float64 {
	top := decimal.Max(x.Report.Quantity, x.Report.FilledQuantity)
	for _, s := range x.Schedule {
		top = decimal.Max(top, s.Target)
	}
	if !top.IsPositive() {
		return 1
	}
	return top.InexactFloat64() * 1.05
}

// priceRange spans the fills, the arrival and the market VWAP with 5 %
// of the span as a margin; a single price gets ±0.1 % around it.
func priceRange(x Execution) chart.Range {
	var prices []decimal.Decimal
	for _, p := range []decimal.Decimal{x.Report.ArrivalPrice, x.Report.MarketVWAP} {
		if p.IsPositive() {
			prices = append(prices, p)
		}
	}
	for _, f := range x.Fills {
		prices = append(prices, f.Price)
	}
	for _, m := range x.Market {
		prices = append(prices, m.Price)
	}
	if len(prices) == 0 {
		return &chart.ContinuousRange{Min: 0, Max: 1}
	}
	lo, hi := decimal.Min(prices[0], prices[1:]...), decimal.Max(prices[0], prices[1:]...)
	l, h := lo.InexactFloat64(), hi.InexactFloat64()
	margin := (h - l) * 0.05
	if margin == 0 {
		margin = l * 0.001
	}
	return &chart.ContinuousRange{Min: l - margin, Max: h + margin}
}

func minTime(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
