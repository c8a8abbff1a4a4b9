package settlement

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/bus"
)

// benchFills is how many fills one round of BenchmarkRecorder publishes,
// and benchRounds how many rounds of each measure one iteration takes.
const (
	benchFills  = 50_000
	benchRounds = 3
)

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkRecorder measures fills per second through publish → JetStream
// → recorder → ledger, checking exactly once (rows at the end =
// published), beside the raw JetStream async publish rate of the same
// messages on the same server, measured in the same run (each the median
// of benchRounds rounds, taken in turn); and the drain rate, one recorder
// taking fills already stored (drain_ratio: against the raw rate). Servers: the
// embedded one, and BLOCKEXEC_TEST_NATS_URL's when set; ledgers: SQLite,
// and a fresh schema on BLOCKEXEC_TEST_PG_DSN's server when set. Run:
//
//	go test -run '^$' -bench Recorder -benchtime 1x ./settlement/
func BenchmarkRecorder(b *testing.B) {
	servers := []struct{ name, url string }{{"embedded", ""}, {"external", os.Getenv("BLOCKEXEC_TEST_NATS_URL")}}
	for _, srv := range servers {
		for _, be := range backends() {
			b.Run(srv.name+"/"+be.name, func(b *testing.B) {
				if srv.name == "external" && srv.url == "" {
					b.Skip("BLOCKEXEC_TEST_NATS_URL not set: skipping the external NATS server")
				}
				c, err := bus.Connect(context.Background(), bus.Options{URL: srv.url, StoreDir: filepath.Join(b.TempDir(), "nats")}, zerolog.Nop())
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(c.Close)
				l := openBench(b, be)
				// Other work on the machine moves both rates from one second
				// to the next: they are measured in turn, benchRounds times
				// each, and the medians reported.
				var raws, recs, drains []float64
				for i := 0; i < b.N*benchRounds; i++ {
					raws = append(raws, rawPublishRate(b, c))
					recs = append(recs, recordedRate(b, c, l, false))
					drains = append(drains, recordedRate(b, c, l, true))
				}
				raw, rec, drain := median(raws), median(recs), median(drains)
				b.ReportMetric(rec, "fills/s")
				b.ReportMetric(raw, "raw_pub/s")
				b.ReportMetric(rec/raw, "ratio")
				b.ReportMetric(drain, "drain_fills/s")
				b.ReportMetric(drain/raw, "drain_ratio")
			})
		}
	}
}

// openBench opens a ledger of b for a benchmark: backend.open wants a
// *testing.T, so this is its twin for *testing.B.
func openBench(b *testing.B, be backend) *Ledger {
	b.Helper()
	var l *Ledger
	var err error
	switch be.name {
	case DriverSQLite:
		l, err = OpenSQLite(filepath.Join(b.TempDir(), "ledger.db"))
	default:
		l, err = OpenPostgres(pgSchema(b))
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}

func benchID() string {
	var r [6]byte
	_, _ = rand.Read(r[:])
	return hex.EncodeToString(r[:])
}

// benchBodies returns n fills of parent as the engine publishes them, with
// their Msg-Ids.
func benchBodies(b *testing.B, parent string, n int) (bodies [][]byte, ids []string) {
	b.Helper()
	at := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	for i := range n {
		f := bus.FillMsg{Schema: bus.FillSchema, ParentID: parent, ClientID: fmt.Sprintf("%s-%d-simA-0", parent, i/10),
			OrderID: fmt.Sprintf("o-%d", i/10), Venue: "simA", TradeID: fmt.Sprintf("%s-%d", parent, i), Symbol: "BTCUSDT",
			Side: "sell", Price: decimal.RequireFromString("63012.35"), Qty: decimal.RequireFromString("0.01234"),
			Fee: decimal.RequireFromString("0.31102418"), FeeAsset: "USDT", Liquidity: "taker", Time: at.Add(time.Duration(i) * time.Millisecond)}
		body, err := json.Marshal(f)
		if err != nil {
			b.Fatal(err)
		}
		bodies, ids = append(bodies, body), append(ids, f.MsgID())
	}
	return bodies, ids
}

// publishAll publishes bodies asynchronously and waits for every ack,
// returning the highest stream sequence acknowledged.
func publishAll(b *testing.B, js jetstream.JetStream, subject string, bodies [][]byte, ids []string) uint64 {
	b.Helper()
	futures := make([]jetstream.PubAckFuture, len(bodies))
	for i, body := range bodies {
		// A server slower than the pipeline is deep stalls the publisher:
		// a stall waits, it does not fail the run.
		f, err := js.PublishAsync(subject, body, jetstream.WithMsgID(ids[i]), jetstream.WithStallWait(time.Minute))
		if err != nil {
			b.Fatal(err)
		}
		futures[i] = f
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(2 * time.Minute):
		b.Fatal("async publishes not acknowledged after 2 minutes")
	}
	var last uint64
	for _, f := range futures {
		select {
		case ack := <-f.Ok():
			last = max(last, ack.Sequence)
		case err := <-f.Err():
			b.Fatal(err)
		}
	}
	return last
}

// asyncJS is a JetStream context for async publishing with room for a
// deep pipeline, on a connection of its own: the engine's, not the
// recorder's.
func asyncJS(b *testing.B, c *bus.Conn) jetstream.JetStream {
	b.Helper()
	nc, err := c.Dial("bench-publisher")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	return js
}

// rawPublishRate is JetStream's async publish rate for fill messages on a
// stream of its own (file storage, Msg-Ids, as the fills stream), deleted
// afterwards.
func rawPublishRate(b *testing.B, c *bus.Conn) float64 {
	b.Helper()
	ctx := context.Background()
	id := benchID()
	name, subject := "BENCH_RAW_"+id, "bench.raw."+id
	if _, err := c.JS.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subject},
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Hour}); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = c.JS.DeleteStream(ctx, name) }()
	bodies, ids := benchBodies(b, "raw"+id, benchFills)
	js := asyncJS(b, c)
	start := time.Now()
	publishAll(b, js, subject, bodies, ids)
	return benchFills / time.Since(start).Seconds()
}

// recordedRate publishes benchFills fills of a fresh parent to the fills
// stream with a recorder running, and times until the recorder has
// acknowledged the last one; then checks that the ledger holds each once.
// With drain, the fills are published first and the clock runs from the
// recorder's start: what one recorder sustains when it does not share the
// CPU with the publisher and the server (on its own host, as blockexec
// recorder runs in production).
func recordedRate(b *testing.B, c *bus.Conn, l *Ledger, drain bool) float64 {
	b.Helper()
	ctx := context.Background()
	id := benchID()
	parent := "bench-" + id
	rec := NewRecorder(c.JS, l, zerolog.Nop(), "bench-"+id)
	rec.filters = map[string]string{bus.FillsStream: bus.FillsSubject + "." + parent + ".>",
		bus.EventsStream: bus.EventsSubject + "." + parent + ".>"}
	if !drain {
		if err := rec.Start(ctx); err != nil {
			b.Fatal(err)
		}
	}
	defer func() {
		rec.Stop()
		for _, stream := range []string{bus.FillsStream, bus.EventsStream} {
			_ = c.JS.DeleteConsumer(ctx, stream, "bench-"+id)
		}
		// A shared server keeps nothing of the run.
		if s, err := c.JS.Stream(ctx, bus.FillsStream); err == nil {
			_ = s.Purge(ctx, jetstream.WithPurgeSubject(bus.FillsSubject+"."+parent+".>"))
		}
	}()
	bodies, ids := benchBodies(b, parent, benchFills)
	js := asyncJS(b, c)
	start := time.Now()
	last := publishAll(b, js, bus.FillSubjectFor(parent, "simA"), bodies, ids)
	if drain {
		start = time.Now()
		if err := rec.Start(ctx); err != nil {
			b.Fatal(err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := rec.WaitFor(wctx, bus.Marks{bus.FillsStream: last}); err != nil {
		b.Fatal(err)
	}
	rate := benchFills / time.Since(start).Seconds()
	var rows int
	if err := l.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM fills WHERE parent_id = ?`, parent).Scan(&rows); err != nil {
		b.Fatal(err)
	}
	if rows != benchFills {
		b.Fatalf("ledger holds %d fills of %s, published %d: not exactly once", rows, parent, benchFills)
	}
	return rate
}
