package twap

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func TestTWAP_TargetIsLinearAndExactAtTheEnds(t *testing.T) {
	start := time.Date(2024, 10, 1, 8, 0, 0, 0, time.UTC)
	end := start.Add(8 * time.Hour)
	s, err := New(decimal.RequireFromString("400"), start, end)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		at   time.Time
		want string
	}{
		{start.Add(-time.Minute), "0"},
		{start, "0"},
		{start.Add(time.Hour), "50"},
		{start.Add(4 * time.Hour), "200"},
		{start.Add(7*time.Hour + 59*time.Minute), "399.1666666666666667"},
		{end, "400"},
		{end.Add(time.Hour), "400"},
	}
	for _, tc := range cases {
		got := s.Target(tc.at)
		if !got.Equal(decimal.RequireFromString(tc.want)) {
			t.Errorf("Target(%s) = %s, want %s", tc.at.Format("15:04"), got, tc.want)
		}
	}
}

func TestTWAP_TargetNeverDecreasesNorExceedsQuantity(t *testing.T) {
	start := time.Date(2024, 10, 5, 0, 0, 0, 0, time.UTC)
	q := decimal.RequireFromString("123.45678901")
	s, err := New(q, start, start.Add(7*time.Hour+13*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	prev := decimal.Zero
	for at := start; at.Before(start.Add(8 * time.Hour)); at = at.Add(17 * time.Second) {
		got := s.Target(at)
		if got.LessThan(prev) || got.GreaterThan(q) {
			t.Fatalf("Target(%s) = %s after %s (Q=%s)", at, got, prev, q)
		}
		prev = got
	}
}

func TestTWAP_RejectsBadInput(t *testing.T) {
	start := time.Date(2024, 10, 1, 8, 0, 0, 0, time.UTC)
	if _, err := New(decimal.Zero, start, start.Add(time.Hour)); err == nil {
		t.Error("zero quantity accepted")
	}
	if _, err := New(decimal.NewFromInt(1), start, start); err == nil {
		t.Error("empty interval accepted")
	}
}
