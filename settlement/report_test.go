package settlement

import (
	"bytes"
	"context"
	"encoding/xml"
	"image"
	_ "image/png" // image.DecodeConfig reads PNG
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blockexec/blockexec/bus"
)

// reportTestLedger holds parent p1 (sell 3 BTCUSDT over an hour, arrival
// 63000) with its slice events and fills: binance charges one fill in
// USDT and one in BNB, simA one in USDT.
func reportTestLedger(t *testing.T, withFills bool) *Ledger {
	t.Helper()
	ctx := context.Background()
	l, err := OpenSQLite(filepath.Join(t.TempDir(), "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	acc := event(1, bus.KindAccepted)
	acc.Parent = &bus.ParentInfo{Side: "sell", Symbol: "BTCUSDT", QuoteAsset: "USDT", Quantity: d("3"), Strategy: "twap",
		Start: t0, End: t0.Add(time.Hour), ArrivalPrice: d("63000")}
	evs := []bus.EventMsg{acc}
	for i, target := range []string{"1", "2", "3"} {
		ev := event(int64(i+2), bus.KindSlice)
		ev.Time = t0.Add(time.Duration(i) * 20 * time.Minute)
		ev.Slice = &bus.SliceInfo{Seq: i, Target: d(target)}
		evs = append(evs, ev)
	}
	for _, ev := range evs {
		if _, err := l.RecordEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if !withFills {
		return l
	}
	bnb := testFill("binance", "2", "62000", "1", "0.0316", 21*time.Minute)
	bnb.FeeAsset = "BNB" // Binance's fee discount in BNB
	for _, f := range []bus.FillMsg{
		testFill("binance", "1", "63000", "1", "25.2", time.Minute),
		bnb,
		testFill("simA", "a1", "62500.5", "0.5", "12.5001", 41*time.Minute),
	} {
		if _, err := l.RecordFill(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

func TestReport_SettlementByVenueSplitsFeeAssets(t *testing.T) {
	l := reportTestLedger(t, true)
	r, err := l.Report(context.Background(), "p1")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Venues) != 2 || r.Venues[0].Name != "binance" || r.Venues[1].Name != "simA" {
		t.Fatalf("venues %+v", r.Venues)
	}
	bin := r.Venues[0]
	want := []FeeAssetReport{
		{FeeAsset: "USDT", Fills: 1, FilledQuantity: d("1"), Gross: d("63000"), Fees: d("25.2"), Net: d("62974.8")},
		{FeeAsset: "BNB", Fills: 1, FilledQuantity: d("1"), Gross: d("62000"), Fees: d("0.0316"), Net: d("62000")},
	}
	if len(bin.ByFeeAsset) != len(want) {
		t.Fatalf("binance by fee asset %+v, want %+v", bin.ByFeeAsset, want)
	}
	for i, w := range want {
		g := bin.ByFeeAsset[i]
		if g.FeeAsset != w.FeeAsset || g.Fills != w.Fills || !g.FilledQuantity.Equal(w.FilledQuantity) ||
			!g.Gross.Equal(w.Gross) || !g.Fees.Equal(w.Fees) || !g.Net.Equal(w.Net) {
			t.Errorf("binance %s: %+v, want %+v", w.FeeAsset, g, w)
		}
	}
	// The venue's quote figures are the sums of its fee-asset lines; the
	// BNB fee is in none of them.
	if !bin.Gross.Equal(d("125000")) || !bin.Fees.Equal(d("25.2")) || !bin.Net.Equal(d("124974.8")) || bin.Fills != 2 {
		t.Errorf("binance gross %s fees %s net %s fills %d", bin.Gross, bin.Fees, bin.Net, bin.Fills)
	}
	var text strings.Builder
	if err := WriteText(&text, []Report{r}); err != nil {
		t.Fatal(err)
	}
	cells := strings.Join(strings.Fields(text.String()), " ") // tabwriter's padding aside
	for _, line := range []string{
		"binance USDT 1 1 63000.00 63000 25.2 62974.8",
		"binance BNB 1 1 62000.00 62000 0.0316 62000",
		"binance total, fees in USDT 2 2 62500.00 125000 25.2 124974.8",
		"simA USDT 1 0.5 62500.50 31250.25 12.5001 31237.7499",
	} {
		if !strings.Contains(cells, line) {
			t.Errorf("the table lacks %q:\n%s", line, text.String())
		}
	}
}

func TestWriteChart_ValidPNGAndSVGOfTheStatedSize(t *testing.T) {
	for _, tc := range []struct {
		name      string
		withFills bool
	}{{"with fills", true}, {"no fill yet", false}} {
		t.Run(tc.name, func(t *testing.T) {
			x, err := reportTestLedger(t, tc.withFills).Execution(context.Background(), "p1")
			if err != nil {
				t.Fatal(err)
			}
			if len(x.Schedule) != 3 || !x.Schedule[2].Target.Equal(d("3")) {
				t.Fatalf("schedule %+v: want the three slices' targets", x.Schedule)
			}
			var png bytes.Buffer
			if err := WriteChart(&png, "png", x); err != nil {
				t.Fatal(err)
			}
			cfg, format, err := image.DecodeConfig(&png)
			if err != nil || format != "png" || cfg.Width != ChartWidth || cfg.Height != ChartHeight {
				t.Fatalf("PNG: %s %dx%d %v, want png %dx%d", format, cfg.Width, cfg.Height, err, ChartWidth, ChartHeight)
			}
			var svg bytes.Buffer
			if err := WriteChart(&svg, "svg", x); err != nil {
				t.Fatal(err)
			}
			var root struct {
				XMLName xml.Name
				Width   int `xml:"width,attr"`
				Height  int `xml:"height,attr"`
			}
			err = xml.Unmarshal(svg.Bytes(), &root)
			if err != nil || root.XMLName.Local != "svg" || root.Width != ChartWidth || root.Height != ChartHeight {
				t.Fatalf("SVG root %+v: %v", root, err)
			}
			if err := WriteChart(&svg, "gif", x); err == nil || !strings.Contains(err.Error(), "allowed: png, svg") {
				t.Fatalf("gif: err = %v, want the allowed formats", err)
			}
		})
	}
}
