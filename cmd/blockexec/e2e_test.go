package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/configs"
	"github.com/blockexec/blockexec/engine"
	"github.com/blockexec/blockexec/market"
	"github.com/blockexec/blockexec/risk"
)

// loadExample loads an example config into a fresh data directory, with
// logs kept to warnings.
func loadExample(t *testing.T, name string) *configs.Config {
	t.Helper()
	cfg, err := configs.Load("../../configs/examples/" + name)
	if err != nil {
		t.Fatal(err)
	}
	cfg.SetDataDir(t.TempDir())
	cfg.Run.LogLevel = zerolog.WarnLevel.String()
	return cfg
}

// readEvents returns every event of a parent from the events stream.
func readEvents(t *testing.T, js jetstream.JetStream, parent string) []bus.EventMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := js.OrderedConsumer(ctx, bus.EventsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{bus.EventsSubject + "." + bus.Token(parent) + ".>"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []bus.EventMsg
	for {
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.NumPending == 0 && len(out) > 0 {
			return out
		}
		batch, err := c.FetchNoWait(500)
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			var ev bus.EventMsg
			if err := json.Unmarshal(m.Data(), &ev); err != nil {
				t.Fatalf("event body: %v", err)
			}
			out = append(out, ev)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			t.Fatal(err)
		}
	}
}

// TestExample_EndToEnd runs the example configs in process on the embedded
// default and checks the whole path: schedule, risk limits, participation,
// exactly-once settlement and the report.
func TestExample_EndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run skipped in -short mode")
	}
	for _, name := range []string{"unwind-btc.yaml", "accumulate-btc.yaml", "unwind-btc-exchanges.yaml"} {
		t.Run(name, func(t *testing.T) { runExample(t, loadExample(t, name)) })
	}
}

// TestExample_ExternalNATS runs the unwind over the NATS server named by
// BLOCKEXEC_TEST_NATS_URL instead of the embedded one.
func TestExample_ExternalNATS(t *testing.T) {
	url := os.Getenv("BLOCKEXEC_TEST_NATS_URL")
	if url == "" {
		t.Skip("BLOCKEXEC_TEST_NATS_URL not set: skipping the example over an external NATS server")
	}
	cfg := loadExample(t, "unwind-btc.yaml")
	cfg.NATS.URL = url
	var b [4]byte
	_, _ = rand.Read(b[:])
	for i := range cfg.Parents {
		cfg.Parents[i].ID += "-" + hex.EncodeToString(b[:]) // parent ids are unique per bus
	}
	runExample(t, cfg)
}

func runExample(t *testing.T, cfg *configs.Config) {
	t.Helper()
	j, err := newJob(cfg, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := j.start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := j.stop(); err != nil {
			t.Error(err)
		}
	})
	if got := len(j.eng.VenueNames()); got != len(cfg.Venues) {
		t.Fatalf("engine got %d venues from the fx group, config has %d", got, len(cfg.Venues))
	}
	res, err := j.run(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.mismatches) > 0 {
		t.Fatalf("engine and ledger disagree: %v", res.mismatches)
	}
	specs, err := parentSpecs(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range cfg.Parents {
		checkParent(t, j, specs[i].LimitPrice, p)
	}
	checkDuplicatesDropped(t, j, cfg)
}

func checkParent(t *testing.T, j *job, limit decimal.Decimal, p configs.Parent) {
	t.Helper()
	ctx := context.Background()
	rep, err := j.ledger.Report(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Never more than the parent, and the unfilled rest is what is left.
	if rep.FilledQuantity.GreaterThan(p.Quantity) || rep.UnfilledQuantity.IsNegative() ||
		!rep.FilledQuantity.Add(rep.UnfilledQuantity).Equal(p.Quantity) {
		t.Errorf("%s: filled %s + unfilled %s against quantity %s", p.ID, rep.FilledQuantity, rep.UnfilledQuantity, p.Quantity)
	}
	if rep.FilledQuantity.LessThan(p.Quantity.Div(decimal.NewFromInt(2))) {
		t.Errorf("%s: only %s of %s filled; the example should mostly complete", p.ID, rep.FilledQuantity, p.Quantity)
	}

	// Every child inside the band and the floor/ceiling.
	events := readEvents(t, j.conn.JS, p.ID)
	var arrival decimal.Decimal
	placed := 0
	children := map[string]bool{}
	for _, ev := range events {
		switch ev.Kind {
		case bus.KindAccepted:
			arrival = ev.Parent.ArrivalPrice
		case bus.KindChildPlaced:
			placed++
			children[ev.Child.ClientID] = true
			band := risk.BandLimit(p.Side, arrival, p.SlippageBandBps)
			if arrival.IsZero() || !market.Within(p.Side, ev.Child.Price, band) {
				t.Errorf("%s: child %s at %s outside the band limit %s (arrival %s)", p.ID, ev.Child.ClientID, ev.Child.Price, band, arrival)
			}
			if limit.Sign() > 0 && !market.Within(p.Side, ev.Child.Price, limit) {
				t.Errorf("%s: child %s at %s beyond the limit price %s", p.ID, ev.Child.ClientID, ev.Child.Price, limit)
			}
		}
	}
	if placed == 0 || placed != rep.ChildOrders {
		t.Errorf("%s: %d child_placed events, report says %d", p.ID, placed, rep.ChildOrders)
	}

	// Every venue fill in the ledger exactly once; report equal to the sums.
	ledgerFills, err := j.ledger.Fills(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	var qty, notional, fees decimal.Decimal
	for _, f := range ledgerFills {
		seen[f.Venue+":"+f.TradeID]++
		qty = qty.Add(f.Qty)
		notional = notional.Add(f.Price.Mul(f.Qty))
		fees = fees.Add(f.Fee)
	}
	// The venues' own record of our fills, through each venue's API (the
	// exchange adapters' ids are the exchanges').
	venueFills := 0
	for _, v := range engineVenues(t, j) {
		fs, err := v.(engine.FillLister).Fills(ctx, p.Symbol, p.Start.Add(-time.Nanosecond), p.End.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			if !children[f.ClientID] {
				continue
			}
			venueFills++
			if n := seen[f.Key()]; n != 1 {
				t.Errorf("%s: venue fill %s is in the ledger %d times", p.ID, f.Key(), n)
			}
		}
	}
	if venueFills != len(ledgerFills) || venueFills != rep.Fills {
		t.Errorf("%s: venues produced %d fills, ledger holds %d, report says %d", p.ID, venueFills, len(ledgerFills), rep.Fills)
	}
	if !qty.Equal(rep.FilledQuantity) || !fees.Equal(rep.Fees) || !notional.Equal(rep.GrossProceeds) {
		t.Errorf("%s: report filled %s fees %s gross %s; ledger sums %s %s %s",
			p.ID, rep.FilledQuantity, rep.Fees, rep.GrossProceeds, qty, fees, notional)
	}
	checkParticipation(t, j, p, events)
}

// engineVenues returns the engine's venues, which must all list their fills.
func engineVenues(t *testing.T, j *job) []engine.Venue {
	t.Helper()
	var out []engine.Venue
	for _, name := range j.eng.VenueNames() {
		v, _ := j.eng.Venue(name)
		if _, ok := v.(engine.FillLister); !ok {
			t.Fatalf("venue %s cannot list its fills", name)
		}
		out = append(out, v)
	}
	return out
}

// checkParticipation: on every venue, at every child placement, our volume
// over the trailing window stays within the cap of the market's.
func checkParticipation(t *testing.T, j *job, p configs.Parent, events []bus.EventMsg) {
	t.Helper()
	ctx := context.Background()
	w := p.ParticipationWindow
	for _, v := range engineVenues(t, j) {
		fills, err := v.(engine.FillLister).Fills(ctx, p.Symbol, p.Start.Add(-w), p.End.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		checked := 0
		for _, ev := range events {
			if ev.Kind != bus.KindChildPlaced || ev.Child.Venue != v.Name() {
				continue
			}
			at := ev.Time
			tape, err := v.Tape(ctx, p.Symbol, at.Add(-w), at)
			if err != nil {
				t.Fatal(err)
			}
			var ours decimal.Decimal
			for _, f := range fills {
				if f.Time.After(at.Add(-w)) && !f.Time.After(at) {
					ours = ours.Add(f.Qty)
				}
			}
			if ours.GreaterThan(tape.Volume.Mul(p.MaxParticipation)) {
				t.Errorf("%s on %s at %s: ours %s of market %s is above the cap %s",
					p.ID, v.Name(), at.Format(time.RFC3339), ours, tape.Volume, p.MaxParticipation)
			}
			checked++
		}
		if checked == 0 {
			t.Errorf("%s: no child placed on %s", p.ID, v.Name())
		}
	}
}

// checkDuplicatesDropped republishes fills, with the same Msg-Id and with
// a fresh one, and asserts the ledger does not change.
func checkDuplicatesDropped(t *testing.T, j *job, cfg *configs.Config) {
	t.Helper()
	ctx := context.Background()
	id := cfg.Parents[0].ID
	before, err := j.ledger.Report(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	fills, err := j.ledger.Fills(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(fills) < 5 {
		t.Fatalf("only %d fills to republish", len(fills))
	}
	pub := bus.NewPublisher(j.conn.JS)
	for i, f := range fills[:5] {
		msg := bus.FillMsg{Schema: bus.FillSchema, ParentID: id, ClientID: f.ClientID, OrderID: f.OrderID,
			Venue: f.Venue, TradeID: f.TradeID, Symbol: f.Symbol, Side: f.Side.String(), Price: f.Price,
			Qty: f.Qty, Fee: f.Fee, FeeAsset: f.FeeAsset, Liquidity: f.Liquidity.String(), Time: f.Time}
		if err := pub.PublishFill(ctx, msg); err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(msg)
		if _, err := j.conn.JS.Publish(ctx, bus.FillSubjectFor(id, f.Venue), body,
			jetstream.WithMsgID(msg.MsgID()+":again-"+string(rune('a'+i)))); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.rec.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := j.ledger.Report(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if after.Fills != before.Fills || !after.FilledQuantity.Equal(before.FilledQuantity) || !after.Fees.Equal(before.Fees) {
		t.Fatalf("republished fills changed the ledger: before %d fills %s, after %d fills %s",
			before.Fills, before.FilledQuantity, after.Fills, after.FilledQuantity)
	}
}

// testWriter sends logs to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
