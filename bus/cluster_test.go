package bus

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/bus/bustest"
)

// With nats.replicas 3 on a three-server cluster, the fills and events
// streams are kept by all three: a fill stored before one of them dies is
// still there after, and the bus takes fills again once the others have
// elected a new leader for the stream. With one replica the same loss
// would lose the stream whenever the dead server held it.
func TestCluster_StreamsKeptByReplicasSurviveAServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-server JetStream cluster")
	}
	srvs := bustest.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var c *Conn
	err := bustest.Retry(30*time.Second, func() (err error) {
		c, err = Connect(ctx, Options{URL: bustest.ClientURLs(srvs), Replicas: 3}, zerolog.Nop())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Replicas() != 3 {
		t.Fatalf("Replicas() = %d", c.Replicas())
	}
	var leader string
	for _, name := range []string{FillsStream, EventsStream} {
		s, err := c.JS.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Fatalf("%s: %d replicas configured, cluster %+v", name, info.Config.Replicas, info.Cluster)
		}
		if name == FillsStream {
			leader = info.Cluster.Leader
		}
	}

	// A second process whose config leaves replicas out (1) does not scale
	// the streams down.
	other, err := Connect(ctx, Options{URL: bustest.ClientURLs(srvs)}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for _, name := range []string{FillsStream, EventsStream} {
		s, err := other.JS.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if info, err := s.Info(ctx); err != nil || info.Config.Replicas != 3 {
			t.Fatalf("%s after a connect asking for 1: %v replicas, %v", name, info.Config.Replicas, err)
		}
	}

	p := NewPublisher(c.JS)
	before := FillMsg{Schema: FillSchema, ParentID: "p1", ClientID: "c1", OrderID: "o1", Venue: "simA", TradeID: "t1",
		Symbol: "BTCUSDT", Side: "sell", Price: decimal.RequireFromString("63000"), Qty: decimal.RequireFromString("0.5"),
		Fee: decimal.RequireFromString("0.1"), FeeAsset: "USDT", Liquidity: "taker", Time: time.Date(2026, 12, 8, 9, 0, 0, 0, time.UTC)}
	if err := p.PublishFill(ctx, before); err != nil {
		t.Fatal(err)
	}
	for _, s := range srvs {
		if s.Name() == leader {
			s.Shutdown()
			s.WaitForShutdown()
		}
	}
	// The survivors elect a leader for the stream; the client reconnects
	// to one of them.
	after := before
	after.TradeID = "t2"
	// Each try has a deadline of its own: a publish sent on the dead
	// server's connection is never answered.
	if err := bustest.Retry(time.Minute, func() error {
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return p.PublishFill(tctx, after)
	}); err != nil {
		t.Fatalf("no fill taken after the stream leader %s died: %v", leader, err)
	}
	s, err := c.JS.Stream(ctx, FillsStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := count(t, c.JS, FillSubjectFor("p1", "simA")); got != 2 {
		t.Fatalf("%d fills of p1 kept after losing %s, want the one stored before and the one after", got, leader)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Cluster == nil || info.Cluster.Leader == leader || info.Cluster.Leader == "" {
		t.Fatalf("the stream's leader after losing %s: %+v", leader, info.Cluster)
	}
}

// Replicas above one on a server that is not clustered is refused at
// connect, saying how many were asked for.
func TestConnect_ReplicasWithoutAClusterIsRefused(t *testing.T) {
	_, err := Connect(context.Background(), Options{StoreDir: t.TempDir(), Replicas: 3}, zerolog.Nop())
	if err == nil || !strings.Contains(err.Error(), "3 replicas") {
		t.Fatalf("err = %v, want a refusal naming 3 replicas", err)
	}
}
