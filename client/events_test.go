package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/blockexec/blockexec/api"
	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/clock"
)

func event(seq int64, kind string) api.Event {
	return api.Event{Schema: bus.EventSchema, ParentID: "o-1", Kind: kind, Seq: seq, Time: t0.Add(time.Duration(seq) * time.Minute)}
}

// startStream answers 200 with the event stream's headers.
func startStream(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
}

func flush(w http.ResponseWriter) { _ = http.NewResponseController(w).Flush() }

// collect reads every event until the channel closes, then the error.
func collect(t *testing.T, evs <-chan api.Event, errs <-chan error) ([]int64, error) {
	t.Helper()
	var seqs []int64
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-evs:
			if !ok {
				return seqs, <-errs
			}
			seqs = append(seqs, ev.Seq)
		case <-timeout:
			t.Fatalf("the stream did not end; got %v", seqs)
		}
	}
}

// TestEvents_ReconnectsWithLastEventIDAndStopsAfterDone: the stream is cut
// in the middle of event 3; the client reconnects with Last-Event-ID 2,
// skips event 2 sent again, and stops at done while the server would go on.
func TestEvents_ReconnectsWithLastEventIDAndStopsAfterDone(t *testing.T) {
	f := newFake(t, clock.NewVirtual(t0), func(n int, w http.ResponseWriter, r *http.Request, _ []byte) {
		switch n {
		case 0:
			if r.Header.Get("Last-Event-ID") != "" {
				t.Errorf("first connection: Last-Event-ID %q", r.Header.Get("Last-Event-ID"))
			}
			startStream(w)
			sseEvent(w, event(1, bus.KindAccepted))
			fmt.Fprint(w, ": heartbeat\n\n")
			sseEvent(w, event(2, bus.KindSlice))
			fmt.Fprint(w, "id: 3\nevent: slice\ndata: {\"schema\":\"blockexec.ev") // cut here
			flush(w)
			drop(t, w)
		case 1:
			if got := r.Header.Get("Last-Event-ID"); got != "2" {
				t.Errorf("reconnection: Last-Event-ID %q, want 2", got)
			}
			startStream(w)
			sseEvent(w, event(2, bus.KindSlice))
			sseEvent(w, event(3, bus.KindPaused))
			sseEvent(w, event(4, bus.KindDone))
			fmt.Fprint(w, ": more to come\n\n")
			flush(w)
			<-r.Context().Done() // the client hangs up after done
		default:
			t.Errorf("connection %d after done", n)
		}
	})
	evs, errs := f.client(t, nil).Events(context.Background(), "o-1", 0)
	seqs, err := collect(t, evs, errs)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(seqs) != "[1 2 3 4]" {
		t.Fatalf("events %v, want [1 2 3 4] once each", seqs)
	}
	reqs := f.requests()
	if len(reqs) != 2 || reqs[0].Header.Get(api.HeaderNonce) == reqs[1].Header.Get(api.HeaderNonce) {
		t.Fatalf("%d connections; each must be signed afresh", len(reqs))
	}
	if reqs[0].Header.Get("Accept") != "text/event-stream" {
		t.Errorf("Accept %q", reqs[0].Header.Get("Accept"))
	}
}

// TestEvents_FromASequenceNumber: afterSeq is the first connection's
// Last-Event-ID.
func TestEvents_FromASequenceNumber(t *testing.T) {
	f := newFake(t, clock.NewVirtual(t0), func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) {
		if got := r.Header.Get("Last-Event-ID"); got != "5" {
			t.Errorf("Last-Event-ID %q, want 5", got)
		}
		startStream(w)
		sseEvent(w, event(6, bus.KindDone))
	})
	evs, errs := f.client(t, nil).Events(context.Background(), "o-1", 5)
	seqs, err := collect(t, evs, errs)
	if err != nil || fmt.Sprint(seqs) != "[6]" {
		t.Fatalf("%v, %v", seqs, err)
	}
}

// TestEvents_SilentStreamIsReopened: no event and no heartbeat for
// StreamIdle: the connection is taken for dead and reopened from the last
// event.
func TestEvents_SilentStreamIsReopened(t *testing.T) {
	f := newFake(t, clock.NewVirtual(t0), func(n int, w http.ResponseWriter, r *http.Request, _ []byte) {
		startStream(w)
		if n == 0 {
			sseEvent(w, event(1, bus.KindAccepted))
			flush(w)
			<-r.Context().Done()
			return
		}
		if got := r.Header.Get("Last-Event-ID"); got != "1" {
			t.Errorf("Last-Event-ID %q, want 1", got)
		}
		sseEvent(w, event(2, bus.KindDone))
	})
	c := f.client(t, func(c *Config) { c.StreamIdle = 100 * time.Millisecond })
	evs, errs := c.Events(context.Background(), "o-1", 0)
	seqs, err := collect(t, evs, errs)
	if err != nil || fmt.Sprint(seqs) != "[1 2]" {
		t.Fatalf("%v, %v", seqs, err)
	}
}

// TestEvents_TerminalErrors: a refusal a retry cannot mend ends the
// stream at once; an unavailable server ends it after Retries
// reconnections; a cancelled ctx ends it with ctx's error.
func TestEvents_TerminalErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		answer   func(w http.ResponseWriter, r *http.Request)
		attempts int
		check    func(error) bool
	}{
		{"not found", func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, api.Errorf(http.StatusNotFound, api.CodeNotFound, "no order \"o-1\""), "")
		}, 1, func(err error) bool {
			var ae *api.Error
			return errors.As(err, &ae) && ae.Code == api.CodeNotFound
		}},
		{"not an event stream", func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, order("o-1", "working"))
		}, 1, func(err error) bool { return errors.Is(err, errNotEvents) }},
		{"unavailable every time", func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, api.Errorf(http.StatusServiceUnavailable, api.CodeUnavailable, "down"), "")
		}, 1 + DefaultRetries, func(err error) bool {
			var ae *api.Error
			return errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, clock.NewVirtual(t0), func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) { tc.answer(w, r) })
			evs, errs := f.client(t, nil).Events(context.Background(), "o-1", 0)
			seqs, err := collect(t, evs, errs)
			if len(seqs) != 0 || !tc.check(err) {
				t.Fatalf("events %v, error %v", seqs, err)
			}
			if n := len(f.requests()); n != tc.attempts {
				t.Fatalf("%d connections, want %d", n, tc.attempts)
			}
		})
	}
	t.Run("ctx ends", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		f := newFake(t, clock.NewVirtual(t0), func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) {
			startStream(w)
			sseEvent(w, event(1, bus.KindAccepted))
			flush(w)
			<-r.Context().Done()
		})
		evs, errs := f.client(t, nil).Events(ctx, "o-1", 0)
		if ev := <-evs; ev.Seq != 1 {
			t.Fatalf("first event %+v", ev)
		}
		cancel()
		if _, err := collect(t, evs, errs); !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
	})
	t.Run("no id", func(t *testing.T) {
		evs, errs := (&Client{}).Events(context.Background(), "", 0)
		_, err := collect(t, evs, errs)
		if !errors.Is(err, ErrNoID) {
			t.Fatalf("error %v", err)
		}
	})
}
