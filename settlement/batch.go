package settlement

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/blockexec/blockexec/bus"
)

// Batching: once it has a message, the recorder takes up to
// defaultBatchSize, waiting at most defaultLinger for them, and writes
// them in one transaction. Under load a batch fills at once; a lone
// message waits the linger, a bound on the latency it adds. While the
// ledger is busy with the batch before, the next one keeps growing past
// the linger (see collect).
const (
	defaultBatchSize = 1024
	defaultLinger    = 2 * time.Millisecond
)

// inFlight is how many batches a stream's pipeline holds at most: one
// being collected, one being written by each of up to maxWriters
// writers, one queued, one being acknowledged, and one in the iterator's
// buffer.
const inFlight = 4 + maxWriters

// maxWriters bounds the writers of a stream's pipeline (see
// ConcurrentStore).
const maxWriters = 2

// ConcurrentStore is a Store that takes several transactions at once:
// PostgreSQL, whose commit waits for a flush to disk that a second
// writer's transaction can overlap. SQLite has one writer.
type ConcurrentStore interface {
	Store
	Writers() int
}

// writers is how many transactions s takes at once, within maxWriters.
func writers(s Store) int {
	if c, ok := s.(ConcurrentStore); ok {
		return min(max(c.Writers(), 1), maxWriters)
	}
	return 1
}

// maxAckPending lets the server deliver the next batch while the pipeline
// is full, so that collecting never waits for an ack.
func maxAckPending(batchSize int) int { return (inFlight + 1) * batchSize }

// batch is messages on their way: decoded, written in one transaction,
// then acknowledged (or, when the write failed, all redelivered).
type batch[T any] struct {
	seq   uint64 // 0, 1, 2… in the order collected
	full  bool   // the collector took a whole batchSize: more are likely waiting
	msgs  []jetstream.Msg
	items []T
	added int
	err   error
}

// startPipeline runs a stream's stages, each on goroutines of its own so
// that they overlap: collecting and decoding the next batch, writing
// (n writers, each a transaction at a time), and acknowledging the
// batches written (see acknowledge). Batches are numbered as collected
// and acknowledged in that order, whichever writer finished first.
// Stopping it ends the collector, and the others finish what they hold;
// r.loops waits for them all.
func startPipeline[T any](r *Recorder, stream string, it jetstream.MessagesContext, n int,
	decode func(jetstream.Msg) (T, error), store func(context.Context, []T) (int, error)) {
	// Unbuffered: a send succeeds only when a writer is waiting for work,
	// which is how collect tells a free writer from busy ones.
	toWrite := make(chan *batch[T])
	written := make(chan *batch[T], n)
	toAck := make(chan *batch[T], 1)
	var writing sync.WaitGroup
	r.loops.Add(n + 4)
	writing.Add(n)
	go func() {
		defer r.loops.Done()
		defer close(toWrite)
		collect(r, stream, it, decode, toWrite)
	}()
	for range n {
		go func() {
			defer r.loops.Done()
			defer writing.Done()
			for b := range toWrite {
				b.added, b.err = store(context.Background(), b.items)
				written <- b
			}
		}()
	}
	go func() {
		defer r.loops.Done()
		writing.Wait()
		close(written)
	}()
	go func() {
		defer r.loops.Done()
		defer close(toAck)
		inOrder(written, toAck)
	}()
	go func() {
		defer r.loops.Done()
		acknowledge(r, stream, toAck)
	}()
}

// inOrder passes the batches from in to out in the order they were
// collected (their seq), holding one that finished before an earlier one.
func inOrder[T any](in <-chan *batch[T], out chan<- *batch[T]) {
	held := map[uint64]*batch[T]{}
	var next uint64
	for b := range in {
		held[b.seq] = b
		for b, ok := held[next]; ok; b, ok = held[next] {
			delete(held, next)
			out <- b
			next++
		}
	}
}

// acknowledge settles the written batches in order. A batch that failed
// is all redelivered. The last ack of a batch waits for the server's
// reply, so that the ack floor has moved when waiters are woken; but a
// round trip per batch would hold a busy pipeline up, so the last message
// of a full batch (more are coming) is held back and acked ahead of the
// next batch, and confirmed by itself only if no batch follows within
// confirmAfter.
func acknowledge[T any](r *Recorder, stream string, toAck <-chan *batch[T]) {
	var held jetstream.Msg
	idle := time.NewTimer(time.Hour)
	idle.Stop()
	defer idle.Stop()
	for {
		select {
		case b, ok := <-toAck:
			if !ok { // stopped: nothing follows, so confirm
				if held != nil {
					r.confirm(held)
				}
				return
			}
			if held != nil {
				r.ack(held)
				held = nil
			}
			if b.err != nil {
				r.nak(b.msgs, b.err)
				continue
			}
			last := b.msgs[len(b.msgs)-1]
			for _, msg := range b.msgs[:len(b.msgs)-1] {
				r.ack(msg)
			}
			if b.full {
				held = last
				idle.Reset(confirmAfter)
			} else {
				r.confirm(last)
			}
			r.signal()
			if b.added < len(b.items) {
				r.log.Debug().Str("stream", stream).Int("messages", len(b.items)).Int("duplicates", len(b.items)-b.added).
					Msg("duplicates dropped")
			}
		case <-idle.C:
			if held != nil {
				r.confirm(held)
				held = nil
				r.signal()
			}
		}
	}
}

// collect gathers batches from it, decoding each message as it comes,
// and hands them to toWrite until it is stopped; the batch being gathered
// then is handed over too. A batch goes when it is full, or once the
// linger since its first message has passed and the writer is free. While
// the writer is still busy with the batch before, it keeps growing:
// handing over a small batch would only queue it, and under load fewer,
// bigger transactions cost less per fill (a commit is a WAL write, and on
// PostgreSQL a flush to disk); an idle ledger still gets a lone message
// after the linger.
func collect[T any](r *Recorder, stream string, it jetstream.MessagesContext,
	decode func(jetstream.Msg) (T, error), toWrite chan<- *batch[T]) {
	var seq uint64 // of the next batch handed over
	for {
		msg, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			r.log.Warn().Err(err).Str("stream", stream).Msg("recorder consume")
			continue
		}
		b := &batch[T]{seq: seq, msgs: make([]jetstream.Msg, 0, r.batchSize), items: make([]T, 0, r.batchSize)}
		taken := 0 // messages of this batch, undecodable ones too
		add := func(msg jetstream.Msg) {
			taken++
			item, err := decode(msg)
			if err != nil {
				r.term(msg, err.Error())
				return
			}
			b.msgs, b.items = append(b.msgs, msg), append(b.items, item)
		}
		add(msg)
		// One deadline for the batch's waits, rather than a timer per
		// message (NextMaxWait makes one each call).
		ctx, cancel := context.WithTimeout(context.Background(), r.linger)
		closed, handed, lingered := false, false, false
		for taken < r.batchSize && !closed && !handed {
			msg, err := it.Next(jetstream.NextContext(ctx))
			switch {
			case err == nil:
				add(msg)
			case errors.Is(err, jetstream.ErrMsgIteratorClosed):
				closed = true
				continue
			case ctx.Err() != nil: // the linger passed
				lingered = true
				cancel()
				ctx, cancel = context.WithTimeout(context.Background(), r.linger)
			default:
				r.log.Warn().Err(err).Str("stream", stream).Msg("recorder consume")
				lingered = true
			}
			if lingered && len(b.items) == 0 {
				break // all undecodable: wait for the next message afresh
			}
			if lingered {
				b.full = taken == r.batchSize
				select {
				case toWrite <- b:
					handed = true
					seq++
				default: // the writers are busy: keep gathering
				}
			}
		}
		cancel()
		if !handed && len(b.items) > 0 {
			b.full = taken == r.batchSize
			toWrite <- b
			seq++
		}
		if closed {
			return
		}
	}
}

func decodeFill(msg jetstream.Msg) (bus.FillMsg, error) {
	m, err := decodeFillBody(msg.Data())
	if err != nil || m.Schema != bus.FillSchema ||
		m.Venue == "" || m.TradeID == "" || m.ParentID == "" || m.Qty.Sign() <= 0 {
		return m, fmt.Errorf("not a %s message (err %v)", bus.FillSchema, err)
	}
	return m, nil
}

func decodeEvent(msg jetstream.Msg) (bus.EventMsg, error) {
	var m bus.EventMsg
	if err := json.Unmarshal(msg.Data(), &m); err != nil || m.Schema != bus.EventSchema || m.ParentID == "" || m.Seq <= 0 {
		return m, fmt.Errorf("not a %s message (err %v)", bus.EventSchema, err)
	}
	return m, nil
}

// confirmAfter is how long the last message of a full batch waits for
// the next batch before it is acked and confirmed by itself.
const confirmAfter = 20 * time.Millisecond

// ack acknowledges a committed message without waiting: if the ack is
// lost the message comes back and is dropped as a duplicate.
func (r *Recorder) ack(msg jetstream.Msg) {
	if err := msg.Ack(); err != nil {
		r.log.Warn().Err(err).Str("subject", msg.Subject()).Msg("ack lost; the message will be redelivered and dropped as a duplicate")
	}
}

// confirm acknowledges a committed message and waits for the server's
// reply. The server applies a consumer's acks in the order they arrive,
// so the ack floor has moved past every message acked before it.
func (r *Recorder) confirm(msg jetstream.Msg) {
	ctx, cancel := context.WithTimeout(context.Background(), ackTimeout)
	defer cancel()
	if err := msg.DoubleAck(ctx); err != nil {
		r.log.Warn().Err(err).Str("subject", msg.Subject()).Msg("ack lost; the message will be redelivered and dropped as a duplicate")
	}
}

// nak asks for the redelivery of a batch whose write failed: none of it
// is committed.
func (r *Recorder) nak(msgs []jetstream.Msg, err error) {
	r.log.Error().Err(err).Str("subject", msgs[0].Subject()).Int("messages", len(msgs)).
		Msg("ledger write failed; redelivering the batch")
	for _, msg := range msgs {
		_ = msg.NakWithDelay(r.nakDelay)
	}
}
