package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/shopspring/decimal"
	"github.com/spf13/cobra"

	"github.com/blockexec/blockexec/api"
	"github.com/blockexec/blockexec/client"
	"github.com/blockexec/blockexec/venues"
)

// exitBadInput is blockexec order's exit code for a refused request: a
// bad flag or file, or the service's 400, 409 or 413. Nothing was done.
const exitBadInput = exitBadConfig

// Where blockexec order finds the service and its key when no flag says.
const (
	envURL      = "BLOCKEXEC_URL"
	envKeyID    = "BLOCKEXEC_KEY_ID"
	envSecret   = "BLOCKEXEC_SECRET"
	defaultURL  = "http://127.0.0.1:8480"
	maxFileBody = 1 << 20
)

// orderOpts are the flags every order subcommand takes.
type orderOpts struct {
	url, keyID, secretFile string
	asJSON                 bool
	timeout                time.Duration
}

func newOrderCmd() *cobra.Command {
	o := &orderOpts{}
	cmd := &cobra.Command{
		Use:   "order",
		Short: "Submit, follow and steer parent orders on a blockexec service",
		Long: `order talks to a running blockexec service (blockexec serve) over its signed
HTTP API, with the Go client of package client. Every request is signed with
an API key: its id (--key-id or $` + envKeyID + `) and its secret, read from a
file only you can read (--secret-file, mode 0600; a file others can read is
refused) or from $` + envSecret + `. The secret is never taken as a flag, which
other users could read in the process list.

A submit may be repeated safely: the order's id (client_order_id) makes it
idempotent, so the same id and terms return the order made the first time,
and other terms under the same id are refused.

Exit codes: 0 done, 2 bad input (a flag or file, or the service answered
400, 409 or 413: nothing was done), 1 anything else (unreachable, refused
key, not found, server error).`,
		Example: `  export BLOCKEXEC_URL=https://blockexec.internal:8480 BLOCKEXEC_KEY_ID=fund-a-2026-11
  blockexec order submit --secret-file ~/.blockexec/secret --id unwind-0412 --side sell --symbol BTCUSDT \
      --qty 400 --duration 8h --max-participation 0.1 --band-bps 50 --floor 61000
  blockexec order watch unwind-0412 --secret-file ~/.blockexec/secret
  blockexec order list --state working --json --secret-file ~/.blockexec/secret`,
		Args: cobra.NoArgs,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&o.url, "url", envOr(envURL, defaultURL), "the service's base URL; $"+envURL+" if set")
	pf.StringVar(&o.keyID, "key-id", os.Getenv(envKeyID), "the API key's id; $"+envKeyID+" if set")
	pf.StringVar(&o.secretFile, "secret-file", "", "file holding the key's secret, mode 0600 (else $"+envSecret+")")
	pf.BoolVar(&o.asJSON, "json", false, "print the API's JSON instead of text")
	pf.DurationVar(&o.timeout, "timeout", 2*time.Minute, "give up a call (with its retries) after this long; watch has none")
	cmd.AddCommand(newOrderSubmitCmd(o), newOrderStatusCmd(o), newOrderActCmd(o, "pause"), newOrderActCmd(o, "resume"),
		newOrderActCmd(o, "cancel"), newOrderAmendCmd(o), newOrderListCmd(o), newOrderFillsCmd(o), newOrderWatchCmd(o),
		newOrderKillCmd(o))
	return cmd
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// client makes the API client from the flags and the environment.
func (o *orderOpts) client() (*client.Client, error) {
	if o.keyID == "" {
		return nil, &exitError{exitBadInput, fmt.Errorf("no API key id: give --key-id or set %s", envKeyID)}
	}
	var secret venues.Secret
	var err error
	switch {
	case o.secretFile != "":
		if secret, err = venues.SecretFromFile(o.secretFile); err != nil {
			return nil, &exitError{exitBadInput, fmt.Errorf("--secret-file: %w", err)}
		}
	default:
		if secret, err = venues.SecretFromEnv(envSecret); err != nil {
			return nil, &exitError{exitBadInput, fmt.Errorf("no API secret: give --secret-file (mode 0600) or set %s", envSecret)}
		}
	}
	c, err := client.New(client.Config{BaseURL: o.url, KeyID: o.keyID, Secret: []byte(secret.Reveal())})
	if err != nil {
		return nil, &exitError{exitBadInput, fmt.Errorf("--url, --key-id: %w", err)}
	}
	return c, nil
}

// run calls fn with a client, bounded by --timeout, and maps its error
// to an exit code.
func (o *orderOpts) run(ctx context.Context, verb string, fn func(context.Context, *client.Client) error) error {
	c, err := o.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	return orderError(verb, fn(ctx, c))
}

// refusal is the service's answer to a request it refused, for a human.
type refusal struct {
	verb string
	ae   *api.Error
}

func (r *refusal) Error() string {
	msg := fmt.Sprintf("%s refused (%d %s): ", r.verb, r.ae.Status, r.ae.Code)
	if r.ae.Field != "" {
		msg += fmt.Sprintf("field %q: ", r.ae.Field)
	}
	return msg + r.ae.Message
}

func (r *refusal) Unwrap() error { return r.ae }

// orderError gives an error its exit code: 2 for what the caller must
// change (400, 409, 413, no id), 1 for the rest.
func orderError(verb string, err error) error {
	var ae *api.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, new(*exitError)):
		return err
	case errors.As(err, &ae):
		code := exitFailed
		switch ae.Status {
		case http.StatusBadRequest, http.StatusConflict, http.StatusRequestEntityTooLarge:
			code = exitBadInput
		}
		return &exitError{code, &refusal{verb: verb, ae: ae}}
	case errors.Is(err, client.ErrNoID):
		return &exitError{exitBadInput, fmt.Errorf("%s: %w", verb, err)}
	}
	return &exitError{exitFailed, fmt.Errorf("%s: %w", verb, err)}
}

// submitFlags are the common fields of an order request.
type submitFlags struct {
	file, id, side, symbol, qty, duration, end, strategy string
	maxPart, band, floor, ceiling                        string
	venues                                               []string
}

// fieldFlags are the flags that give the order's terms (all but --id).
var fieldFlags = []string{"side", "symbol", "qty", "duration", "end", "strategy", "max-participation", "band-bps",
	"floor", "ceiling", "venues"}

func newOrderSubmitCmd(o *orderOpts) *cobra.Command {
	var f submitFlags
	cmd := &cobra.Command{
		Use:   "submit (-f order.json | --id ID --side S --symbol SYM --qty Q ...)",
		Short: "Submit a parent order",
		Long: `submit sends a parent order: a JSON file (-f, the API's order request; - for
standard input) or the flags for the common fields. --id is the order's
client_order_id and is required: it makes the submit safe to repeat. The
client retries a submit after a dropped connection, a timeout, a 5xx or a
429 with the same id and body; running the same command again does the same.
Either way the service answers with the one order made: "already existed
before this command", or, when an attempt of this command got no answer,
"already known to the server" (that attempt's order, or an older one). The
same id with other terms is refused (409, exit 2).

The service checks every field (side buy or sell, quantity > 0,
max participation in (0, 1], band > 0, floor for a sell, ceiling for a buy,
known symbol and venues, duration or end in the future) and answers a bad
one with its name: exit 2, nothing created.`,
		Example: `  blockexec order submit --id unwind-0412 --side sell --symbol BTCUSDT --qty 400 \
      --duration 8h --max-participation 0.1 --band-bps 50 --floor 61000 --venues simA,simB
  blockexec order submit -f order.json
  blockexec order submit -f order.json --id unwind-0413 --json
  cat order.json | blockexec order submit -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := f.request(cmd)
			if err != nil {
				return err
			}
			return o.run(cmd.Context(), "submit", func(ctx context.Context, c *client.Client) error {
				sub, err := c.SubmitDetail(ctx, req)
				if err != nil {
					return err
				}
				if o.asJSON {
					return writeJSON(cmd.OutOrStdout(), sub.Order)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "order %s %s\n", sub.Order.ID, submitNote(sub))
				writeOrder(cmd.OutOrStdout(), sub.Order)
				return nil
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.file, "file", "f", "", "the order request as JSON (the API's body); - for standard input")
	fl.StringVar(&f.id, "id", "", "client_order_id: the order's id, which makes the submit idempotent")
	fl.StringVar(&f.side, "side", "", "buy or sell")
	fl.StringVar(&f.symbol, "symbol", "", "the symbol, e.g. BTCUSDT")
	fl.StringVar(&f.qty, "qty", "", "the quantity, e.g. 400")
	fl.StringVar(&f.duration, "duration", "", "how long from now the schedule runs, e.g. 8h (or --end)")
	fl.StringVar(&f.end, "end", "", "when the schedule ends, RFC 3339 (or --duration)")
	fl.StringVar(&f.strategy, "strategy", "", "twap (the service's default), vwap, pov or ac")
	fl.StringVar(&f.maxPart, "max-participation", "", "cap on the share of market volume, in (0, 1], e.g. 0.1")
	fl.StringVar(&f.band, "band-bps", "", "slippage band around the arrival price, in basis points, e.g. 50")
	fl.StringVar(&f.floor, "floor", "", "lowest price to sell at (sell orders)")
	fl.StringVar(&f.ceiling, "ceiling", "", "highest price to buy at (buy orders)")
	fl.StringSliceVar(&f.venues, "venues", nil, "venues to use, comma-separated (default every venue)")
	return cmd
}

// submitNote says how a submit ended. A 200 after an attempt that may
// have been acted on cannot tell that attempt's order from an older one.
func submitNote(s client.Submitted) string {
	switch {
	case s.Created && s.Attempts > 1:
		return fmt.Sprintf("created (on attempt %d)", s.Attempts)
	case s.Created:
		return "created"
	case s.EarlierAttempt:
		return "accepted; the order id was already known to the server: it may be from an earlier attempt " +
			"of this command whose answer was lost (same id and terms: one order)"
	}
	return "already existed before this command (same id and terms): nothing new was submitted"
}

// request builds the order request from -f or the flags.
func (f *submitFlags) request(cmd *cobra.Command) (api.OrderRequest, error) {
	bad := func(format string, a ...any) (api.OrderRequest, error) {
		return api.OrderRequest{}, &exitError{exitBadInput, fmt.Errorf(format, a...)}
	}
	var req api.OrderRequest
	if f.file != "" {
		for _, name := range fieldFlags {
			if cmd.Flags().Changed(name) {
				return bad("give -f or --%s, not both (only --id may override the file)", name)
			}
		}
		if err := readOrderFile(cmd.InOrStdin(), f.file, &req); err != nil {
			return bad("-f %s: %v", f.file, err)
		}
	} else {
		req = api.OrderRequest{Side: f.side, Symbol: f.symbol, Duration: f.duration, Strategy: f.strategy, Venues: f.venues}
		for _, d := range []struct {
			flag, text string
			to         *decimal.Decimal
		}{{"qty", f.qty, &req.Quantity}, {"max-participation", f.maxPart, &req.MaxParticipation}, {"band-bps", f.band, &req.SlippageBandBps}} {
			v, err := flagDecimal(d.flag, d.text)
			if err != nil {
				return api.OrderRequest{}, err
			}
			if v != nil {
				*d.to = *v
			}
		}
		var err error
		if req.FloorPrice, err = flagDecimal("floor", f.floor); err != nil {
			return api.OrderRequest{}, err
		}
		if req.CeilingPrice, err = flagDecimal("ceiling", f.ceiling); err != nil {
			return api.OrderRequest{}, err
		}
		if req.End, err = flagTime("end", f.end); err != nil {
			return api.OrderRequest{}, err
		}
	}
	if f.id != "" {
		req.ClientOrderID = f.id
	}
	if req.ClientOrderID == "" {
		return bad("--id is required (or client_order_id in -f): it makes the submit safe to repeat")
	}
	return req, nil
}

// readOrderFile decodes an order request strictly: a misspelt field is
// refused here rather than ignored.
func readOrderFile(stdin io.Reader, path string, req *api.OrderRequest) error {
	var r io.Reader = stdin
	if path != "-" {
		file, err := os.Open(path)
		if err != nil {
			return err
		}
		defer file.Close()
		r = file
	}
	b, err := io.ReadAll(io.LimitReader(r, maxFileBody+1))
	switch {
	case err != nil:
		return err
	case len(b) > maxFileBody:
		return fmt.Errorf("over %d bytes", maxFileBody)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(req); err != nil {
		return fmt.Errorf("not an order request: %w", err)
	}
	if dec.More() {
		return errors.New("more than one JSON object")
	}
	return nil
}

// flagDecimal parses a decimal flag; "" is nil.
func flagDecimal(flag, text string) (*decimal.Decimal, error) {
	if text == "" {
		return nil, nil
	}
	d, err := decimal.NewFromString(text)
	if err != nil {
		return nil, &exitError{exitBadInput, fmt.Errorf("--%s: want a decimal such as 400 or 0.1, got %q", flag, text)}
	}
	return &d, nil
}

// flagTime parses an RFC 3339 flag; "" is nil.
func flagTime(flag, text string) (*time.Time, error) {
	if text == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, text)
	if err != nil {
		return nil, &exitError{exitBadInput, fmt.Errorf("--%s: want an RFC 3339 time such as 2026-11-02T16:00:00Z, got %q", flag, text)}
	}
	return &t, nil
}

func newOrderStatusCmd(o *orderOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "status ID",
		Short: "Show an order: state, fills, prices, limits",
		Long: `status shows one order as the service holds it now: its state (accepted,
working, paused, done, cancelled, failed), how much filled at what average
price against the arrival price (shortfall in basis points), what is
unfilled or pending, its limits and its venues. A key sees its client's
orders only (an admin key sees all); another's is "not found".`,
		Example: `  blockexec order status unwind-0412
  blockexec order status unwind-0412 --json | jq .filled_quantity`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd.Context(), "status", func(ctx context.Context, c *client.Client) error {
				ord, err := c.Get(ctx, args[0])
				if err != nil {
					return err
				}
				return o.printOrder(cmd.OutOrStdout(), ord)
			})
		},
	}
}

// newOrderActCmd is pause, resume or cancel.
func newOrderActCmd(o *orderOpts, action string) *cobra.Command {
	doc := map[string][2]string{
		"pause": {"Stop an order placing children until resumed",
			`pause stops an order placing child orders from its next slice; what is
working at a venue is left to finish. The schedule keeps its end time: resume
catches up within the limits, and an order still paused at its end time ends
there with what it filled. Pausing a paused order changes nothing, so
pause is retried safely after a lost answer.`},
		"resume": {"Let a paused order work again",
			`resume lets a paused order place children again from its next slice,
catching up on its schedule within its limits (band, floor or ceiling,
participation). Resuming an order that is not paused changes nothing, so
resume is retried safely after a lost answer.`},
		"cancel": {"End an order: nothing more is placed",
			`cancel ends an order: no more children are placed, what filled stays and
is settled. An order that has already ended is refused (409, exit 2), unless
this command's own earlier attempt cancelled it and only the answer was lost,
which the client checks.`},
	}[action]
	return &cobra.Command{
		Use:     action + " ID",
		Short:   doc[0],
		Long:    doc[1],
		Example: fmt.Sprintf("  blockexec order %s unwind-0412\n  blockexec order %s unwind-0412 --json", action, action),
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd.Context(), action, func(ctx context.Context, c *client.Client) error {
				fn := map[string]func(context.Context, string) (api.Order, error){
					"pause": c.Pause, "resume": c.Resume, "cancel": c.Cancel}[action]
				ord, err := fn(ctx, args[0])
				if err != nil {
					return err
				}
				return o.printOrder(cmd.OutOrStdout(), ord)
			})
		},
	}
}

// newOrderKillCmd pulls or releases the kill switch.
func newOrderKillCmd(o *orderOpts) *cobra.Command {
	var reason string
	var release bool
	cmd := &cobra.Command{
		Use:   "kill [--reason TEXT] | kill --release",
		Short: "The kill switch: cancel every order of every client, refuse new ones (admin key)",
		Long: `kill cancels every working order of every client at once and engages the
kill switch: from then on every submit is refused (503, code "killed") until
an admin releases it with kill --release. What filled stays and is settled.
It needs a key with the admin scope.

A kill is not retried after its request went out (it is not known whether it
ran): if the answer is lost, "order list" shows what is cancelled, and a
second kill is harmless. --release is retried safely.`,
		Example: `  blockexec order kill --reason "venue outage, desk halt" --secret-file ~/.blockexec/ops.secret
  blockexec order kill --release --secret-file ~/.blockexec/ops.secret`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if release && reason != "" {
				return &exitError{exitBadInput, errors.New("--reason goes with a kill, not with --release")}
			}
			out := cmd.OutOrStdout()
			if release {
				return o.run(cmd.Context(), "release the kill switch", func(ctx context.Context, c *client.Client) error {
					k, err := c.ReleaseKill(ctx)
					if err != nil {
						return err
					}
					if o.asJSON {
						return writeJSON(out, k)
					}
					fmt.Fprintln(out, "kill switch released: orders may be submitted again")
					return nil
				})
			}
			return o.run(cmd.Context(), "kill", func(ctx context.Context, c *client.Client) error {
				res, err := c.Kill(ctx, reason)
				if err != nil {
					return err
				}
				if o.asJSON {
					return writeJSON(out, res)
				}
				fmt.Fprintf(out, "kill switch engaged: %d orders cancelled; new orders are refused until kill --release\n", len(res.Cancelled))
				for _, ord := range res.Cancelled {
					fmt.Fprintf(out, "  %s  %s  %s %s %s, filled %s\n", ord.ID, ord.Client, ord.Side, ord.Quantity, ord.Symbol, ord.FilledQuantity)
				}
				for _, e := range res.Errors {
					fmt.Fprintf(out, "  warning: %s\n", e)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the orders' events and the audit trail")
	cmd.Flags().BoolVar(&release, "release", false, "release the kill switch instead")
	return cmd
}

func newOrderAmendCmd(o *orderOpts) *cobra.Command {
	var floor, ceiling, band, maxPart, end string
	cmd := &cobra.Command{
		Use:   "amend ID [--floor P | --ceiling P] [--band-bps B] [--max-participation R] [--end T]",
		Short: "Change a working order's limits or end time",
		Long: `amend changes a working order's terms from its next slice: the floor (sell)
or ceiling (buy) price, 0 to remove it; the slippage band; the participation
cap; the end time. Only the flags given change. The service checks the new
terms as at submission and refuses bad ones with the field (exit 2, nothing
changed). The values are absolute, so a retried amend sets what the first
attempt set.`,
		Example: `  blockexec order amend unwind-0412 --floor 60500
  blockexec order amend unwind-0412 --band-bps 30 --max-participation 0.05
  blockexec order amend unwind-0412 --end 2026-11-02T20:00:00Z --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var a api.Amendment
			var err error
			for _, d := range []struct {
				flag, text string
				to         **decimal.Decimal
			}{{"floor", floor, &a.FloorPrice}, {"ceiling", ceiling, &a.CeilingPrice}, {"band-bps", band, &a.SlippageBandBps},
				{"max-participation", maxPart, &a.MaxParticipation}} {
				if *d.to, err = flagDecimal(d.flag, d.text); err != nil {
					return err
				}
			}
			if a.End, err = flagTime("end", end); err != nil {
				return err
			}
			if a == (api.Amendment{}) {
				return &exitError{exitBadInput, errors.New("nothing to amend: give --floor, --ceiling, --band-bps, --max-participation or --end")}
			}
			return o.run(cmd.Context(), "amend", func(ctx context.Context, c *client.Client) error {
				ord, err := c.Amend(ctx, args[0], a)
				if err != nil {
					return err
				}
				return o.printOrder(cmd.OutOrStdout(), ord)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&floor, "floor", "", "new floor price (sell orders); 0 removes it")
	fl.StringVar(&ceiling, "ceiling", "", "new ceiling price (buy orders); 0 removes it")
	fl.StringVar(&band, "band-bps", "", "new slippage band, basis points")
	fl.StringVar(&maxPart, "max-participation", "", "new participation cap, in (0, 1]")
	fl.StringVar(&end, "end", "", "new end time, RFC 3339")
	return cmd
}

func newOrderListCmd(o *orderOpts) *cobra.Command {
	var state string
	cmd := &cobra.Command{
		Use:   "list [--state S]",
		Short: "List orders, optionally in one state",
		Long: `list shows the orders the key may see (its client's; every client's for an
admin key), one line each: id, state, side, symbol, quantity, filled, average
price, shortfall against the arrival price, end time. --state keeps one of
accepted, working, paused, done, cancelled, failed.`,
		Example: `  blockexec order list
  blockexec order list --state working
  blockexec order list --json | jq '.[].id'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context(), "list", func(ctx context.Context, c *client.Client) error {
				orders, err := c.List(ctx, state)
				if err != nil {
					return err
				}
				if o.asJSON {
					return writeJSON(cmd.OutOrStdout(), orders)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tSTATE\tSIDE\tSYMBOL\tQTY\tFILLED\tAVG PRICE\tSHORTFALL BPS\tEND")
				for _, x := range orders {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", x.ID, x.State, x.Side, x.Symbol, x.Quantity,
						x.FilledQuantity, x.AveragePrice, x.ShortfallBps, x.End.Format(time.RFC3339))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "only orders in this state")
	return cmd
}

func newOrderFillsCmd(o *orderOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "fills ID",
		Short: "List an order's fills from the settlement ledger",
		Long: `fills lists every fill of an order as the settlement ledger holds it: time,
venue, side, quantity, price, fee and its asset, maker or taker, and the
venue's trade id. The ledger records each fill once, so this is the
authoritative record for reconciliation.`,
		Example: `  blockexec order fills unwind-0412
  blockexec order fills unwind-0412 --json > fills.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd.Context(), "fills", func(ctx context.Context, c *client.Client) error {
				fills, err := c.Fills(ctx, args[0])
				if err != nil {
					return err
				}
				if o.asJSON {
					return writeJSON(cmd.OutOrStdout(), fills)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TIME\tVENUE\tSIDE\tQTY\tPRICE\tFEE\tLIQUIDITY\tTRADE")
				for _, f := range fills {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s %s\t%s\t%s\n", f.Time.Format(time.RFC3339Nano), f.Venue, f.Side,
						f.Qty, f.Price, f.Fee, f.FeeAsset, f.Liquidity, f.TradeID)
				}
				return tw.Flush()
			})
		},
	}
}

func newOrderWatchCmd(o *orderOpts) *cobra.Command {
	var after int64
	cmd := &cobra.Command{
		Use:   "watch ID [--after SEQ]",
		Short: "Follow an order's events until it ends",
		Long: `watch follows an order's events as they happen (the server-sent event stream)
and prints one line each: accepted, slices, child orders placed, rejected
(with the risk check and its numbers) or cancelled, short slices and why,
pauses, amendments, and done with the tally. It replays the order's events
from the first (or after --after) and stops after done; a dropped stream is
reopened from the last event received, none lost or repeated. --json prints
each event as one JSON line. Ctrl-C stops watching, not the order.`,
		Example: `  blockexec order watch unwind-0412
  blockexec order watch unwind-0412 --after 120
  blockexec order watch unwind-0412 --json | jq -c 'select(.kind == "child_rejected")'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			out := cmd.OutOrStdout()
			evs, errs := c.Events(ctx, args[0], after)
			for ev := range evs {
				if o.asJSON {
					if err := json.NewEncoder(out).Encode(ev); err != nil {
						return err
					}
					continue
				}
				fmt.Fprintln(out, eventLine(ev))
			}
			err = <-errs
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				return nil // stopped by the user
			}
			return orderError("watch", err)
		},
	}
	cmd.Flags().Int64Var(&after, "after", 0, "only events after this sequence number")
	return cmd
}

// eventLine is one event for a human.
func eventLine(ev api.Event) string {
	head := fmt.Sprintf("%s  #%-4d %-15s", ev.Time.Format(time.RFC3339), ev.Seq, ev.Kind)
	var detail string
	switch {
	case ev.Parent != nil:
		p := ev.Parent
		detail = fmt.Sprintf("%s %s %s %s until %s, arrival %s, band %s bps, max participation %s, limit %s, venues %s",
			p.Side, p.Quantity, p.Symbol, p.Strategy, p.End.Format(time.RFC3339), p.ArrivalPrice, p.SlippageBandBps,
			p.MaxParticipation, p.LimitPrice, strings.Join(p.Venues, ","))
	case ev.Slice != nil:
		detail = fmt.Sprintf("slice %d: target %s, filled %s, shortfall %s", ev.Slice.Seq, ev.Slice.Target, ev.Slice.Filled,
			ev.Slice.Shortfall)
	case ev.Child != nil:
		ch := ev.Child
		detail = fmt.Sprintf("%s %s %s @ %s %s, filled %s", ch.Venue, ch.Side, ch.Qty, ch.Price, ch.TIF, ch.Filled)
		if ch.Status != "" {
			detail += ", " + ch.Status
		}
		detail += " [" + ch.ClientID + "]"
	case ev.Rejection != nil:
		r := ev.Rejection
		detail = fmt.Sprintf("%s %s @ %s refused by %s: %s", r.Venue, r.Qty, r.Price, r.Check, r.Reason)
	case ev.Short != nil:
		why := make([]string, len(ev.Short.Venues))
		for i, v := range ev.Short.Venues {
			why[i] = v.Venue + ": " + v.Reason
		}
		detail = fmt.Sprintf("placed %s of %s; %s", ev.Short.Placed, ev.Short.Shortfall, strings.Join(why, "; "))
	case ev.Summary != nil:
		s := ev.Summary
		detail = fmt.Sprintf("%s: filled %s, unfilled %s, %d children, %d fills, %d rejections", s.State, s.Filled,
			s.Unfilled, s.ChildOrders, s.Fills, s.Rejections)
		if s.Reason != "" {
			detail += " (" + s.Reason + ")"
		}
	}
	return strings.TrimRight(head+" "+detail, " ")
}

// printOrder prints an order as JSON or as lines.
func (o *orderOpts) printOrder(out io.Writer, ord api.Order) error {
	if o.asJSON {
		return writeJSON(out, ord)
	}
	writeOrder(out, ord)
	return nil
}

// writeOrder prints an order's fields, one a line.
func writeOrder(out io.Writer, x api.Order) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, a...)...) }
	row("id", "%s", x.ID)
	row("state", "%s", x.State)
	if x.Reason != "" {
		row("reason", "%s", x.Reason)
	}
	row("order", "%s %s %s, %s", x.Side, x.Quantity, x.Symbol, x.Strategy)
	row("filled", "%s of %s (unfilled %s, pending %s, schedule target %s)", x.FilledQuantity, x.Quantity,
		x.UnfilledQuantity, x.PendingQuantity, x.Target)
	row("average price", "%s (arrival %s, shortfall %s bps, market VWAP %s)", x.AveragePrice, x.ArrivalPrice,
		x.ShortfallBps, x.MarketVWAP)
	limit := "none"
	if !x.LimitPrice.IsZero() {
		limit = map[string]string{"sell": "floor ", "buy": "ceiling "}[x.Side] + x.LimitPrice.String()
	}
	row("limits", "%s, band %s bps, max participation %s", limit, x.SlippageBandBps, x.MaxParticipation)
	row("window", "%s to %s", x.Start.Format(time.RFC3339), x.End.Format(time.RFC3339))
	row("venues", "%s", strings.Join(x.Venues, ", "))
	row("children", "%d (%d fills, %d rejections), fees %s", x.ChildOrders, x.Fills, x.Rejections, x.Fees)
	row("updated", "%s", x.Updated.Format(time.RFC3339))
	_ = tw.Flush()
}

// writeJSON prints v as indented JSON.
func writeJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
