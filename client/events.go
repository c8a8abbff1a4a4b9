package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/blockexec/blockexec/api"
	"github.com/blockexec/blockexec/bus"
)

// maxEventLine bounds one line of the event stream.
const maxEventLine = 256 << 10

// Events follows an order's events with a sequence number above afterSeq
// (0: from the first), from the server-sent event stream
// GET /v1/orders/{id}/events. A stream that drops, or stays silent longer
// than Config.StreamIdle, is reopened with Last-Event-ID set to the last
// sequence number received, so no event is lost or repeated.
//
// The events channel closes after the done event, when ctx ends, or on a
// terminal error: one the server answered that a retry cannot mend (404,
// 401, 403), or Config.Retries failed reconnections in a row. The error
// channel then gets that error (ctx's own error if ctx ended), at most
// one, and closes; after the done event it closes with none. The caller
// must drain events or end ctx.
func (c *Client) Events(ctx context.Context, id string, afterSeq int64) (<-chan api.Event, <-chan error) {
	events := make(chan api.Event, 16)
	errs := make(chan error, 1)
	p, err := orderPath(id, "events")
	if err != nil {
		errs <- err
		close(events)
		close(errs)
		return events, errs
	}
	go func() {
		defer close(errs)
		defer close(events)
		if err := c.follow(ctx, p, afterSeq, events); err != nil {
			errs <- err
		}
	}()
	return events, errs
}

// follow reads streams until the done event, reconnecting after drops.
func (c *Client) follow(ctx context.Context, path string, last int64, events chan<- api.Event) error {
	failures := 0
	for {
		s := stream{c: c, path: path, last: last, events: events}
		err := s.run(ctx)
		last = s.last
		switch {
		case err == nil:
			return nil // done
		case ctx.Err() != nil:
			return ctx.Err()
		}
		if errors.Is(err, errNotEvents) {
			return fmt.Errorf("GET %s: %w", path, err)
		}
		if s.alive {
			failures = 0
		}
		wait := min(c.backoff<<min(failures, 16), maxBackoff)
		var ae *api.Error
		if errors.As(err, &ae) {
			switch {
			case ae.Status == http.StatusTooManyRequests:
				if d, ok := retryAfter(s.header, c.clk.Now()); ok {
					wait = d
				}
			case ae.Status < 500:
				return fmt.Errorf("GET %s: %w", path, err)
			}
		}
		if failures >= c.retries {
			return fmt.Errorf("GET %s: %d reconnections failed: %w", path, failures, err)
		}
		failures++
		if werr := c.clk.WaitUntil(ctx, c.clk.Now().Add(wait)); werr != nil {
			return werr
		}
	}
}

// stream is one connection to the event stream.
type stream struct {
	c      *Client
	path   string
	last   int64 // the last sequence number delivered
	events chan<- api.Event
	alive  bool        // something (an event, a heartbeat) came
	header http.Header // of a refusal
}

var (
	// errIdle is a stream silent for longer than StreamIdle.
	errIdle = errors.New("the event stream went silent")
	// errNotEvents is an answer that is not an event stream as the API
	// sends it; reconnecting would read the same.
	errNotEvents = errors.New("not the API's event stream")
)

// run reads one connection; nil means the done event came.
func (s *stream) run(ctx context.Context) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := s.c.request(sctx, call{method: http.MethodGet, path: s.path}, "text/event-stream")
	if err != nil {
		return err
	}
	if s.last > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(s.last, 10))
	}
	req.Header.Set("Cache-Control", "no-cache")
	resp, err := s.c.streamHC.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.header = resp.Header
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return apiError(resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return fmt.Errorf("%w: content type %q", errNotEvents, ct)
	}
	var idle atomic.Bool
	watchdog := time.AfterFunc(s.c.streamIdle, func() { idle.Store(true); cancel() })
	defer watchdog.Stop()

	br := bufio.NewReaderSize(resp.Body, maxEventLine)
	var id, kind string
	var data []string
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			return fmt.Errorf("%w: a line over %d bytes", errNotEvents, maxEventLine)
		case err != nil && idle.Load():
			return fmt.Errorf("%w for %s", errIdle, s.c.streamIdle)
		case err != nil:
			return fmt.Errorf("the event stream dropped: %w", err)
		}
		s.alive = true
		watchdog.Reset(s.c.streamIdle)
		text := strings.TrimSuffix(strings.TrimSuffix(string(line), "\n"), "\r")
		if text != "" {
			if text[0] == ':' {
				continue // a heartbeat
			}
			field, value, _ := strings.Cut(text, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "id":
				id = value
			case "event":
				kind = value
			case "data":
				data = append(data, value)
			}
			continue
		}
		if len(data) > 0 {
			done, err := s.dispatch(ctx, id, kind, strings.Join(data, "\n"))
			if err != nil || done {
				return err
			}
		}
		id, kind, data = "", "", nil
	}
}

// dispatch delivers one event unless it was delivered before; done is
// true for the done event.
func (s *stream) dispatch(ctx context.Context, id, kind, data string) (bool, error) {
	if kind == "error" {
		// The server failed while streaming: its error, retried as any.
		return false, apiError(http.StatusServiceUnavailable, []byte(data))
	}
	var ev api.Event
	if err := json.Unmarshal([]byte(data), &ev); err != nil {
		return false, fmt.Errorf("%w: event %q is not a %s: %v", errNotEvents, id, bus.EventSchema, err)
	}
	if ev.Kind == "" {
		ev.Kind = kind
	}
	seq := ev.Seq
	if n, err := strconv.ParseInt(id, 10, 64); err == nil {
		seq = n
	}
	if seq > 0 && seq <= s.last {
		return false, nil // sent again after a reconnection
	}
	select {
	case s.events <- ev:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	if seq > 0 {
		s.last = seq
	}
	return ev.Kind == bus.KindDone, nil
}
