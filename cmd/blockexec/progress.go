package main

import (
	"fmt"
	"io"
	"sync"

	"github.com/shopspring/decimal"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/blockexec/blockexec/engine"
)

// barScale is the resolution of a progress bar: per-mille of the parent.
const barScale = 1000

// progressUI shows one bar per parent on a terminal, or a line per tenth of
// progress elsewhere (CI logs, pipes). It implements engine.Observer.
type progressUI struct {
	mu    sync.Mutex
	out   io.Writer
	tty   bool
	p     *mpb.Progress
	bars  map[string]*mpb.Bar
	last  map[string]engine.Progress
	tenth map[string]int
}

var _ engine.Observer = (*progressUI)(nil)

func newProgressUI(out io.Writer, tty bool, parents []string) *progressUI {
	u := &progressUI{out: out, tty: tty, bars: map[string]*mpb.Bar{}, last: map[string]engine.Progress{}, tenth: map[string]int{}}
	if !tty {
		return u
	}
	u.p = mpb.New(mpb.WithOutput(out), mpb.WithWidth(100), mpb.WithAutoRefresh())
	for _, id := range parents {
		id := id
		u.bars[id] = u.p.AddBar(barScale,
			mpb.PrependDecorators(decor.Name(id, decor.WC{C: decor.DindentRight | decor.DextraSpace})),
			mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return u.line(id) })),
		)
	}
	return u
}

func pct(part, whole decimal.Decimal) decimal.Decimal {
	if whole.IsZero() {
		return decimal.Zero
	}
	return part.Div(whole).Mul(decimal.NewFromInt(100))
}

// line renders a parent's figures: filled %, schedule %, average price and
// shortfall so far.
func (u *progressUI) line(id string) string {
	u.mu.Lock()
	pr, ok := u.last[id]
	u.mu.Unlock()
	if !ok {
		return "waiting for start"
	}
	return fmt.Sprintf("filled %5s%%  schedule %5s%%  avg %s  shortfall %s bps  %s  %s",
		pct(pr.Filled, pr.Qty).StringFixed(1), pct(pr.Target, pr.Qty).StringFixed(1),
		pr.AvgPrice.StringFixed(2), pr.ShortfallBps.StringFixed(2), pr.Now.Format("15:04Z"), pr.State)
}

// Progress records a parent's progress and redraws it.
func (u *progressUI) Progress(pr engine.Progress) {
	u.mu.Lock()
	u.last[pr.ParentID] = pr
	bar := u.bars[pr.ParentID]
	tenth := int(pct(pr.Filled, pr.Qty).IntPart() / 10)
	// Every tenth of the way, and the end; a full fill is announced once,
	// with its final state.
	announce := !u.tty && (pr.State.Terminal() || (tenth > u.tenth[pr.ParentID] && tenth < 10))
	if announce {
		u.tenth[pr.ParentID] = tenth
	}
	u.mu.Unlock()
	if announce {
		fmt.Fprintf(u.out, "%s  %s\n", pr.ParentID, u.line(pr.ParentID))
	}
	if bar == nil {
		return
	}
	bar.SetCurrent(pr.Filled.Mul(decimal.NewFromInt(barScale)).Div(pr.Qty).IntPart())
	if pr.State.Terminal() && !bar.Completed() {
		// An unfilled remainder leaves the bar short of full: say so, not 100 %.
		bar.Abort(false)
	}
}

// Wait lets the bars draw their final state.
func (u *progressUI) Wait() {
	if u.p != nil {
		u.p.Wait()
	}
}
