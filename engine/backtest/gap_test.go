package backtest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/venues/sim"
)

// without returns data less the minutes opening at the times given.
func without(data []sim.Minute, gone ...time.Time) []sim.Minute {
	out := make([]sim.Minute, 0, len(data))
	for _, m := range data {
		drop := false
		for _, g := range gone {
			drop = drop || m.Open.Equal(g)
		}
		if !drop {
			out = append(out, m)
		}
	}
	return out
}

// quick is testConfig with a short, small parent.
func quick() Config {
	cfg := testConfig()
	cfg.Duration = 2 * time.Hour
	cfg.Qty = decimal.NewFromInt(2)
	return cfg
}

// seen is a strategy that records the history each day it plans had.
func seen(history map[time.Time]int) Strategy {
	return Strategy{Name: "twap", Plan: func(d Day) (Plan, error) {
		history[d.Date] = len(d.History)
		return Plan{}, nil
	}}
}

func TestRun_SkipsDaysWithGapsInTheirWindowAndRunsTheRest(t *testing.T) {
	day := func(n int) time.Time { return day0.Add(time.Duration(n) * 24 * time.Hour) }
	cfg := quick() // replays 00:00 to 11:00
	for _, tc := range []struct {
		name     string
		start    time.Duration
		gone     []time.Time
		ran      []time.Time
		skipped  time.Time
		gaps     string
		missing  int
		replayed int
	}{
		{"one minute in the parent's window", 8 * time.Hour, []time.Time{day(2).Add(9*time.Hour + 59*time.Minute)},
			[]time.Time{day(1), day(3)}, day(2), "2024-10-03 09:59–10:00 (1 min)", 1, 11 * 60},
		{"before the start, in the replayed night", 8 * time.Hour, []time.Time{day(2).Add(time.Hour), day(2).Add(3 * time.Hour)},
			[]time.Time{day(1), day(3)}, day(2), "2024-10-03 01:00–01:01 (1 min), 2024-10-03 03:00–03:01 (1 min)", 2, 11 * 60},
		{"the next morning, for a window past midnight", 22 * time.Hour, []time.Time{day(3).Add(30 * time.Minute)},
			[]time.Time{day(1)}, day(2), "2024-10-04 00:30–00:31 (1 min)", 1, 25 * 60},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg.StartOfDay = tc.start
			history := map[time.Time]int{}
			res, skipped, err := Run(context.Background(), without(synthetic(5), tc.gone...), cfg, []Strategy{seen(history)},
				[]time.Time{day(1), day(2), day(3)}[:len(tc.ran)+1], nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != len(tc.ran) {
				t.Fatalf("%d results, want %d", len(res), len(tc.ran))
			}
			for i, r := range res {
				if !r.Date.Equal(tc.ran[i]) || r.Summary.Filled.IsZero() {
					t.Errorf("result %d: %s filled %s, want %s with fills", i, r.Date, r.Summary.Filled, tc.ran[i])
				}
			}
			var ge *GapError
			if len(skipped) != 1 || !skipped[0].Date.Equal(tc.skipped) || !errors.As(skipped[0].Reason, &ge) {
				t.Fatalf("skipped %+v, want %s with a *GapError", skipped, tc.skipped)
			}
			msg := ge.Error()
			if ge.Missing != tc.missing || int(ge.To.Sub(ge.From)/time.Minute) != tc.replayed ||
				!strings.Contains(msg, tc.gaps) || !strings.Contains(msg, "day "+tc.skipped.Format(time.DateOnly)) {
				t.Errorf("gap error %q (missing %d); want %d missing of %d, naming %s", msg, ge.Missing, tc.missing, tc.replayed, tc.gaps)
			}
			// The history before a later day keeps what was recorded around the gap.
			if d := tc.ran[len(tc.ran)-1]; d.After(tc.skipped) {
				if want := int(d.Add(tc.start).Sub(day0)/time.Minute) - len(tc.gone); history[d] != want {
					t.Errorf("%s planned with %d minutes of history, want %d", d, history[d], want)
				}
			}
		})
	}
}

func TestRun_AllDaysSkippedIsNoResultsAndTheReasons(t *testing.T) {
	var gone []time.Time
	for i := 0; i < 7; i++ {
		gone = append(gone, day0.Add(24*time.Hour+time.Duration(i)*time.Hour))
	}
	res, skipped, err := Run(context.Background(), without(synthetic(3), gone...), quick(),
		[]Strategy{TWAP()}, []time.Time{day0.Add(24 * time.Hour)}, nil)
	if err != nil || len(res) != 0 || len(skipped) != 1 {
		t.Fatalf("err %v, %d results, skipped %v", err, len(res), skipped)
	}
	msg := skipped[0].Reason.Error()
	if !strings.Contains(msg, "7 of the 660 minutes") || !strings.Contains(msg, "and 2 more") {
		t.Fatalf("%q", msg)
	}
}

func TestRun_RefusesMinutesOutOfOrder(t *testing.T) {
	data := synthetic(2)
	data[100], data[101] = data[101], data[100]
	_, _, err := Run(context.Background(), data, quick(), []Strategy{TWAP()}, []time.Time{day0.Add(24 * time.Hour)}, nil)
	if err == nil || !strings.Contains(err.Error(), "strictly increasing") {
		t.Fatalf("err = %v", err)
	}
}
