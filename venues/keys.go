package venues

import (
	"errors"
	"time"
)

// ErrKeyCanWithdraw refuses an API key that is allowed to withdraw funds:
// an execution engine needs to read and trade, nothing more.
var ErrKeyCanWithdraw = errors.New("api key can withdraw or transfer funds; create a key with trading permission only")

// KeyReport is what an adapter learns of its API key and the venue without
// placing an order (`blockexec keys check`).
type KeyReport struct {
	Venue string
	Kind  string // binance, coinbase, kraken
	// Reachable: the venue answered an authenticated request.
	Reachable bool
	Latency   time.Duration
	// ClockSkew is the venue's clock minus ours; zero when the venue does
	// not report its time.
	ClockSkew time.Duration
	// Permissions are what the venue says the key may do, in its words
	// ("spot trading", "view", …); empty when the venue does not say.
	Permissions []string
	// CanWithdraw and IPRestricted are nil when the venue does not report
	// them.
	CanWithdraw  *bool
	IPRestricted *bool
	// RateLimit is the headroom as the venue reports it, e.g. "weight 20
	// of 6000 per minute used".
	RateLimit string
	// Warnings are things a careful operator fixes (IP restriction off, a
	// large clock skew).
	Warnings []string
}

// Refusal returns ErrKeyCanWithdraw when the report shows a key that can
// withdraw, else nil.
func (r KeyReport) Refusal() error {
	if r.CanWithdraw != nil && *r.CanWithdraw {
		return ErrKeyCanWithdraw
	}
	return nil
}
