// Package plot gives blockexec's charts one look and one way out: a
// palette, and rendering as PNG or SVG, one panel or several stacked.
package plot

import (
	"bytes"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"io"
	"strings"

	chart "github.com/wcharczuk/go-chart/v2"
	"github.com/wcharczuk/go-chart/v2/drawing"
)

// Formats a chart can be written in, as the extension of a file name
// without the dot.
const (
	PNG = "png"
	SVG = "svg"
)

// palette is the categorical palette of matplotlib ("tab10"), then black.
var palette = [...]drawing.Color{
	{R: 31, G: 119, B: 180, A: 255}, {R: 255, G: 127, B: 14, A: 255}, {R: 44, G: 160, B: 44, A: 255},
	{R: 214, G: 39, B: 40, A: 255}, {R: 148, G: 103, B: 189, A: 255}, {R: 140, G: 86, B: 75, A: 255},
	{R: 227, G: 119, B: 194, A: 255}, {R: 127, G: 127, B: 127, A: 255}, {R: 188, G: 189, B: 34, A: 255},
	{R: 23, G: 190, B: 207, A: 255}, {R: 0, G: 0, B: 0, A: 255},
}

// Color returns the i-th colour of the palette, cycling.
func Color(i int) drawing.Color { return palette[i%len(palette)] }

// Render writes one chart in format (PNG or SVG, case-insensitive). Its
// size is the chart's Width × Height; an SVG carries it as width and
// height attributes.
func Render(w io.Writer, format string, c chart.Chart) error {
	return Stack(w, format, c)
}

// Stack writes charts one above the other as one image in format: as wide
// as the widest, as high as all of them together.
func Stack(w io.Writer, format string, charts ...chart.Chart) error {
	if len(charts) == 0 {
		return fmt.Errorf("plot: nothing to draw")
	}
	width, height := 0, 0
	for _, c := range charts {
		width = max(width, c.GetWidth())
		height += c.GetHeight()
	}
	switch strings.ToLower(format) {
	case PNG:
		return stackPNG(w, width, height, charts)
	case SVG:
		return stackSVG(w, width, height, charts)
	}
	return fmt.Errorf("plot: format %q: allowed: %s, %s", format, PNG, SVG)
}

func stackPNG(w io.Writer, width, height int, charts []chart.Chart) error {
	if len(charts) == 1 {
		return charts[0].Render(chart.PNG, w)
	}
	out := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(out, out.Bounds(), image.White, image.Point{}, draw.Src)
	y := 0
	for i, c := range charts {
		var buf bytes.Buffer
		if err := c.Render(chart.PNG, &buf); err != nil {
			return fmt.Errorf("plot: panel %d: %w", i+1, err)
		}
		img, err := png.Decode(&buf)
		if err != nil {
			return fmt.Errorf("plot: panel %d: %w", i+1, err)
		}
		draw.Draw(out, img.Bounds().Add(image.Pt(0, y)), img, img.Bounds().Min, draw.Src)
		y += c.GetHeight()
	}
	return png.Encode(w, out)
}

// stackSVG nests each chart's svg element, placed and sized, in an outer
// one: go-chart writes only a viewBox, which viewers scale to the window.
func stackSVG(w io.Writer, width, height int, charts []chart.Chart) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">`,
		width, height, width, height)
	y := 0
	for i, c := range charts {
		var buf bytes.Buffer
		if err := c.Render(chart.SVG, &buf); err != nil {
			return fmt.Errorf("plot: panel %d: %w", i+1, err)
		}
		panel := buf.String()
		if !strings.HasPrefix(panel, "<svg ") {
			return fmt.Errorf("plot: panel %d: the SVG does not start with its svg element", i+1)
		}
		fmt.Fprintf(&b, `<svg x="0" y="%d" width="%d" height="%d" %s`, y, c.GetWidth(), c.GetHeight(),
			strings.TrimPrefix(panel, "<svg "))
		y += c.GetHeight()
	}
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}
