package risk

import (
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/market"
)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

var btc = market.Instrument{
	Symbol: "BTCUSDT", Tick: d("0.01"), Step: d("0.00001"),
	MinQty: d("0.00001"), MinNotional: d("5"),
}

func sellLimits() Limits {
	return Limits{
		ParentID: "p1", Side: market.Sell, ArrivalPrice: d("60000"), BandBps: d("75"),
		LimitPrice: d("59700"), MaxChildNotional: d("100000"), MaxParticipation: d("0.1"),
	}
}

func buyLimits() Limits {
	l := sellLimits()
	l.Side = market.Buy
	l.LimitPrice = d("60300")
	return l
}

func child(side market.Side, price, qty string, w Window) Child {
	return Child{Venue: "sim-a", Instrument: btc, Window: w,
		Req: market.OrderRequest{ClientID: "c1", Symbol: "BTCUSDT", Side: side, Price: d(price), Qty: d(qty), TIF: market.IOC}}
}

// A window with plenty of room: 100 BTC traded by others, nothing of ours.
var wide = Window{Market: d("100")}

func TestChecker_EachCheckRejectsWithItsNumbers(t *testing.T) {
	cases := []struct {
		name    string
		limits  Limits
		child   Child
		kill    func(*KillSwitch)
		check   string
		reasons []string
	}{
		{"sell inside everything passes", sellLimits(), child(market.Sell, "59800", "1", wide), nil, "", nil},
		{"buy inside everything passes", buyLimits(), child(market.Buy, "60200", "1", wide), nil, "", nil},
		{"sell below band", sellLimits(), child(market.Sell, "59549.99", "1", wide), nil, CheckBand,
			[]string{"PRICE_OUTSIDE_BAND", "price=59549.99", "arrival=60000", "limit=59550"}},
		{"sell exactly at band edge passes band but hits floor", sellLimits(), child(market.Sell, "59550", "1", wide), nil, CheckLimit,
			[]string{"PRICE_BEYOND_FLOOR", "FLOOR=59700"}},
		{"buy above band", buyLimits(), child(market.Buy, "60450.01", "1", wide), nil, CheckBand,
			[]string{"PRICE_OUTSIDE_BAND", "limit=60450"}},
		{"buy above ceiling", buyLimits(), child(market.Buy, "60300.01", "1", wide), nil, CheckLimit,
			[]string{"PRICE_BEYOND_CEILING", "CEILING=60300"}},
		{"notional over cap", sellLimits(), child(market.Sell, "60000", "1.7", Window{Market: d("1000")}), nil, CheckNotional,
			[]string{"NOTIONAL_EXCEEDS_MAX_PER_ORDER", "notional=102000", "max=100000"}},
		{"off tick", sellLimits(), child(market.Sell, "59800.005", "1", wide), nil, CheckRules,
			[]string{"PRICE_NOT_ON_TICK", "tick=0.01"}},
		{"off step", sellLimits(), child(market.Sell, "59800", "0.000015", wide), nil, CheckRules,
			[]string{"QTY_NOT_ON_STEP", "step=0.00001"}},
		{"below min notional", sellLimits(), child(market.Sell, "59800", "0.00008", wide), nil, CheckRules,
			[]string{"NOTIONAL_BELOW_MIN", "min=5"}},
		// others = 9, cap 0.1 → room = 9/9 = 1 BTC, less 0.5 ours and 0.2 open.
		{"participation over cap", sellLimits(), child(market.Sell, "59800", "0.30001", Window{Market: d("9.5"), Ours: d("0.5"), Open: d("0.2")}), nil, CheckParticipation,
			[]string{"PARTICIPATION_EXCEEDS_CAP", "headroom=0.3", "cap=0.1", "market=9.5", "ours=0.5", "open=0.2"}},
		{"participation exactly at cap passes", sellLimits(), child(market.Sell, "59800", "0.3", Window{Market: d("9.5"), Ours: d("0.5"), Open: d("0.2")}), nil, "", nil},
		{"global kill", sellLimits(), child(market.Sell, "59800", "1", wide), func(k *KillSwitch) { k.SetGlobal(true) }, CheckKill,
			[]string{"scope=global"}},
		{"parent kill", sellLimits(), child(market.Sell, "59800", "1", wide), func(k *KillSwitch) { k.SetParent("p1", true) }, CheckKill,
			[]string{"scope=parent"}},
		{"other parent's kill does not apply", sellLimits(), child(market.Sell, "59800", "1", wide), func(k *KillSwitch) { k.SetParent("p2", true) }, "", nil},
		{"side mismatch", sellLimits(), child(market.Buy, "59800", "1", wide), nil, CheckRules, []string{"SIDE_MISMATCH"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := NewKillSwitch(false)
			if tc.kill != nil {
				tc.kill(k)
			}
			rej := NewChecker(k).Check(tc.limits, tc.child)
			if tc.check == "" {
				if rej != nil {
					t.Fatalf("unexpected rejection: %v", rej)
				}
				return
			}
			if rej == nil {
				t.Fatalf("expected %s rejection, got none", tc.check)
			}
			if rej.Check != tc.check {
				t.Fatalf("check = %s, want %s (%s)", rej.Check, tc.check, rej.Reason)
			}
			for _, want := range tc.reasons {
				if !strings.Contains(rej.Reason, want) {
					t.Errorf("reason %q lacks %q", rej.Reason, want)
				}
			}
		})
	}
}

func TestHeadroom_KeepsOurShareOfTotalVolumeAtCap(t *testing.T) {
	capFrac := d("0.1")
	w := Window{Market: d("20"), Ours: d("1")}
	room, ok := Headroom(capFrac, w)
	if !ok {
		t.Fatal("cap 0.1 reported as uncapped")
	}
	// Trading exactly the headroom puts us at the cap of the enlarged volume.
	ours := w.Ours.Add(room)
	total := w.Market.Add(room)
	if got := ours.Div(total); !got.Equal(capFrac) {
		t.Fatalf("share after trading headroom = %s, want %s", got, capFrac)
	}
	if _, ok := Headroom(d("1"), w); ok {
		t.Fatal("cap 1 must mean no cap")
	}
	if room, _ := Headroom(capFrac, Window{Market: d("1"), Ours: d("1")}); !room.IsZero() {
		t.Fatalf("no other volume must leave no headroom, got %s", room)
	}
}

func TestLimits_WorstPriceIsTightestOfBandAndLimit(t *testing.T) {
	l := sellLimits()
	if got := l.WorstPrice(); !got.Equal(d("59700")) {
		t.Fatalf("sell worst = %s, want floor 59700", got)
	}
	l.LimitPrice = d("59000")
	if got := l.WorstPrice(); !got.Equal(d("59550")) {
		t.Fatalf("sell worst = %s, want band 59550", got)
	}
	b := buyLimits()
	if got := b.WorstPrice(); !got.Equal(d("60300")) {
		t.Fatalf("buy worst = %s, want ceiling 60300", got)
	}
	b.LimitPrice = decimal.Zero
	if got := b.WorstPrice(); !got.Equal(d("60450")) {
		t.Fatalf("buy worst = %s, want band 60450", got)
	}
}
