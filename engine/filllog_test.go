package engine

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// The running totals must give exactly what summing the fills in the window
// gives, with fills stamped out of order and the front trimmed.
func TestFillLog_SumsEqualDirectSummation(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	for _, keep := range []time.Duration{0, 10 * time.Minute} {
		rng := rand.New(rand.NewPCG(7, uint64(keep)))
		l := &fillLog{keep: keep}
		type fill struct {
			at  time.Time
			qty decimal.Decimal
		}
		var all []fill
		now := t0
		for i := 0; i < 2000; i++ {
			now = now.Add(time.Duration(rng.IntN(20)) * time.Second)
			at := now
			if rng.IntN(10) == 0 { // a venue's stamp a little in the past
				at = now.Add(-time.Duration(rng.IntN(30)) * time.Second)
			}
			q := decimal.New(int64(rng.IntN(100000)+1), -int32(rng.IntN(8)))
			l.add(at, q)
			all = append(all, fill{at, q})

			// Every window that the trimming promises to keep.
			for _, w := range []time.Duration{time.Second, time.Minute, 5 * time.Minute} {
				from, to := now.Add(-w), now.Add(-time.Duration(rng.IntN(3))*time.Second)
				want := decimal.Zero
				for _, f := range all {
					if f.at.After(from) && !f.at.After(to) {
						want = want.Add(f.qty)
					}
				}
				if got := l.sum(from, to); !got.Equal(want) {
					t.Fatalf("keep %v, fill %d: sum(%s, %s) = %s, want %s", keep, i,
						from.Format(time.TimeOnly), to.Format(time.TimeOnly), got, want)
				}
			}
		}
		if keep > 0 && len(l.at) >= len(all) {
			t.Fatalf("keep %v: the log kept all %d fills", keep, len(all))
		}
	}
}
