package engine

import (
	"context"
	"time"

	"github.com/blockexec/blockexec/market"
)

// Venue is what the engine needs from an exchange adapter.
type Venue interface {
	// Name is the venue's configured name, unique in a run.
	Name() string
	// Instrument returns the trading rules for symbol.
	Instrument(ctx context.Context, symbol string) (market.Instrument, error)
	// Book returns up to depth levels per side.
	Book(ctx context.Context, symbol string, depth int) (market.Book, error)
	// Tape returns the public volume traded on symbol with from < time ≤ to,
	// our own trades included.
	Tape(ctx context.Context, symbol string, from, to time.Time) (market.Tape, error)
	// Place sends an order. The returned fills are those that executed on
	// arrival. An error that is not a venue rejection means "maybe placed":
	// ask Order by client id before placing again.
	Place(ctx context.Context, req market.OrderRequest) (market.Order, []market.Fill, error)
	// Cancel cancels by client id and returns the final order state.
	Cancel(ctx context.Context, symbol, clientID string) (market.Order, error)
	// Order looks an order up by client id.
	Order(ctx context.Context, symbol, clientID string) (market.Order, error)
}

// FillLister is an optional power: list our own fills on symbol with
// from < time ≤ to, for orders that rested and filled later.
type FillLister interface {
	Fills(ctx context.Context, symbol string, from, to time.Time) ([]market.Fill, error)
}

// ClientIDRules is an optional power: a venue that limits client order ids
// reports the longest id it takes. Ids are always [A-Za-z0-9-].
type ClientIDRules interface {
	MaxClientIDLen() int
}

// ClientIDAlphabet is an optional power: a venue that takes fewer
// characters than [A-Za-z0-9-] in client order ids says which; an id with
// others is hashed to lower-case letters and digits.
type ClientIDAlphabet interface {
	ClientIDAllowed(r rune) bool
}
