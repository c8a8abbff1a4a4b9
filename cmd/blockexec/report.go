package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/blockexec/blockexec/settlement"
)

// Report formats, the values of --format.
const (
	formatTable = "table"
	formatJSON  = "json"
	formatCSV   = "csv"
)

type reportFlags struct {
	ledger string
	parent string
	format string
	json   bool // deprecated: --format json
	csv    string
	out    string
	chart  string
}

func newReportCmd() *cobra.Command {
	var f reportFlags
	cmd := &cobra.Command{
		Use:   "report --ledger PATH",
		Short: "Print the settlement report of parent orders from a ledger, as a table, JSON or CSV, and chart one",
		Long: fmt.Sprintf(`report reads a settlement ledger alone (no engine, no NATS) and prints, per
parent order, what run prints at its end: quantity filled and unfilled,
average price against the arrival price (shortfall in bps), market VWAP,
fees, net proceeds, child orders, fills, rejections, and the settlement by
venue and fee asset (fills, quantity, gross, fees, net; exact sums) to
confirm net against gross with each venue. Fees charged in another asset
than the quote (Binance's BNB) stay on their own line, never added to
quote amounts.

--format table (default) is for people; --format json has the same
figures (the fields --report-json of run writes, documented in the
README); --format csv prints one row per fill for tax and audit records:
  %s
(times in UTC, RFC 3339; decimals exactly as recorded). --out PATH writes
the chosen format to a file instead of standard output.

--csv PATH also writes the fill CSV to a file, whatever the format.
--json is the old spelling of --format json.

--chart PATH draws one parent (--parent, needed when the ledger holds
more than one) as a %d×%d image, PNG or SVG by the name's extension:
above, the cumulative filled quantity against the schedule's target over
time; below, each fill's price (a colour per venue) against the arrival
price and the market VWAP. The chart comes in addition to the report.

Conflicting flags (--json with another --format, two outputs to one file)
stop with exit code 2 before the ledger is read.`, settlement.FillsCSVHeader, settlement.ChartWidth, settlement.ChartHeight),
		Example: `  blockexec report --ledger data/example/ledger.db
  blockexec report --ledger data/example/ledger.db --parent unwind-1 --format json
  blockexec report --ledger data/example/ledger.db --format csv > fills.csv
  blockexec report --ledger data/example/ledger.db --format csv --out fills.csv
  blockexec report --ledger data/example/ledger.db --csv fills.csv           # table, and the CSV to a file
  blockexec report --ledger data/example/ledger.db --parent unwind-1 --chart unwind.png
  blockexec report --ledger data/example/ledger.db --chart unwind.svg        # a ledger of one parent`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.json {
				if cmd.Flags().Changed("format") && f.format != formatJSON {
					return &exitError{exitBadConfig, fmt.Errorf("--json is --format json; it cannot go with --format %s", f.format)}
				}
				// On stderr, so that a script reading the JSON is not disturbed.
				fmt.Fprintln(cmd.ErrOrStderr(), "blockexec report: --json is deprecated; use --format json")
				f.format = formatJSON
			}
			return reportCommand(cmd.Context(), f, cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.ledger, "ledger", "", "the ledger: a SQLite file written by run (e.g. data/ledger.db), or a postgres:// URL")
	fl.StringVar(&f.parent, "parent", "", "only this parent order id (default: every parent)")
	fl.StringVar(&f.format, "format", formatTable, "output format: table, json or csv (one row per fill)")
	fl.StringVar(&f.out, "out", "", "write the report to this file instead of standard output")
	fl.StringVar(&f.csv, "csv", "", "also write every fill as CSV to this path")
	fl.StringVar(&f.chart, "chart", "", fmt.Sprintf("also draw one parent's execution against its schedule and the market, %d×%d, to this .png or .svg",
		settlement.ChartWidth, settlement.ChartHeight))
	fl.BoolVar(&f.json, "json", false, "deprecated: use --format json")
	_ = cmd.MarkFlagRequired("ledger")
	return cmd
}

// check refuses flags that cannot go together, before anything is read.
func (f reportFlags) check() error {
	switch f.format {
	case formatTable, formatJSON, formatCSV:
	default:
		return fmt.Errorf("--format %q: allowed: %s, %s, %s", f.format, formatTable, formatJSON, formatCSV)
	}
	if err := checkChartPath(f.chart); err != nil {
		return err
	}
	files := map[string]string{}
	for _, o := range [][2]string{{"--out", f.out}, {"--csv", f.csv}, {"--chart", f.chart}} {
		if o[1] == "" {
			continue
		}
		p := filepath.Clean(o[1])
		if prev, dup := files[p]; dup {
			return fmt.Errorf("%s and %s both write %s", prev, o[0], o[1])
		}
		if p == filepath.Clean(f.ledger) {
			return fmt.Errorf("%s %s would overwrite the ledger", o[0], o[1])
		}
		files[p] = o[0]
	}
	return nil
}

func reportCommand(ctx context.Context, f reportFlags, stdout io.Writer) error {
	if err := f.check(); err != nil {
		return &exitError{exitBadConfig, err}
	}
	isURL := strings.HasPrefix(f.ledger, "postgres://") || strings.HasPrefix(f.ledger, "postgresql://")
	if _, err := os.Stat(f.ledger); err != nil && !isURL {
		return &exitError{exitBadConfig, fmt.Errorf("ledger %s: %w", f.ledger, err)}
	}
	l, err := settlement.OpenURL(f.ledger)
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
	chartParent := f.parent
	if f.chart != "" && chartParent == "" {
		if len(reps) > 1 {
			ids := make([]string, len(reps))
			for i, r := range reps {
				ids[i] = r.ParentID
			}
			return &exitError{exitBadConfig, fmt.Errorf("--chart draws one parent and ledger %s holds %d (%s): add --parent ID",
				f.ledger, len(reps), strings.Join(ids, ", "))}
		}
		chartParent = reps[0].ParentID
	}
	var buf bytes.Buffer
	switch f.format {
	case formatJSON:
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		err = enc.Encode(reps)
	case formatCSV:
		err = writeFillsCSV(ctx, l, f.parent, &buf)
	default:
		err = settlement.WriteText(&buf, reps)
	}
	if err != nil {
		return err
	}
	if f.out != "" {
		err = os.WriteFile(f.out, buf.Bytes(), 0o644)
	} else {
		_, err = stdout.Write(buf.Bytes())
	}
	if err != nil {
		return err
	}
	if f.csv != "" {
		if err := writeFile(f.csv, func(w io.Writer) error { return writeFillsCSV(ctx, l, f.parent, w) }); err != nil {
			return err
		}
	}
	if f.chart != "" {
		x, err := l.Execution(ctx, chartParent)
		if err != nil {
			return err
		}
		format, _ := chartFormat(f.chart) // checked above
		return writeFile(f.chart, func(w io.Writer) error { return settlement.WriteChart(w, format, x) })
	}
	return nil
}

func writeFillsCSV(ctx context.Context, l *settlement.Ledger, parent string, w io.Writer) error {
	fills, err := l.Fills(ctx, parent)
	if err != nil {
		return err
	}
	return settlement.WriteFillsCSV(w, fills)
}

// writeFile creates path and writes it with fn.
func writeFile(path string, fn func(io.Writer) error) error {
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := fn(fh); err != nil {
		fh.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return fh.Close()
}
