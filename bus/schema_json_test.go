package bus

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/internal/jsonappend/jsonappendtest"
)

var (
	dec = decimal.RequireFromString
	// t0 has nanoseconds and a zone east of UTC.
	t0 = time.Date(2026, 3, 14, 9, 26, 53, 589793238, time.FixedZone("IST", 5*3600+1800))
)

// events has one event of each kind, as the engine publishes them.
func events() []EventMsg {
	base := func(kind string, seq int64) EventMsg {
		return EventMsg{Schema: EventSchema, ParentID: "unwind-btc", Kind: kind, Seq: seq, Time: t0.Add(time.Duration(seq) * time.Second)}
	}
	accepted := base(KindAccepted, 1)
	accepted.Parent = &ParentInfo{Side: "sell", Symbol: "BTCUSDT", QuoteAsset: "USDT", Quantity: dec("25"), Strategy: "twap",
		Start: t0, End: t0.Add(time.Hour), ArrivalPrice: dec("63000.10"), LimitPrice: dec("62000"),
		SlippageBandBps: dec("25"), MaxParticipation: dec("0.10"), Venues: []string{"binance", "coinbase"}}
	amended := base(KindAmended, 2)
	amended.Parent = &ParentInfo{Side: "sell", Symbol: "BTCUSDT", Quantity: dec("25"), Start: t0.UTC(), End: time.Time{}}
	slice := base(KindSlice, 3)
	slice.Slice = &SliceInfo{Seq: 4, Target: dec("1.2500"), Filled: dec("1.1"), Shortfall: dec("0.15"), MaxParticipation: dec("0.0731")}
	sliceNoPart := base(KindSlice, 4)
	sliceNoPart.Slice = &SliceInfo{Seq: 5, Target: dec("2.5"), MaxParticipation: dec("0.000")}
	placed := base(KindChildPlaced, 5)
	placed.Child = &ChildInfo{ClientID: "unwind-btc-4-binance-0", Venue: "binance", Side: "sell", Price: dec("63010.5"),
		Qty: dec("0.125"), TIF: "IOC", Filled: dec("0.1"), Status: "partially_filled", Mid: dec("63012.25")}
	unknown := base(KindChildUnknown, 6)
	unknown.Child = &ChildInfo{ClientID: "unwind-btc-4-coinbase-0", Venue: "coinbase", Side: "sell", Price: dec("63010.5"), Qty: dec("0.125"), TIF: "IOC"}
	cancelled := base(KindChildCancelled, 7)
	cancelled.Child = &ChildInfo{ClientID: "c", Venue: "binance", Side: "sell", Price: dec("1e3"), Qty: dec("-0.5"), Status: "cancelled"}
	rejected := base(KindChildRejected, 8)
	rejected.Rejection = &RejectionInfo{Venue: "binance", Check: "max_notional",
		Reason: `notional 63010.5 > max 50000 <for "BTC" & co>`, Price: dec("63010.5"), Qty: dec("1")}
	short := base(KindSliceShort, 9)
	short.Short = &ShortInfo{Shortfall: dec("0.5"), Placed: dec("0.2"),
		Venues: []VenueShort{{Venue: "binance", Reason: "no depth inside the limit"}, {Venue: "coinbase", Reason: "dust"}}}
	shortNone := base(KindSliceShort, 10)
	shortNone.Short = &ShortInfo{Shortfall: dec("0.5"), Venues: []VenueShort{}}
	shortNil := base(KindSliceShort, 11)
	shortNil.Short = &ShortInfo{}
	done := base(KindDone, 12)
	done.Summary = &SummaryInfo{State: "done", Filled: dec("25"), Unfilled: dec("0"), MarketVWAP: dec("63001.123456789"),
		MaxParticipation: dec("0.0999"), ChildOrders: 812, Fills: 1604, Rejections: 3, Reason: "end time\n"}
	return []EventMsg{accepted, amended, slice, sliceNoPart, placed, unknown, cancelled, rejected, short, shortNone, shortNil, done,
		base(KindPaused, 13), base(KindResumed, 14), {}}
}

func TestEventMsg_AppendJSONIsEncodingJSONs(t *testing.T) {
	for _, m := range events() {
		t.Run(m.Kind, func(t *testing.T) {
			jsonappendtest.Check(t, m)
		})
	}
}

func TestFillMsg_AppendJSONIsEncodingJSONs(t *testing.T) {
	local := fill("p", "t")
	local.Time = t0
	odd := fill(`<p>&"q"`, "\xff\u2028")
	odd.Price, odd.Qty, odd.Fee = dec("123456789012345678901234567890.000100"), dec("-0.00000000000000000001"), dec("12e20")
	west := fill("p", "t")
	west.Time = time.Date(1999, 12, 31, 23, 59, 59, 1000, time.FixedZone("", -(9*3600+30*60)))
	for name, m := range map[string]FillMsg{"utc": fill("p", "t"), "zone": local, "escapes": odd, "west": west, "zero": {}} {
		t.Run(name, func(t *testing.T) {
			jsonappendtest.Check(t, m)
		})
	}
}

// Every field of a message, set to distinct values, is written as
// encoding/json writes it: a field added to the struct and not to its
// encoder fails here.
func TestAppendJSON_WritesEveryField(t *testing.T) {
	jsonappendtest.CheckAll[FillMsg](t)
	jsonappendtest.CheckAll[EventMsg](t)
}

func TestAppendJSON_FallsBackToEncodingJSON(t *testing.T) {
	t.Run("decimals as numbers", func(t *testing.T) {
		decimal.MarshalJSONWithoutQuotes = true
		defer func() { decimal.MarshalJSONWithoutQuotes = false }()
		for _, m := range events() {
			jsonappendtest.Check(t, m)
		}
	})
	t.Run("year beyond 9999", func(t *testing.T) {
		f := fill("p", "t")
		f.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
		jsonappendtest.Check(t, f) // fails as encoding/json fails
		e := events()[0]
		e.Parent.End = f.Time
		jsonappendtest.Check(t, e)
	})
}

func FuzzFillMsg_AppendJSON(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x05ab<c>\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"))
	jsonappendtest.Fuzz[FillMsg](f)
}

func FuzzEventMsg_AppendJSON(f *testing.F) {
	for _, m := range events() {
		b, _ := json.Marshal(m)
		f.Add(b)
	}
	f.Add([]byte("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"))
	jsonappendtest.Fuzz[EventMsg](f)
}

func BenchmarkFillMsg_JSON(b *testing.B) {
	jsonappendtest.Bench(b, fill("unwind-btc", "8812731"), fillSizeHint)
}

func BenchmarkEventMsg_JSON(b *testing.B) {
	jsonappendtest.Bench(b, events()[4], eventSizeHint) // child_placed
}
