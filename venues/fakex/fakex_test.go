package fakex

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/market"
)

type words struct{}

func (words) WriteServerError(w http.ResponseWriter, status int) {
	w.WriteHeader(status)
	_, _ = io.WriteString(w, "oops")
}
func (words) WriteRateLimited(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(d.Seconds())))
	w.WriteHeader(http.StatusTooManyRequests)
}
func (words) WriteBanned(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(d.Seconds())))
	w.WriteHeader(http.StatusTeapot)
}

// rig serves a handler that counts what it processed behind the faults.
func rig(t *testing.T) (*Server, *Faults, *atomic.Int64) {
	t.Helper()
	var processed atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		processed.Add(1)
		_, _ = io.WriteString(w, "ok")
	})
	var f *Faults
	srv, err := Start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.Wrap(h).ServeHTTP(w, r) }))
	if err != nil {
		t.Fatal(err)
	}
	f = NewFaults(words{}, srv.Stopping(), time.Now)
	t.Cleanup(srv.Close)
	return srv, f, &processed
}

func get(t *testing.T, c *http.Client, url string) (int, error) {
	t.Helper()
	res, err := c.Post(url, "text/plain", nil)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode, nil
}

func TestFaults_ApplyInOrderToMatchingRequestsOnly(t *testing.T) {
	srv, f, processed := rig(t)
	c := &http.Client{Timeout: 300 * time.Millisecond}
	f.Add(Fault{Kind: AcceptThen5xx, Method: http.MethodPost, Path: "/order"})
	f.Add(Fault{Kind: RateLimited, Times: 2, Path: "/order", RetryAfter: 7 * time.Second})
	if code, _ := get(t, c, srv.URL()+"/other"); code != 200 || processed.Load() != 1 {
		t.Fatalf("unmatched path: %d, processed %d", code, processed.Load())
	}
	if code, _ := get(t, c, srv.URL()+"/order"); code != 503 || processed.Load() != 2 {
		t.Fatalf("accept-then-5xx: %d, processed %d (the order must be taken)", code, processed.Load())
	}
	for i := 0; i < 2; i++ {
		if code, _ := get(t, c, srv.URL()+"/order"); code != 429 {
			t.Fatalf("rate limit %d: %d", i, code)
		}
	}
	if code, _ := get(t, c, srv.URL()+"/order"); code != 200 || processed.Load() != 3 {
		t.Fatalf("after the faults: %d, processed %d", code, processed.Load())
	}
	if f.Hits(RateLimited) != 2 || f.Hits(AcceptThen5xx) != 1 {
		t.Fatalf("hits %d %d", f.Hits(RateLimited), f.Hits(AcceptThen5xx))
	}
}

func TestFaults_TimeoutHoldsUntilTheClientGivesUpAndBanLasts(t *testing.T) {
	srv, f, processed := rig(t)
	c := &http.Client{Timeout: 200 * time.Millisecond}
	f.Add(Fault{Kind: AcceptThenTimeout})
	if _, err := get(t, c, srv.URL()+"/x"); err == nil || processed.Load() != 1 {
		t.Fatalf("accept-then-timeout: err %v processed %d", err, processed.Load())
	}
	f.Add(Fault{Kind: Banned, RetryAfter: time.Hour})
	for i := 0; i < 3; i++ {
		if code, _ := get(t, c, srv.URL()+"/x"); code != http.StatusTeapot {
			t.Fatalf("ban answer %d: %d", i, code)
		}
	}
	f.Clear()
	if code, _ := get(t, c, srv.URL()+"/x"); code != 200 {
		t.Fatalf("after clear: %d", code)
	}
}

func TestServer_DarkDropsEveryConnection(t *testing.T) {
	srv, _, processed := rig(t)
	c := &http.Client{Timeout: time.Second}
	srv.SetDark(true)
	if _, err := get(t, c, srv.URL()+"/x"); err == nil || processed.Load() != 0 {
		t.Fatalf("dark: err %v processed %d", err, processed.Load())
	}
	srv.SetDark(false)
	if code, err := get(t, c, srv.URL()+"/x"); err != nil || code != 200 {
		t.Fatalf("back: %d %v", code, err)
	}
}

func TestBudget_ResetsEachWindow(t *testing.T) {
	b := NewBudget(time.Minute)
	t0 := time.Date(2024, 10, 1, 8, 0, 30, 0, time.UTC)
	b.Spend(t0, 10)
	if got := b.Spend(t0.Add(20*time.Second), 5); got != 15 {
		t.Fatalf("same minute: %d", got)
	}
	if got := b.Used(t0.Add(40 * time.Second)); got != 0 {
		t.Fatalf("next minute: %d", got)
	}
}

// linearTape trades 1 base per second at 100 + seconds since t0.
type linearTape struct{ t0 time.Time }

func (l linearTape) Tape(_ context.Context, _ string, from, to time.Time) (market.Tape, error) {
	if from.Before(l.t0) {
		return market.Tape{}, errors.New("before the start")
	}
	v, n := decimal.Zero, decimal.Zero
	for s := from.Add(time.Second); !s.After(to); s = s.Add(time.Second) {
		v = v.Add(decimal.NewFromInt(1))
		n = n.Add(decimal.NewFromInt(100 + int64(s.Sub(l.t0)/time.Second)))
	}
	return market.Tape{Volume: v, Notional: n}, nil
}

func TestTrades_AddUpToTheTapeAndStopAtNow(t *testing.T) {
	t0 := time.Date(2024, 10, 1, 8, 0, 0, 0, time.UTC)
	src := linearTape{t0}
	ctx := context.Background()
	trades, err := Trades(ctx, src, "X", t0, t0.Add(time.Minute), t0.Add(45*time.Second), 10*time.Second, decimal.RequireFromString("0.01"))
	if err != nil {
		t.Fatal(err)
	}
	if len(trades) != 4 { // buckets ending at 10, 20, 30, 40 s; 50 s is after now
		t.Fatalf("%d trades", len(trades))
	}
	sum := decimal.Zero
	for i, tr := range trades {
		sum = sum.Add(tr.Qty)
		if i > 0 && tr.ID != trades[i-1].ID+1 {
			t.Fatalf("ids %d then %d", trades[i-1].ID, tr.ID)
		}
	}
	if !sum.Equal(decimal.NewFromInt(40)) || !trades[0].Price.Equal(decimal.RequireFromString("105.5")) {
		t.Fatalf("sum %s, first price %s", sum, trades[0].Price)
	}
	again, _ := Trades(ctx, src, "X", t0.Add(5*time.Second), t0.Add(20*time.Second), t0.Add(time.Hour), 10*time.Second, decimal.RequireFromString("0.01"))
	if len(again) != 2 || again[0].ID != trades[0].ID {
		t.Fatalf("the same bucket must keep its id: %+v", again)
	}
}
