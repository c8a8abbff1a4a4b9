package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/engine"
)

func TestProgress_LinePerTenthAndOneFinalLine(t *testing.T) {
	var out bytes.Buffer
	u := newProgressUI(&out, false, []string{"p1"})
	qty := decimal.NewFromInt(100)
	at := time.Date(2024, 10, 1, 8, 0, 0, 0, time.UTC)
	for i := 1; i <= 100; i++ {
		u.Progress(engine.Progress{ParentID: "p1", State: engine.Working, Qty: qty, Filled: decimal.NewFromInt(int64(i)),
			Target: decimal.NewFromInt(int64(i)), AvgPrice: decimal.NewFromInt(63000), Now: at})
	}
	u.Progress(engine.Progress{ParentID: "p1", State: engine.Done, Qty: qty, Filled: qty, Target: qty,
		AvgPrice: decimal.NewFromInt(63000), Now: at})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 10 {
		t.Fatalf("%d lines, want 9 tenths and the final one:\n%s", len(lines), out.String())
	}
	if !strings.Contains(lines[0], "filled  10.0%") || !strings.HasSuffix(lines[9], "done") || !strings.Contains(lines[9], "100.0%") {
		t.Fatalf("lines:\n%s", out.String())
	}
}
