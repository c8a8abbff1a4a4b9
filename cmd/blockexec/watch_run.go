package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/blockexec/blockexec/bus"
)

// watchMsg is one message off either stream, not yet decoded.
type watchMsg struct {
	stream string
	seq    uint64 // stream sequence
	data   []byte
}

// watchNotice is news about the connection: a line for stderr, and the
// status it puts in the terminal view's header (empty: unchanged).
type watchNotice struct{ status, text string }

// watcher folds the two streams into a state and prints it.
type watcher struct {
	opts   watchOpts
	js     jetstream.JetStream
	out    io.Writer
	errOut io.Writer
	state  *watchState
	header frameHeader
	screen *screen
	dirty  bool
}

// runWatch connects to opts.url and prints fills and events until ctx ends
// (or, without follow, until the history is printed).
func runWatch(ctx context.Context, opts watchOpts, out, errOut io.Writer) error {
	ctx, cancel := context.WithCancel(ctx) // on return, frees a consumer handler waiting to hand over a message
	defer cancel()
	shown := redactNATSURL(opts.url)
	notices := make(chan watchNotice, 16)
	notify := func(status, text string) {
		select {
		case notices <- watchNotice{status: status, text: text}:
		default: // a burst of notices: the latest ones matter, the loop will catch up
		}
	}
	nc, err := nats.Connect(opts.url, append(opts.auth,
		nats.Name("blockexec-watch"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(opts.reconnectWait),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			why := ""
			if err != nil {
				why = " (" + err.Error() + ")"
			}
			notify("reconnecting…", "nats: disconnected"+why+"; reconnecting…")
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { notify("connected", "nats: reconnected to "+c.ConnectedUrlRedacted()) }),
	)...)
	if err != nil {
		return &exitError{exitFailed, fmt.Errorf("connect nats %s: %w", shown, err)}
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return &exitError{exitFailed, fmt.Errorf("jetstream: %w", err)}
	}
	filter := "all parents"
	if opts.parent != "" {
		filter = "parent " + opts.parent
	}
	w := &watcher{opts: opts, js: js, out: out, errOut: errOut, state: newWatchState(),
		header: frameHeader{Source: shown, Filter: filter, Since: opts.start.String(), Status: "connected"}}
	if opts.mode == modeTTY {
		w.screen = &screen{out: out}
	}

	msgs := make(chan watchMsg, 256)
	backlog := map[string]uint64{}
	for _, s := range []struct{ stream, subject string }{{bus.EventsStream, bus.EventsSubject}, {bus.FillsStream, bus.FillsSubject}} {
		subject := s.subject + ".>"
		if opts.parent != "" {
			subject = s.subject + "." + bus.Token(opts.parent) + ".*"
		}
		cc, pending, err := w.follow(ctx, s.stream, subject, msgs)
		if err != nil {
			return &exitError{exitFailed, err}
		}
		defer cc.Stop()
		backlog[s.stream] = pending
	}
	if opts.ready != nil {
		opts.ready()
	}
	return w.loop(ctx, msgs, notices, backlog)
}

// follow starts an ordered consumer on stream and returns how many messages
// it held at the start (the history to print before live messages).
func (w *watcher) follow(ctx context.Context, stream, subject string, msgs chan<- watchMsg) (jetstream.ConsumeContext, uint64, error) {
	s, err := w.js.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, 0, fmt.Errorf("stream %s not found on %s: has an engine published there yet?", stream, w.header.Source)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("stream %s: %w", stream, err)
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}} // a unique name per watcher
	switch {
	case w.opts.start.all:
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	case !w.opts.start.at.IsZero():
		at := w.opts.start.at
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &at
	default:
		// "Now" as a sequence, not DeliverNew: if the server restarts before
		// the first message, the recreated consumer must not skip what was
		// published in between.
		info, err := s.Info(ctx)
		if err != nil {
			return nil, 0, fmt.Errorf("stream %s info: %w", stream, err)
		}
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, info.State.LastSeq+1
	}
	cons, err := w.js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, 0, fmt.Errorf("consumer on %s: %w", stream, err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		md, err := m.Metadata()
		if err != nil {
			return
		}
		select {
		case msgs <- watchMsg{stream: stream, seq: md.Sequence.Stream, data: m.Data()}:
		case <-ctx.Done():
		}
	})
	if err != nil {
		return nil, 0, fmt.Errorf("consume %s: %w", stream, err)
	}
	var pending uint64
	if info := cons.CachedInfo(); info != nil {
		pending = info.NumPending
	}
	return cc, pending, nil
}

// loop prints the history (the first backlog[stream] messages of each
// stream) sorted by time, then live messages as they come.
func (w *watcher) loop(ctx context.Context, msgs <-chan watchMsg, notices <-chan watchNotice, backlog map[string]uint64) error {
	var history, early []watchMsg // early: live messages that came before the history was complete
	left := func() uint64 { return backlog[bus.FillsStream] + backlog[bus.EventsStream] }
	total := left()
	flushHistory := func() error {
		sortHistory(history)
		for _, m := range append(history, early...) {
			if err := w.handle(ctx, m); err != nil {
				return err
			}
		}
		history, early = nil, nil
		return nil
	}
	if left() == 0 && !w.opts.follow {
		return w.finish()
	}
	var tick <-chan time.Time
	if w.screen != nil {
		t := time.NewTicker(w.opts.refresh)
		defer t.Stop()
		tick = t.C
		if total > 0 {
			w.header.Status = fmt.Sprintf("catching up: %d messages", total)
		}
		w.dirty = true
	}
	for {
		select {
		case <-ctx.Done():
			return w.finish()
		case n := <-notices:
			w.notice(n)
		case <-tick:
			if w.dirty {
				if err := w.draw(); err != nil {
					return err
				}
			}
		case m := <-msgs:
			if left() == 0 {
				if err := w.handle(ctx, m); err != nil {
					return err
				}
				continue
			}
			if backlog[m.stream] == 0 {
				early = append(early, m)
				continue
			}
			backlog[m.stream]--
			history = append(history, m)
			if left() > 0 {
				continue
			}
			if !w.opts.follow {
				early = nil // not part of what the streams held at the start
			}
			if err := flushHistory(); err != nil {
				return err
			}
			if w.screen != nil {
				w.header.Status = "connected"
			}
			if !w.opts.follow {
				return w.finish()
			}
		}
	}
}

// sortHistory puts a history in message time order; at the same instant
// an accepted event comes first, then fills, then other events, each in
// stream order.
func sortHistory(h []watchMsg) {
	slices.SortStableFunc(h, func(a, b watchMsg) int {
		ta, ra := peek(a)
		tb, rb := peek(b)
		return cmp.Or(ta.Compare(tb), cmp.Compare(ra, rb), cmp.Compare(a.seq, b.seq))
	})
}

// peek reads a message's time and its rank among messages of the same
// instant.
func peek(m watchMsg) (time.Time, int) {
	var h struct {
		Time time.Time `json:"time"`
		Kind string    `json:"kind"`
	}
	_ = json.Unmarshal(m.data, &h)
	switch {
	case m.stream == bus.FillsStream:
		return h.Time, 1
	case h.Kind == bus.KindAccepted:
		return h.Time, 0
	}
	return h.Time, 2
}

// handle folds one message and prints it.
func (w *watcher) handle(ctx context.Context, m watchMsg) error {
	rec := watchRecord{Stream: m.stream, Seq: m.seq}
	var p *parentView
	var line string
	if m.stream == bus.FillsStream {
		var f bus.FillMsg
		if err := json.Unmarshal(m.data, &f); err != nil {
			w.notice(watchNotice{text: fmt.Sprintf("skipped %s #%d: not a fill: %v", m.stream, m.seq, err)})
			return nil
		}
		w.lookupLate(ctx, f.ParentID)
		p = w.state.foldFill(f)
		rec.Fill = &f
		line = plainFillLine(f, p)
	} else {
		var e bus.EventMsg
		if err := json.Unmarshal(m.data, &e); err != nil {
			w.notice(watchNotice{text: fmt.Sprintf("skipped %s #%d: not an event: %v", m.stream, m.seq, err)})
			return nil
		}
		if e.Kind != bus.KindAccepted {
			w.lookupLate(ctx, e.ParentID)
		}
		p = w.state.foldEvent(e)
		rec.Event = &e
		line = plainEventLine(e)
	}
	switch w.opts.mode {
	case modeJSON:
		rec.Parent = figures(p)
		return writeRecord(w.out, rec)
	case modeTTY:
		w.dirty = true
		return nil
	}
	_, err := fmt.Fprintln(w.out, line)
	return err
}

// lookupLate fetches the accepted event of a parent first seen after its
// start, so that its size and arrival price are known.
func (w *watcher) lookupLate(ctx context.Context, parent string) {
	if _, seen := w.state.parents[parent]; seen || w.js == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, w.opts.lookupTimeout)
	defer cancel()
	s, err := w.js.Stream(ctx, bus.EventsStream)
	if err != nil {
		return
	}
	raw, err := s.GetLastMsgForSubject(ctx, bus.EventSubjectFor(parent, bus.KindAccepted))
	if err != nil {
		return // purged or never published: the view shows what it sees
	}
	var e bus.EventMsg
	if json.Unmarshal(raw.Data, &e) == nil {
		w.state.adopt(e)
	}
}

// notice tells the user about the connection: on stderr, or in the header
// of the terminal view.
func (w *watcher) notice(n watchNotice) {
	if w.screen == nil {
		fmt.Fprintln(w.errOut, "blockexec watch:", n.text)
		return
	}
	w.header.Caption = n.text
	if n.status != "" {
		w.header.Status = n.status
	}
	w.dirty = true
}

func (w *watcher) draw() error {
	width, height := 120, 40
	if w.opts.termSize != nil {
		width, height = w.opts.termSize()
	}
	w.dirty = false
	return w.screen.draw(renderFrame(w.state, w.header, width, height))
}

// finish draws the last frame on a terminal.
func (w *watcher) finish() error {
	if w.screen == nil {
		return nil
	}
	w.header.Status = "stopped"
	return w.draw()
}
