package main

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/api"
	"github.com/blockexec/blockexec/clock"
	"github.com/blockexec/blockexec/engine"
)

// BenchmarkServe1000 is issue 5's scale target: blockexec serve on the
// three sim venues of the example with 1,000 parents at once, submitted
// through the signed HTTP API by 16 concurrent clients. It reports
// submits/s and the API's p50/p99 latency (submit and status), the CPU of
// the whole process (engine, embedded NATS, recorder, ledger) per
// parent-tick over five one-minute slices of all 1,000, and the heap per
// parent. One op is the whole scenario. It runs twice: as shipped, and
// with the engine's loop kept on one thread (Engine.MeasureLoopCPU), which
// adds the loop's own CPU per parent-tick, apart from the bus, the
// recorder and the API, at the cost of the thread hand-offs the lock
// causes in the process's figure.
func BenchmarkServe1000(b *testing.B) {
	b.Run("as-shipped", func(b *testing.B) { benchServe(b, false) })
	b.Run("loop-measured", func(b *testing.B) { benchServe(b, true) })
}

func benchServe(b *testing.B, measureLoop bool) {
	const parents, workers, slices = 1000, 16, 5
	for b.Loop() {
		b.StopTimer()
		cfg, secrets := servedConfig(b)
		var tune []func(*engine.Engine)
		if measureLoop {
			tune = append(tune, (*engine.Engine).MeasureLoopCPU)
		}
		sv := serveOn(b, cfg, secrets, clock.NewManual(clock.Wall{}.Now().Truncate(time.Minute)), tune...)
		c := sv.client(b, "fund-a-1")
		ctx := context.Background()
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		b.StartTimer()

		submit := timeAll(b, parents, workers, func(i int) error {
			req := api.OrderRequest{ClientOrderID: fmt.Sprintf("p-%04d", i), Side: "sell", Symbol: "BTCUSDT",
				Quantity: decimal.RequireFromString("0.06"), Duration: "1h",
				MaxParticipation: decimal.NewFromInt(1), SlippageBandBps: decimal.NewFromInt(200)}
			_, _, err := c.Submit(ctx, req)
			return err
		})
		status := timeAll(b, parents, workers, func(i int) error {
			_, err := c.Get(ctx, fmt.Sprintf("p-%04d", i))
			return err
		})

		// Every parent has had its first slice at submission time; now five
		// more, each waited for before the next. The recorder is drained
		// before and after, so the process's CPU is the ticks' own: the
		// loop's, and the bus's and the ledger's for what the ticks
		// published.
		waitSlices(b, sv, sv.clk.Now())
		if err := sv.s.j.rec.WaitIdle(ctx); err != nil {
			b.Fatal(err)
		}
		loop0, n0, _ := sv.s.j.eng.LoopCPU()
		cpu0 := cpuTime()
		wall0 := time.Now() //nolint:forbidigo // a benchmark measures wall time
		for k := 0; k < slices; k++ {
			sv.clk.Advance(time.Minute)
			waitSlices(b, sv, sv.clk.Now())
		}
		wall := time.Since(wall0) //nolint:forbidigo
		if err := sv.s.j.rec.WaitIdle(ctx); err != nil {
			b.Fatal(err)
		}
		cpu := cpuTime() - cpu0
		loop, n, measured := loop0, n0, false
		if measureLoop {
			loop, n, measured = loopAfter(b, sv, n0+parents*slices)
		}
		b.StopTimer()
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		ticks := float64(parents * slices)
		b.ReportMetric(float64(parents)/submit.total.Seconds(), "submits/s")
		b.ReportMetric(ms(submit.p50), "submit-p50-ms")
		b.ReportMetric(ms(submit.p99), "submit-p99-ms")
		b.ReportMetric(ms(status.p50), "status-p50-ms")
		b.ReportMetric(ms(status.p99), "status-p99-ms")
		b.ReportMetric(float64(cpu.Microseconds())/ticks, "cpu-µs/parent-tick")
		if measured {
			b.ReportMetric(float64((loop-loop0).Microseconds())/float64(n-n0), "loop-cpu-µs/parent-tick")
		}
		b.ReportMetric(float64(wall.Microseconds())/ticks, "wall-µs/parent-tick")
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/parents/1024, "KiB/parent")
		b.StartTimer()
	}
}

// timings are the latencies of n calls.
type timings struct {
	total, p50, p99 time.Duration
}

// timeAll runs fn for 0..n-1 on workers goroutines and times each call.
func timeAll(b *testing.B, n, workers int, fn func(i int) error) timings {
	b.Helper()
	lat := make([]time.Duration, n)
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	start := time.Now() //nolint:forbidigo
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t0 := time.Now() //nolint:forbidigo
				err := fn(i)
				lat[i] = time.Since(t0) //nolint:forbidigo
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	if first != nil {
		b.Fatal(first)
	}
	total := time.Since(start) //nolint:forbidigo
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return timings{total: total, p50: lat[n/2], p99: lat[n*99/100]}
}

// waitSlices waits until every working parent has had its slice at now.
func waitSlices(b *testing.B, sv served, now time.Time) {
	b.Helper()
	for i := 0; ; i++ {
		behind := sv.s.j.eng.Behind(now)
		if behind == 0 {
			return
		}
		if i > 12000 {
			b.Fatalf("%d parents had no slice at %s", behind, now.Format(time.Kitchen))
		}
		// Not too often: the poll's CPU counts in the benchmark.
		time.Sleep(5 * time.Millisecond)
	}
}

// loopAfter waits (bounded) until the serving loop has counted want
// slices, then returns its CPU time and slice count.
func loopAfter(b *testing.B, sv served, want int64) (time.Duration, int64, bool) {
	b.Helper()
	for i := 0; ; i++ {
		cpu, n, ok := sv.s.j.eng.LoopCPU()
		if n >= want {
			// The loop accounts its CPU as it finishes a round: once more
			// after the count, so the last slice is in.
			time.Sleep(time.Millisecond)
			cpu, n, ok = sv.s.j.eng.LoopCPU()
			return cpu, n, ok
		}
		if i > 5000 {
			b.Fatalf("the loop counted %d slices, want %d", n, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
