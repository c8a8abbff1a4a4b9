package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"

	"github.com/mattn/go-isatty"
	"github.com/shopspring/decimal"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/configs"
	"github.com/blockexec/blockexec/engine"
	"github.com/blockexec/blockexec/engine/kvjournal"
	"github.com/blockexec/blockexec/settlement"
)

// Exit codes of blockexec run.
const (
	exitFailed    = 1 // the run failed after it started
	exitBadConfig = 2 // nothing was placed
	exitMismatch  = 3 // the ledger disagrees with the engine
)

type runFlags struct {
	config     string
	dataDir    string
	reportJSON string
	quiet      bool
}

func newRunCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run -c FILE",
		Short: "Run every parent order in a config file and print the report",
		Long: `run accepts every parent order in the config file, works each on its
strategy's schedule (twap, vwap, pov or ac) of child orders across its venues
until its end time, and prints the settlement report from the ledger.

Before the first child is placed every parent is checked: a bad field, an
unknown venue, a floor above the market (sell) or a ceiling below it (buy)
stops the run with the file, line and field at fault, and nothing is placed.
Every real exchange's API key is checked too: a key that can withdraw is
refused (see blockexec keys check).

Each slice places the schedule's shortfall as immediate-or-cancel limit
orders, split across venues by the cost of walking their books inside the
slippage band (price and fee), capped by each venue's participation headroom
and max_venue_share. A venue that fails or rate-limits sits out and its share
goes to the others. What cannot trade within the limits by the end time is
reported as unfilled, never swept.

Venues are simulated (kind: sim), real exchanges (kind: binance, coinbase,
kraken; credentials from environment variables or 0600 files, run.clock:
wall), or real exchanges' adapters against in-process fakes of their APIs
(fake: true) to rehearse a run end to end on the virtual clock.

Fills go over NATS JetStream (embedded unless nats.url is set) to the
settlement recorder, which writes them once each to the ledger
(<data_dir>/ledger.db unless ledger.dsn is set). A parent id already in the
ledger is refused: use a new id or a new --data-dir.

Exit codes: 0 done, 1 run failed, 2 bad config (nothing placed),
3 ledger does not match the engine's own tally.`,
		Example: `  blockexec run -c configs/examples/unwind-btc.yaml
  blockexec run -c configs/examples/unwind-btc.yaml --data-dir /tmp/run1 --report-json /tmp/run1/report.json
  blockexec run -c configs/examples/unwind-btc-exchanges.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runCommand(ctx, f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVarP(&f.config, "config", "c", "", "config file (YAML); see configs/examples/")
	cmd.Flags().StringVar(&f.dataDir, "data-dir", "", "override run.data_dir: NATS store and SQLite ledger go here")
	cmd.Flags().StringVar(&f.reportJSON, "report-json", "", "also write the report as JSON to this path")
	cmd.Flags().BoolVarP(&f.quiet, "quiet", "q", false, "no progress output; just the report")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// runCommand loads the config, runs it and prints the report.
func runCommand(ctx context.Context, f runFlags, stdout, stderr io.Writer) error {
	cfg, err := configs.Load(f.config)
	if err != nil {
		return &exitError{exitBadConfig, err}
	}
	if len(cfg.Parents) == 0 {
		return &exitError{exitBadConfig, cfg.FieldError("parents",
			"missing: run works the parent orders of the file and there are none (blockexec serve takes them from its API)")}
	}
	if f.dataDir != "" {
		cfg.SetDataDir(f.dataDir)
	}
	var obs engine.Observer
	var ui *progressUI
	if !f.quiet {
		ids := make([]string, len(cfg.Parents))
		for i, p := range cfg.Parents {
			ids[i] = p.ID
		}
		ui = newProgressUI(stderr, isTerminal(stderr), ids)
		obs = ui
	}
	res, err := execute(ctx, cfg, stderr, obs)
	if ui != nil {
		ui.Wait()
	}
	if err != nil {
		return err
	}
	if err := settlement.WriteText(stdout, res.reports); err != nil {
		return err
	}
	if f.reportJSON != "" {
		if err := writeJSONFile(f.reportJSON, res.reports); err != nil {
			return &exitError{exitFailed, err}
		}
	}
	if len(res.mismatches) > 0 {
		return &exitError{exitMismatch, fmt.Errorf("ledger does not match the engine: %v", res.mismatches)}
	}
	return nil
}

// result is what a finished run leaves: the engine's tallies and the
// reports recomputed from the ledger.
type result struct {
	summaries  []engine.Summary
	reports    []settlement.Report
	mismatches []string
}

// execute runs a loaded config end to end: start the graph, refuse parents
// already in the ledger, run the engine, wait for the recorder to catch up,
// and read the reports back from the ledger.
func execute(ctx context.Context, cfg *configs.Config, logOut io.Writer, obs engine.Observer) (*result, error) {
	j, err := newJob(cfg, logOut)
	var fe *configs.FieldError
	if errors.As(err, &fe) {
		return nil, &exitError{exitBadConfig, fe} // the config's own words, not the wiring's
	}
	if err != nil {
		return nil, &exitError{exitFailed, err}
	}
	return j.execute(ctx, obs)
}

func (j *job) execute(ctx context.Context, obs engine.Observer) (_ *result, err error) {
	if err := j.start(ctx); err != nil {
		return nil, &exitError{exitFailed, fmt.Errorf("start: %w", err)}
	}
	defer func() {
		if serr := j.stop(); serr != nil && err == nil {
			err = &exitError{exitFailed, fmt.Errorf("stop: %w", serr)}
		}
	}()
	return j.run(ctx, obs)
}

// run works the parents on a started graph and reads the reports back.
func (j *job) run(ctx context.Context, obs engine.Observer) (*result, error) {
	// Every parent is checkpointed on the bus (JetStream KeyValue): a run
	// that was killed resumes where it stood when started again.
	journal, err := kvjournal.New(ctx, j.conn.JS, j.conn.Replicas(), runOwnerPrefix+engineName())
	if err != nil {
		return nil, &exitError{exitFailed, err}
	}
	j.eng.UseJournal(journal)
	resuming := map[string]bool{}
	for i, p := range j.cfg.Parents {
		cp, found, err := journal.Load(ctx, p.ID)
		if err != nil {
			return nil, &exitError{exitFailed, err}
		}
		if st, _ := engine.ParseState(cp.State); found && st.Terminal() {
			return nil, &exitError{exitBadConfig, j.cfg.FieldError(fmt.Sprintf("parents[%d].id", i),
				fmt.Sprintf("parent %q already ended (%s) on this NATS server; use a new id or another --data-dir", p.ID, cp.State))}
		}
		if found {
			if err := sameTerms(j.cfg, i, cp.Origin); err != nil {
				return nil, &exitError{exitBadConfig, err}
			}
			j.log.Warn().Str("parent", p.ID).Str("state", cp.State).Stringer("filled", cp.Filled).
				Time("checkpoint", cp.Saved).Msg("resuming an interrupted parent from its checkpoint")
			resuming[p.ID] = true
			continue // in the ledger and on the bus already: it goes on, under the same id
		}
		known, err := j.ledger.HasParent(ctx, p.ID)
		if err != nil {
			return nil, &exitError{exitFailed, err}
		}
		if known {
			return nil, &exitError{exitBadConfig, j.cfg.FieldError(fmt.Sprintf("parents[%d].id", i),
				fmt.Sprintf("parent %q is already in the ledger %s; use a new id or another --data-dir", p.ID, j.cfg.LedgerName()))}
		}
		seen, err := bus.ParentSeen(ctx, j.conn.JS, p.ID)
		if err != nil {
			return nil, &exitError{exitFailed, err}
		}
		if seen {
			return nil, &exitError{exitBadConfig, j.cfg.FieldError(fmt.Sprintf("parents[%d].id", i),
				fmt.Sprintf("parent %q was already run on this NATS server; parent ids must be unique there", p.ID))}
		}
	}
	if err := checkWallEnds(j.cfg, j.clk.Now(), resuming); err != nil {
		return nil, &exitError{exitBadConfig, err}
	}
	if err := j.checkKeys(ctx); err != nil {
		return nil, err
	}
	j.eng.SetObserver(obs)
	j.log.Info().Int("parents", len(j.cfg.Parents)).Strs("venues", j.eng.VenueNames()).Msg("run started")
	specs, err := parentSpecs(j.cfg)
	if err != nil {
		return nil, &exitError{exitBadConfig, err}
	}
	sums, runErr := j.eng.Run(ctx, specs)
	var se *engine.SpecError
	if errors.As(runErr, &se) {
		return nil, &exitError{exitBadConfig, specFieldError(j.cfg, runErr)}
	}
	// Whatever happened, settle what was published before reporting.
	if err := j.rec.WaitIdle(context.WithoutCancel(ctx)); err != nil {
		return nil, &exitError{exitFailed, fmt.Errorf("settle: %w", err)}
	}
	if runErr != nil {
		return nil, &exitError{exitFailed, fmt.Errorf("run: %w", runErr)}
	}
	res := &result{summaries: sums}
	for _, s := range sums {
		rep, err := j.ledger.Report(ctx, s.ParentID)
		if err != nil {
			return nil, &exitError{exitFailed, fmt.Errorf("report %s: %w", s.ParentID, err)}
		}
		res.reports = append(res.reports, rep)
		res.mismatches = append(res.mismatches, reconcile(s, rep)...)
	}
	return res, nil
}

// reconcile compares the engine's own tally with the ledger's report.
func reconcile(s engine.Summary, r settlement.Report) []string {
	var out []string
	check := func(name string, eng, led decimal.Decimal) {
		if !eng.Equal(led) {
			out = append(out, fmt.Sprintf("%s %s: engine %s, ledger %s", s.ParentID, name, eng, led))
		}
	}
	check("filled", s.Filled, r.FilledQuantity)
	check("fees", s.Fees, r.Fees)
	for _, asset := range unionKeys(s.OtherFees, r.OtherFees) {
		check("fees in "+asset, s.OtherFees[asset], r.OtherFees[asset])
	}
	check("gross", s.Notional, r.GrossProceeds)
	if s.Fills != r.Fills {
		out = append(out, fmt.Sprintf("%s fills: engine %d, ledger %d", s.ParentID, s.Fills, r.Fills))
	}
	if s.ChildOrders != r.ChildOrders {
		out = append(out, fmt.Sprintf("%s child orders: engine %d, ledger %d", s.ParentID, s.ChildOrders, r.ChildOrders))
	}
	return out
}

func writeJSONFile(path string, v any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// isTerminal reports whether w is a terminal that reports a size: bars
// cannot be drawn on one without columns (some pseudo-terminals).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || !(isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())) {
		return false
	}
	cols, _, err := term.GetSize(int(f.Fd()))
	return err == nil && cols > 0
}

// unionKeys returns the keys of both maps, sorted.
func unionKeys(a, b map[string]decimal.Decimal) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range []map[string]decimal.Decimal{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}
