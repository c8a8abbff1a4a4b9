package service

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/blockexec/blockexec/api"
	"github.com/blockexec/blockexec/bus"
)

// endedOrder submits c-1, lets it have a slice and cancels it: every event
// it will have is stored, done last.
func (r *httpRig) endedOrder(t *testing.T) []bus.EventMsg {
	t.Helper()
	r.must(t, http.StatusCreated, http.MethodPost, "/v1/orders", keyATrade, httpOrder("c-1"), nil)
	r.step(t, "c-1")
	r.must(t, http.StatusOK, http.MethodPost, "/v1/orders/c-1/cancel", keyATrade, nil, nil)
	evs := r.store.eventsOf("c-1")
	if len(evs) < 3 || evs[len(evs)-1].Kind != bus.KindDone {
		t.Fatalf("the cancelled order's events: %+v", evs)
	}
	return evs
}

func TestHTTP_EventStreamOfAnEndedOrderEndsAtOnceForAClientPastItsDone(t *testing.T) {
	r := newHTTPRig(t)
	evs := r.endedOrder(t)
	done := evs[len(evs)-1].Seq
	// The API's clock stands still: no heartbeat ends these streams; a
	// stream that stays open fails at the context's deadline.
	for _, last := range []int64{done, done + 5} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got := r.openEvents(t, ctx, keyARead, "c-1", strconv.FormatInt(last, 10)).events(t, nil)
		cancel()
		if len(got) != 0 {
			t.Fatalf("resumed after %d (done is %d): %+v, want nothing", last, done, got)
		}
	}
	// Resumed just before the done event: that event, then the end.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := r.openEvents(t, ctx, keyARead, "c-1", strconv.FormatInt(done-1, 10)).events(t, nil)
	if len(got) != 1 || got[0].Kind != bus.KindDone || got[0].Seq != done {
		t.Fatalf("resumed after %d: %+v, want the done event alone", done-1, got)
	}
}

func TestHTTP_EventStreamOfAnEndedOrderWithoutItsDoneEndsAfterAQuietBeat(t *testing.T) {
	r := newHTTPRig(t)
	r.endedOrder(t)
	// The done event was never published (the bus failed at the end).
	r.store.mu.Lock()
	kept := r.store.events[:0]
	for _, ev := range r.store.events {
		if ev.Kind != bus.KindDone {
			kept = append(kept, ev)
		}
	}
	r.store.events = kept
	r.store.mu.Unlock()
	storedEvs := r.store.eventsOf("c-1")
	last := storedEvs[len(storedEvs)-1].Seq

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := r.openEvents(t, ctx, keyARead, "c-1", "")
	checkSeqs(t, s.events(t, func(ev bus.EventMsg) bool { return ev.Seq == last }), seqsOf(storedEvs))
	ended := make(chan error, 1)
	go func() {
		for {
			f, err := s.next()
			if err != nil {
				ended <- err
				return
			}
			if f.comment == "" {
				ended <- errors.New("an event after the stored ones: " + f.event)
				return
			}
		}
	}()
	// Beats until the stream ends: the first after events is sent, a
	// second with nothing between ends it.
	deadline := time.After(5 * time.Second)
	for {
		select {
		case err := <-ended:
			if !errors.Is(err, io.EOF) {
				t.Fatalf("the stream ended with %v, want its end", err)
			}
			return
		case <-deadline:
			t.Fatal("the stream of an ended order stays open after quiet heartbeats")
		case <-time.After(5 * time.Millisecond):
			r.wall.Advance(Heartbeat)
		}
	}
}

// openStream opens an event stream and returns its answer, whatever the
// status; the caller closes the body.
func (r *httpRig) openStream(t *testing.T, ctx context.Context, key string) *http.Response {
	t.Helper()
	resp, err := r.srv.Client().Do(r.request(t, http.MethodGet, "/v1/orders/c-1/events", key, nil).WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestHTTP_EventStreamsPerKeyAreCapped(t *testing.T) {
	r := newHTTPRig(t)
	r.must(t, http.StatusCreated, http.MethodPost, "/v1/orders", keyATrade, httpOrder("c-1"), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var open []*sseStream
	for range DefaultMaxStreams {
		open = append(open, r.openEvents(t, ctx, keyARead, "c-1", ""))
	}
	resp := r.openStream(t, ctx, keyARead)
	if resp.StatusCode == http.StatusOK {
		resp.Body.Close()
		t.Fatalf("stream %d of one key opened", DefaultMaxStreams+1)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	status, aerr := httpDecode(t, resp.StatusCode, resp.Header, b, nil)
	wantError(t, status, aerr, http.StatusTooManyRequests, "", "has 8 event streams open")
	if aerr.Code != api.CodeRateLimited || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("code %s, Retry-After %q", aerr.Code, resp.Header.Get("Retry-After"))
	}
	// Another key, of the same client, has streams of its own.
	r.openEvents(t, ctx, keyATrade, "c-1", "")
	// One closed, one may open again.
	open[0].resp.Body.Close()
	httpEventually(t, "a stream opening after one closed", func() bool {
		resp := r.openStream(t, ctx, keyARead)
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return false
		}
		t.Cleanup(func() { resp.Body.Close() })
		return true
	})
}

// stalledWriter is the connection of a client that stops reading when
// told: from then every flush blocks until the write deadline, as on a
// socket whose buffers are full, or for ever when there is none.
type stalledWriter struct {
	header http.Header
	stop   chan struct{} // closed when the test ends

	mu          sync.Mutex
	stalled     bool
	deadline    time.Time
	written     bytes.Buffer
	flushes     int
	undeadlined int // flushes with no deadline, or one further than the timeout
	timeout     time.Duration
}

func (w *stalledWriter) Header() http.Header { return w.header }
func (w *stalledWriter) WriteHeader(int)     {}

func (w *stalledWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.written.Write(b)
}

func (w *stalledWriter) SetWriteDeadline(d time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.deadline = d
	return nil
}

func (w *stalledWriter) FlushError() error {
	w.mu.Lock()
	stalled, d := w.stalled, w.deadline
	w.flushes++
	if d.IsZero() || time.Until(d) > w.timeout {
		w.undeadlined++
	}
	w.mu.Unlock()
	if !stalled {
		return nil
	}
	if d.IsZero() {
		<-w.stop
		return errors.New("the test ended")
	}
	select {
	case <-time.After(time.Until(d)):
	case <-w.stop:
	}
	return os.ErrDeadlineExceeded
}

func (w *stalledWriter) text() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.written.String()
}

func TestHTTP_EventStreamDropsAClientThatStopsReading(t *testing.T) {
	const timeout = 100 * time.Millisecond
	r := newHTTPRigWith(t, httpRigOptions{config: func(c *HTTPConfig) { c.StreamWriteTimeout = timeout }})
	r.must(t, http.StatusCreated, http.MethodPost, "/v1/orders", keyATrade, httpOrder("c-1"), nil)
	w := &stalledWriter{header: http.Header{}, stop: make(chan struct{}), timeout: timeout}
	t.Cleanup(func() { close(w.stop) })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req := r.request(t, http.MethodGet, "/v1/orders/c-1/events", keyARead, nil).WithContext(ctx)
	served := make(chan struct{})
	go func() {
		defer close(served)
		r.handler.ServeHTTP(w, req)
	}()
	httpEventually(t, "the accepted event sent", func() bool { return bytes.Contains([]byte(w.text()), []byte("event: accepted")) })
	w.mu.Lock()
	w.stalled = true
	w.mu.Unlock()
	r.wall.Advance(Heartbeat) // something to send
	select {
	case <-served:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream still waits on a client that stopped reading")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.undeadlined != 0 || w.flushes < 3 {
		t.Fatalf("%d of %d flushes without a deadline within %s", w.undeadlined, w.flushes, timeout)
	}
}

// serve sets a ReadTimeout and no WriteTimeout: a stream must outlive the
// first (net/http lifts the read deadline once the request is read).
func TestHTTP_EventStreamOutlivesTheServersReadTimeout(t *testing.T) {
	const readTimeout = 100 * time.Millisecond
	r := newHTTPRigWith(t, httpRigOptions{server: func(s *http.Server) { s.ReadTimeout = readTimeout }})
	r.must(t, http.StatusCreated, http.MethodPost, "/v1/orders", keyATrade, httpOrder("c-1"), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := r.openEvents(t, ctx, keyARead, "c-1", "")
	s.events(t, func(ev bus.EventMsg) bool { return ev.Kind == bus.KindAccepted })
	time.Sleep(3 * readTimeout) // the socket's deadline is real time
	r.wall.Advance(Heartbeat)
	for {
		f, err := s.next()
		if err != nil {
			t.Fatalf("past the read timeout: %v, want a heartbeat", err)
		}
		if f.comment == "heartbeat" {
			return
		}
	}
}

func TestHTTP_EventStreamsEndWhenTheServerCloses(t *testing.T) {
	closing := make(chan struct{})
	r := newHTTPRigWith(t, httpRigOptions{config: func(c *HTTPConfig) { c.Closing = closing }})
	r.must(t, http.StatusCreated, http.MethodPost, "/v1/orders", keyATrade, httpOrder("c-1"), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s := r.openEvents(t, ctx, keyARead, "c-1", "")
	s.events(t, func(ev bus.EventMsg) bool { return ev.Kind == bus.KindAccepted })
	close(closing)
	s.events(t, nil) // to its end, before the context's deadline
}
