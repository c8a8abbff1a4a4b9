// Command blockexec sells (or buys) large blocks as TWAP child orders across
// venues, with pre-trade risk on every child, fills over NATS JetStream and a
// settlement ledger with reports.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// exitError carries a process exit code with its message.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	root := newRoot()
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "blockexec:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "blockexec",
		Short: "Algorithmic block execution: TWAP child orders across venues, risk-checked, settled to a ledger",
		Long: `blockexec works a large parent order ("sell 400 BTC over 8 hours, at most
10 % of market volume, never below 61,000") as a schedule of child orders
split across several venues. Every child passes pre-trade risk (slippage band
around the arrival price, floor or ceiling, participation cap, notional cap,
venue rules, kill switch). Every fill is published on NATS JetStream and
recorded once in a settlement ledger, from which the reports are made.

With the example configuration everything runs in one process: simulated
venues on a virtual clock, an embedded NATS server and a SQLite ledger.`,
		Example: `  blockexec run -c configs/examples/unwind-btc.yaml
  blockexec run -c my-unwind.yaml --report-json report.json
  blockexec report --ledger data/ledger.db --csv fills.csv`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRunCmd(), newServeCmd(), newReportCmd(), newBacktestCmd(), newPlanCmd(), newKeysCmd())
	root.AddCommand(newOrderCmd())
	root.AddCommand(newWatchCmd(), newRecorderCmd())
	return root
}
