package bus

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"
)

func fill(parent, trade string) FillMsg {
	return FillMsg{ParentID: parent, ClientID: parent + "-1-simA-0", OrderID: "o1", Venue: "simA", TradeID: trade,
		Symbol: "BTCUSDT", Side: "sell", Price: decimal.RequireFromString("63000.10"), Qty: decimal.RequireFromString("0.12345"),
		Fee: decimal.RequireFromString("0.3110"), FeeAsset: "USDT", Liquidity: "taker",
		Time: time.Date(2024, 10, 1, 8, 1, 0, 0, time.UTC)}
}

// count returns how many messages of the fills stream are on subject.
// State.Msgs counts the whole stream, which on a shared server holds other
// runs' fills too; the per-subject map is what the filter asks for.
func count(t *testing.T, js jetstream.JetStream, subject string) uint64 {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, FillsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[subject]
}

func TestPublishFill_SameTradeIDStoredOnce(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c, err := Connect(ctx, Options{StoreDir: dir}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if !c.Embedded() {
		t.Fatal("empty URL must run the embedded server")
	}
	p := NewPublisher(c.JS)
	for _, trade := range []string{"1", "1", "2"} {
		if err := p.PublishFill(ctx, fill("p1", trade)); err != nil {
			t.Fatal(err)
		}
	}
	subj := FillSubjectFor("p1", "simA")
	if got := count(t, c.JS, subj); got != 2 {
		t.Fatalf("stored %d fills, want 2 (trade 1 twice is one)", got)
	}
	c.Close()

	// The file store survives a restart of the embedded server.
	c2, err := Connect(ctx, Options{StoreDir: dir}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got := count(t, c2.JS, subj); got != 2 {
		t.Fatalf("after restart %d fills, want 2", got)
	}
	s, err := c2.JS.Stream(ctx, FillsStream)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := s.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		t.Fatal(err)
	}
	if got := msg.Header.Get("Nats-Msg-Id"); got != "simA:2" {
		t.Errorf("Nats-Msg-Id = %q, want simA:2", got)
	}
	for _, want := range []string{`"price":"63000.1"`, `"schema":"blockexec.fill.v1"`, `"qty":"0.12345"`} {
		if !strings.Contains(string(msg.Data), want) {
			t.Errorf("body %s lacks %s", msg.Data, want)
		}
	}
}

func TestToken_KeepsSubjectsOneTokenPerField(t *testing.T) {
	if got := FillSubjectFor("a.b*c", "x>y z"); got != "blockexec.fills.a_b_c.x_y_z" {
		t.Fatalf("subject = %s", got)
	}
}

func TestExternalServer(t *testing.T) {
	url := os.Getenv("BLOCKEXEC_TEST_NATS_URL")
	if url == "" {
		t.Skip("BLOCKEXEC_TEST_NATS_URL not set: skipping the external NATS test (e.g. nats://127.0.0.1:4222)")
	}
	ctx := context.Background()
	c, err := Connect(ctx, Options{URL: url}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close) // cleanups run last-first: the purge below runs before this
	if c.Embedded() {
		t.Fatal("a URL must not start an embedded server")
	}
	parent := "ext-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	subj := FillSubjectFor(parent, "simA")
	t.Cleanup(func() { // leave the shared server as it was found
		s, err := c.JS.Stream(ctx, FillsStream)
		if err == nil {
			err = s.Purge(ctx, jetstream.WithPurgeSubject(subj))
		}
		if err != nil {
			t.Errorf("purge %s: %v", subj, err)
		}
	})
	p := NewPublisher(c.JS)
	for _, trade := range []string{parent + "-1", parent + "-1"} {
		if err := p.PublishFill(ctx, fill(parent, trade)); err != nil {
			t.Fatal(err)
		}
	}
	if got := count(t, c.JS, subj); got != 1 {
		t.Fatalf("external server stored %d, want 1", got)
	}
}

func TestParentSeen_OnlyAfterAccepted(t *testing.T) {
	ctx := context.Background()
	c, err := Connect(ctx, Options{StoreDir: t.TempDir()}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if seen, err := ParentSeen(ctx, c.JS, "p9"); err != nil || seen {
		t.Fatalf("fresh bus: seen %v err %v", seen, err)
	}
	if err := NewPublisher(c.JS).PublishEvent(ctx, EventMsg{ParentID: "p9", Kind: KindAccepted, Seq: 1}); err != nil {
		t.Fatal(err)
	}
	if seen, err := ParentSeen(ctx, c.JS, "p9"); err != nil || !seen {
		t.Fatalf("after accepted: seen %v err %v", seen, err)
	}
}

// TestPublisher_MarksAreTheHighestAckedSequence: the marks follow the
// publish acks per stream, a duplicate's ack does not move them back, and
// the streams' last sequences cover them.
func TestPublisher_MarksAreTheHighestAckedSequence(t *testing.T) {
	ctx := context.Background()
	c, err := Connect(ctx, Options{StoreDir: t.TempDir()}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := NewPublisher(c.JS)
	if got := p.Marks(); len(got) != 0 {
		t.Fatalf("fresh publisher marks %v, want none", got)
	}
	for _, trade := range []string{"1", "2", "1"} { // the second "1" is a duplicate, acked with seq 1
		if err := p.PublishFill(ctx, fill("p1", trade)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.PublishEvent(ctx, EventMsg{ParentID: "p1", Kind: KindAccepted, Seq: 1}); err != nil {
		t.Fatal(err)
	}
	want := Marks{FillsStream: 2, EventsStream: 1}
	got := p.Marks()
	if len(got) != len(want) || got[FillsStream] != 2 || got[EventsStream] != 1 {
		t.Fatalf("marks %v, want %v", got, want)
	}
	got[FillsStream] = 99 // a copy: the publisher's own marks do not change
	if p.Marks()[FillsStream] != 2 {
		t.Fatal("Marks returned the publisher's own map")
	}
	// Another publisher's message is on the stream but not in p's marks.
	if _, err := c.JS.Publish(ctx, FillSubjectFor("p2", "simA"), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	last, err := LastSequences(ctx, c.JS)
	if err != nil {
		t.Fatal(err)
	}
	if last[FillsStream] != 3 || last[EventsStream] != 1 {
		t.Fatalf("last sequences %v, want fills 3 events 1", last)
	}
}

// The queuing publisher stores what it queued by Flush, raises the marks
// only then, keeps de-duplication by Nats-Msg-Id, and names the parent and
// kind of a message it could not store, without losing the others.
func TestAsyncPublisher_FlushStoresAndNamesFailures(t *testing.T) {
	ctx := context.Background()
	c, err := Connect(ctx, Options{StoreDir: t.TempDir()}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := NewPublisher(c.JS)
	a := p.Async()
	for _, trade := range []string{"1", "1", "2", "3"} {
		if err := a.PublishFill(ctx, fill("p1", trade)); err != nil {
			t.Fatal(err)
		}
	}
	if failed := a.Flush(ctx); len(failed) != 0 {
		t.Fatalf("flush: %+v", failed)
	}
	if got := count(t, c.JS, FillSubjectFor("p1", "simA")); got != 3 {
		t.Fatalf("stored %d fills, want 3 (trade 1 twice is one)", got)
	}
	if m := a.Marks(); m[FillsStream] != 3 {
		t.Fatalf("marks after flush %v, want the fills stream at 3", m)
	}

	// With the events stream gone, an event cannot be stored; the fill
	// queued beside it still is.
	if err := c.JS.DeleteStream(ctx, EventsStream); err != nil {
		t.Fatal(err)
	}
	if err := a.PublishEvent(ctx, EventMsg{ParentID: "p2", Kind: KindSlice, Seq: 1}); err != nil {
		t.Fatal(err)
	}
	if err := a.PublishFill(ctx, fill("p1", "4")); err != nil {
		t.Fatal(err)
	}
	failed := a.Flush(ctx)
	if len(failed) != 1 || failed[0].ParentID != "p2" || failed[0].Kind != "event" || failed[0].MsgID != "p2:1" {
		t.Fatalf("failures %+v, want the one event of p2", failed)
	}
	if !strings.Contains(failed[0].Err.Error(), "p2:1") {
		t.Fatalf("the error does not name the message: %v", failed[0].Err)
	}
	if got := count(t, c.JS, FillSubjectFor("p1", "simA")); got != 4 {
		t.Fatalf("stored %d fills, want 4", got)
	}
	// Kept, not dropped: reported again until it is stored, which it is
	// once the stream is back.
	if again := a.Flush(ctx); len(again) != 1 || again[0].MsgID != "p2:1" {
		t.Fatalf("a second flush: %+v", again)
	}
	if err := EnsureStreams(ctx, c.JS, 1); err != nil {
		t.Fatal(err)
	}
	if failed := a.Flush(ctx); len(failed) != 0 {
		t.Fatalf("with the stream back: %+v", failed)
	}
	s, err := c.JS.Stream(ctx, EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetLastMsgForSubject(ctx, EventSubjectFor("p2", KindSlice)); err != nil {
		t.Fatalf("the kept event is not stored: %v", err)
	}
}

// More messages than the in-flight window: the publisher makes room by
// waiting for the oldest, and every one is stored once.
func TestAsyncPublisher_BeyondTheWindow(t *testing.T) {
	ctx := context.Background()
	c, err := Connect(ctx, Options{StoreDir: t.TempDir()}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a := NewPublisher(c.JS).Async()
	n := asyncWindow + asyncWindow/2
	for i := 0; i < n; i++ {
		if err := a.PublishFill(ctx, fill("big", strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if failed := a.Flush(ctx); len(failed) != 0 {
		t.Fatalf("flush: %+v", failed)
	}
	if got := count(t, c.JS, FillSubjectFor("big", "simA")); got != uint64(n) {
		t.Fatalf("stored %d fills, want %d", got, n)
	}
}
