// Package market holds the value types every other package trades in: sides,
// orders, fills, instrument rules and book levels. It imports nothing of ours.
package market

import (
	"fmt"
	"strings"
)

// Side is the direction of an order. The zero value is invalid.
type Side int8

const (
	// Buy accumulates the base asset.
	Buy Side = iota + 1
	// Sell disposes of the base asset.
	Sell
)

// ParseSide reads "buy" or "sell" (any case).
func ParseSide(s string) (Side, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "buy":
		return Buy, nil
	case "sell":
		return Sell, nil
	}
	return 0, fmt.Errorf("side %q: allowed values are buy, sell", s)
}

// String returns "buy" or "sell".
func (s Side) String() string {
	switch s {
	case Buy:
		return "buy"
	case Sell:
		return "sell"
	}
	return fmt.Sprintf("side(%d)", int8(s))
}

// Valid reports whether s is Buy or Sell.
func (s Side) Valid() bool { return s == Buy || s == Sell }

// Opposite returns the other side.
func (s Side) Opposite() Side {
	if s == Buy {
		return Sell
	}
	return Buy
}

// MarshalText encodes the side as "buy" or "sell".
func (s Side) MarshalText() ([]byte, error) {
	if !s.Valid() {
		return nil, fmt.Errorf("invalid side %d", int8(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText decodes "buy" or "sell".
func (s *Side) UnmarshalText(b []byte) error {
	v, err := ParseSide(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// TimeInForce says how long an order may rest. The zero value is invalid.
type TimeInForce int8

const (
	// GTC rests until filled or cancelled.
	GTC TimeInForce = iota + 1
	// IOC fills what it can at once; the rest is cancelled.
	IOC
	// PostOnly rests only; it is rejected if it would take liquidity.
	PostOnly
)

// String names the time in force as venues spell it.
func (t TimeInForce) String() string {
	switch t {
	case GTC:
		return "GTC"
	case IOC:
		return "IOC"
	case PostOnly:
		return "POST_ONLY"
	}
	return fmt.Sprintf("tif(%d)", int8(t))
}

// Liquidity says whether a fill added (maker) or removed (taker) liquidity.
type Liquidity int8

const (
	// Maker fills rested on the book.
	Maker Liquidity = iota + 1
	// Taker fills crossed the spread.
	Taker
)

// String returns "maker" or "taker".
func (l Liquidity) String() string {
	switch l {
	case Maker:
		return "maker"
	case Taker:
		return "taker"
	}
	return fmt.Sprintf("liquidity(%d)", int8(l))
}
