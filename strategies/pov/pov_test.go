package pov

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

var (
	start = time.Date(2024, 10, 1, 8, 0, 0, 0, time.UTC)
	end   = start.Add(time.Hour)
)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// feed observes vol per minute for n minutes from start and returns the
// target after each.
func feed(t *testing.T, s *Schedule, vol string, n int) []decimal.Decimal {
	t.Helper()
	var out []decimal.Decimal
	for i := 1; i <= n; i++ {
		at := start.Add(time.Duration(i) * time.Minute)
		s.Observe(at.Add(-time.Minute), at, d(vol))
		out = append(out, s.Target(at))
	}
	return out
}

func TestPOV_FollowsVolumeAtTheRate(t *testing.T) {
	s, err := New(d("1000"), start, end, Params{Rate: d("0.2")})
	if err != nil {
		t.Fatal(err)
	}
	got := feed(t, s, "50", 30)
	// 30 minutes of 50 by the others: V = 1500. A 20 % share of the whole
	// is 0.2/0.8·V = 375, behind the 500 pace: no slowing.
	if !got[29].Equal(d("375")) {
		t.Fatalf("target after 30 min = %s, want 375", got[29])
	}
	if share := got[29].Div(got[29].Add(d("1500"))); !share.Equal(d("0.2")) {
		t.Fatalf("our share of all the volume = %s, want the rate 0.2", share)
	}
}

func TestPOV_SlowsToMinRateWhenAheadOfPace(t *testing.T) {
	s, err := New(d("10"), start, end, Params{Rate: d("0.5"), MinRate: d("0.2")})
	if err != nil {
		t.Fatal(err)
	}
	got := feed(t, s, "100", 6)
	// After 6 min: V = 600; at 50 % we would trade 600, far ahead of the
	// pace 1; at the 20 % minimum 150, still above Q: the target is Q.
	if !got[5].Equal(d("10")) {
		t.Fatalf("target = %s", got[5])
	}
	s, _ = New(d("1000"), start, end, Params{Rate: d("0.5"), MinRate: d("0.2")})
	got = feed(t, s, "100", 6)
	// 600 > pace 100: slow to max(0.2/0.8·600 = 150, pace 100) = 150.
	if !got[5].Equal(d("150")) {
		t.Fatalf("ahead of pace: target = %s, want 150", got[5])
	}
}

func TestPOV_EndForcingRisesWithinMaxRateAndReportsTheRest(t *testing.T) {
	s, err := New(d("100"), start, end, Params{Rate: d("0.2"), MaxRate: d("0.5")})
	if err != nil {
		t.Fatal(err)
	}
	got := feed(t, s, "5", 60)
	// Before the forcing (80 % = 48 min) the target is 0.2/0.8·V: 1.25 a
	// minute, 60 at 48 min.
	if !got[47].Equal(d("60")) {
		t.Fatalf("target at 48 min = %s, want 60", got[47])
	}
	// The forcing line (8.33 a minute from 48 min) passes the rate at 57
	// min; from there the target rises by the 5 a minute that the 50 %
	// maximum allows (0.5/0.5·5): 70 at 56 min, 90 at the end; the rest is
	// reported unfilled.
	for i := 48; i < 60; i++ {
		inc := got[i].Sub(got[i-1])
		want := d("1.25")
		if i >= 56 {
			want = d("5")
		}
		if !inc.Equal(want) {
			t.Fatalf("minute %d: increase %s, want %s", i+1, inc, want)
		}
	}
	if !got[59].Equal(d("90")) {
		t.Fatalf("end target = %s, want 90", got[59])
	}
	// A deep market: Q is reached.
	deep, _ := New(d("100"), start, end, Params{Rate: d("0.2"), MaxRate: d("0.5")})
	got = feed(t, deep, "100", 60)
	if !got[59].Equal(d("100")) {
		t.Fatalf("deep market end target = %s, want 100", got[59])
	}
	for i := 1; i < len(got); i++ {
		if got[i].LessThan(got[i-1]) {
			t.Fatalf("target went backwards at %d: %s < %s", i, got[i], got[i-1])
		}
	}
}

func TestPOV_RejectsBadRates(t *testing.T) {
	for _, p := range []Params{
		{Rate: d("0")}, {Rate: d("1")}, {Rate: d("0.1"), MinRate: d("0.2")},
		{Rate: d("0.1"), MaxRate: d("0.05")}, {Rate: d("0.1"), ForceFrom: d("1.5")},
	} {
		if _, err := New(d("1"), start, end, p); err == nil {
			t.Errorf("params %+v accepted", p)
		}
	}
	if _, err := New(d("1"), end, start, Params{Rate: d("0.1")}); err == nil {
		t.Error("end before start accepted")
	}
}

// A schedule rebuilt from the same order and given the first one's state
// goes on exactly where the first would have: a restart neither stalls
// the parent (volume forgotten) nor lets it jump (the max-rate step lost).
func TestPOV_RestoredStateGoesOnWhereItWas(t *testing.T) {
	p := Params{Rate: d("0.1"), MaxRate: d("0.2")}
	first, err := New(d("1000"), start, end, p)
	if err != nil {
		t.Fatal(err)
	}
	feed(t, first, "300", 20)
	st, err := first.State()
	if err != nil {
		t.Fatal(err)
	}
	again, err := New(d("1000"), start, end, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Restore(st); err != nil {
		t.Fatal(err)
	}
	fresh, _ := New(d("1000"), start, end, p)
	for i := 21; i <= 60; i++ {
		at := start.Add(time.Duration(i) * time.Minute)
		for _, s := range []*Schedule{first, again, fresh} {
			s.Observe(at.Add(-time.Minute), at, d("300"))
		}
		want, got := first.Target(at), again.Target(at)
		if !got.Equal(want) {
			t.Fatalf("minute %d: restored target %s, the running schedule's %s", i, got, want)
		}
		if i == 21 && !fresh.Target(at).LessThan(want) {
			t.Fatalf("minute 21: a schedule without the state targets %s, not below %s: the test shows nothing", fresh.Target(at), want)
		}
	}
	if err := again.Restore([]byte(`{"volume":"-1"}`)); err == nil {
		t.Fatal("a negative volume was restored")
	}
	if err := again.Restore([]byte(`not json`)); err == nil {
		t.Fatal("garbage was restored")
	}
}
