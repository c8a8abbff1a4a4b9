package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/settlement"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/")

var reportT0 = time.Date(2024, 10, 1, 8, 0, 0, 0, time.UTC)

// reportLedger writes a ledger with two known parents, as the recorder
// would from the bus: an unwind (sell) split over two venues with a
// rejection, and an accumulation (buy) cancelled half filled.
func reportLedger(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := settlement.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dec := decimal.RequireFromString
	at := func(m int) time.Time { return reportT0.Add(time.Duration(m) * time.Minute) }
	type parent struct {
		id, side string
		info     bus.ParentInfo
		fills    [][6]string // venue, trade id, price, qty, fee, child client id
		placed   [][2]string // child client id, venue
		rejected []bus.RejectionInfo
		summary  bus.SummaryInfo
	}
	parents := []parent{
		{id: "unwind-1", side: "sell",
			info: bus.ParentInfo{Side: "sell", Symbol: "BTCUSDT", Quantity: dec("3"), Strategy: "twap",
				Start: reportT0, End: reportT0.Add(time.Hour), ArrivalPrice: dec("63000"), LimitPrice: dec("61000"),
				SlippageBandBps: dec("75"), MaxParticipation: dec("0.1"), Venues: []string{"simA", "simB"}},
			fills: [][6]string{
				{"simA", "a-1", "62990.5", "1.25", "3.149525", "unwind-1-1-simA-0"},
				{"simB", "b-1", "62980", "0.5", "1.5745", "unwind-1-1-simB-0"},
				{"simA", "a-2", "62970.25", "0.75", "1.8891075", "unwind-1-2-simA-0"},
			},
			placed:   [][2]string{{"unwind-1-1-simA-0", "simA"}, {"unwind-1-1-simB-0", "simB"}, {"unwind-1-2-simA-0", "simA"}},
			rejected: []bus.RejectionInfo{{Venue: "simB", Check: "participation", Reason: "room 0.00 of cap 0.10", Price: dec("62970"), Qty: dec("0.5")}},
			summary:  bus.SummaryInfo{State: "done", MarketVWAP: dec("62985.1"), MaxParticipation: dec("0.0912")},
		},
		{id: "accumulate-1", side: "buy",
			info: bus.ParentInfo{Side: "buy", Symbol: "ETHUSDT", Quantity: dec("10"), Strategy: "vwap",
				Start: reportT0.Add(30 * time.Minute), End: reportT0.Add(90 * time.Minute), ArrivalPrice: dec("2400"),
				SlippageBandBps: dec("50"), MaxParticipation: dec("0.05"), Venues: []string{"simA"}},
			fills: [][6]string{
				{"simA", "e-1", "2401.5", "2", "0.9606", "accumulate-1-1-simA-0"},
				{"simA", "e-2", "2403", "3", "1.4418", "accumulate-1-2-simA-0"},
			},
			placed:  [][2]string{{"accumulate-1-1-simA-0", "simA"}, {"accumulate-1-2-simA-0", "simA"}},
			summary: bus.SummaryInfo{State: "cancelled", MarketVWAP: dec("2402.25"), MaxParticipation: dec("0.0431"), Reason: "kill switch"},
		},
	}
	ctx := context.Background()
	for _, p := range parents {
		var seq int64
		event := func(kind string, set func(*bus.EventMsg)) {
			seq++
			m := bus.EventMsg{Schema: bus.EventSchema, ParentID: p.id, Kind: kind, Seq: seq, Time: at(int(seq))}
			set(&m)
			if _, err := l.RecordEvent(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		event(bus.KindAccepted, func(m *bus.EventMsg) { m.Parent = &p.info })
		for _, c := range p.placed {
			event(bus.KindChildPlaced, func(m *bus.EventMsg) { m.Child = &bus.ChildInfo{ClientID: c[0], Venue: c[1], Side: p.side} })
		}
		for _, r := range p.rejected {
			event(bus.KindChildRejected, func(m *bus.EventMsg) { m.Rejection = &r })
		}
		for i, f := range p.fills {
			_, err := l.RecordFill(ctx, bus.FillMsg{Schema: bus.FillSchema, ParentID: p.id, ClientID: f[5],
				OrderID: "o-" + f[1], Venue: f[0], TradeID: f[1], Symbol: p.info.Symbol, Side: p.side,
				Price: dec(f[2]), Qty: dec(f[3]), Fee: dec(f[4]), FeeAsset: "USDT", Liquidity: "taker",
				Time: p.info.Start.Add(time.Duration(i+1) * time.Minute)})
			if err != nil {
				t.Fatal(err)
			}
		}
		event(bus.KindDone, func(m *bus.EventMsg) { m.Summary = &p.summary })
	}
	return path
}

// runReport runs "blockexec report" with args and returns its output.
func runReport(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRoot()
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"report"}, args...))
	err := root.ExecuteContext(context.Background())
	return out.Bytes(), err
}

// golden compares got with testdata/name; -update rewrites the file.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run %s -update writes it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test -run '%s' -update rewrites it)\n--- got\n%s\n--- want\n%s", path, t.Name(), got, want)
	}
}

// TestReport_MatchesGoldenFiles prints a known ledger in each format and
// compares each with its golden file.
func TestReport_MatchesGoldenFiles(t *testing.T) {
	ledger := reportLedger(t)
	for _, tc := range []struct {
		name, golden string
		args         []string
	}{
		{"table", "report.txt", nil},
		{"json", "report.json", []string{"--format", "json"}},
		{"one parent json", "report-unwind-1.json", []string{"--parent", "unwind-1", "--format", "json"}},
		{"csv", "fills.csv", []string{"--format", "csv"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runReport(t, append([]string{"--ledger", ledger}, tc.args...)...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			golden(t, tc.golden, out)
		})
	}
	t.Run("csv file", func(t *testing.T) {
		csvPath := filepath.Join(t.TempDir(), "fills.csv")
		out, err := runReport(t, "--ledger", ledger, "--csv", csvPath)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		golden(t, "report.txt", out) // --csv adds a file; stdout is the table
		csv, err := os.ReadFile(csvPath)
		if err != nil {
			t.Fatal(err)
		}
		golden(t, "fills.csv", csv)
	})
	t.Run("out file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "report.json")
		out, err := runReport(t, "--ledger", ledger, "--format", "json", "--out", path)
		if err != nil || len(out) != 0 {
			t.Fatalf("err %v, stdout %q: want nothing on stdout", err, out)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		golden(t, "report.json", got)
	})
}

// TestReport_DeprecatedJSONFlagStillPrintsJSON: scripts that say --json
// get what --format json prints, and a deprecation note on stderr only.
func TestReport_DeprecatedJSONFlagStillPrintsJSON(t *testing.T) {
	ledger := reportLedger(t)
	var stdout, stderr bytes.Buffer
	root := newRoot()
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.SetArgs([]string{"report", "--ledger", ledger, "--json"})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	golden(t, "report.json", stdout.Bytes())
	if !strings.Contains(stderr.String(), "--format json") {
		t.Errorf("stderr %q: want a note that --json is now --format json", stderr.String())
	}
}

// TestReport_JSONHasTheProjectFieldNames checks the JSON names other tools
// read, whatever the golden file says.
func TestReport_JSONHasTheProjectFieldNames(t *testing.T) {
	out, err := runReport(t, "--ledger", reportLedger(t), "--format", "json")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var reps []map[string]json.RawMessage
	if err := json.Unmarshal(out, &reps); err != nil {
		t.Fatalf("report --json is not a JSON array of objects: %v\n%s", err, out)
	}
	if len(reps) != 2 {
		t.Fatalf("%d reports, want 2", len(reps))
	}
	parentFields := []string{"parent_id", "side", "symbol", "quantity", "filled_quantity", "unfilled_quantity",
		"average_price", "arrival_price", "shortfall_bps", "market_vwap", "max_participation", "fees",
		"net_proceeds", "child_orders", "fills", "rejections", "venues"}
	venueFields := []string{"name", "filled_quantity", "average_price", "fees", "gross", "net", "fills", "by_fee_asset"}
	for _, rep := range reps {
		id := string(rep["parent_id"])
		for _, k := range parentFields {
			if _, ok := rep[k]; !ok {
				t.Errorf("report %s lacks %q", id, k)
			}
		}
		var venues []map[string]json.RawMessage
		if err := json.Unmarshal(rep["venues"], &venues); err != nil || len(venues) == 0 {
			t.Fatalf("report %s venues %s: %v", id, rep["venues"], err)
		}
		for _, v := range venues {
			for _, k := range venueFields {
				if _, ok := v[k]; !ok {
					t.Errorf("report %s venue %s lacks %q", id, v["name"], k)
				}
			}
		}
	}
	// Decimals are strings, exactly as summed.
	if got := string(reps[0]["net_proceeds"]); got != `"157449.1993675"` {
		t.Errorf("unwind-1 net_proceeds = %s, want \"157449.1993675\"", got)
	}
}

// TestReport_Errors: a missing ledger is a usage error (exit 2); an
// unknown parent and an empty ledger fail.
func TestReport_Errors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.db")
	l, err := settlement.OpenSQLite(empty)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	ledger := reportLedger(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
		is   error
		msg  string
	}{
		{"missing ledger", []string{"--ledger", filepath.Join(dir, "nope.db")}, exitBadConfig, nil, "nope.db"},
		{"unknown parent", []string{"--ledger", ledger, "--parent", "nope"}, 0, settlement.ErrUnknownParent, `"nope"`},
		{"empty ledger", []string{"--ledger", empty}, exitFailed, nil, "holds no parent orders"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runReport(t, tc.args...)
			if err == nil {
				t.Fatal("report succeeded")
			}
			var ee *exitError
			if tc.code != 0 && (!errors.As(err, &ee) || ee.code != tc.code) {
				t.Errorf("err = %v, want exit code %d", err, tc.code)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err = %v, want %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %v, want it to name %s", err, tc.msg)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "nope.db")); err == nil {
		t.Error("report created the missing ledger")
	}
}
