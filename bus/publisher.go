package bus

import (
	"context"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.uber.org/fx"
)

// Publisher puts fills and events on their streams and waits for the
// server's acknowledgement, so a nil error means stored. It remembers the
// highest stream sequence each stream acknowledged, so that a reader can be
// asked to catch up with everything it published (see Marks).
type Publisher struct {
	js jetstream.JetStream
	nc *nats.Conn // nil: not known, taken as connected

	mu    sync.Mutex
	marks Marks
}

// NewPublisher returns a publisher over js.
func NewPublisher(js jetstream.JetStream) *Publisher { return &Publisher{js: js, marks: Marks{}} }

// NewConnPublisher returns a publisher over c, which also knows whether
// c's connection is up.
func NewConnPublisher(c *Conn) *Publisher { return &Publisher{js: c.JS, nc: c.NC, marks: Marks{}} }

func (p *Publisher) connected() bool { return p.nc == nil || p.nc.IsConnected() }

// Marks returns, per stream, the highest sequence the server acknowledged
// to this publisher. A duplicate (same Nats-Msg-Id) is acknowledged with the
// sequence of the copy already stored, which is covered too. Empty if
// nothing was published.
func (p *Publisher) Marks() Marks {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.marks.Clone()
}

// PublishFill publishes a fill with Nats-Msg-Id venue:trade_id; a second
// publish of the same fill within the de-duplication window is dropped by
// the server.
func (p *Publisher) PublishFill(ctx context.Context, m FillMsg) error {
	msg, err := fillMessage(m)
	if err != nil {
		return err
	}
	return p.publish(ctx, msg)
}

// PublishEvent publishes an event with Nats-Msg-Id parent:seq.
func (p *Publisher) PublishEvent(ctx context.Context, m EventMsg) error {
	msg, err := eventMessage(m)
	if err != nil {
		return err
	}
	return p.publish(ctx, msg)
}

func (p *Publisher) publish(ctx context.Context, msg message) error {
	ack, err := p.js.Publish(ctx, msg.subject, msg.body, jetstream.WithMsgID(msg.id))
	if err != nil {
		return fmt.Errorf("publish %s (%s): %w", msg.subject, msg.id, err)
	}
	p.raise(ack)
	return nil
}

// message is a fill or an event encoded for its stream.
type message struct {
	kind, subject, id, parent string
	body                      []byte
}

// fillMessage encodes m (schema blockexec.fill.v1 unless set) for
// blockexec.fills.<parent>.<venue>, de-duplicated by venue:trade_id.
func fillMessage(m FillMsg) (message, error) {
	if m.Schema == "" {
		m.Schema = FillSchema
	}
	msg := message{kind: "fill", subject: FillSubjectFor(m.ParentID, m.Venue), id: m.MsgID(), parent: m.ParentID}
	return msg.withBody(m.AppendJSON(make([]byte, 0, fillSizeHint)))
}

// eventMessage encodes m (schema blockexec.event.v1 unless set) for
// blockexec.events.<parent>.<kind>, de-duplicated by parent:seq.
func eventMessage(m EventMsg) (message, error) {
	if m.Schema == "" {
		m.Schema = EventSchema
	}
	msg := message{kind: "event", subject: EventSubjectFor(m.ParentID, m.Kind), id: m.MsgID(), parent: m.ParentID}
	return msg.withBody(m.AppendJSON(make([]byte, 0, eventSizeHint)))
}

// withBody sets msg's body, the outcome of an AppendJSON. The buffer is
// fresh for each message: the client keeps it to send again, and so does
// an AsyncPublisher until the message is stored.
func (msg message) withBody(body []byte, err error) (message, error) {
	if err != nil {
		return message{}, fmt.Errorf("encode %s: %w", msg.subject, err)
	}
	msg.body = body
	return msg, nil
}

func (p *Publisher) raise(ack *jetstream.PubAck) {
	p.mu.Lock()
	p.marks.Raise(ack.Stream, ack.Sequence)
	p.mu.Unlock()
}

// Module provides *Conn (closed on stop) and *Publisher from the Options
// the caller supplies.
var Module = fx.Module("bus",
	fx.Provide(newConnFx, NewConnPublisher),
)

func newConnFx(lc fx.Lifecycle, opts Options, log zerolog.Logger) (*Conn, error) {
	c, err := Connect(context.Background(), opts, log)
	if err != nil {
		return nil, err
	}
	lc.Append(fx.StopHook(c.Close))
	return c, nil
}
