package jsonappend

import (
	"encoding/json"
	"math/big"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func TestDecimal_IsString(t *testing.T) {
	huge, _ := new(big.Int).SetString("-123456789012345678901234567890", 10)
	cases := []decimal.Decimal{{}, decimal.Zero, decimal.New(0, -3), decimal.New(0, 5), decimal.New(1, 0), decimal.New(-1, 0),
		decimal.New(12300, -2), decimal.New(12300, -5), decimal.New(-12300, -7), decimal.New(5, 3), decimal.New(-5, 64),
		decimal.New(5, 65), decimal.New(5, -64), decimal.New(5, -65), decimal.New(999999999999999999, -9),
		decimal.New(1000000000000000000, -3), decimal.New(-9223372036854775808, -2), decimal.New(9223372036854775807, 1),
		decimal.NewFromBigInt(huge, -7), decimal.NewFromBigInt(huge, 2), decimal.RequireFromString("63000.100"),
		decimal.RequireFromString("-0.000000000000000000000000000001"), decimal.RequireFromString("1e-100")}
	for _, d := range cases {
		checkDecimal(t, d)
	}
	for _, flags := range [][2]bool{{false, false}, {true, true}, {false, true}} {
		decimal.TrimTrailingZeros, decimal.UseScientificNotation = flags[0], flags[1]
		for _, d := range cases {
			checkDecimal(t, d)
		}
	}
	decimal.TrimTrailingZeros, decimal.UseScientificNotation = true, false
}

func checkDecimal(t *testing.T, d decimal.Decimal) {
	t.Helper()
	if got, want := string(appendDecimal(nil, d)), d.String(); got != want {
		t.Fatalf("%s×10^%d (trim %v, scientific %v): got %s, want %s", d.Coefficient(), d.Exponent(),
			decimal.TrimTrailingZeros, decimal.UseScientificNotation, got, want)
	}
	want, _ := json.Marshal(d)
	if got := Decimal(nil, d); string(got) != string(want) {
		t.Fatalf("%s×10^%d: got %s, want %s", d.Coefficient(), d.Exponent(), got, want)
	}
}

func FuzzDecimal(f *testing.F) {
	f.Add(int64(0), int32(0), []byte(nil))
	f.Add(int64(-12300), int32(-2), []byte(nil))
	f.Add(int64(7), int32(-30), []byte(nil))
	f.Add(int64(7), int32(12), []byte(nil))
	f.Add(int64(1), int32(-3), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, c int64, exp int32, mag []byte) {
		d := decimal.New(c, exp)
		if len(mag) > 0 { // a coefficient of any size
			n := new(big.Int).SetBytes(mag)
			if c < 0 {
				n.Neg(n)
			}
			d = decimal.NewFromBigInt(n, exp)
		}
		if exp > 1<<12 || exp < -1<<12 {
			t.Skip("String() writes as many digits as the exponent")
		}
		checkDecimal(t, d)
	})
}

func FuzzString(f *testing.F) {
	for _, s := range []string{"", "plain", "<a href=\"x\">&amp;</a>", "\x00\x1f\x7f\b\f\n\r\t\\", "\u2028\u2029", "\xff\xc3(\xe2\x80", "é€😀"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := String(nil, s); string(got) != string(want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
		want, _ = json.Marshal([]byte(s))
		if got := Bytes(nil, []byte(s)); string(got) != string(want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
		want, err := json.Marshal(json.RawMessage(s))
		if got, ok := RawMessage(nil, json.RawMessage(s)); ok && (err != nil || string(got) != string(want)) {
			t.Fatalf("raw %q: got %s, want %s (%v)", s, got, want, err)
		}
	})
}

func TestRawMessage_WritesCompactJSONItself(t *testing.T) {
	for _, raw := range []string{`{"volume":"1204.5","seen":"2026-03-14T09:26:30Z"}`, `[1,2.5e3,true,null]`, `"\u003c"`, `"é"`} {
		want, _ := json.Marshal(json.RawMessage(raw))
		if got, ok := RawMessage(nil, json.RawMessage(raw)); !ok || string(got) != string(want) {
			t.Fatalf("%s: got %s (%v), want %s", raw, got, ok, want)
		}
	}
	if got, ok := RawMessage(nil, nil); !ok || string(got) != "null" {
		t.Fatalf("nil: got %s (%v)", got, ok)
	}
}

func FuzzTime(f *testing.F) {
	f.Add(int64(0), int64(0), 0)
	f.Add(int64(1773480413), int64(589793238), 5*3600+1800)
	f.Add(int64(253402300800), int64(0), 0)     // year 10000
	f.Add(int64(-62135596801), int64(0), 0)     // year 0
	f.Add(int64(-62167219201), int64(0), 0)     // year -1
	f.Add(int64(1773480413), int64(1), 24*3600) // a 24-hour offset
	f.Add(int64(1773480413), int64(1), -100*3600)
	f.Fuzz(func(t *testing.T, sec, nsec int64, offset int) {
		tm := time.Unix(sec, nsec).In(time.FixedZone("", offset))
		want, err := json.Marshal(tm)
		got, ok := Time([]byte("x"), tm)
		switch {
		case ok != (err == nil):
			t.Fatalf("%v: ok %v, encoding/json's error %v", tm, ok, err)
		case ok && string(got[1:]) != string(want):
			t.Fatalf("%v: got %s, want %s", tm, got[1:], want)
		case !ok && string(got) != "x":
			t.Fatalf("%v: left %q after failing", tm, got)
		}
	})
}

func TestTime_ZeroAndLocal(t *testing.T) {
	for _, tm := range []time.Time{{}, time.Now(), time.Date(2026, 1, 2, 3, 4, 5, 0, time.Local), time.Date(1, 1, 1, 0, 0, 0, 0, time.FixedZone("", -3600))} {
		want, err := json.Marshal(tm)
		got, ok := Time(nil, tm)
		if !ok || err != nil || string(got) != string(want) {
			t.Fatalf("%v: got %s (%v), want %s (%v)", tm, got, ok, want, err)
		}
	}
}
