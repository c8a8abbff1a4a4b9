package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/bus"
)

// barWidth is the number of cells of a parent's progress bar.
const barWidth = 20

// priceString prints a price for a human: cents for most assets, more
// places below one unit of the quote.
func priceString(d decimal.Decimal) string {
	if d.Abs().LessThan(decimal.NewFromInt(1)) && !d.IsZero() {
		return d.Round(8).String()
	}
	return d.StringFixed(2)
}

// plainFillLine is a fill for a log: what filled, then where the parent
// stands after it.
func plainFillLine(f bus.FillMsg, p *parentView) string {
	head := fmt.Sprintf("%s  %s  %-5s %-15s", f.ParentID, f.Time.UTC().Format(time.RFC3339), "-", "fill")
	detail := fmt.Sprintf("%s %s %s @ %s, fee %s %s %s, trade %s [%s]", f.Venue, f.Side, f.Qty, f.Price, f.Fee,
		f.FeeAsset, f.Liquidity, f.TradeID, f.ClientID)
	return head + " " + detail + "; " + tallyText(p)
}

// plainEventLine is an event for a log, as `order watch` prints it, after
// the parent id.
func plainEventLine(e bus.EventMsg) string { return e.ParentID + "  " + eventLine(e) }

// tallyText is a parent's running totals in words.
func tallyText(p *parentView) string {
	s := "filled " + p.Filled.String()
	if q := p.Quantity(); !q.IsZero() {
		s += fmt.Sprintf(" of %s (%s%%)", q, pct(p.Filled, q).StringFixed(1))
	}
	if p.Late {
		s += " since the watch began"
	}
	s += ", avg " + priceString(p.AvgPrice())
	if !p.Arrival().IsZero() {
		s += fmt.Sprintf(", shortfall %s bps", p.ShortfallBps().StringFixed(2))
	}
	return s
}

// watchRecord is one --json line: the message as published, and the
// parent's figures after it.
type watchRecord struct {
	Stream string        `json:"stream"`
	Seq    uint64        `json:"stream_seq"`
	Fill   *bus.FillMsg  `json:"fill,omitempty"`
	Event  *bus.EventMsg `json:"event,omitempty"`
	Parent parentFigures `json:"parent"`
}

// parentFigures is a parent's folded state for machines.
type parentFigures struct {
	ID           string          `json:"id"`
	State        string          `json:"state"`
	Late         bool            `json:"joined_late,omitempty"`
	Side         string          `json:"side,omitempty"`
	Quantity     decimal.Decimal `json:"quantity"`
	Target       decimal.Decimal `json:"target"`
	Filled       decimal.Decimal `json:"filled_quantity"`
	AvgPrice     decimal.Decimal `json:"average_price"`
	ArrivalPrice decimal.Decimal `json:"arrival_price"`
	ShortfallBps decimal.Decimal `json:"shortfall_bps"`
	Fills        int             `json:"fills"`
	Rejections   int             `json:"rejections"`
	Venues       []venueShare    `json:"venues"`
}

func figures(p *parentView) parentFigures {
	f := parentFigures{ID: p.ID, State: p.State, Late: p.Late, Quantity: p.Quantity(), Target: p.Target,
		Filled: p.Filled, AvgPrice: p.AvgPrice(), ArrivalPrice: p.Arrival(), ShortfallBps: p.ShortfallBps(),
		Fills: p.Fills, Rejections: p.Rejects, Venues: p.venueSplit()}
	if p.Info != nil {
		f.Side = p.Info.Side
	}
	return f
}

func writeRecord(out io.Writer, r watchRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = out.Write(append(b, '\n'))
	return err
}

// progressBar draws filled against scheduled: '#' filled, '=' due by the
// schedule but not filled yet, '.' still to come.
func progressBar(filled, target, qty decimal.Decimal) string {
	cells := func(d decimal.Decimal) int {
		if qty.IsZero() {
			return 0
		}
		n := int(d.Mul(decimal.NewFromInt(barWidth)).Div(qty).IntPart())
		return min(max(n, 0), barWidth)
	}
	f, t := cells(filled), cells(target)
	var b strings.Builder
	b.WriteByte('[')
	for i := range barWidth {
		switch {
		case i < f:
			b.WriteByte('#')
		case i < t:
			b.WriteByte('=')
		default:
			b.WriteByte('.')
		}
	}
	b.WriteByte(']')
	return b.String()
}

// frameHeader is the first line of the terminal view.
type frameHeader struct {
	Source  string // the redacted URL
	Filter  string // "all parents" or "parent X"
	Since   string
	Status  string // connected, reconnecting…, catching up …
	Caption string // the latest notice, if any
}

// renderFrame draws the terminal view: a header, then per parent a line of
// figures and up to two lines of recent fills and rejections. Lines are cut
// to width; parents that do not fit in height are counted on a last line,
// working parents first.
func renderFrame(s *watchState, h frameHeader, width, height int) []string {
	lines := []string{fmt.Sprintf("blockexec watch [%s]  %s  %s since %s  |  %d parents, %d events, %d fills%s",
		h.Status, h.Source, h.Filter, h.Since, len(s.order), s.events, s.fills, lastSeen(s.last))}
	if h.Caption != "" {
		lines = append(lines, "  "+h.Caption)
	}
	if len(s.order) == 0 {
		lines = append(lines, "  waiting for fills and events…")
	}
	ids := append([]string(nil), s.order...)
	sort.SliceStable(ids, func(i, j int) bool { // working parents first
		return !s.parents[ids[i]].Finished() && s.parents[ids[j]].Finished()
	})
	for n, id := range ids {
		block := parentBlock(s.parents[id])
		if height > 0 && len(lines)+len(block) > height-1 {
			lines = append(lines, fmt.Sprintf("  … %d more parents (make the terminal taller, or use --parent)", len(ids)-n))
			break
		}
		lines = append(lines, block...)
	}
	for i, l := range lines {
		lines[i] = cut(l, width)
	}
	return lines
}

func lastSeen(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return ", last " + t.UTC().Format(time.RFC3339)
}

// parentBlock is one parent's lines in the terminal view: where it
// stands, what it cost, and its last fills and rejections.
func parentBlock(p *parentView) []string {
	var head, money strings.Builder
	head.WriteString(p.ID)
	if p.Info != nil {
		fmt.Fprintf(&head, "  %s %s %s %s", p.Info.Side, p.Info.Quantity, p.Info.Symbol, p.Info.Strategy)
	}
	qty := p.Quantity()
	fmt.Fprintf(&head, "  %s", progressBar(p.Filled, p.Target, qty))
	if qty.IsZero() {
		fmt.Fprintf(&head, " filled %s (size unknown)", p.Filled)
	} else {
		fmt.Fprintf(&head, " %5s%% filled, %5s%% due", pct(p.Filled, qty).StringFixed(1), pct(p.Target, qty).StringFixed(1))
	}
	head.WriteString("  " + p.State)
	if p.Reason != "" {
		head.WriteString(" (" + p.Reason + ")")
	}

	money.WriteString("   ")
	if p.Late {
		money.WriteString(" fills since the watch began:")
	}
	if !p.Filled.IsZero() {
		fmt.Fprintf(&money, " avg %s", priceString(p.AvgPrice()))
	}
	if arrival := p.Arrival(); !arrival.IsZero() {
		fmt.Fprintf(&money, " vs arrival %s", priceString(arrival))
		if !p.Filled.IsZero() {
			fmt.Fprintf(&money, "  shortfall %s bps", p.ShortfallBps().StringFixed(2))
		}
	}
	if p.Info != nil && !p.Info.MaxParticipation.IsZero() {
		capPct := pct(p.Info.MaxParticipation, decimal.NewFromInt(1)).StringFixed(1)
		if !p.MaxPart.IsZero() {
			fmt.Fprintf(&money, "  participation %s%% (cap %s%%)", pct(p.MaxPart, decimal.NewFromInt(1)).StringFixed(1), capPct)
		} else {
			fmt.Fprintf(&money, "  participation cap %s%%", capPct)
		}
	}
	if split := p.venueSplit(); len(split) > 0 {
		parts := make([]string, len(split))
		for i, v := range split {
			parts[i] = fmt.Sprintf("%s %s%%", v.Venue, v.Pct.StringFixed(0))
		}
		money.WriteString("  " + strings.Join(parts, " "))
	}
	lines := []string{head.String()}
	if m := money.String(); strings.TrimSpace(m) != "" {
		lines = append(lines, m)
	}
	if len(p.LastFills) > 0 {
		parts := make([]string, 0, len(p.LastFills))
		for i := len(p.LastFills) - 1; i >= 0; i-- { // newest first
			f := p.LastFills[i]
			parts = append(parts, fmt.Sprintf("%s %s %s @ %s", f.Time.UTC().Format("15:04:05"), f.Venue, f.Qty, f.Price))
		}
		lines = append(lines, fmt.Sprintf("    fills (%d)  %s", p.Fills, strings.Join(parts, "  |  ")))
	}
	if len(p.LastRejects) > 0 {
		parts := make([]string, 0, len(p.LastRejects))
		for i := len(p.LastRejects) - 1; i >= 0; i-- {
			r := p.LastRejects[i]
			parts = append(parts, fmt.Sprintf("%s %s %s: %s", r.Time.UTC().Format("15:04:05"), r.Venue, r.Check, r.Reason))
		}
		lines = append(lines, fmt.Sprintf("    rejected (%d)  %s", p.Rejects, strings.Join(parts, "  |  ")))
	}
	return lines
}

// cut shortens s to fit width columns, so that a line never wraps and the
// redraw can count lines. Every rune is taken as one column.
func cut(s string, width int) string {
	if width <= 0 {
		return s
	}
	r := []rune(s)
	if len(r) < width {
		return s
	}
	return string(r[:width-2]) + "…"
}

// screen redraws a frame in place on a terminal.
type screen struct {
	out  io.Writer
	prev int // lines drawn last time
}

// draw moves up over the last frame, clears it and writes lines.
func (sc *screen) draw(lines []string) error {
	var b strings.Builder
	if sc.prev > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", sc.prev)
	}
	b.WriteString("\r\x1b[J")
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	sc.prev = len(lines)
	_, err := io.WriteString(sc.out, b.String())
	return err
}
