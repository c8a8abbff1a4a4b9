package bus

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Marks are stream sequences by stream name: a point in each stream up to
// which a reader (the settlement recorder) can be asked to catch up. A
// stream that is absent, or at zero, asks for nothing.
type Marks map[string]uint64

// Raise records seq for stream if it is above the stream's current mark.
func (m Marks) Raise(stream string, seq uint64) {
	if seq > m[stream] {
		m[stream] = seq
	}
}

// Clone returns a copy that later changes to m do not touch.
func (m Marks) Clone() Marks {
	out := make(Marks, len(m))
	for s, seq := range m {
		out[s] = seq
	}
	return out
}

// LastSequences returns the last sequence of the fills and events streams
// now. The server assigns a sequence before it acknowledges a publish, so
// every message whose publish was acknowledged before the call, by any
// publisher, is at or below these marks.
func LastSequences(ctx context.Context, js jetstream.JetStream) (Marks, error) {
	m := Marks{}
	for _, name := range []string{FillsStream, EventsStream} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", name, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("stream %s info: %w", name, err)
		}
		m.Raise(name, info.State.LastSeq)
	}
	return m, nil
}
