package engine

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/venues"
)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

var testInst = market.Instrument{Symbol: "BTCUSDT", Base: "BTC", Quote: "USDT", Tick: dec("0.01"), Step: dec("0.001"),
	MinQty: dec("0.001"), MinNotional: dec("5"), MakerFee: dec("0.0001"), TakerFee: dec("0.001")}

// fakeVenue is a scripted venue: a static book around mid with qtyPerLevel
// at every levelGap, a tape that prints ratePerMin of background volume, and
// IOC matching against the book. Faults are switched on per test.
type fakeVenue struct {
	mu          sync.Mutex
	name        string
	clk         clock.Clock
	mid         decimal.Decimal
	levelGap    decimal.Decimal
	qtyPerLevel decimal.Decimal
	levels      int
	ratePerMin  func(t time.Time) decimal.Decimal // background volume per minute
	origin      time.Time

	loseNextAck bool      // place the order, then answer ErrUnavailable
	dropNext    bool      // answer ErrUnavailable without placing
	lookupFails int       // Order answers ErrUnavailable this many times
	hideFills   int       // Fills leaves out the last fill this many times
	feeAsset    string    // default USDT
	darkUntil   time.Time // Book fails before this time
	rulesUntil  time.Time // Instrument fails (unavailable) before this time
	staleBy     time.Duration
	// crash, when set, is called before an order is executed ("before")
	// and after, before the answer ("after"): a test ends the engine's
	// goroutine there to play a crash.
	crash     func(stage string)
	dupTries  int // places refused because the client id was used before
	bookCalls int
	orders    map[string]market.Order
	placed    []market.OrderRequest
	placedAt  []time.Time
	fills     []market.Fill
	trade     int
}

func newFake(name string, clk clock.Clock, qtyPerLevel string) *fakeVenue {
	return &fakeVenue{name: name, clk: clk, mid: dec("60000"), levelGap: dec("6"), qtyPerLevel: dec(qtyPerLevel),
		levels: 100, ratePerMin: func(time.Time) decimal.Decimal { return dec("20") }, origin: clk.Now().Add(-24 * time.Hour),
		orders: map[string]market.Order{}}
}

func (f *fakeVenue) Name() string { return f.name }

func (f *fakeVenue) Instrument(context.Context, string) (market.Instrument, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.clk.Now().Before(f.rulesUntil) {
		return market.Instrument{}, fmt.Errorf("rate limited: %w", venues.ErrUnavailable)
	}
	return testInst, nil
}

func (f *fakeVenue) Book(_ context.Context, _ string, depth int) (market.Book, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bookCalls++
	if f.clk.Now().Before(f.darkUntil) {
		return market.Book{}, venues.ErrUnavailable
	}
	b := f.book(depth)
	b.Time = b.Time.Add(-f.staleBy)
	return b, nil
}

func (f *fakeVenue) book(depth int) market.Book {
	b := market.Book{Symbol: "BTCUSDT", Time: f.clk.Now()}
	for i := 0; i < depth && i < f.levels; i++ {
		off := f.levelGap.Mul(decimal.NewFromInt(int64(i) + 1))
		b.Bids = append(b.Bids, market.Level{Price: f.mid.Sub(off), Qty: f.qtyPerLevel})
		b.Asks = append(b.Asks, market.Level{Price: f.mid.Add(off), Qty: f.qtyPerLevel})
	}
	return b
}

// Tape integrates the background rate minute by minute, plus our fills.
func (f *fakeVenue) Tape(_ context.Context, _ string, from, to time.Time) (market.Tape, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	vol := decimal.Zero
	for t := from.Truncate(time.Minute); t.Before(to); t = t.Add(time.Minute) {
		lo, hi := maxTime(t, from), minTime(t.Add(time.Minute), to)
		if hi.After(lo) {
			frac := decimal.NewFromInt(int64(hi.Sub(lo))).Div(decimal.NewFromInt(int64(time.Minute)))
			vol = vol.Add(f.ratePerMin(t).Mul(frac))
		}
	}
	tape := market.Tape{Volume: vol, Notional: vol.Mul(f.mid)}
	for _, fl := range f.fills {
		if fl.Time.After(from) && !fl.Time.After(to) {
			tape = tape.Add(market.Tape{Volume: fl.Qty, Notional: fl.Notional()})
		}
	}
	return tape, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (f *fakeVenue) Place(_ context.Context, req market.OrderRequest) (market.Order, []market.Fill, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dropNext {
		f.dropNext = false
		return market.Order{}, nil, fmt.Errorf("place: timeout: %w", venues.ErrUnavailable)
	}
	if _, dup := f.orders[req.ClientID]; dup {
		f.dupTries++
		return market.Order{}, nil, fmt.Errorf("%s: %w", req.ClientID, venues.ErrDuplicateClientID)
	}
	if f.crash != nil {
		f.crash("before")
	}
	if err := testInst.Check(req.Price, req.Qty); err != nil {
		return market.Order{}, nil, &venues.RejectError{Venue: f.name, Code: "FILTER", Reason: err.Error()}
	}
	now := f.clk.Now()
	f.placed = append(f.placed, req)
	f.placedAt = append(f.placedAt, now)
	o := market.Order{ClientID: req.ClientID, VenueOrderID: fmt.Sprintf("%s-O%d", f.name, len(f.placed)), Symbol: req.Symbol,
		Side: req.Side, Price: req.Price, Qty: req.Qty, TIF: req.TIF, Created: now, Status: market.Expired}
	var out []market.Fill
	for _, l := range f.book(f.levels).Opposite(req.Side) {
		left := o.Qty.Sub(o.Filled)
		if left.Sign() <= 0 || !market.Within(req.Side, l.Price, req.Price) {
			break
		}
		q := decimal.Min(left, l.Qty)
		f.trade++
		fl := market.Fill{Venue: f.name, TradeID: fmt.Sprintf("%s-T%d", f.name, f.trade), OrderID: o.VenueOrderID,
			ClientID: req.ClientID, Symbol: req.Symbol, Side: req.Side, Price: l.Price, Qty: q,
			Fee: testInst.Fee(l.Price.Mul(q), market.Taker), FeeAsset: cmp.Or(f.feeAsset, "USDT"), Liquidity: market.Taker, Time: now}
		out = append(out, fl)
		f.fills = append(f.fills, fl)
		o.Filled = o.Filled.Add(q)
		o.Notional = o.Notional.Add(fl.Notional())
	}
	if o.Filled.Equal(o.Qty) {
		o.Status = market.Filled
	}
	f.orders[req.ClientID] = o
	if f.crash != nil {
		f.crash("after")
	}
	if f.loseNextAck {
		f.loseNextAck = false
		return market.Order{}, nil, fmt.Errorf("place: %w", venues.ErrUnavailable)
	}
	return o, out, nil
}

func (f *fakeVenue) Cancel(_ context.Context, _ string, id string) (market.Order, error) {
	return f.Order(context.Background(), "", id)
}

func (f *fakeVenue) Order(_ context.Context, _ string, id string) (market.Order, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lookupFails > 0 {
		f.lookupFails--
		return market.Order{}, fmt.Errorf("lookup: %w", venues.ErrUnavailable)
	}
	o, ok := f.orders[id]
	if !ok {
		return o, fmt.Errorf("%s: %w", id, venues.ErrUnknownOrder)
	}
	return o, nil
}

func (f *fakeVenue) Fills(_ context.Context, _ string, from, to time.Time) ([]market.Fill, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []market.Fill
	for _, fl := range f.fills {
		if fl.Time.After(from) && !fl.Time.After(to) {
			out = append(out, fl)
		}
	}
	if f.hideFills > 0 && len(out) > 0 {
		f.hideFills--
		out = out[:len(out)-1] // a fill the venue has not listed yet
	}
	return out, nil
}

// memPub keeps what the engine publishes.
type memPub struct {
	mu     sync.Mutex
	fills  []bus.FillMsg
	events []bus.EventMsg
	// failFor makes every event of that parent fail, as a bus that is down.
	failFor string
	// crashFill, when set, is called before a fill is stored: a test ends
	// the engine's goroutine there to play a crash in the middle of a
	// child's fills.
	crashFill func()
}

func (m *memPub) PublishFill(_ context.Context, f bus.FillMsg) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.crashFill != nil {
		m.crashFill()
	}
	m.fills = append(m.fills, f)
	return nil
}

func (m *memPub) PublishEvent(_ context.Context, e bus.EventMsg) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failFor != "" && e.ParentID == m.failFor {
		return errors.New("bus down")
	}
	m.events = append(m.events, e)
	return nil
}

func (m *memPub) kinds(kind string) []bus.EventMsg {
	var out []bus.EventMsg
	for _, e := range m.events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// queuePub is a queuing publisher (a Flusher) over memPub: messages reach
// memPub only at Flush, and those of failFor are refused there.
type queuePub struct {
	mem     *memPub
	mu      sync.Mutex
	queue   []any
	failFor string
	down    bool
	flushes int
}

func (q *queuePub) PublishFill(_ context.Context, f bus.FillMsg) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.queue = append(q.queue, f)
	return nil
}

func (q *queuePub) PublishEvent(_ context.Context, e bus.EventMsg) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.queue = append(q.queue, e)
	return nil
}

// Flush stores what is queued, except, as the real one, it keeps what it
// could not store (failFor's messages, or all while down) for the next.
func (q *queuePub) Flush(ctx context.Context) []bus.PublishFailure {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.flushes++
	var failed []bus.PublishFailure
	var kept []any
	for _, m := range q.queue {
		switch m := m.(type) {
		case bus.FillMsg:
			if q.down || m.ParentID == q.failFor {
				failed = append(failed, bus.PublishFailure{Kind: "fill", ParentID: m.ParentID, MsgID: m.MsgID(), Err: errors.New("bus down")})
				kept = append(kept, m)
				continue
			}
			_ = q.mem.PublishFill(ctx, m)
		case bus.EventMsg:
			if q.down || m.ParentID == q.failFor {
				failed = append(failed, bus.PublishFailure{Kind: "event", ParentID: m.ParentID, MsgID: m.MsgID(), Err: errors.New("bus down")})
				kept = append(kept, m)
				continue
			}
			_ = q.mem.PublishEvent(ctx, m)
		}
	}
	q.queue = kept
	return failed
}

// queued returns how many messages wait for a flush.
func (q *queuePub) queued() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queue)
}

// memJournal is a Journal in memory, kept as the JSON the bucket would
// hold.
type memJournal struct {
	mu    sync.Mutex
	cps   map[string][]byte
	saves int
	down  bool // Save fails, as a bus that does not answer
}

func newMemJournal() *memJournal { return &memJournal{cps: map[string][]byte{}} }

func (j *memJournal) Load(_ context.Context, id string) (Checkpoint, bool, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var cp Checkpoint
	b, ok := j.cps[id]
	if !ok {
		return cp, false, nil
	}
	return cp, true, json.Unmarshal(b, &cp)
}

func (j *memJournal) Save(_ context.Context, cp Checkpoint) error {
	b, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.down {
		return errors.New("kv: no responders")
	}
	j.cps[cp.ParentID] = b
	j.saves++
	return nil
}
