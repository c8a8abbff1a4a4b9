package engine

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/internal/jsonappend/jsonappendtest"
)

// typicalCheckpoint is a parent in the middle of a slice: two venues, a
// child placed with a fill, one intended, the slice's events unflushed.
func typicalCheckpoint() Checkpoint {
	d := decimal.RequireFromString
	at := time.Date(2026, 3, 14, 9, 26, 53, 589793238, time.UTC)
	fill := bus.FillMsg{Schema: bus.FillSchema, ParentID: "unwind-btc", ClientID: "unwind-btc-12-binance-0", OrderID: "8812731",
		Venue: "binance", TradeID: "771", Symbol: "BTCUSDT", Side: "sell", Price: d("63010.5"), Qty: d("0.125"),
		Fee: d("0.0472"), FeeAsset: "USDT", Liquidity: "taker", Time: at}
	child := bus.ChildInfo{ClientID: "unwind-btc-12-binance-0", Venue: "binance", Side: "sell", Price: d("63010.5"),
		Qty: d("0.125"), TIF: "IOC", Filled: d("0.125"), Status: "filled", Mid: d("63012.25")}
	return Checkpoint{ParentID: "unwind-btc", Saved: at, Owner: "engine-a", Origin: []byte(`{"client":"desk","qty":"25"}`),
		State: "working", End: at.Add(time.Hour), LimitPrice: d("62000"), BandBps: d("25"), MaxParticipation: d("0.1"),
		ArrivalPrice: d("63000.1"), Next: at.Add(30 * time.Second), Seen: at, Slice: 12, SeqReserved: 300,
		Filled: d("1.5"), Notional: d("94512.75"), Fees: d("0.5671"), MaxPart: d("0.0731"), Target: d("1.625"),
		Children: 24, Fills: 30, Rejects: 1,
		Venues: []VenueTally{{Venue: "binance", Filled: d("1"), Notional: d("63010.5"), Fees: d("0.378"), Fills: 20},
			{Venue: "coinbase", Filled: d("0.5"), Notional: d("31502.25"), Fees: d("0.1891"), Fills: 10}},
		OtherFees: map[string]decimal.Decimal{"BNB": d("0.0001"), "ABC": d("2")},
		Open: []OpenChild{{Venue: "binance", ClientID: "unwind-btc-12-binance-0", Symbol: "BTCUSDT", Side: "sell", Price: d("63010.5"),
			Qty: d("0.125"), TIF: "IOC", Since: at, Seq: 290, Recorded: true, Fills: []bus.FillMsg{fill}},
			{Venue: "coinbase", ClientID: "unwind-btc-12-coinbase-0", Symbol: "BTC-USD", Side: "sell", Price: d("63011"),
				Qty: d("0.1"), TIF: "IOC", Since: at, Seq: 293}},
		Recent: []RecentFill{{Venue: "binance", Time: at, Qty: d("0.125")}, {Venue: "coinbase", Time: at.Add(-time.Minute), Qty: d("0.1")}},
		Events: []bus.EventMsg{
			{Schema: bus.EventSchema, ParentID: "unwind-btc", Kind: bus.KindSlice, Seq: 289, Time: at,
				Slice: &bus.SliceInfo{Seq: 12, Target: d("1.625"), Filled: d("1.375"), Shortfall: d("0.25")}},
			{Schema: bus.EventSchema, ParentID: "unwind-btc", Kind: bus.KindChildPlaced, Seq: 290, Time: at, Child: &child}},
		Schedule: json.RawMessage(`{"volume":"1204.5","seen":"2026-03-14T09:26:30Z","last":"1.5","allowed":"1.625"}`),
	}
}

func TestCheckpoint_AppendJSONIsEncodingJSONs(t *testing.T) {
	typical := typicalCheckpoint()
	paused := typicalCheckpoint()
	paused.State, paused.ResumeTo, paused.Reason = "paused", "working", `risk: "max_notional" <50000> & more`+"\u2028\xff"
	paused.Saved = time.Date(2026, 3, 14, 9, 26, 53, 1, time.FixedZone("", -(3*3600+30*60)))
	paused.OtherFees = map[string]decimal.Decimal{"<z>": decimal.New(1, -20), "": decimal.Zero, "a\xff": decimal.New(-5, 3)}
	empty := typicalCheckpoint()
	empty.Origin, empty.Venues, empty.OtherFees, empty.Open, empty.Recent, empty.Events = []byte{}, []VenueTally{}, map[string]decimal.Decimal{}, []OpenChild{}, []RecentFill{}, []bus.EventMsg{}
	for name, c := range map[string]Checkpoint{"typical": typical, "paused": paused, "empty": empty, "zero": {}} {
		t.Run(name, func(t *testing.T) {
			jsonappendtest.Check(t, c)
		})
	}
}

// Every field of a checkpoint, set to distinct values, is written as
// encoding/json writes it: a field added to Checkpoint, OpenChild,
// RecentFill or VenueTally and not to the encoder fails here.
func TestCheckpoint_AppendJSONWritesEveryField(t *testing.T) {
	jsonappendtest.CheckAll[Checkpoint](t)
}

func TestCheckpoint_AppendJSONFallsBackToEncodingJSON(t *testing.T) {
	t.Run("decimals as numbers", func(t *testing.T) {
		decimal.MarshalJSONWithoutQuotes = true
		defer func() { decimal.MarshalJSONWithoutQuotes = false }()
		c := typicalCheckpoint()
		jsonappendtest.Check(t, c)
	})
	t.Run("schedule to compact", func(t *testing.T) {
		c := typicalCheckpoint()
		c.Schedule = json.RawMessage(`{ "volume": "1204.5", "note": "<&>" }`)
		jsonappendtest.Check(t, c)
	})
	t.Run("schedule not JSON", func(t *testing.T) {
		c := typicalCheckpoint()
		c.Schedule = json.RawMessage(`{"volume":`)
		jsonappendtest.Check(t, c)
	})
	for name, set := range map[string]func(*Checkpoint, time.Time){
		"saved":  func(c *Checkpoint, t time.Time) { c.Saved = t },
		"recent": func(c *Checkpoint, t time.Time) { c.Recent[1].Time = t },
		"open":   func(c *Checkpoint, t time.Time) { c.Open[1].Since = t },
		"fill":   func(c *Checkpoint, t time.Time) { c.Open[0].Fills[0].Time = t },
		"event":  func(c *Checkpoint, t time.Time) { c.Events[1].Time = t },
	} {
		t.Run("year beyond 9999 in "+name, func(t *testing.T) {
			c := typicalCheckpoint()
			set(&c, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))
			jsonappendtest.Check(t, c)
		})
	}
}

func FuzzCheckpoint_AppendJSON(f *testing.F) {
	b, _ := json.Marshal(typicalCheckpoint())
	f.Add(b)
	f.Add([]byte{})
	jsonappendtest.Fuzz[Checkpoint](f)
}

func BenchmarkCheckpoint_JSON(b *testing.B) {
	c := typicalCheckpoint()
	// Into a buffer of the last checkpoint's size, as
	// kvjournal.Journal.Save encodes.
	last, _ := c.AppendJSON(nil)
	jsonappendtest.Bench(b, c, len(last)+256)
}
