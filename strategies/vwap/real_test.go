package vwap

import (
	"os"
	"testing"
	"time"

	"github.com/blockexec/blockexec/marketdata"
	"github.com/shopspring/decimal"
)

// realDir is Binance's October 2024 BTCUSDT archive beside the checkout; it
// is never copied into the repository.
const realDir = "../../../shared/data/binance-btcusdt-1m"

func TestLearn_RealOctober2024PeaksInThe14UTCHour(t *testing.T) {
	if _, err := os.Stat(realDir); err != nil {
		t.Skipf("real market data not available at %s (it lives beside the checkout, not in it): %v", realDir, err)
	}
	s, err := marketdata.ReadDir(realDir)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Date(2024, 11, 1, 0, 0, 0, 0, time.UTC)
	l, err := Learn(s.Bars(), before, 31)
	if err != nil {
		t.Fatal(err)
	}
	if l.WeekdayDays != 23 || l.WeekendDays != 8 || l.Fallback != "" {
		t.Fatalf("learned from %d weekdays and %d weekend days (%q)", l.WeekdayDays, l.WeekendDays, l.Fallback)
	}
	var hours [24]float64
	for m, x := range l.Weekday {
		hours[m/60] += x
	}
	best := 0
	for h := range hours {
		if hours[h] > hours[best] {
			best = h
		}
	}
	if best != 14 {
		t.Errorf("busiest learned weekday hour %02d:00, want 14:00", best)
	}
	// A 13:00–17:00 order on a weekday should be well ahead of TWAP by 15:00.
	day := time.Date(2024, 11, 5, 0, 0, 0, 0, time.UTC)
	sch, err := New(decimal.NewFromInt(100), day.Add(13*time.Hour), day.Add(17*time.Hour), l.Curve,
		WithDailyVolume(l.WeekdayVolume, l.WeekendVolume))
	if err != nil {
		t.Fatal(err)
	}
	if got := sch.Target(day.Add(15 * time.Hour)); !got.GreaterThan(decimal.NewFromInt(50)) {
		t.Errorf("Target(15:00) = %s, want more than the TWAP 50", got)
	}
	t.Logf("weekday 14:00 share %.2f%%, mean weekday volume %s BTC", 100*hours[14], l.WeekdayVolume.Round(0))
}
