package coinbase

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/blockexec/blockexec/venues"
)

// maxSkew is the clock difference worth a warning: Coinbase dates every
// JWT by this host's clock and takes it for two minutes only.
const maxSkew = 5 * time.Second

// CheckKey reports what Coinbase says of the key without placing an order:
// the server's time (clock skew, latency) and key_permissions. A key that
// can transfer funds reports CanWithdraw; the caller refuses it with
// report.Refusal().
func (v *Venue) CheckKey(ctx context.Context) (venues.KeyReport, error) {
	r := venues.KeyReport{Venue: v.name, Kind: "coinbase",
		RateLimit: "not reported by Coinbase (a 429 with no budget headers when spent)"}
	var tj timeJSON
	sent := v.auth.Now()
	// The server time is public: no JWT, so a skewed clock cannot hide it.
	if err := v.send(ctx, http.MethodGet, pathTime, nil, nil, &tj, false); err != nil {
		return r, fmt.Errorf("coinbase key check: server time: %w", err)
	}
	got := v.auth.Now()
	r.Latency = got.Sub(sent)
	var server time.Time
	switch {
	case tj.EpochMillis > 0:
		server = time.UnixMilli(int64(tj.EpochMillis)).UTC()
	case !tj.ISO.IsZero():
		server = tj.ISO.Time
	case tj.EpochSeconds > 0:
		server = time.Unix(int64(tj.EpochSeconds), 0).UTC()
	}
	if !server.IsZero() {
		r.ClockSkew = server.Sub(sent.Add(r.Latency / 2))
	}
	var pj permissionsJSON
	if err := v.get(ctx, pathKeyPermissions, nil, &pj); err != nil {
		return r, fmt.Errorf("coinbase key check: key permissions: %w", err)
	}
	r.Reachable = true
	for _, p := range []struct {
		name string
		on   bool
	}{{"can_view", pj.CanView}, {"can_trade", pj.CanTrade}, {"can_transfer", pj.CanTransfer}} {
		if p.on {
			r.Permissions = append(r.Permissions, p.name)
		}
	}
	transfer := pj.CanTransfer
	r.CanWithdraw = &transfer
	if !pj.CanTrade {
		r.Warnings = append(r.Warnings, "the key cannot trade (can_trade is false): orders will be refused")
	}
	if skew := r.ClockSkew.Abs(); skew > maxSkew {
		r.Warnings = append(r.Warnings, fmt.Sprintf("clock skew %s against Coinbase: JWTs are dated by this host "+
			"and live 2 minutes; sync the clock (NTP)", r.ClockSkew.Round(time.Millisecond)))
	}
	return r, nil
}
