package settlement

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/blockexec/blockexec/bus"
)

// Batching: once it has a message, the recorder takes up to
// defaultBatchSize, waiting at most defaultLinger for them, and writes
// them in one transaction. Under load a batch fills at once; a lone
// message waits the linger, a bound on the latency it adds.
const (
	defaultBatchSize = 1024
	defaultLinger    = 2 * time.Millisecond
)

// inFlight is how many batches a stream's pipeline holds at most: one
// being collected, one queued, one being written, one queued, one being
// acknowledged.
const inFlight = 5

// maxAckPending lets the server deliver the next batch while the pipeline
// is full, so that collecting never waits for an ack.
func maxAckPending(batchSize int) int { return (inFlight + 1) * batchSize }

// batch is messages on their way: decoded, written in one transaction,
// then acknowledged (or, when the write failed, all redelivered).
type batch[T any] struct {
	full  bool // the collector took a whole batchSize: more are likely waiting
	msgs  []jetstream.Msg
	items []T
	added int
	err   error
}

// startPipeline runs a stream's three stages, each on a goroutine of its
// own so that they overlap: collecting and decoding the next batch,
// writing one, and acknowledging the one before (see acknowledge).
// Batches pass in order, so acks go out in the order of the writes.
// Stopping it ends the collector, and the others finish what they hold;
// r.loops waits for all three.
func startPipeline[T any](r *Recorder, stream string, it jetstream.MessagesContext,
	decode func(jetstream.Msg) (T, error), store func(context.Context, []T) (int, error)) {
	toWrite := make(chan *batch[T], 1)
	toAck := make(chan *batch[T], 1)
	r.loops.Add(3)
	go func() {
		defer r.loops.Done()
		defer close(toWrite)
		r.collect(stream, it, func(msgs []jetstream.Msg) {
			b := &batch[T]{full: len(msgs) == r.batchSize,
				msgs: make([]jetstream.Msg, 0, len(msgs)), items: make([]T, 0, len(msgs))}
			for _, msg := range msgs {
				item, err := decode(msg)
				if err != nil {
					r.term(msg, err.Error())
					continue
				}
				b.msgs, b.items = append(b.msgs, msg), append(b.items, item)
			}
			if len(b.items) > 0 {
				toWrite <- b
			}
		})
	}()
	go func() {
		defer r.loops.Done()
		defer close(toAck)
		for b := range toWrite {
			b.added, b.err = store(context.Background(), b.items)
			toAck <- b
		}
	}()
	go func() {
		defer r.loops.Done()
		acknowledge(r, stream, toAck)
	}()
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

// collect takes batches from it and hands them to use until it is
// stopped; the batch being collected then is handed over too.
func (r *Recorder) collect(stream string, it jetstream.MessagesContext, use func([]jetstream.Msg)) {
	for {
		msg, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			r.log.Warn().Err(err).Str("stream", stream).Msg("recorder consume")
			continue
		}
		msgs := make([]jetstream.Msg, 1, r.batchSize)
		msgs[0] = msg
		closed := false
		deadline := time.Now().Add(r.linger)
		for len(msgs) < r.batchSize {
			wait := time.Until(deadline)
			if wait <= 0 {
				break
			}
			msg, err := it.Next(jetstream.NextMaxWait(wait))
			if err != nil {
				closed = errors.Is(err, jetstream.ErrMsgIteratorClosed)
				break // or a timeout: write what there is
			}
			msgs = append(msgs, msg)
		}
		use(msgs)
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
