package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"errors"
	"image"
	_ "image/png" // image.DecodeConfig reads PNG
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/settlement"
)

// shortRunLedger runs the example unwind, cut to 2 BTC over 10 minutes,
// in process on the embedded default (sim venues, virtual clock, seed 7),
// and returns its ledger.
func shortRunLedger(t *testing.T) string {
	t.Helper()
	cfg := loadExample(t, "unwind-btc.yaml")
	p := &cfg.Parents[0]
	p.Quantity = decimal.RequireFromString("2")
	p.End = p.Start.Add(10 * time.Minute)
	p.Duration = p.End.Sub(p.Start)
	res, err := execute(context.Background(), cfg, io.Discard, nil)
	if err != nil {
		t.Fatalf("short run: %v", err)
	}
	if len(res.mismatches) > 0 {
		t.Fatalf("short run: the ledger differs from the engine: %v", res.mismatches)
	}
	return cfg.LedgerDSN()
}

// TestReport_OfARealRun reports on the ledger of a real (simulated,
// deterministic) short run: golden files, the CSV against the summary,
// and the chart.
func TestReport_OfARealRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the example for 10 simulated minutes")
	}
	ledger := shortRunLedger(t)
	t.Run("matches the golden files", func(t *testing.T) { testRealRunGolden(t, ledger) })
	t.Run("CSV rows add up to the venue settlement", func(t *testing.T) { testCSVAddsUp(t, ledger) })
	t.Run("chart is a valid image of the stated size", func(t *testing.T) { testChartImages(t, ledger) })
	t.Run("chart has the market the children met", func(t *testing.T) { testChartMarket(t, ledger) })
}

// testRealRunGolden: the CSV, JSON and table of the run's ledger equal
// their golden files.
func testRealRunGolden(t *testing.T, ledger string) {
	for _, tc := range []struct{ format, golden string }{
		{"csv", "report-run.csv"},
		{"json", "report-run.json"},
		{"table", "report-run.txt"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			out, err := runReport(t, "--ledger", ledger, "--format", tc.format)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			golden(t, tc.golden, simSession.ReplaceAll(out, []byte("$1-SESSION")))
		})
	}
}

// simSession matches the random session token a sim venue puts in its
// trade and order ids, so that two runs do not reuse a trade id (the bus
// de-duplicates fills by venue and trade id); the rest of a run is
// deterministic.
var simSession = regexp.MustCompile(`\b(sim[A-Z])-[0-9a-f]{8}\b`)

// testCSVAddsUp cross-checks the three views of one ledger: every fill is
// a CSV row with exactly the audit columns, and per venue and fee asset
// the rows' fills, quantity, notional and fees equal the JSON settlement
// summary.
func testCSVAddsUp(t *testing.T, ledger string) {
	out, err := runReport(t, "--ledger", ledger, "--format", "csv")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	rows, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("not CSV: %v", err)
	}
	want := []string{"time_utc", "venue", "symbol", "side", "quantity", "price", "fee", "fee_asset", "order_id", "trade_id", "parent_id"}
	if strings.Join(rows[0], ",") != strings.Join(want, ",") {
		t.Fatalf("header %v, want %v", rows[0], want)
	}
	l, err := settlement.OpenSQLite(ledger)
	if err != nil {
		t.Fatal(err)
	}
	fills, err := l.Fills(context.Background(), "")
	l.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(fills) == 0 || len(rows)-1 != len(fills) {
		t.Fatalf("%d CSV rows for %d fills in the ledger", len(rows)-1, len(fills))
	}
	type key struct{ parent, venue, asset string }
	type sums struct {
		fills            int
		qty, gross, fees decimal.Decimal
	}
	got := map[key]*sums{}
	for i, r := range rows[1:] {
		tm, err := time.Parse(time.RFC3339Nano, r[0])
		if err != nil || !strings.HasSuffix(r[0], "Z") || !tm.Equal(fills[i].Time) {
			t.Errorf("row %d time %q: want RFC 3339 UTC of %s (%v)", i+1, r[0], fills[i].Time, err)
		}
		qty, price, fee := decimal.RequireFromString(r[4]), decimal.RequireFromString(r[5]), decimal.RequireFromString(r[6])
		if r[4] != fills[i].Qty.String() || r[5] != fills[i].Price.String() || r[6] != fills[i].Fee.String() ||
			r[9] != fills[i].TradeID || r[8] != fills[i].OrderID {
			t.Errorf("row %d %v differs from the ledger's fill %+v", i+1, r, fills[i])
		}
		k := key{r[10], r[1], r[7]}
		if got[k] == nil {
			got[k] = &sums{}
		}
		s := got[k]
		s.fills++
		s.qty, s.gross, s.fees = s.qty.Add(qty), s.gross.Add(qty.Mul(price)), s.fees.Add(fee)
	}
	out, err = runReport(t, "--ledger", ledger, "--format", "json")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var reps []settlement.Report
	if err := json.Unmarshal(out, &reps); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, r := range reps {
		for _, v := range r.Venues {
			vq, vg := decimal.Zero, decimal.Zero
			for _, a := range v.ByFeeAsset {
				s := got[key{r.ParentID, v.Name, a.FeeAsset}]
				if s == nil {
					t.Errorf("%s %s %s: in the summary, not in the CSV", r.ParentID, v.Name, a.FeeAsset)
					continue
				}
				seen++
				if s.fills != a.Fills || !s.qty.Equal(a.FilledQuantity) || !s.gross.Equal(a.Gross) || !s.fees.Equal(a.Fees) {
					t.Errorf("%s %s %s: CSV %d fills, %s qty, %s gross, %s fees; summary %d, %s, %s, %s", r.ParentID, v.Name,
						a.FeeAsset, s.fills, s.qty, s.gross, s.fees, a.Fills, a.FilledQuantity, a.Gross, a.Fees)
				}
				vq, vg = vq.Add(a.FilledQuantity), vg.Add(a.Gross)
			}
			if !vq.Equal(v.FilledQuantity) || !vg.Equal(v.Gross) {
				t.Errorf("%s %s: fee-asset lines add to %s qty, %s gross; the venue says %s, %s", r.ParentID, v.Name,
					vq, vg, v.FilledQuantity, v.Gross)
			}
			if !v.Net.Equal(v.Gross.Sub(v.Fees)) { // the run is a sell
				t.Errorf("%s %s: net %s != gross %s - fees %s", r.ParentID, v.Name, v.Net, v.Gross, v.Fees)
			}
		}
	}
	if seen != len(got) {
		t.Errorf("the CSV has %d (parent, venue, fee asset) groups, the summary %d", len(got), seen)
	}
}

// testChartImages draws the run as PNG and SVG and reads the size back.
func testChartImages(t *testing.T, ledger string) {
	dir := t.TempDir()
	t.Run("png", func(t *testing.T) {
		path := filepath.Join(dir, "run.png")
		if out, err := runReport(t, "--ledger", ledger, "--chart", path); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		fh, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		cfg, format, err := image.DecodeConfig(fh)
		if err != nil || format != "png" {
			t.Fatalf("not a PNG: %s %v", format, err)
		}
		if cfg.Width != settlement.ChartWidth || cfg.Height != settlement.ChartHeight {
			t.Fatalf("PNG is %dx%d, want %dx%d", cfg.Width, cfg.Height, settlement.ChartWidth, settlement.ChartHeight)
		}
	})
	t.Run("svg", func(t *testing.T) {
		path := filepath.Join(dir, "run.svg")
		if out, err := runReport(t, "--ledger", ledger, "--parent", "unwind-1", "--format", "json", "--chart", path); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var root struct {
			XMLName xml.Name
			Width   int `xml:"width,attr"`
			Height  int `xml:"height,attr"`
		}
		if err := xml.Unmarshal(b, &root); err != nil {
			t.Fatalf("not XML: %v", err)
		}
		if root.XMLName.Local != "svg" || root.Width != settlement.ChartWidth || root.Height != settlement.ChartHeight {
			t.Fatalf("root <%s width=%d height=%d>, want <svg width=%d height=%d>", root.XMLName.Local, root.Width,
				root.Height, settlement.ChartWidth, settlement.ChartHeight)
		}
		for _, want := range []string{"schedule target", "filled", "fills simA", "arrival"} {
			if !bytes.Contains(b, []byte(want)) {
				t.Errorf("the SVG lacks %q", want)
			}
		}
	})
}

// TestReport_RefusesConflictingFlags: bad combinations stop with exit
// code 2 and say what to do, before anything is written.
func TestReport_RefusesConflictingFlags(t *testing.T) {
	ledger := reportLedger(t) // two parents
	dir := t.TempDir()
	same := filepath.Join(dir, "same.csv")
	for _, tc := range []struct {
		name string
		args []string
		msg  string
	}{
		{"unknown format", []string{"--format", "xml"}, "allowed: table, json, csv"},
		{"json with csv", []string{"--json", "--format", "csv"}, "--json is --format json"},
		{"chart extension", []string{"--parent", "unwind-1", "--chart", filepath.Join(dir, "c.gif")}, ".svg or .png"},
		{"chart directory", []string{"--parent", "unwind-1", "--chart", filepath.Join(dir, "nope", "c.png")}, "does not exist"},
		{"chart of several", []string{"--chart", filepath.Join(dir, "c.png")}, "add --parent ID"},
		{"two outputs one file", []string{"--format", "csv", "--out", same, "--csv", same}, "both write"},
		{"over the ledger", []string{"--out", ledger}, "would overwrite the ledger"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runReport(t, append([]string{"--ledger", ledger}, tc.args...)...)
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != exitBadConfig {
				t.Fatalf("err = %v, want exit code %d", err, exitBadConfig)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %v, want it to say %q", err, tc.msg)
			}
		})
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a refused report wrote %v", entries)
	}
}

// testChartMarket: the execution the chart draws carries the market's mid
// as each child was priced, one point per child placed, near the arrival
// price (a 10-minute run moves less than 2 %).
func testChartMarket(t *testing.T, ledger string) {
	l, err := settlement.OpenSQLite(ledger)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	x, err := l.Execution(context.Background(), "unwind-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(x.Market) != x.Report.ChildOrders {
		t.Fatalf("%d market points for %d child orders", len(x.Market), x.Report.ChildOrders)
	}
	band := x.Report.ArrivalPrice.Mul(decimal.RequireFromString("0.02"))
	for _, m := range x.Market {
		if m.Price.Sub(x.Report.ArrivalPrice).Abs().GreaterThan(band) {
			t.Fatalf("mid %s at %s, arrival %s", m.Price, m.Time.Format(time.TimeOnly), x.Report.ArrivalPrice)
		}
	}
}
