package settlement

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/bus"
)

var t0 = time.Date(2024, 10, 1, 8, 0, 0, 0, time.UTC)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func testFill(venue, trade, price, qty, fee string, at time.Duration) bus.FillMsg {
	return bus.FillMsg{Schema: bus.FillSchema, ParentID: "p1", ClientID: "p1-1-" + venue + "-0", OrderID: "o-" + trade, Venue: venue,
		TradeID: trade, Symbol: "BTCUSDT", Side: "sell", Price: d(price), Qty: d(qty), Fee: d(fee),
		FeeAsset: "USDT", Liquidity: "taker", Time: t0.Add(at)}
}

// setup starts an embedded NATS server and opens an empty ledger on b.
func setup(t *testing.T, b backend) (*bus.Conn, *Ledger, *bus.Publisher) {
	t.Helper()
	c, err := bus.Connect(context.Background(), bus.Options{StoreDir: filepath.Join(t.TempDir(), "nats")}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, b.open(t), bus.NewPublisher(c.JS)
}

func event(seq int64, kind string) bus.EventMsg {
	return bus.EventMsg{ParentID: "p1", Kind: kind, Seq: seq, Time: t0.Add(time.Duration(seq) * time.Minute)}
}

// TestRecorder_EachFillOnceAndReportFromLedger publishes a parent's life,
// with a fill sent three times (same Msg-Id twice, then a fresh Msg-Id) and
// a malformed message in the middle, and checks the ledger and the report.
func TestRecorder_EachFillOnceAndReportFromLedger(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		c, l, pub := setup(t, b)
		acc := event(1, bus.KindAccepted)
		acc.Parent = &bus.ParentInfo{Side: "sell", Symbol: "BTCUSDT", Quantity: d("3"), Strategy: "twap",
			Start: t0, End: t0.Add(time.Hour), ArrivalPrice: d("63000"), SlippageBandBps: d("75"), MaxParticipation: d("0.1")}
		fills := []bus.FillMsg{
			testFill("simA", "1", "62990.5", "1.25", "3.149525", time.Minute),
			testFill("simB", "1", "62980", "0.5", "1.5745", 2*time.Minute),
			testFill("simA", "2", "62970.25", "0.75", "1.88910750", 3*time.Minute),
		}
		placed := event(2, bus.KindChildPlaced)
		placed.Child = &bus.ChildInfo{ClientID: "p1-1-simA-0"}
		placed2 := event(3, bus.KindChildPlaced)
		placed2.Child = &bus.ChildInfo{ClientID: "p1-1-simB-0"}
		rej := event(4, bus.KindChildRejected)
		rej.Rejection = &bus.RejectionInfo{Venue: "simC", Check: "participation", Reason: "room 0"}
		done := event(5, bus.KindDone)
		done.Summary = &bus.SummaryInfo{State: "done", MarketVWAP: d("62985.1"), MaxParticipation: d("0.0912")}
		for _, ev := range []bus.EventMsg{acc, placed, placed2, rej, done} {
			if err := pub.PublishEvent(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		for _, f := range fills {
			if err := pub.PublishFill(ctx, f); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.JS.Publish(ctx, bus.FillSubjectFor("p1", "simA"), []byte("{not json")); err != nil {
			t.Fatal(err)
		}
		if err := pub.PublishFill(ctx, fills[0]); err != nil { // same Msg-Id: dropped by JetStream
			t.Fatal(err)
		}
		body, _ := json.Marshal(fills[0])
		if _, err := c.JS.Publish(ctx, bus.FillSubjectFor("p1", "simA"), body, jetstream.WithMsgID("another-id")); err != nil {
			t.Fatal(err) // a fresh Msg-Id: only the ledger's key can drop it
		}

		rec := NewRecorder(c.JS, l, zerolog.Nop(), "")
		if err := rec.Start(ctx); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := rec.WaitIdle(wctx); err != nil {
			t.Fatal(err)
		}
		rec.Stop()

		got, err := l.Report(ctx, "p1")
		if err != nil {
			t.Fatal(err)
		}
		// By hand: qty 2.5; gross 78738.125 + 31490 + 47227.6875 = 157455.8125;
		// fees 6.61313250.
		want := map[string][2]decimal.Decimal{
			"filled":   {got.FilledQuantity, d("2.5")},
			"unfilled": {got.UnfilledQuantity, d("0.5")},
			"gross":    {got.GrossProceeds, d("157455.8125")},
			"fees":     {got.Fees, d("6.6131325")},
			"net":      {got.NetProceeds, d("157449.1993675")},
			"average":  {got.AveragePrice, d("62982.325")},
			"vwap":     {got.MarketVWAP, d("62985.1")},
			// (63000 − 62982.325) / 63000 × 10⁴ = 2.80555…
			"shortfall": {got.ShortfallBps, d("2.8056")},
		}
		for k, v := range want {
			if !v[0].Equal(v[1]) {
				t.Errorf("%s = %s, want %s", k, v[0], v[1])
			}
		}
		if got.Fills != 3 || got.ChildOrders != 2 || got.Rejections != 1 || got.State != "done" {
			t.Errorf("counts: fills %d child orders %d rejections %d state %s", got.Fills, got.ChildOrders, got.Rejections, got.State)
		}
		if len(got.Venues) != 2 || got.Venues[0].Name != "simA" || !got.Venues[0].FilledQuantity.Equal(d("2")) {
			t.Errorf("venues = %+v", got.Venues)
		}

		// A second recorder on the same durable finds nothing new to do.
		rec2 := NewRecorder(c.JS, l, zerolog.Nop(), "")
		if err := rec2.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if err := rec2.WaitIdle(wctx); err != nil {
			t.Fatal(err)
		}
		rec2.Stop()
		again, err := l.Report(ctx, "p1")
		if err != nil {
			t.Fatal(err)
		}
		if again.Fills != 3 || !again.FilledQuantity.Equal(got.FilledQuantity) {
			t.Fatalf("restart changed the ledger: %d fills, %s", again.Fills, again.FilledQuantity)
		}

		var csv strings.Builder
		all, err := l.Fills(ctx, "p1")
		if err != nil {
			t.Fatal(err)
		}
		if err := WriteFillsCSV(&csv, all); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(csv.String()), "\n")
		if len(lines) != 4 || lines[1] != "2024-10-01T08:01:00Z,simA,BTCUSDT,sell,1.25,62990.5,3.149525,USDT,o-1,1,p1" {
			t.Errorf("csv:\n%s", csv.String())
		}
		var text strings.Builder
		if err := WriteText(&text, []Report{got}); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"parent p1", "157449.20", "2.81 bps", "simB"} {
			if !strings.Contains(text.String(), want) {
				t.Errorf("text report lacks %q:\n%s", want, text.String())
			}
		}
	})
}

func TestLedger_RecordFillIsIdempotent(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		l := b.open(t)
		f := testFill("simA", "9", "1", "1", "0", 0)
		for i, want := range []bool{true, false} {
			added, err := l.RecordFill(context.Background(), f)
			if err != nil || added != want {
				t.Fatalf("insert %d: added %v err %v, want %v", i, added, err, want)
			}
		}
		if ok, _ := l.HasParent(context.Background(), "p1"); !ok {
			t.Error("HasParent(p1) = false after a fill")
		}
		if _, err := l.Report(context.Background(), "nope"); err == nil {
			t.Error("report of an unknown parent must fail")
		}
	})
}

func TestReport_FeesInAnotherAssetAreKeptApart(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		l := b.open(t)
		acc := event(1, bus.KindAccepted)
		acc.Parent = &bus.ParentInfo{Side: "sell", Symbol: "BTCUSDT", QuoteAsset: "USDT", Quantity: d("2"), Strategy: "twap",
			Start: t0, End: t0.Add(time.Hour), ArrivalPrice: d("63000")}
		if _, err := l.RecordEvent(ctx, acc); err != nil {
			t.Fatal(err)
		}
		usdt := testFill("binance", "1", "63000", "1", "25.2", time.Minute)
		bnb := testFill("binance", "2", "62000", "1", "0.0316", 2*time.Minute)
		bnb.FeeAsset = "BNB" // Binance's fee discount in BNB
		for _, f := range []bus.FillMsg{usdt, bnb} {
			if _, err := l.RecordFill(ctx, f); err != nil {
				t.Fatal(err)
			}
		}
		r, err := l.Report(ctx, "p1")
		if err != nil {
			t.Fatal(err)
		}
		if !r.Fees.Equal(d("25.2")) || r.FeeAsset != "USDT" || !r.OtherFees["BNB"].Equal(d("0.0316")) ||
			!r.NetProceeds.Equal(d("124974.8")) || !r.Venues[0].Fees.Equal(d("25.2")) {
			t.Fatalf("fees %s %s, other %v, net %s: a BNB fee must not be added to USDT", r.Fees, r.FeeAsset, r.OtherFees, r.NetProceeds)
		}
		var text strings.Builder
		if err := WriteText(&text, []Report{r}); err != nil || !strings.Contains(text.String(), "fees in BNB") {
			t.Fatalf("the text report does not show the BNB fees:\n%s", text.String())
		}
	})
}

// Events may be committed out of order (recorders sharing the durable, a
// batch redelivered after a later one committed): the parent's terms are
// its accepted terms amended by the highest-numbered amendment, whatever
// order the ledger gets them in.
func TestLedger_ParentTermsAreTheNewestEventsInAnyOrder(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		l := b.open(t)
		amend := func(seq int64, end time.Duration, band string) bus.EventMsg {
			m := event(seq, bus.KindAmended)
			m.Parent = &bus.ParentInfo{End: t0.Add(end), SlippageBandBps: d(band), MaxParticipation: d("0.1")}
			return m
		}
		acc := event(1, bus.KindAccepted)
		acc.Parent = &bus.ParentInfo{Side: "sell", Symbol: "BTCUSDT", Quantity: d("3"), Strategy: "twap",
			Start: t0, End: t0.Add(time.Hour), ArrivalPrice: d("63000"), SlippageBandBps: d("75"), MaxParticipation: d("0.1")}
		done := event(9, bus.KindDone)
		done.Summary = &bus.SummaryInfo{State: "done", MarketVWAP: d("63001"), MaxParticipation: d("0.05")}
		for _, m := range []bus.EventMsg{done, amend(3, 3*time.Hour, "30"), acc, amend(2, 2*time.Hour, "50")} {
			if _, err := l.RecordEvents(ctx, []bus.EventMsg{m}); err != nil {
				t.Fatal(err)
			}
		}
		r, err := l.Report(ctx, "p1")
		if err != nil {
			t.Fatal(err)
		}
		if !r.End.Equal(t0.Add(3*time.Hour)) || r.Side != "sell" || !r.Quantity.Equal(d("3")) || r.State != "done" {
			t.Fatalf("report: end %s, %s %s, state %s; want the seq-3 end 11:00, sell 3, done", r.End, r.Side, r.Quantity, r.State)
		}
		var band string
		if err := l.db.QueryRowContext(ctx, `SELECT slippage_band_bps FROM parents WHERE parent_id = ?`, "p1").Scan(&band); err != nil || band != "30" {
			t.Fatalf("band %q, %v; want the seq-3 amendment's 30", band, err)
		}
	})
}

// A ledger made before parents.terms_seq existed gets it when opened.
func TestLedger_OpenAddsTermsSeqToAnOlderLedger(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		l := b.open(t)
		if _, err := l.db.ExecContext(ctx, `ALTER TABLE parents DROP COLUMN terms_seq`); err != nil {
			t.Fatal(err)
		}
		if err := l.migrate(ctx); err != nil {
			t.Fatalf("migrating a ledger without terms_seq: %v", err)
		}
		if err := l.migrate(ctx); err != nil {
			t.Fatalf("migrating it again: %v", err)
		}
		var n int64
		if err := l.db.QueryRowContext(ctx, `SELECT COUNT(terms_seq) FROM parents`).Scan(&n); err != nil {
			t.Fatalf("terms_seq after the migration: %v", err)
		}
	})
}
