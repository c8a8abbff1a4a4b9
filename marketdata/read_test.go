package marketdata

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

var t0 = time.Date(2025, 3, 7, 0, 0, 0, 0, time.UTC) // a Friday

// synth is a made-up kline row opening at t, with open_time in ms or µs.
func synth(t time.Time, micro bool, vol string) string {
	ts := t.UnixMilli()
	if micro {
		ts = t.UnixMicro()
	}
	return fmt.Sprintf("%d,100.5,101.25,99.75,100.0,%s,%d,1005.0,7,1.0,100.0,0", ts, vol, ts+59_999)
}

func rows(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

func TestRead_AcceptsMillisAndMicrosPerRow(t *testing.T) {
	in := rows(
		synth(t0, false, "1.5"),
		synth(t0.Add(time.Minute), true, "2"),
		synth(t0.Add(2*time.Minute), false, "0"),
	)
	bars, err := Read("x.csv", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(bars) != 3 {
		t.Fatalf("got %d bars, want 3", len(bars))
	}
	for i, b := range bars {
		if want := t0.Add(time.Duration(i) * time.Minute); !b.Open.Equal(want) || b.Open.Location() != time.UTC {
			t.Errorf("bar %d opens %s, want %s UTC", i, b.Open, want)
		}
	}
	b := bars[0]
	if !b.OpenPx.Equal(decimal.RequireFromString("100.5")) || !b.High.Equal(decimal.RequireFromString("101.25")) ||
		!b.Low.Equal(decimal.RequireFromString("99.75")) || !b.Close.Equal(decimal.RequireFromString("100")) ||
		!b.Volume.Equal(decimal.RequireFromString("1.5")) || !b.QuoteVolume.Equal(decimal.RequireFromString("1005")) ||
		b.Trades != 7 {
		t.Errorf("bar fields wrong: %+v", b)
	}
}

func TestRead_SkipsHeaderAndCRLF(t *testing.T) {
	in := "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore\r\n" +
		synth(t0, false, "1") + "\r\n"
	bars, err := Read("h.csv", strings.NewReader(in))
	if err != nil || len(bars) != 1 {
		t.Fatalf("bars=%d err=%v", len(bars), err)
	}
}

func TestRead_RejectsCorruptRowsNamingFileAndLine(t *testing.T) {
	good := synth(t0, false, "1")
	next := t0.Add(time.Minute)
	cases := []struct {
		name string
		bad  string
		want string
	}{
		{"too few columns", "1,2,3", "wrong column count: 3"},
		{"too many columns", synth(next, false, "1") + ",extra", "wrong column count: 13"},
		{"price not a number", strings.Replace(synth(next, false, "1"), "101.25", "abc", 1), `high "abc" is not a number`},
		{"exponent refused", strings.Replace(synth(next, false, "1"), "101.25", "1e9", 1), `high "1e9" is not a number`},
		{"open_time not a number", "x" + synth(next, false, "1"), "open_time"},
		{"trades not an integer", strings.Replace(synth(next, false, "1"), ",7,", ",7.5,", 1), "trades"},
		{"negative volume", synth(next, false, "-1"), "negative volume"},
		{"high below low", strings.Replace(synth(next, false, "1"), "101.25", "99", 1), "high 99 < low 99.75"},
		{"off-minute ms", synth(next.Add(time.Second), false, "1"), "not on a minute"},
		{"off-minute µs", synth(next.Add(time.Millisecond), true, "1"), "not on a minute"},
		{"backwards", synth(t0.Add(-time.Minute), false, "1"), "time goes backwards"},
		{"duplicate ms/µs", synth(t0, true, "1"), "duplicate open_time"},
		{"bare quote", `17"00,1`, "bare"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read("day.csv", strings.NewReader(rows(good, tc.bad)))
			if err == nil {
				t.Fatal("accepted")
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.File != "day.csv" || pe.Line != 2 {
				t.Fatalf("error %v does not name day.csv line 2", err)
			}
			if !strings.Contains(err.Error(), "day.csv:2: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestReadDir_MergesFilesInTimeOrderAndFindsGaps(t *testing.T) {
	d2 := t0.Add(day)
	var late, early []string
	for m := 0; m < 3; m++ {
		early = append(early, synth(t0.Add(time.Duration(MinutesPerDay-3+m)*time.Minute), false, "1"))
	}
	for m := 0; m < 10; m++ {
		if m == 4 || m == 5 {
			continue // a two-minute gap
		}
		late = append(late, synth(d2.Add(time.Duration(m)*time.Minute), true, "2"))
	}
	// "a.csv" holds the later day: the order of names must not matter.
	dir := writeFiles(t, map[string]string{"a.csv": rows(late...), "b.csv": rows(early...), "notes.txt": "ignored"})
	s, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 11 {
		t.Fatalf("Len = %d, want 11", s.Len())
	}
	gaps := s.Gaps()
	want := Gap{From: d2.Add(4 * time.Minute), To: d2.Add(6 * time.Minute)}
	if len(gaps) != 1 || gaps[0] != want || gaps[0].Minutes() != 2 {
		t.Errorf("Gaps = %v, want [%v]", gaps, want)
	}
	days := s.Days()
	if len(days) != 2 || !days[0].Equal(t0) || !days[1].Equal(d2) {
		t.Errorf("Days = %v", days)
	}
	if r := s.Range(t0.Add(day-2*time.Minute), d2.Add(time.Minute)); len(r) != 3 || !r[2].Open.Equal(d2) {
		t.Errorf("Range = %v", r)
	}
	_, err = s.Day(d2.Add(13 * time.Hour))
	var ge *GapError
	if !errors.As(err, &ge) || ge.Missing != MinutesPerDay-8 || len(ge.Gaps) != 2 || ge.Gaps[0] != want {
		t.Fatalf("Day(d2) err = %v", err)
	}
	if !strings.Contains(err.Error(), "1432 of 1440 minutes missing") || !strings.Contains(err.Error(), "00:04") {
		t.Errorf("gap error %q does not say how many and where", err)
	}
	if _, err := s.Day(d2.Add(day)); !errors.Is(err, ErrMissingDay) {
		t.Errorf("Day(absent) err = %v, want ErrMissingDay", err)
	}
}

func TestSeries_DayReturnsACompleteDay(t *testing.T) {
	bars := make([]Bar, 0, MinutesPerDay+1)
	for m := MinutesPerDay; m >= 0; m-- { // reversed, and one bar of the next day
		bars = append(bars, Bar{Open: t0.Add(time.Duration(m) * time.Minute), Volume: decimal.NewFromInt(1)})
	}
	s, err := NewSeries(bars)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Day(t0)
	if err != nil || len(got) != MinutesPerDay || !got[0].Open.Equal(t0) {
		t.Fatalf("Day: %d bars, err %v", len(got), err)
	}
	if len(s.Gaps()) != 0 {
		t.Errorf("Gaps = %v", s.Gaps())
	}
	if _, err := NewSeries(append(bars, bars[0])); err == nil {
		t.Error("NewSeries accepted a duplicate")
	}
}

func TestReadDir_RejectsDuplicatesAcrossFiles(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a.csv": rows(synth(t0, false, "1"), synth(t0.Add(time.Minute), false, "1")),
		"b.csv": rows(synth(t0.Add(time.Minute), true, "1")),
	})
	_, err := ReadDir(dir)
	if err == nil || !strings.Contains(err.Error(), "duplicate open_time") || !strings.Contains(err.Error(), "a.csv:2") {
		t.Fatalf("err = %v, want a duplicate naming a.csv:2", err)
	}
}

func TestReadDir_ReportsCorruptFile(t *testing.T) {
	dir := writeFiles(t, map[string]string{"a.csv": rows(synth(t0, false, "1"), "1,2")})
	_, err := ReadDir(dir)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "a.csv")+":2: wrong column count") {
		t.Fatalf("err = %v", err)
	}
}

func TestReadDir_FailsClearlyWithoutData(t *testing.T) {
	if _, err := ReadDir(filepath.Join(t.TempDir(), "nope")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing dir: err = %v", err)
	}
	if _, err := ReadDir(writeFiles(t, map[string]string{"x.txt": "hi"})); !errors.Is(err, ErrNoFiles) {
		t.Errorf("no csv: err = %v", err)
	}
	if _, err := ReadDir(writeFiles(t, map[string]string{"x.csv": ""})); !errors.Is(err, ErrNoBars) {
		t.Errorf("empty csv: err = %v", err)
	}
}

func FuzzReadCSV(f *testing.F) {
	f.Add(rows(synth(t0, false, "1"), synth(t0.Add(time.Minute), true, "2")))
	f.Add("open_time\n" + synth(t0, false, "0"))
	f.Add("1,2,3\n")
	f.Add(`"a""b",1` + "\n")
	f.Add("999999999999999999,1,1,1,1,1,1,1,1,1,1,1\n")
	f.Fuzz(func(t *testing.T, in string) {
		bars, err := Read("fuzz.csv", strings.NewReader(in))
		if err != nil {
			return
		}
		for i, b := range bars {
			if b.High.LessThan(b.Low) || b.Volume.Sign() < 0 || b.Open.Second() != 0 || b.Open.Nanosecond() != 0 {
				t.Fatalf("bar %d accepted but invalid: %+v", i, b)
			}
			if i > 0 && !b.Open.After(bars[i-1].Open) {
				t.Fatalf("bar %d not after bar %d", i, i-1)
			}
		}
	})
}
