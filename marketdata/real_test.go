package marketdata

import (
	"os"
	"testing"
	"time"
)

// realDir is Binance's October 2024 BTCUSDT archive beside the checkout
// (see ../shared/data/README.md); it is never copied into the repository.
const realDir = "../../shared/data/binance-btcusdt-1m"

func TestReadDir_RealOctober2024IsCompleteAndPeaksAt14UTC(t *testing.T) {
	if _, err := os.Stat(realDir); err != nil {
		t.Skipf("real market data not available at %s (it lives beside the checkout, not in it): %v", realDir, err)
	}
	s, err := ReadDir(realDir)
	if err != nil {
		t.Fatal(err)
	}
	days := s.Days()
	if len(days) != 31 || s.Len() != 31*MinutesPerDay {
		t.Fatalf("%d days, %d bars; want 31 days of %d", len(days), s.Len(), MinutesPerDay)
	}
	if g := s.Gaps(); len(g) != 0 {
		t.Fatalf("gaps: %v", g)
	}
	var hours [24]float64
	var total float64
	for _, d := range days {
		bars, err := s.Day(d)
		if err != nil {
			t.Fatal(err)
		}
		if wd := d.Weekday(); wd == time.Saturday || wd == time.Sunday {
			continue
		}
		for _, b := range bars {
			v := b.Volume.InexactFloat64()
			hours[b.Open.Hour()] += v
			total += v
		}
	}
	busiest := 0
	for h := range hours {
		if hours[h] > hours[busiest] {
			busiest = h
		}
	}
	if busiest != 14 {
		t.Errorf("busiest weekday hour is %02d:00 UTC (%.1f%%), want 14:00 (%.1f%%)",
			busiest, 100*hours[busiest]/total, 100*hours[14]/total)
	}
	t.Logf("weekday 14:00 UTC share of volume: %.2f%%", 100*hours[14]/total)
}
