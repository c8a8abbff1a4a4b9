package main

import (
	"fmt"
	"github.com/nats-io/nats.go"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/blockexec/blockexec/configs"
)

// watchMode is how the watcher prints.
type watchMode int

const (
	modeTTY   watchMode = iota + 1 // a frame redrawn in place
	modePlain                      // a line per message
	modeJSON                       // a JSON object per message
)

// watchStart is where in the streams the watch begins: the zero value is
// "now", messages published after the watch starts.
type watchStart struct {
	all bool
	at  time.Time // zero: now
}

func (s watchStart) String() string {
	switch {
	case s.all:
		return "the beginning"
	case s.at.IsZero():
		return "now"
	}
	return s.at.UTC().Format(time.RFC3339)
}

// parseSince reads --since: now, all, an RFC 3339 time, or a duration back
// from now.
func parseSince(v string, now time.Time) (watchStart, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "now":
		return watchStart{}, nil
	case "all", "beginning":
		return watchStart{all: true}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return watchStart{at: t}, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return watchStart{at: now.Add(-d)}, nil
	}
	return watchStart{}, fmt.Errorf("--since %q: want now, all, an RFC 3339 time (2024-10-01T08:00:00Z) or a duration back from now (90m, 2h)", v)
}

// watchOpts are the watcher's settings; the command fills them from flags,
// tests directly.
type watchOpts struct {
	url    string        // NATS URL(s), may carry credentials: print only redacted
	auth   []nats.Option // the config's creds, nkey and TLS files
	parent string        // empty: all parents
	start  watchStart
	mode   watchMode
	follow bool // false: print what the streams hold now and exit

	reconnectWait time.Duration
	refresh       time.Duration     // terminal redraw interval
	termSize      func() (w, h int) // terminal columns and rows
	lookupTimeout time.Duration     // for a late parent's terms
	ready         func()            // tests: called once the consumers have started
}

type watchFlags struct {
	config, natsURL, parent, since string
	asJSON, plain, noFollow        bool
}

func newWatchCmd() *cobra.Command {
	var f watchFlags
	cmd := &cobra.Command{
		Use:   "watch (-c FILE | --nats URL) [--parent ID] [--since now|all|TIME|DURATION] [--json|--plain] [--no-follow]",
		Short: "Follow fills and events on NATS live: progress, price, shortfall and venues per parent",
		Long: `watch connects to the NATS server that engines publish to (the config's
nats.url, or --nats) and follows the fill and event streams, for every parent
or one (--parent). It only reads: it uses ephemeral ordered consumers that
vanish when it exits, never the settlement recorder's durable consumer.

On a terminal it keeps one block per parent, redrawn at most four times a
second:

  unwind-1  sell 400 BTCUSDT twap  [#######====........]  36.2% filled,  55.0% due  working
      avg 62910.55 vs arrival 63000.00  shortfall 14.20 bps  participation cap 10.0%  simA 61% simB 39%
      fills (212)  08:17:00 simA 0.41237 @ 62871.35  |  08:16:00 simB 0.3 @ 62880.10  |  …
      rejected (3)  08:15:00 simB participation: …

The bar shows '#' for filled, '=' for due by the schedule but not yet filled
(behind schedule), '.' for later. Shortfall is against the arrival price, in
basis points, positive when it cost money (the report's definition). The
participation cap comes with the order; the realised maximum is shown once the
parent ends. Working parents are listed first.

When stdout is not a terminal (a pipe, a file, CI), or with --plain, it
prints one line per message instead: the parent id, the time, the event
(as 'order watch' prints it) or the fill followed by the parent's running
totals, so the output greps well. --json prints one JSON object per line:
{"stream", "stream_seq", "fill" or "event" as published, "parent": totals}.

--since picks where to start: now (default: only what is published from
now on), all (everything the streams still hold), an RFC 3339 time, or a
duration back from now (30m, 2h), by the time the server stored the
messages. A history is printed in time order, then live messages as they
come. --no-follow prints the history and exits.
A parent accepted before the watch began is shown with its terms (looked up
on the bus) and the fills seen since.

If the NATS server goes away, watch says "reconnecting…" (on stderr, or in
the header on a terminal) and keeps trying; when the server is back it
resumes after the last message it printed, none repeated or skipped as long
as the streams kept them. Ctrl-C exits. A config whose NATS is embedded in
the engine process (no nats.url) cannot be watched from another process:
point the engine at a NATS server (nats-server -js) with nats.url.`,
		Example: `  # everything on the bus of a config, live, from now on
  blockexec watch -c configs/prod.yaml

  # one parent, from the start of its streams, as lines in a log
  blockexec watch --nats nats://127.0.0.1:4222 --parent unwind-0412 --since all --plain

  # the last two hours as JSON, then exit; rejections only
  blockexec watch --nats nats://nats.internal:4222 --since 2h --json --no-follow |
    jq -c 'select(.event.kind == "child_rejected")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := f.options(cmd.OutOrStdout())
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runWatch(ctx, opts, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.config, "config", "c", "", "config file whose nats.url to watch")
	fl.StringVar(&f.natsURL, "nats", "", "NATS server URL(s), comma-separated (instead of -c)")
	fl.StringVar(&f.parent, "parent", "", "only this parent order id")
	fl.StringVar(&f.since, "since", "now", "where to start: now, all, an RFC 3339 time, or a duration back from now (1h)")
	fl.BoolVar(&f.asJSON, "json", false, "one JSON object per fill or event")
	fl.BoolVar(&f.plain, "plain", false, "one line per fill or event even on a terminal")
	fl.BoolVar(&f.noFollow, "no-follow", false, "print what the streams hold from --since, then exit")
	cmd.MarkFlagsMutuallyExclusive("config", "nats")
	cmd.MarkFlagsOneRequired("config", "nats")
	cmd.MarkFlagsMutuallyExclusive("json", "plain")
	return cmd
}

// options turns the flags into watcher settings.
func (f watchFlags) options(out io.Writer) (watchOpts, error) {
	o := watchOpts{url: f.natsURL, parent: f.parent, follow: !f.noFollow, mode: modePlain,
		reconnectWait: time.Second, refresh: 250 * time.Millisecond, lookupTimeout: 2 * time.Second}
	if f.config != "" {
		cfg, err := configs.Load(f.config)
		if err != nil {
			return o, &exitError{exitBadConfig, err}
		}
		if cfg.NATS.URL == "" {
			return o, &exitError{exitBadConfig, fmt.Errorf("%s has no nats.url: its engine runs NATS inside its own process, "+
				"where no other process can read it; set nats.url to a NATS server with JetStream (nats-server -js) "+
				"for the engine and watch to share, or pass --nats", f.config)}
		}
		o.url = cfg.NATS.URL
		if o.auth, err = busOptions(cfg).AuthOptions(); err != nil {
			return o, &exitError{exitBadConfig, fmt.Errorf("%s: nats: %w", f.config, err)}
		}
	}
	start, err := parseSince(f.since, time.Now())
	if err != nil {
		return o, &exitError{exitBadInput, err}
	}
	o.start = start
	switch {
	case f.asJSON:
		o.mode = modeJSON
	case !f.plain && isTerminal(out):
		o.mode = modeTTY
		fd := int(out.(*os.File).Fd()) // isTerminal checked it is a file
		o.termSize = func() (int, int) {
			w, h, err := term.GetSize(fd)
			if err != nil {
				return 100, 30
			}
			return w, h
		}
	}
	return o, nil
}

// redactNATSURL hides credentials in a NATS URL list: a password, or a
// user part that stands alone (a token).
func redactNATSURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		u, err := url.Parse(p)
		if err != nil || u.Host == "" {
			if strings.Contains(p, "@") {
				p = "[REDACTED]@" + p[strings.LastIndex(p, "@")+1:]
			}
			parts[i] = p
			continue
		}
		if u.User != nil {
			if _, hasPass := u.User.Password(); hasPass {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
			} else {
				u.User = url.User("xxxxx")
			}
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}
