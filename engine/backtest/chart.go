package backtest

import (
	"fmt"
	"io"
	"strings"
	"time"

	chart "github.com/wcharczuk/go-chart/v2"
	"github.com/wcharczuk/go-chart/v2/drawing"
)

// ChartSize is the chart's size in pixels.
const (
	ChartWidth  = 1200
	ChartHeight = 600
)

var palette = []drawing.Color{
	{R: 31, G: 119, B: 180, A: 255}, {R: 255, G: 127, B: 14, A: 255}, {R: 44, G: 160, B: 44, A: 255},
	{R: 214, G: 39, B: 40, A: 255}, {R: 148, G: 103, B: 189, A: 255}, {R: 140, G: 86, B: 75, A: 255},
	{R: 227, G: 119, B: 194, A: 255}, {R: 127, G: 127, B: 127, A: 255}, {R: 188, G: 189, B: 34, A: 255},
	{R: 23, G: 190, B: 207, A: 255}, {R: 0, G: 0, B: 0, A: 255},
}

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
			StrokeColor: palette[len(series)%len(palette)]}}
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
	switch strings.ToLower(format) {
	case "svg":
		return g.Render(chart.SVG, w)
	case "png":
		return g.Render(chart.PNG, w)
	}
	return fmt.Errorf("chart: format %q: allowed: svg, png", format)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
