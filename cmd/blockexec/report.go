package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/blockexec/blockexec/settlement"
)

type reportFlags struct {
	ledger string
	parent string
	json   bool
	csv    string
}

func newReportCmd() *cobra.Command {
	var f reportFlags
	cmd := &cobra.Command{
		Use:   "report --ledger PATH",
		Short: "Print the settlement report of parent orders from a ledger",
		Long: `report reads a settlement ledger alone (no engine, no NATS) and prints, per
parent order, what run prints at its end: quantity filled and unfilled,
average price against the arrival price (shortfall in bps), market VWAP,
fees, net proceeds, child orders, fills, rejections and the per-venue split.

--json prints the same as JSON (the fields --report-json of run writes);
--csv PATH also writes one row per fill, for audit and tax records.`,
		Example: `  blockexec report --ledger data/example/ledger.db
  blockexec report --ledger data/example/ledger.db --parent unwind-btc-1 --json
  blockexec report --ledger data/example/ledger.db --csv fills.csv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return reportCommand(cmd.Context(), f, cmd)
		},
	}
	cmd.Flags().StringVar(&f.ledger, "ledger", "", "SQLite ledger file written by run (e.g. data/ledger.db)")
	cmd.Flags().StringVar(&f.parent, "parent", "", "only this parent order id (default: every parent)")
	cmd.Flags().BoolVar(&f.json, "json", false, "print JSON instead of the table")
	cmd.Flags().StringVar(&f.csv, "csv", "", "also write every fill as CSV to this path")
	_ = cmd.MarkFlagRequired("ledger")
	return cmd
}

func reportCommand(ctx context.Context, f reportFlags, cmd *cobra.Command) error {
	if _, err := os.Stat(f.ledger); err != nil {
		return &exitError{exitBadConfig, fmt.Errorf("ledger %s: %w", f.ledger, err)}
	}
	l, err := settlement.OpenSQLite(f.ledger)
	if err != nil {
		return err
	}
	defer l.Close()
	var reps []settlement.Report
	if f.parent != "" {
		r, err := l.Report(ctx, f.parent)
		if err != nil {
			return err
		}
		reps = []settlement.Report{r}
	} else if reps, err = l.Reports(ctx); err != nil {
		return err
	}
	if len(reps) == 0 {
		return &exitError{exitFailed, fmt.Errorf("ledger %s holds no parent orders", f.ledger)}
	}
	out := cmd.OutOrStdout()
	if f.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(reps); err != nil {
			return err
		}
	} else if err := settlement.WriteText(out, reps); err != nil {
		return err
	}
	if f.csv != "" {
		return writeFillsCSV(ctx, l, f.parent, f.csv)
	}
	return nil
}

func writeFillsCSV(ctx context.Context, l *settlement.Ledger, parent, path string) error {
	fills, err := l.Fills(ctx, parent)
	if err != nil {
		return err
	}
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := settlement.WriteFillsCSV(fh, fills); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}
