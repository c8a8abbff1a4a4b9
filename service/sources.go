package service

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/settlement"
)

// LedgerFills lists fills from the settlement ledger.
type LedgerFills struct{ Ledger *settlement.Ledger }

var _ Fills = LedgerFills{}

// FillMsgs returns a parent's fills in the bus's schema.
func (l LedgerFills) FillMsgs(ctx context.Context, parentID string) ([]bus.FillMsg, error) {
	fs, err := l.Ledger.Fills(ctx, parentID)
	if err != nil {
		return nil, err
	}
	out := make([]bus.FillMsg, len(fs))
	for i, f := range fs {
		out[i] = bus.FillMsg{Schema: bus.FillSchema, ParentID: f.ParentID, ClientID: f.ClientID, OrderID: f.OrderID,
			Venue: f.Venue, TradeID: f.TradeID, Symbol: f.Symbol, Side: f.Side.String(), Price: f.Price, Qty: f.Qty,
			Fee: f.Fee, FeeAsset: f.FeeAsset, Liquidity: f.Liquidity.String(), Time: f.Time}
	}
	return out, nil
}

// BusEvents follows a parent's events on the events stream.
type BusEvents struct{ JS jetstream.JetStream }

var _ Events = BusEvents{}

// Follow delivers the parent's events with seq ≥ fromSeq, those stored and
// those to come, until ctx ends.
func (b BusEvents) Follow(ctx context.Context, parentID string, fromSeq int64) (<-chan bus.EventMsg, error) {
	c, err := b.JS.OrderedConsumer(ctx, bus.EventsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{bus.EventsSubject + "." + bus.Token(parentID) + ".>"},
	})
	if err != nil {
		return nil, fmt.Errorf("follow %s: %w", parentID, err)
	}
	msgs, err := c.Messages()
	if err != nil {
		return nil, fmt.Errorf("follow %s: %w", parentID, err)
	}
	out := make(chan bus.EventMsg)
	go func() {
		defer close(out)
		defer msgs.Stop()
		go func() {
			<-ctx.Done()
			msgs.Stop() // unblocks Next
		}()
		for {
			m, err := msgs.Next()
			if err != nil {
				return
			}
			var ev bus.EventMsg
			if json.Unmarshal(m.Data(), &ev) != nil || ev.Seq < fromSeq {
				continue
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// UsedIDs tells whether an id was used before: a parent in the ledger, or
// accepted on the bus.
type UsedIDs struct {
	Ledger *settlement.Ledger
	JS     jetstream.JetStream
}

var _ IDs = UsedIDs{}

// Used reports whether id names a parent already.
func (u UsedIDs) Used(ctx context.Context, id string) (bool, error) {
	if known, err := u.Ledger.HasParent(ctx, id); err != nil || known {
		return known, err
	}
	return bus.ParentSeen(ctx, u.JS, id)
}
