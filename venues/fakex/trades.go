package fakex

import (
	"context"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/market"
)

// TapeSource is the part of a sim venue a public trade feed reads.
type TapeSource interface {
	Tape(ctx context.Context, symbol string, from, to time.Time) (market.Tape, error)
}

// Trade is one public trade of a fake's feed.
type Trade struct {
	// ID is the trade's end time in buckets since the Unix epoch: the same
	// bucket always has the same id, and ids grow with time.
	ID         int64
	Time       time.Time
	Price      decimal.Decimal // the bucket's VWAP, rounded to the tick
	Qty        decimal.Decimal // the bucket's whole volume, exactly
	BuyerMaker bool            // alternates: the tape has no aggressor side
}

// Trades cuts the tape into one trade per bucket: the trade at each
// multiple e of bucket with from < e ≤ to carries the volume of (e −
// bucket, e], our own fills included, so the trades of a window that
// starts and ends on buckets add up to the venue's tape exactly. A bucket
// that traded nothing has no trade, nor one that ends after now.
func Trades(ctx context.Context, src TapeSource, symbol string, from, to, now time.Time, bucket time.Duration,
	tick decimal.Decimal) ([]Trade, error) {
	var out []Trade
	if to.After(now) {
		to = now
	}
	first := from.Truncate(bucket)
	if !first.After(from) {
		first = first.Add(bucket)
	}
	for e := first; !e.After(to); e = e.Add(bucket) {
		tp, err := src.Tape(ctx, symbol, e.Add(-bucket), e)
		if err != nil {
			return nil, err
		}
		if tp.Volume.Sign() <= 0 {
			continue
		}
		id := e.UnixNano() / int64(bucket)
		out = append(out, Trade{ID: id, Time: e, Price: market.FloorToStep(tp.VWAP(), tick), Qty: tp.Volume,
			BuyerMaker: id%2 == 0})
	}
	return out, nil
}
