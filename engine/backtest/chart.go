package backtest

import (
	"fmt"
	"io"
	"time"

	chart "github.com/wcharczuk/go-chart/v2"

	"github.com/blockexec/blockexec/plot"
)

// ChartSize is the chart's size in pixels.
const (
	ChartWidth  = 1200
	ChartHeight = 600
)

// WriteChart draws the executed fraction of the parent against time, one
// line per strategy, for the results of one day; format is "svg" or "png".
func WriteChart(w io.Writer, day time.Time, results []Result, format string) error {
	var series []chart.Series
	var last time.Time
	for _, r := range results {
		if r.Date.Equal(day) && len(r.Path) > 0 && r.Path[len(r.Path)-1].Time.After(last) {
			last = r.Path[len(r.Path)-1].Time
		}
	}
	for _, r := range results {
		if !r.Date.Equal(day) || len(r.Path) == 0 {
			continue
		}
		s := chart.TimeSeries{Name: r.Strategy, Style: chart.Style{StrokeWidth: 2,
			StrokeColor: plot.Color(len(series))}}
		for _, p := range r.Path {
			s.XValues = append(s.XValues, p.Time)
			s.YValues = append(s.YValues, p.Filled.Div(r.Summary.Qty).InexactFloat64()*100)
		}
		// A parent that finished early stays flat to the end of the chart.
		if end := s.XValues[len(s.XValues)-1]; end.Before(last) || len(s.XValues) == 1 {
			s.XValues = append(s.XValues, maxTime(last, end.Add(time.Minute)))
			s.YValues = append(s.YValues, s.YValues[len(s.YValues)-1])
		}
		series = append(series, s)
	}
	if len(series) == 0 {
		return fmt.Errorf("chart: no results for %s", day.Format(time.DateOnly))
	}
	g := chart.Chart{
		Title:      "Executed % of the parent, " + day.Format(time.DateOnly) + " (UTC)",
		Width:      ChartWidth,
		Height:     ChartHeight,
		Background: chart.Style{Padding: chart.Box{Top: 50, Left: 20, Right: 20, Bottom: 20}},
		XAxis:      chart.XAxis{Name: "time (UTC)", ValueFormatter: chart.TimeMinuteValueFormatter},
		YAxis:      chart.YAxis{Name: "executed %", Range: &chart.ContinuousRange{Min: 0, Max: 100}},
		Series:     series,
	}
	g.Elements = []chart.Renderable{chart.LegendLeft(&g)}
	return plot.Render(w, format, g)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
