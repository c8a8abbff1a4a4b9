package vwap

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// The schedule fits the engine's Schedule and VolumeObserver interfaces
// (declared there; repeated here so this package does not import the engine).
var _ interface {
	Target(t time.Time) decimal.Decimal
	Observe(from, to time.Time, volume decimal.Decimal)
} = (*Schedule)(nil)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func flat(t *testing.T) Curve {
	t.Helper()
	var h [24]float64
	for i := range h {
		h[i] = 1
	}
	c, err := FromHourly(h)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// peak14 is a curve whose 14:00 UTC hour carries ten times any other hour.
func peak14(t *testing.T) Curve {
	t.Helper()
	var h [24]float64
	for i := range h {
		h[i] = 1
	}
	h[14] = 10
	c, err := FromHourly(h)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustNew(t *testing.T, qty decimal.Decimal, start, end time.Time, c Curve, opts ...Option) *Schedule {
	t.Helper()
	s, err := New(qty, start, end, c, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Tuesday 1 October 2024.
var tue = time.Date(2024, 10, 1, 0, 0, 0, 0, time.UTC)

func TestVWAP_FlatCurveEqualsTWAP(t *testing.T) {
	start, end := tue.Add(8*time.Hour), tue.Add(16*time.Hour)
	s := mustNew(t, d("400"), start, end, flat(t))
	exact := []struct {
		at   time.Duration
		want string
	}{
		{-time.Minute, "0"}, {0, "0"}, {time.Hour, "50"}, {4 * time.Hour, "200"},
		{7*time.Hour + 59*time.Minute, "399.16666666"}, {8 * time.Hour, "400"}, {9 * time.Hour, "400"},
	}
	for _, tc := range exact {
		if got := s.Target(start.Add(tc.at)); !got.Equal(d(tc.want)) {
			t.Errorf("Target(+%s) = %s, want %s", tc.at, got, tc.want)
		}
	}
	total := decimal.NewFromInt(int64(end.Sub(start)))
	tol := d("0.00000001")
	for el := time.Duration(0); el < 8*time.Hour; el += 97*time.Second + 13*time.Millisecond {
		twap := d("400").Mul(decimal.NewFromInt(int64(el))).Div(total).RoundDown(8)
		if got := s.Target(start.Add(el)); got.Sub(twap).Abs().GreaterThan(tol) {
			t.Fatalf("Target(+%s) = %s, TWAP %s", el, got, twap)
		}
	}
}

func TestVWAP_PeakAt14BackLoadsBeforeItAndFrontLoadsFromIt(t *testing.T) {
	q := d("130")
	// 12:00–16:00: hours weigh 1, 1, 10, 1; half the time is only 2/13 of the volume.
	before := mustNew(t, q, tue.Add(12*time.Hour), tue.Add(16*time.Hour), peak14(t))
	if got := before.Target(tue.Add(14 * time.Hour)); !got.Equal(d("20")) {
		t.Errorf("back-loaded: Target(14:00) = %s, want 20 (TWAP 65)", got)
	}
	// 14:00–18:00: the first hour is 10/13 of the volume.
	from := mustNew(t, q, tue.Add(14*time.Hour), tue.Add(18*time.Hour), peak14(t))
	if got := from.Target(tue.Add(15 * time.Hour)); !got.Equal(d("100")) {
		t.Errorf("front-loaded: Target(15:00) = %s, want 100 (TWAP 32.5)", got)
	}
	if got := from.Target(tue.Add(14*time.Hour + 30*time.Minute)); !got.Equal(d("50")) {
		t.Errorf("within the peak hour the target is linear: Target(14:30) = %s, want 50", got)
	}
}

func TestVWAP_MonotoneAndExactAcrossMidnightAndIntoTheWeekend(t *testing.T) {
	c := peak14(t)
	for m := 0; m < 120; m++ { // nothing trades 00:00–02:00 on weekends
		c.Weekend[m] = 0
	}
	for m := 120; m < Minutes; m++ {
		c.Weekend[m] = 1.0 / (Minutes - 120)
	}
	fri := time.Date(2024, 10, 4, 0, 0, 0, 0, time.UTC)
	start := fri.Add(20*time.Hour + 17*time.Second)
	end := fri.Add(day + 3*time.Hour + 30*time.Second)
	q := d("123.45678901")
	s := mustNew(t, q, start, end, c)
	if !s.Target(start).IsZero() || !s.Target(end).Equal(q) || !s.Target(end.Add(time.Hour)).Equal(q) {
		t.Fatalf("ends: %s at start, %s at end", s.Target(start), s.Target(end))
	}
	prev := decimal.Zero
	for at := start.Add(-time.Minute); !at.After(end.Add(time.Minute)); at = at.Add(7 * time.Second) {
		got := s.Target(at)
		if got.LessThan(prev) || got.GreaterThan(q) || got.Exponent() < -8 {
			t.Fatalf("Target(%s) = %s after %s (Q=%s)", at, got, prev, q)
		}
		prev = got
	}
	sat := fri.Add(day)
	if a, b := s.Target(sat), s.Target(sat.Add(119*time.Minute)); !a.Equal(b) || a.IsZero() {
		t.Errorf("Saturday 00:00–02:00 has no weekend volume: Target %s then %s", a, b)
	}
	if a, b := s.Target(sat.Add(-time.Hour)), s.Target(sat); !b.GreaterThan(a) {
		t.Errorf("Friday 23:00–24:00 follows the weekday curve: Target %s then %s", a, b)
	}
}

func TestVWAP_ZeroCurveOverWindowFallsBackToTWAP(t *testing.T) {
	c := peak14(t)
	for m := 0; m < 60; m++ {
		c.Weekday[840] += c.Weekday[m] // keep the sum at 1
		c.Weekday[m] = 0
	}
	s := mustNew(t, d("10"), tue, tue.Add(time.Hour), c)
	if !s.Flat() || !s.Target(tue.Add(30*time.Minute)).Equal(d("5")) {
		t.Errorf("Flat=%v Target(00:30)=%s, want TWAP 5", s.Flat(), s.Target(tue.Add(30*time.Minute)))
	}
}

func TestVWAP_ObserveHeavyVolumeLeansAheadNeverBackNorAboveQty(t *testing.T) {
	start, end := tue.Add(10*time.Hour), tue.Add(12*time.Hour)
	q := d("12")
	// Flat curve, 1,440 BTC a day: one BTC a minute is as expected.
	opts := []Option{WithDailyVolume(d("1440"), d("1440"))}
	s := mustNew(t, q, start, end, flat(t), opts...)
	plan := mustNew(t, q, start, end, flat(t))
	probe := end.Add(-10 * time.Minute)
	prevProbe := s.Target(probe)
	prev := decimal.Zero
	for m := 1; m <= 110; m++ {
		vol := "3" // heavy for the first half hour, then light
		if m > 30 {
			vol = "0.1"
		}
		at := start.Add(time.Duration(m) * time.Minute)
		s.Observe(at.Add(-time.Minute), at, d(vol))
		got := s.Target(at)
		if got.LessThan(prev) || got.GreaterThan(q) {
			t.Fatalf("minute %d: Target %s after %s (Q=%s)", m, got, prev, q)
		}
		if got.LessThan(plan.Target(at)) {
			t.Fatalf("minute %d: Target %s fell below the plan %s", m, got, plan.Target(at))
		}
		if p := s.Target(probe); p.LessThan(prevProbe) {
			t.Fatalf("minute %d: Target at a fixed later time went back from %s to %s", m, prevProbe, p)
		}
		prevProbe = s.Target(probe)
		if m == 30 && !got.GreaterThan(plan.Target(at)) {
			t.Errorf("after 30 heavy minutes Target %s is not ahead of the plan %s", got, plan.Target(at))
		}
		prev = got
	}
	// Three times the expected volume, w=0.5, after 30 of 120 minutes:
	// F_obs = 3·30/(3·30+90) = 0.5, F = 0.5·0.25 + 0.5·0.5 = 0.375.
	if got := s.Target(start.Add(30 * time.Minute)); !got.Equal(d("4.5")) {
		t.Errorf("Target(+30m) = %s, want 4.5", got)
	}
	if !s.Target(end).Equal(q) || !s.Volume().Equal(d("98")) {
		t.Errorf("Target(end) = %s, Volume = %s", s.Target(end), s.Volume())
	}

	// A flood with full weight approaches but never passes Q.
	all := mustNew(t, q, start, end, flat(t), append(opts, WithObserveWeight(1))...)
	all.Observe(start, start.Add(time.Minute), d("1e12"))
	if got := all.Target(start.Add(time.Minute)); got.GreaterThan(q) || got.LessThan(d("11.99")) {
		t.Errorf("flood: Target = %s, want just under %s", got, q)
	}

	// Without expected daily volume, Observe only counts.
	blind := mustNew(t, q, start, end, flat(t))
	blind.Observe(start, start.Add(time.Hour), d("1000"))
	if !blind.Target(start.Add(time.Hour)).Equal(d("6")) || !blind.Volume().Equal(d("1000")) {
		t.Errorf("blind: Target = %s, Volume = %s", blind.Target(start.Add(time.Hour)), blind.Volume())
	}
}

func TestVWAP_ObserveCountsOnlyTheWindowsShare(t *testing.T) {
	start := tue.Add(10 * time.Hour)
	s := mustNew(t, d("1"), start, start.Add(time.Hour), flat(t))
	s.Observe(start.Add(-time.Minute), start.Add(time.Minute), d("10"))
	s.Observe(start.Add(-2*time.Minute), start, d("10"))
	s.Observe(start, start.Add(time.Minute), d("-5"))
	if !s.Volume().Equal(d("5")) {
		t.Errorf("Volume = %s, want 5", s.Volume())
	}
}

func TestNew_RejectsBadInput(t *testing.T) {
	c := flat(t)
	start := tue.Add(8 * time.Hour)
	end := start.Add(time.Hour)
	bad := c
	bad.Weekend[3] = -1
	cases := []struct {
		name       string
		qty        decimal.Decimal
		start, end time.Time
		c          Curve
		opts       []Option
	}{
		{"zero quantity", decimal.Zero, start, end, c, nil},
		{"empty interval", d("1"), start, start, c, nil},
		{"too long", d("1"), start, start.Add(MaxSpan + time.Minute), c, nil},
		{"weight above one", d("1"), start, end, c, []Option{WithObserveWeight(1.5)}},
		{"zero daily volume", d("1"), start, end, c, []Option{WithDailyVolume(d("0"), d("1"))}},
		{"negative curve", d("1"), start, end, bad, nil},
		{"unset curve", d("1"), start, end, Curve{}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.qty, tc.start, tc.end, tc.c, tc.opts...); err == nil {
				t.Error("accepted")
			}
		})
	}
}
