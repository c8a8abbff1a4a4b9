package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// btOut is the part of backtest --json these tests read.
type btOut struct {
	Days    []string
	Skipped []struct {
		Date   string
		Reason string
	}
	Strategies []struct {
		Strategy string
		Days     int
	}
}

// quickFlags is a small parent, so that a day runs in milliseconds.
func quickFlags(dir string) backtestFlags {
	f := defaultBacktestFlags()
	f.data, f.history, f.jsonOut = dir, 1, true
	f.qty, f.duration = "20", 2*time.Hour
	f.strategies = []string{"twap", "vwap"}
	return f
}

func runBacktest(t *testing.T, f backtestFlags) (btOut, string, error) {
	t.Helper()
	var out, log bytes.Buffer
	err := backtestCommand(context.Background(), f, &out, &log)
	var got btOut
	if err == nil {
		if jerr := json.Unmarshal(out.Bytes(), &got); jerr != nil {
			t.Fatalf("%v\n%s", jerr, out.String())
		}
	}
	return got, log.String(), err
}

func TestBacktest_SkipsBadDaysAndRunsTheirNeighbours(t *testing.T) {
	day0 := time.Date(2024, 10, 1, 0, 0, 0, 0, time.UTC)
	at := func(day int, h time.Duration) time.Time { return day0.Add(time.Duration(day)*24*time.Hour + h) }
	file := func(dir string, day int) string {
		return filepath.Join(dir, "BTCUSDT-1m-"+at(day, 0).Format(time.DateOnly)+".csv")
	}
	for _, tc := range []struct {
		name    string
		skip    map[time.Time]bool
		spoil   func(t *testing.T, dir string)
		say     []string // on stderr
		reason  string   // in --json's skipped
		ran     []string
		skipped []string
	}{
		{
			name:    "a minute missing",
			skip:    map[time.Time]bool{at(2, 10*time.Hour): true},
			say:     []string{"skipped 2024-10-03", "10:00–10:01 (1 min)"},
			reason:  "1 of 1440 minutes missing",
			ran:     []string{"2024-10-02", "2024-10-04", "2024-10-05"},
			skipped: []string{"2024-10-03"},
		},
		{
			name:    "a gap outside the parent's window still skips the day",
			skip:    map[time.Time]bool{at(2, 22*time.Hour): true, at(2, 22*time.Hour+time.Minute): true},
			say:     []string{"skipped 2024-10-03", "22:00–22:02 (2 min)"},
			reason:  "2 of 1440 minutes missing",
			ran:     []string{"2024-10-02", "2024-10-04", "2024-10-05"},
			skipped: []string{"2024-10-03"},
		},
		{
			name: "an empty file",
			spoil: func(t *testing.T, dir string) {
				if err := os.WriteFile(file(dir, 2), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			},
			say:     []string{"skipped 2024-10-03", "no minute recorded"},
			reason:  "no minute recorded",
			ran:     []string{"2024-10-02", "2024-10-04", "2024-10-05"},
			skipped: []string{"2024-10-03"},
		},
		{
			name: "a corrupt file",
			spoil: func(t *testing.T, dir string) {
				body, err := os.ReadFile(file(dir, 2))
				if err != nil {
					t.Fatal(err)
				}
				lines := strings.Split(string(body), "\n")
				lines[99] = "oops,1,2"
				if err := os.WriteFile(file(dir, 2), []byte(strings.Join(lines, "\n")), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			say:     []string{"file left out", "BTCUSDT-1m-2024-10-03.csv:100: wrong column count", "skipped 2024-10-03"},
			reason:  "no minute recorded",
			ran:     []string{"2024-10-02", "2024-10-04", "2024-10-05"},
			skipped: []string{"2024-10-03"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeKlines(t, dir, day0, 5, tc.skip)
			if tc.spoil != nil {
				tc.spoil(t, dir)
			}
			got, log, err := runBacktest(t, quickFlags(dir))
			if err != nil {
				t.Fatalf("%v\n%s", err, log)
			}
			if strings.Join(got.Days, ",") != strings.Join(tc.ran, ",") {
				t.Errorf("ran %v, want %v\n%s", got.Days, tc.ran, log)
			}
			var skipped []string
			for _, s := range got.Skipped {
				skipped = append(skipped, s.Date)
				if !strings.Contains(s.Reason, tc.reason) {
					t.Errorf("skipped %s because %q; want it to say %q", s.Date, s.Reason, tc.reason)
				}
			}
			if strings.Join(skipped, ",") != strings.Join(tc.skipped, ",") {
				t.Errorf("skipped %v, want %v", skipped, tc.skipped)
			}
			for _, s := range got.Strategies {
				if s.Days != len(tc.ran) {
					t.Errorf("%s ran %d days, want %d", s.Strategy, s.Days, len(tc.ran))
				}
			}
			for _, want := range tc.say {
				if !strings.Contains(log, want) {
					t.Errorf("stderr does not say %q:\n%s", want, log)
				}
			}
		})
	}
}

// The day after a gap learns its VWAP curve from the complete day before
// the gap, so a history day with a gap does not stop the days after it.
func TestBacktest_GapInTheOnlyHistoryDayReachesFurtherBack(t *testing.T) {
	day0 := time.Date(2024, 10, 1, 0, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	writeKlines(t, dir, day0, 4, map[time.Time]bool{day0.Add(24*time.Hour + 3*time.Hour): true})
	f := quickFlags(dir)
	f.strategies = []string{"vwap"}
	f.days = []string{"2024-10-03"} // its one day of history, 10-02, has a gap
	got, log, err := runBacktest(t, f)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if len(got.Days) != 1 || got.Days[0] != "2024-10-03" || len(got.Strategies) != 1 || got.Strategies[0].Days != 1 {
		t.Fatalf("got %+v\n%s", got, log)
	}
}

func TestBacktest_AskedDaysWithGapsAreSkippedOrRefusedWhenNoneIsLeft(t *testing.T) {
	day0 := time.Date(2024, 10, 1, 0, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	writeKlines(t, dir, day0, 4, map[time.Time]bool{day0.Add(48*time.Hour + 9*time.Hour): true})
	f := quickFlags(dir)
	f.days = []string{"2024-10-02", "2024-10-03"}
	got, log, err := runBacktest(t, f)
	if err != nil || len(got.Days) != 1 || got.Days[0] != "2024-10-02" || len(got.Skipped) != 1 {
		t.Fatalf("err %v, got %+v\n%s", err, got, log)
	}
	f.days = []string{"2024-10-03"}
	_, _, err = runBacktest(t, f)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitBadConfig || !strings.Contains(err.Error(), "no day left to run") ||
		!strings.Contains(err.Error(), "09:00–09:01") {
		t.Fatalf("err = %v, want exit %d saying no day is left and why", err, exitBadConfig)
	}
	f.days = []string{"2024-11-03"}
	if _, _, err = runBacktest(t, f); err == nil || !strings.Contains(err.Error(), "outside the data") {
		t.Fatalf("a day outside the data: err = %v", err)
	}
}

// A window that runs past midnight needs the next day's minutes too.
func TestBacktest_WindowIntoTheNextDaysGapIsSkipped(t *testing.T) {
	day0 := time.Date(2024, 10, 1, 0, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	writeKlines(t, dir, day0, 4, map[time.Time]bool{day0.Add(72*time.Hour + 30*time.Minute): true})
	f := quickFlags(dir)
	f.days = []string{"2024-10-02", "2024-10-03"}
	f.start, f.duration = 22*time.Hour, 2*time.Hour // replayed to 01:00 the next day
	got, log, err := runBacktest(t, f)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if len(got.Days) != 1 || got.Days[0] != "2024-10-02" || len(got.Skipped) != 1 || got.Skipped[0].Date != "2024-10-03" ||
		!strings.Contains(got.Skipped[0].Reason, "2024-10-04 00:30") {
		t.Fatalf("got %+v\n%s", got, log)
	}
}

// Every flag is checked before the data is read: --data names a directory
// that does not exist, so an error about anything else proves the order.
func TestBacktest_BadFlagsExitTwoBeforeReadingTheData(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-data-here")
	for _, tc := range []struct {
		name string
		set  func(f *backtestFlags)
		want string
	}{
		{"chart extension", func(f *backtestFlags) { f.chart = filepath.Join(t.TempDir(), "out.gif") }, ".svg or .png"},
		{"chart directory", func(f *backtestFlags) { f.chart = filepath.Join(missing, "out.svg") }, "does not exist"},
		{"pov rate above one", func(f *backtestFlags) { f.povRate = "2" }, "rate 2 must be in (0, 1)"},
		{"pov rate zero", func(f *backtestFlags) { f.povRate = "0" }, "must be in (0, 1)"},
		{"pov rate above its max", func(f *backtestFlags) { f.povRate, f.povMax = "0.2", "0.1" }, "rate ≤ max_rate"},
		{"pov rate not a number", func(f *backtestFlags) { f.povRate = "five" }, "--pov-rate"},
		{"days", func(f *backtestFlags) { f.days = []string{"10/08/2024"} }, "--days"},
		{"no strategies", func(f *backtestFlags) { f.strategies = []string{} }, "at least one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := defaultBacktestFlags()
			f.data = missing
			tc.set(&f)
			var out bytes.Buffer
			err := backtestCommand(context.Background(), f, &out, &out)
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != exitBadConfig || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want exit %d saying %q", err, exitBadConfig, tc.want)
			}
		})
	}
}
