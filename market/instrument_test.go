package market

import (
	"testing"

	"github.com/shopspring/decimal"
)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func TestRounding_NeverBreaksTheLimit(t *testing.T) {
	cases := []struct {
		name, tick, step string
		side             Side
		price, wantPrice string
		qty, wantQty     string
	}{
		{"sell price rounds up to tick", "0.01", "0.00001", Sell, "59549.991", "59550", "1.234567", "1.23456"},
		{"buy price rounds down to tick", "0.01", "0.00001", Buy, "60450.019", "60450.01", "0.000019", "0.00001"},
		{"on-tick price unchanged", "0.01", "0.001", Sell, "60000.10", "60000.1", "2.000", "2"},
		{"tick of 0.5 sells up", "0.5", "0.25", Sell, "100.1", "100.5", "1.7", "1.5"},
		{"tick of 0.5 buys down", "0.5", "0.25", Buy, "100.9", "100.5", "0.24", "0"},
		{"tick of 5 (non power of ten)", "5", "0.0003", Sell, "60001", "60005", "0.001", "0.0009"},
		{"step of 0.0003 floors", "0.01", "0.0003", Buy, "60001.999", "60001.99", "1.0000", "0.9999"},
		// More digits than a 16-place division keeps: rounding must still
		// see the last one.
		{"sell a hair above a tick", "0.03", "3", Sell, "9.000000000000000000001", "9.03", "8.99999999999999999", "6"},
		{"a hair above a power-of-ten tick", "0.01", "0.001", Sell, "9.000000000000000000001", "9.01", "0.002999999999999999999", "0.002"},
		{"buy a hair below a tick", "0.03", "0.003", Buy, "8.999999999999999999999", "8.97", "0.002999999999999999999", "0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := Instrument{Symbol: "X", Tick: d(tc.tick), Step: d(tc.step)}
			p := in.LimitPrice(tc.side, d(tc.price))
			if !p.Equal(d(tc.wantPrice)) {
				t.Errorf("price %s → %s, want %s", tc.price, p, tc.wantPrice)
			}
			if !Within(tc.side, p, d(tc.price)) {
				t.Errorf("rounded price %s breaks the %s limit %s", p, tc.side, tc.price)
			}
			q := in.Quantity(d(tc.qty))
			if !q.Equal(d(tc.wantQty)) || q.GreaterThan(d(tc.qty)) {
				t.Errorf("qty %s → %s, want %s (never more)", tc.qty, q, tc.wantQty)
			}
			if !q.Mod(in.Step).IsZero() || !p.Mod(in.Tick).IsZero() {
				t.Errorf("rounded values off grid: %s %s", p, q)
			}
		})
	}
}

func TestInstrumentCheck_NamesTheRuleAndNumbers(t *testing.T) {
	in := Instrument{Symbol: "BTCUSDT", Tick: d("0.01"), Step: d("0.00001"), MinQty: d("0.0001"), MinNotional: d("5")}
	cases := []struct {
		price, qty, rule string
	}{
		{"60000", "0.001", ""},
		{"60000.001", "0.001", "TICK"},
		{"60000", "0.000015", "STEP"},
		{"60000", "0.00005", "MIN_QTY"},
		{"1000", "0.0001", "MIN_NOTIONAL"},
		{"0", "1", "NON_POSITIVE_PRICE"},
		{"60000", "-1", "NON_POSITIVE_QTY"},
	}
	for _, tc := range cases {
		err := in.Check(d(tc.price), d(tc.qty))
		if tc.rule == "" {
			if err != nil {
				t.Errorf("%s×%s: unexpected %v", tc.price, tc.qty, err)
			}
			continue
		}
		re, ok := err.(*RuleError)
		if !ok || re.Rule != tc.rule {
			t.Errorf("%s×%s: err %v, want rule %s", tc.price, tc.qty, err, tc.rule)
		}
	}
}

func TestBook_ReachAndDepthStopAtTheLimit(t *testing.T) {
	b := Book{
		Bids: []Level{{d("100"), d("1")}, {d("99"), d("2")}, {d("98"), d("5")}},
		Asks: []Level{{d("101"), d("1")}, {d("102"), d("3")}},
	}
	if got := b.DepthWithin(Sell, d("99")); !got.Equal(d("3")) {
		t.Errorf("sell depth to 99 = %s, want 3", got)
	}
	if got := b.DepthWithin(Buy, d("101.5")); !got.Equal(d("1")) {
		t.Errorf("buy depth to 101.5 = %s, want 1", got)
	}
	p, avail, ok := b.Reach(Sell, d("2.5"), d("97"))
	if !ok || !p.Equal(d("99")) || !avail.Equal(d("3")) {
		t.Errorf("reach 2.5 = %s (%s avail), want 99 (3)", p, avail)
	}
	p, avail, ok = b.Reach(Sell, d("100"), d("99"))
	if !ok || !p.Equal(d("99")) || !avail.Equal(d("3")) {
		t.Errorf("reach beyond depth = %s (%s), want the limit level 99 with 3", p, avail)
	}
	if _, _, ok := b.Reach(Sell, d("1"), d("100.5")); ok {
		t.Error("reach found a bid above the limit")
	}
	if m, _ := b.Mid(); !m.Equal(d("100.5")) {
		t.Errorf("mid = %s", m)
	}
}

func TestSide_TextRoundTrip(t *testing.T) {
	for _, s := range []Side{Buy, Sell} {
		b, err := s.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Side
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Fatalf("%s → %q → %s (%v)", s, b, back, err)
		}
	}
	if _, err := ParseSide("short"); err == nil {
		t.Fatal("short accepted as a side")
	}
	var zero Side
	if zero.Valid() {
		t.Fatal("zero side is valid")
	}
}

func TestStepRounding_ExactForNegativesAndOnGrid(t *testing.T) {
	for _, tc := range []struct{ x, step, floor, ceil string }{
		{"-0.7", "0.25", "-0.75", "-0.5"},
		{"-0.75", "0.25", "-0.75", "-0.75"},
		{"7.5", "2.5", "7.5", "7.5"},
		{"0", "0.1", "0", "0"},
	} {
		if f := FloorToStep(d(tc.x), d(tc.step)); !f.Equal(d(tc.floor)) {
			t.Errorf("floor(%s, %s) = %s, want %s", tc.x, tc.step, f, tc.floor)
		}
		if c := CeilToStep(d(tc.x), d(tc.step)); !c.Equal(d(tc.ceil)) {
			t.Errorf("ceil(%s, %s) = %s, want %s", tc.x, tc.step, c, tc.ceil)
		}
	}
}
