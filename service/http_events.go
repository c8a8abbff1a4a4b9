package service

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/blockexec/blockexec/api"
	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/engine"
)

// streamRetryAfter is the Retry-After, in seconds, of a stream refused for
// the key's cap: a slot frees when one of its streams ends.
const streamRetryAfter = 5

// events is GET /v1/orders/{id}/events: the order's events as server-sent
// events ("id: <seq>", "event: <kind>", "data: <json>"), from the one after
// Last-Event-ID, with a comment every Heartbeat. It ends when the client
// goes away or stops reading, the source stops, the server closes, or once
// the client has the order's done event, at once when it resumes after it.
func (s *server) events(w http.ResponseWriter, rq *request) {
	from := int64(1)
	if h := rq.r.Header.Get("Last-Event-ID"); h != "" {
		last, err := strconv.ParseInt(strings.TrimSpace(h), 10, 64)
		if err != nil || last < 0 || last == 1<<63-1 {
			s.fail(w, rq.r, api.BadField("Last-Event-ID", "want the seq of the last event received, got %q", h))
			return
		}
		from = last + 1
	}
	if !s.streams.acquire(rq.key) {
		w.Header().Set("Retry-After", strconv.Itoa(streamRetryAfter))
		s.fail(w, rq.r, api.Errorf(http.StatusTooManyRequests, api.CodeRateLimited,
			"key %s has %d event streams open, the most one key may; close one before opening another",
			rq.key, s.streams.limit))
		return
	}
	defer s.streams.release(rq.key)
	id := rq.r.PathValue("id")
	o, aerr := s.desk.Get(rq.caller, id)
	if aerr != nil {
		s.fail(w, rq.r, aerr)
		return
	}
	// An order that has ended has published all its events, done last:
	// follow it from its first, so that its done event, sent or skipped as
	// one the client has, ends the stream.
	follow := from
	if ended(o) {
		follow = 1
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(rq.r.Context())
	defer cancel()
	evs, aerr := s.desk.Follow(ctx, rq.caller, id, follow)
	if aerr != nil {
		s.fail(w, rq.r, aerr)
		return
	}
	next := s.clk.Now().Add(Heartbeat) // the first heartbeat, counted from before the client hears of the stream
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if s.send(w, rc, nil) != nil {
		return
	}
	s.metrics.streams.add(1)
	defer s.metrics.streams.add(-1)

	beats := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if s.clk.WaitUntil(ctx, next) != nil {
				return
			}
			select {
			case beats <- struct{}{}:
			case <-ctx.Done():
				return
			}
			next = s.clk.Now().Add(Heartbeat)
		}
	}()
	var buf bytes.Buffer
	quiet := true // nothing from the source since the last heartbeat
	for {
		buf.Reset()
		var last bool
		select {
		case <-ctx.Done():
			return
		case <-s.closing:
			return
		case <-beats:
			if quiet && s.hasEnded(rq.caller, id) {
				// A whole beat with nothing from an order that has ended:
				// nothing more will come (the client is past its done
				// event, or that was never published).
				return
			}
			quiet = true
			buf.WriteString(": heartbeat\n\n")
		case ev, ok := <-evs:
			if !ok {
				return
			}
			quiet = false
			last = ev.Kind == bus.KindDone
			if ev.Seq < from {
				if last {
					return // the client has had everything
				}
				continue
			}
			data, err := json.Marshal(ev)
			if err != nil {
				return
			}
			buf.WriteString("id: " + strconv.FormatInt(ev.Seq, 10) + "\nevent: " + sseField(ev.Kind) + "\ndata: ")
			buf.Write(data)
			buf.WriteString("\n\n")
		}
		if s.send(w, rc, buf.Bytes()) != nil || last {
			return
		}
	}
}

// send writes b to a stream and flushes it within the write timeout, so a
// client that has stopped reading is dropped once its buffers are full. A
// socket's deadline is real time, whatever the API's clock.
func (s *server) send(w http.ResponseWriter, rc *http.ResponseController, b []byte) error {
	_ = rc.SetWriteDeadline(time.Now().Add(s.writeTimeout))
	if _, err := w.Write(b); err != nil {
		return err
	}
	return rc.Flush()
}

// hasEnded says whether an order the caller may see has ended.
func (s *server) hasEnded(c Caller, id string) bool {
	o, aerr := s.desk.Get(c, id)
	return aerr == nil && ended(o)
}

// ended says whether an order is done, cancelled or failed.
func ended(o api.Order) bool {
	st, ok := engine.ParseState(o.State)
	return ok && st.Terminal()
}

// sseField keeps a value on its line of the stream.
func sseField(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}

// streamLimit counts the event streams open per key.
type streamLimit struct {
	limit int
	mu    sync.Mutex
	open  map[string]int // by key id
}

func newStreamLimit(limit int) *streamLimit {
	if limit <= 0 {
		limit = DefaultMaxStreams
	}
	return &streamLimit{limit: limit, open: map[string]int{}}
}

// acquire takes one of the key's streams, if it has one left.
func (l *streamLimit) acquire(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key] >= l.limit {
		return false
	}
	l.open[key]++
	return true
}

// release gives back a stream acquire took.
func (l *streamLimit) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key]--; l.open[key] <= 0 {
		delete(l.open, key)
	}
}
