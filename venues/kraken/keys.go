package kraken

import (
	"context"
	"fmt"
	"time"

	"github.com/blockexec/blockexec/venues"
)

// maxSkew is the clock difference CheckKey warns about.
const maxSkew = 5 * time.Second

// CheckKey reports on the key without placing an order: Kraken's clock
// against ours (public Time), and reachability and latency of an
// authenticated call (Balance). Kraken does not say over its API what a
// key may do, so Permissions stay empty and CanWithdraw nil, and a warning
// asks the operator to make sure the key cannot withdraw or move funds.
// The error is the authenticated call's, when it failed.
func (v *Venue) CheckKey(ctx context.Context) (venues.KeyReport, error) {
	r := venues.KeyReport{Venue: v.cfg.Name, Kind: "kraken",
		RateLimit: "not reported by Kraken (a decaying call counter per key; AddOrder and CancelOrder count per pair)",
		Warnings: []string{"Kraken does not report an API key's permissions: make sure this key has no Funds " +
			"permissions (withdraw, deposit, transfer) and only query and trade permissions"}}
	var t struct {
		Unixtime int64 `json:"unixtime"`
	}
	sent := v.auth.Now()
	if err := v.call(ctx, request{method: "Time"}, &t); err != nil {
		return r, err
	}
	got := v.auth.Now()
	mid := sent.Add(got.Sub(sent) / 2)
	// Kraken states its time in whole seconds.
	r.ClockSkew = time.Unix(t.Unixtime, 0).Sub(mid).Round(time.Second)
	if r.ClockSkew > maxSkew || r.ClockSkew < -maxSkew {
		r.Warnings = append(r.Warnings, fmt.Sprintf("Kraken's clock minus this host's is %s: nonces come from this "+
			"clock, and one set back after use makes Kraken refuse them; synchronise it (NTP)", r.ClockSkew))
	}
	sent = v.auth.Now()
	err := v.call(ctx, request{method: "Balance", private: true}, nil)
	r.Latency = v.auth.Now().Sub(sent)
	if err != nil {
		return r, err
	}
	r.Reachable = true
	return r, nil
}
