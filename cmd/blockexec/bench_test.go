package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/blockexec/blockexec/configs"
	"github.com/blockexec/blockexec/engine/backtest"
)

// BenchmarkRun8h runs the example unwind end to end: 8 simulated hours of
// one-minute slices on three venues, embedded NATS, recorder and SQLite
// ledger, report read back. One op is one whole run.
func BenchmarkRun8h(b *testing.B) { benchRun(b, "unwind-btc.yaml") }

// BenchmarkRun8hExchanges is the same unwind through the Binance, Coinbase
// and Kraken adapters, each over HTTP against its in-process fake.
func BenchmarkRun8hExchanges(b *testing.B) { benchRun(b, "unwind-btc-exchanges.yaml") }

func benchRun(b *testing.B, example string) {
	for b.Loop() {
		b.StopTimer()
		cfg, err := configs.Load("../../configs/examples/" + example)
		if err != nil {
			b.Fatal(err)
		}
		cfg.SetDataDir(b.TempDir())
		cfg.Run.LogLevel = "warn"
		b.StartTimer()
		res, err := execute(context.Background(), cfg, io.Discard, nil)
		if err != nil {
			b.Fatal(err)
		}
		if len(res.reports) != 1 || res.reports[0].FilledQuantity.IsZero() {
			b.Fatal("the run filled nothing")
		}
	}
}

// octoberData is the recorded month beside the checkout.
const octoberData = "../../../shared/data/binance-btcusdt-1m"

// BenchmarkBacktestOctober is issue 3's execution-quality benchmark: sell
// 500 BTC over 8 h from 08:00 UTC on every day of the recorded month with
// 7 days of history, on three replay venues, every strategy side by side.
// It reports the mean implementation shortfall per strategy (bps vs
// arrival, positive is a cost) and the ratios the targets are stated in.
func BenchmarkBacktestOctober(b *testing.B) {
	if _, err := os.Stat(octoberData); err != nil {
		b.Skipf("%s not found: the recorded data lives beside the checkout (../shared/data)", octoberData)
	}
	for b.Loop() {
		f := defaultBacktestFlags()
		f.data, f.jsonOut = octoberData, true
		var out bytes.Buffer
		if err := backtestCommand(context.Background(), f, &out, io.Discard); err != nil {
			b.Fatal(err)
		}
		var got struct {
			Strategies []backtest.Row
		}
		if err := json.Unmarshal(out.Bytes(), &got); err != nil {
			b.Fatal(err)
		}
		bestAC := math.Inf(1)
		by := map[string]backtest.Row{}
		for _, r := range got.Strategies {
			by[r.Strategy] = r
			if strings.HasPrefix(r.Strategy, "ac ") {
				bestAC = math.Min(bestAC, r.MeanISBps)
			}
			if r.Strategy != "dump" && r.Strategy != "twap-touch" && r.MaxParticipation > 0.1+1e-9 {
				b.Fatalf("%s: participation %.4f above the cap", r.Strategy, r.MaxParticipation)
			}
		}
		b.ReportMetric(by["vwap"].MeanISBps, "vwap-IS-bps")
		b.ReportMetric(by["twap"].MeanISBps, "twap-IS-bps")
		b.ReportMetric(by["twap-touch"].MeanISBps, "twap-touch-IS-bps")
		b.ReportMetric(bestAC, "best-ac-IS-bps")
		b.ReportMetric(by["vwap"].MeanISBps-by["twap-touch"].MeanISBps, "vwap-minus-touch-bps")
		b.ReportMetric(by["vwap"].MeanISBps-bestAC, "vwap-minus-best-ac-bps")
	}
}
