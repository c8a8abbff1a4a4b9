package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// asyncWindow is how many publishes an AsyncPublisher keeps in flight
// before it waits for the oldest: below the client's own limit (4,000), so
// a publish never stalls inside the client.
const asyncWindow = 2048

// asyncAttempts is how often Flush sends a message that was refused or
// not acknowledged, each time with its Nats-Msg-Id, so a copy the server
// did store is dropped as a duplicate rather than stored twice.
const asyncAttempts = 3

// asyncAckWait bounds the wait for one acknowledgement (network time, not
// market time): a reply lost with a connection is not waited for forever,
// the message is sent again.
const asyncAckWait = 5 * time.Second

// PublishFailure is a message Flush could not get stored.
type PublishFailure struct {
	Kind     string // "fill" or "event"
	ParentID string
	MsgID    string
	Err      error
}

// AsyncPublisher queues fills and events: PublishFill and PublishEvent
// return once the message is on its way, and Flush waits for the server's
// acknowledgement of everything queued, sending again what failed. The
// engine flushes at the end of every round of slices and after every
// command, so nothing it decided is left unstored when it next decides,
// and its slices do not wait for one acknowledgement per message. A
// message that cannot be stored (the server or the connection is down) is
// kept and sent again at every Flush until it is: it is never dropped.
// It shares its Publisher's marks.
type AsyncPublisher struct {
	p *Publisher

	mu      sync.Mutex
	pending []queued
	failed  []queued // not stored yet: sent again, first, at the next Flush
}

type queued struct {
	message
	fut jetstream.PubAckFuture // nil: not sent yet
	err error                  // why it is not stored yet
}

// Async returns a queuing publisher over p's connection and marks.
func (p *Publisher) Async() *AsyncPublisher { return &AsyncPublisher{p: p} }

// Marks is the underlying Publisher's: what was acknowledged so far.
func (a *AsyncPublisher) Marks() Marks { return a.p.Marks() }

// PublishFill queues a fill (Nats-Msg-Id venue:trade_id).
func (a *AsyncPublisher) PublishFill(_ context.Context, m FillMsg) error {
	msg, err := fillMessage(m)
	if err != nil {
		return err
	}
	a.queue(msg)
	return nil
}

// PublishEvent queues an event (Nats-Msg-Id parent:seq).
func (a *AsyncPublisher) PublishEvent(_ context.Context, m EventMsg) error {
	msg, err := eventMessage(m)
	if err != nil {
		return err
	}
	a.queue(msg)
	return nil
}

func (a *AsyncPublisher) queue(msg message) {
	q := queued{message: msg}
	// A message the client will not take now (too many in flight, or no
	// connection) waits for Flush, which sends it again.
	q.fut, _ = a.p.js.PublishAsync(msg.subject, msg.body, jetstream.WithMsgID(msg.id))
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pending = append(a.pending, q)
	if len(a.pending) >= asyncWindow {
		// Make room: settle what is in flight now; what failed waits for
		// Flush.
		a.failed = append(a.failed, a.settle(context.Background(), a.pending)...)
		clear(a.pending)
		a.pending = a.pending[:0]
	}
}

// Flush waits until every queued message is stored, sending again (with
// its Nats-Msg-Id, so never stored twice) what was refused or not
// acknowledged. It returns the messages still not stored, which it keeps
// for the next Flush; nil when all is stored.
func (a *AsyncPublisher) Flush(ctx context.Context) []PublishFailure {
	a.mu.Lock()
	defer a.mu.Unlock()
	// The older ones first: they were refused before.
	all := append(a.failed, a.pending...)
	a.failed = a.settle(ctx, all)
	clear(a.pending)
	a.pending = a.pending[:0]
	out := make([]PublishFailure, len(a.failed))
	for i, q := range a.failed {
		out[i] = PublishFailure{Kind: q.kind, ParentID: q.parent, MsgID: q.id,
			Err: fmt.Errorf("publish %s (%s): %w", q.subject, q.id, q.err)}
	}
	return out
}

// settle waits for each message's acknowledgement in order, raising the
// marks, and sends again (synchronously) what was refused or unanswered.
// It waits asyncAckWait at most for all the acknowledgements together, and
// once a send again fails for want of a server, it tries no more: the
// rest is returned to be sent at the next Flush.
func (a *AsyncPublisher) settle(ctx context.Context, qs []queued) []queued {
	var failed []queued
	deadline := time.NewTimer(asyncAckWait)
	defer deadline.Stop()
	expired, down := false, false
	for _, q := range qs {
		var err error
		if q.fut != nil {
			if expired {
				select {
				case ack := <-q.fut.Ok():
					a.p.raise(ack)
					continue
				case err = <-q.fut.Err():
				default:
					err = errors.New("no acknowledgement")
				}
			} else {
				select {
				case ack := <-q.fut.Ok():
					a.p.raise(ack)
					continue
				case err = <-q.fut.Err():
				case <-deadline.C:
					expired, err = true, errors.New("no acknowledgement")
				case <-ctx.Done():
					err = ctx.Err()
				}
			}
		}
		for i := 0; !down && i < asyncAttempts && ctx.Err() == nil; i++ {
			var ack *jetstream.PubAck
			if ack, err = a.p.js.Publish(ctx, q.subject, q.body, jetstream.WithMsgID(q.id)); err == nil {
				a.p.raise(ack)
				break
			}
			if !a.p.connected() || errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
				errors.Is(err, context.DeadlineExceeded) ||
				errors.Is(err, nats.ErrTimeout) {
				down = true // no server to answer: the others wait for the next Flush
			}
		}
		if err == nil && (down || ctx.Err() != nil) && q.fut == nil {
			err = errors.New("not sent: the bus is down")
		}
		if err != nil {
			q.fut, q.err = nil, err
			failed = append(failed, q)
		}
	}
	return failed
}
