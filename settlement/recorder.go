package settlement

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/blockexec/blockexec/bus"
)

// DefaultDurable is the recorder's durable consumer name on both streams.
// Recorders sharing it share the work.
const DefaultDurable = "settlement"

// defaultNakDelay is how long a message that could not be written waits
// before the server redelivers it.
const defaultNakDelay = 2 * time.Second

// ackTimeout bounds a synchronous ack or term: a network round trip to the
// server, so real time.
const ackTimeout = 10 * time.Second

// recheckEvery is how often WaitFor asks the server again when no message
// settled by this recorder woke it. A recorder is woken by its own acks; a
// second recorder sharing the durable (or an ack whose reply was lost but
// which the server applied) moves the ack floor without telling this one,
// so a wait that relied on wake-ups alone could last forever. It is a
// bound on network progress made elsewhere, so it is real time, not the
// injected clock (a virtual clock would never fire it).
const recheckEvery = time.Second

// ErrStopped is returned by WaitFor when the recorder stops (or was never
// started) before it caught up.
var ErrStopped = errors.New("recorder: not running")

// Store is what the recorder writes to; *Ledger is one. Each call is one
// transaction: a nil error means every message in it is committed (new,
// or already there: a fill's key is venue and trade id, an event's parent
// and sequence), an error means none is. Each returns how many were new.
type Store interface {
	RecordFills(ctx context.Context, ms []bus.FillMsg) (added int, err error)
	RecordEvents(ctx context.Context, ms []bus.EventMsg) (added int, err error)
}

var _ Store = (*Ledger)(nil)

// Recorder consumes the fills and events streams into a Store, a batch
// of messages per transaction, acknowledging them after the commit.
type Recorder struct {
	js        jetstream.JetStream
	store     Store
	log       zerolog.Logger
	durable   string
	nakDelay  time.Duration
	batchSize int
	linger    time.Duration
	// filters narrows a stream's consumer to a subject filter (by stream);
	// the benchmark uses it to record only its own fills on a shared server.
	filters map[string]string

	mu    sync.Mutex
	cons  map[string]jetstream.Consumer // by stream
	iters []jetstream.MessagesContext
	loops sync.WaitGroup

	// settled is closed, and replaced, whenever this recorder settles a
	// message (or stops): waiters re-read the ack floors then. Its own
	// lock, as loops signal while Stop holds mu waiting for them.
	sigMu   sync.Mutex
	settled chan struct{}
}

// NewRecorder returns a recorder writing to s (usually a *Ledger);
// durable "" means DefaultDurable.
func NewRecorder(js jetstream.JetStream, s Store, log zerolog.Logger, durable string) *Recorder {
	if durable == "" {
		durable = DefaultDurable
	}
	return &Recorder{js: js, store: s, log: log, durable: durable, nakDelay: defaultNakDelay,
		batchSize: defaultBatchSize, linger: defaultLinger, settled: make(chan struct{})}
}

// Start creates (or binds to) the durable consumers and starts consuming.
func (r *Recorder) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.iters) > 0 {
		return errors.New("recorder: already started")
	}
	r.cons = map[string]jetstream.Consumer{}
	for _, s := range []struct {
		stream string
		start  func(jetstream.MessagesContext)
	}{
		{bus.FillsStream, func(it jetstream.MessagesContext) {
			startPipeline(r, bus.FillsStream, it, writers(r.store), decodeFill, r.store.RecordFills)
		}},
		{bus.EventsStream, func(it jetstream.MessagesContext) {
			// One writer: events of one parent change its row in the
			// parents table, and two transactions doing so in opposite
			// orders would deadlock (the rows stay right either way).
			startPipeline(r, bus.EventsStream, it, 1, decodeEvent, r.store.RecordEvents)
		}},
	} {
		c, err := r.js.CreateOrUpdateConsumer(ctx, s.stream, jetstream.ConsumerConfig{
			Durable:       r.durable,
			AckPolicy:     jetstream.AckExplicitPolicy,
			DeliverPolicy: jetstream.DeliverAllPolicy,
			// A message handed to a recorder that stopped (or died) is
			// handed out again after this: short, so a restarted run or
			// recorder does not wait long for what it had been given.
			AckWait:       5 * time.Second,
			MaxAckPending: maxAckPending(r.batchSize),
			FilterSubject: r.filters[s.stream],
			Description:   "settlement recorder: stream -> ledger",
		})
		if err != nil {
			r.stopLocked()
			return fmt.Errorf("recorder: consumer on %s: %w", s.stream, err)
		}
		// Messages keeps pull requests open on the server, which pushes
		// messages as they are stored into a local buffer: no polling here.
		it, err := c.Messages(jetstream.PullMaxMessages(2 * r.batchSize))
		if err != nil {
			r.stopLocked()
			return fmt.Errorf("recorder: consume %s: %w", s.stream, err)
		}
		r.cons[s.stream] = c
		r.iters = append(r.iters, it)
		s.start(it)
	}
	return nil
}

// Stop stops consuming and waits for the pipelines to return; the
// batches already taken are written and acknowledged first. Messages delivered and not
// yet acked are redelivered to the next recorder. Waiters return
// ErrStopped.
func (r *Recorder) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopLocked()
}

func (r *Recorder) stopLocked() {
	for _, it := range r.iters {
		it.Stop()
	}
	r.loops.Wait()
	r.iters, r.cons = nil, nil
	r.signal()
}

// WaitIdle returns once everything stored on the fills and events streams
// when it is called, by any publisher, has been settled by the durable
// consumer: written to the ledger, found to be a duplicate of a recorded
// fill, or terminated as undecodable.
func (r *Recorder) WaitIdle(ctx context.Context) error {
	marks, err := bus.LastSequences(ctx, r.js)
	if err != nil {
		return fmt.Errorf("recorder: %w", err)
	}
	return r.WaitFor(ctx, marks)
}

// WaitFor returns once the durable consumer's ack floor on each stream in
// marks has reached its mark: every message at or below it was committed
// to the ledger (or dropped as a duplicate, or terminated as undecodable)
// and acknowledged. Pass a bus.Publisher's Marks to wait for what that
// publisher published. Nothing to wait for returns nil at once.
//
// The ack floor, unlike the consumer's pending counts, moves only when a
// message is acknowledged: the server counts a new message as pending a
// moment after it acknowledges the publish, so pending counts can read
// zero while a message is on its way.
func (r *Recorder) WaitFor(ctx context.Context, marks bus.Marks) error {
	todo := bus.Marks{}
	for stream, seq := range marks {
		if seq == 0 {
			continue
		}
		if stream != bus.FillsStream && stream != bus.EventsStream {
			return fmt.Errorf("recorder: no consumer on stream %q", stream)
		}
		todo[stream] = seq
	}
	if len(todo) == 0 {
		return nil
	}
	// Wall-time fallback, see recheckEvery; the normal wake-up is settled.
	recheck := time.NewTimer(recheckEvery)
	defer recheck.Stop()
	floors := bus.Marks{}
	for {
		wake := r.wake() // before reading the floors, so no settle is missed
		r.mu.Lock()
		cons := r.cons
		r.mu.Unlock()
		if cons == nil {
			return fmt.Errorf("%w: waiting for %s", ErrStopped, behind(todo, floors))
		}
		for stream, seq := range todo {
			info, err := cons[stream].Info(ctx)
			if err != nil {
				return fmt.Errorf("recorder: consumer %s on %s: %w", r.durable, stream, err)
			}
			floors[stream] = info.AckFloor.Stream
			if info.AckFloor.Stream >= seq {
				delete(todo, stream) // the floor never moves back
			}
		}
		if len(todo) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("recorder: waiting for %s: %w", behind(todo, floors), ctx.Err())
		case <-wake:
		case <-recheck.C:
			recheck.Reset(recheckEvery)
		}
	}
}

// behind describes the streams not caught up: "BLOCKEXEC_FILLS at 7 of 9".
func behind(todo, floors bus.Marks) string {
	var parts []string
	for stream, seq := range todo {
		parts = append(parts, fmt.Sprintf("%s at %d of %d", stream, floors[stream], seq))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// wake returns a channel closed at the next settle or stop.
func (r *Recorder) wake() <-chan struct{} {
	r.sigMu.Lock()
	defer r.sigMu.Unlock()
	return r.settled
}

func (r *Recorder) signal() {
	r.sigMu.Lock()
	close(r.settled)
	r.settled = make(chan struct{})
	r.sigMu.Unlock()
}

// term terminates a message that can never be recorded. jetstream.Msg has
// no synchronous Term, so it sends the ack protocol's "+TERM reason" as a
// request: the server answers once it has applied it, as for DoubleAck.
func (r *Recorder) term(msg jetstream.Msg, why string) {
	r.log.Error().Str("subject", msg.Subject()).Str("reason", why).Msg("undecodable message terminated")
	ctx, cancel := context.WithTimeout(context.Background(), ackTimeout)
	defer cancel()
	if _, err := r.js.Conn().RequestWithContext(ctx, msg.Reply(), []byte("+TERM "+why)); err != nil {
		r.log.Warn().Err(err).Str("subject", msg.Subject()).Msg("term lost; the message will be redelivered")
	}
	r.signal()
}
