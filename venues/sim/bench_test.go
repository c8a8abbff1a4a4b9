package sim

import (
	"context"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/market"
)

// BenchmarkSimDay1s drives three venues through one simulated day at one
// second ticks: each second a book and a tape on every venue, and an IOC
// child on each venue every minute.
func BenchmarkSimDay1s(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		clk := clock.NewVirtual(tuesday.Add(-14 * time.Hour))
		m := newMarket(b, 1)
		vs := []*Venue{newVenue(b, m, clk, "a", 0.5, "0.00001"), newVenue(b, m, clk, "b", 0.3, "0.0001"), newVenue(b, m, clk, "c", 0.2, "0.001")}
		for s := 0; s < 86400; s++ {
			now := clk.Now()
			for _, v := range vs {
				bk, _ := v.Book(ctx, "BTCUSDT", 10)
				_, _ = v.Tape(ctx, "BTCUSDT", now.Add(-time.Minute), now)
				if s%60 == 0 {
					_, _, _ = v.Place(ctx, req(v.Name()+decimal.NewFromInt(int64(s)).String(), market.Sell, bk.Bids[1].Price.String(), "0.01", market.IOC))
				}
			}
			clk.Advance(time.Second)
		}
	}
}
