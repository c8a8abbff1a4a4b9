package vwap

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/blockexec/blockexec/marketdata"
	"github.com/shopspring/decimal"
)

// planted is a smooth profile peaking at 14:00 UTC with the given depth.
func planted(depth float64) [Minutes]float64 {
	var p [Minutes]float64
	sum := 0.0
	for m := range p {
		p[m] = 1 + depth*math.Cos(2*math.Pi*float64(m-840)/Minutes)
		sum += p[m]
	}
	for m := range p {
		p[m] /= sum
	}
	return p
}

// synthBars makes one bar a minute for n days from first, following the
// weekday or weekend profile with ±20 % noise and a daily level that varies.
func synthBars(first time.Time, n int, weekday, weekend [Minutes]float64, seed uint64) []marketdata.Bar {
	rng := rand.New(rand.NewPCG(seed, 1))
	bars := make([]marketdata.Bar, 0, n*Minutes)
	for i := range n {
		date := first.Add(time.Duration(i) * day)
		p, level := &weekday, 30000.0
		if isWeekend(date) {
			p, level = &weekend, 15000.0
		}
		level *= 0.5 + rng.Float64()
		for m := range Minutes {
			v := level * p[m] * (0.8 + 0.4*rng.Float64())
			bars = append(bars, marketdata.Bar{
				Open:   date.Add(time.Duration(m) * time.Minute),
				Volume: decimal.NewFromFloat(v).Round(8),
			})
		}
	}
	return bars
}

func TestLearn_RecoversAPlantedCurve(t *testing.T) {
	wd, we := planted(0.8), planted(0.3)
	first := time.Date(2024, 9, 2, 0, 0, 0, 0, time.UTC) // a Monday
	bars := synthBars(first, 28, wd, we, 7)
	before := first.Add(28 * day)
	// Noise the learner must ignore: a newer incomplete day and bars after
	// the cut-off.
	extra := synthBars(before, 2, wd, wd, 9)
	bars = append(bars, extra[:Minutes-5]...)
	bars = append(bars, extra[Minutes+3:Minutes+4]...) // day 2 of extra: also incomplete
	l, err := Learn(bars, before.Add(day+time.Hour), 21)
	if err != nil {
		t.Fatal(err)
	}
	if l.WeekdayDays != 15 || l.WeekendDays != 6 || l.Fallback != "" {
		t.Fatalf("learned from %d weekdays, %d weekend days (fallback %q); want 15 and 6",
			l.WeekdayDays, l.WeekendDays, l.Fallback)
	}
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want *[Minutes]float64
	}{{"weekday", &l.Weekday, &wd}, {"weekend", &l.Weekend, &we}} {
		worst := 0.0
		for m := range c.got {
			worst = math.Max(worst, math.Abs(c.got[m]/c.want[m]-1))
		}
		if worst > 0.05 {
			t.Errorf("%s curve off by up to %.1f%% of the planted one", c.name, 100*worst)
		}
	}
	if argmax(&l.Weekday)/60 != 14 {
		t.Errorf("learned weekday peak at %d, want the 14:00 hour", argmax(&l.Weekday))
	}
	wv, _ := l.WeekdayVolume.Float64()
	if wv < 20000 || wv > 40000 {
		t.Errorf("WeekdayVolume = %s, want about 30000", l.WeekdayVolume)
	}
}

func argmax(p *[Minutes]float64) int {
	best := 0
	for m := range p {
		if p[m] > p[best] {
			best = m
		}
	}
	return best
}

func TestLearn_SmoothsASingleSpike(t *testing.T) {
	flatP := planted(0)
	first := time.Date(2024, 9, 2, 0, 0, 0, 0, time.UTC)
	bars := synthBars(first, 1, flatP, flatP, 3)
	bars[600].Volume = bars[600].Volume.Mul(decimal.NewFromInt(100))
	l, err := Learn(bars, first.Add(day), 1)
	if err != nil {
		t.Fatal(err)
	}
	if share := l.Weekday[600]; share > 0.01 {
		t.Errorf("a 100× spike minute takes %.2f%% of the day after smoothing", 100*share)
	}
	if l.Weekday[600+SmoothMinutes] <= l.Weekday[600+SmoothMinutes+1] {
		t.Error("the spike should spread over ±SmoothMinutes only")
	}
}

func TestLearn_FallsBackToTheOtherKindAndSaysSo(t *testing.T) {
	wd := planted(0.8)
	tue := time.Date(2024, 10, 1, 0, 0, 0, 0, time.UTC)
	l, err := Learn(synthBars(tue, 3, wd, wd, 1), tue.Add(3*day), 10)
	if err != nil {
		t.Fatal(err)
	}
	if l.WeekdayDays != 3 || l.WeekendDays != 0 || !strings.Contains(l.Fallback, "weekend curve copied") {
		t.Errorf("WeekdayDays=%d WeekendDays=%d Fallback=%q", l.WeekdayDays, l.WeekendDays, l.Fallback)
	}
	if l.Weekend != l.Weekday || !l.WeekendVolume.Equal(l.WeekdayVolume) {
		t.Error("weekend profile not copied from weekdays")
	}
	sat := time.Date(2024, 10, 5, 0, 0, 0, 0, time.UTC)
	l, err = Learn(synthBars(sat, 2, wd, wd, 1), sat.Add(2*day), 10)
	if err != nil || l.WeekdayDays != 0 || !strings.Contains(l.Fallback, "weekday curve copied") {
		t.Errorf("weekend only: %+v, %v", l.Fallback, err)
	}
}

func TestLearn_ErrorsWithoutHistory(t *testing.T) {
	tue := time.Date(2024, 10, 1, 0, 0, 0, 0, time.UTC)
	wd := planted(0.8)
	full := synthBars(tue, 1, wd, wd, 1)
	cases := []struct {
		name   string
		bars   []marketdata.Bar
		before time.Time
		days   int
	}{
		{"no bars", nil, tue, 5},
		{"only after the cut-off", full, tue.Add(time.Hour), 5},
		{"day not over yet", full, tue.Add(day - time.Nanosecond), 5},
		{"incomplete day", full[1:], tue.Add(day), 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Learn(tc.bars, tc.before, tc.days); !errors.Is(err, ErrNoHistory) {
				t.Errorf("err = %v, want ErrNoHistory", err)
			}
		})
	}
	if _, err := Learn(full, tue.Add(day), 0); err == nil {
		t.Error("zero days accepted")
	}
}

func TestFromHourly_SpreadsHoursAndRejectsBadShares(t *testing.T) {
	var h [24]float64
	h[14] = 7.5
	h[5] = 2.5
	c, err := FromHourly(h)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(c.Weekday[14*60+30]-0.75/60) > 1e-15 || c.Weekend != c.Weekday || c.Validate() != nil {
		t.Errorf("14:30 share %v, want %v", c.Weekday[14*60+30], 0.75/60)
	}
	h[3] = -1
	if _, err := FromHourly(h); err == nil {
		t.Error("negative share accepted")
	}
	if _, err := FromHourly([24]float64{}); err == nil {
		t.Error("all-zero shares accepted")
	}
	h[3] = math.NaN()
	if _, err := FromHourly(h); err == nil {
		t.Error("NaN share accepted")
	}
}
