package binance

import (
	"context"
	"fmt"
	"time"

	gobinance "github.com/adshao/go-binance/v2"

	"github.com/blockexec/blockexec/venues"
)

// maxSkew is the clock difference worth a warning: half the default
// recvWindow.
const maxSkew = 2500 * time.Millisecond

// CheckKey reports, without placing an order, whether the venue answers,
// how far its clock is from ours, what the key may do (Binance's
// apiRestrictions) and how much of the request and order budgets is used.
// A key that can withdraw is reported, and report.Refusal() refuses it.
func (v *Venue) CheckKey(ctx context.Context) (venues.KeyReport, error) {
	r := venues.KeyReport{Venue: v.cfg.Name, Kind: "binance"}
	var server int64
	start := v.wall.Now()
	err := v.call(ctx, false, func(ctx context.Context) (err error) {
		server, err = v.c.NewServerTimeService().Do(ctx)
		return err
	})
	if err != nil {
		return r, fmt.Errorf("binance %s: server time: %w", v.cfg.Name, err)
	}
	end := v.wall.Now()
	r.Latency = end.Sub(start)
	// The server stamped its time about half the round trip ago.
	r.ClockSkew = time.UnixMilli(server).Add(r.Latency / 2).Sub(end)
	if r.ClockSkew > maxSkew || r.ClockSkew < -maxSkew {
		r.Warnings = append(r.Warnings, fmt.Sprintf("clock skew %s: the adapter resynchronises on -1021, but fix the host's clock (NTP)", r.ClockSkew.Round(time.Millisecond)))
	}
	if v.cfg.Testnet {
		// The testnet serves /api only: no /sapi, so no key restrictions.
		r.Reachable = true
		r.Warnings = append(r.Warnings, "the testnet does not report a key's permissions (no /sapi endpoints)")
		return v.orderHeadroom(ctx, r)
	}
	var perm *gobinance.APIKeyPermission
	err = v.call(ctx, false, func(ctx context.Context) (err error) {
		perm, err = v.c.NewGetAPIKeyPermission().Do(ctx, v.recvWindow())
		return err
	})
	if err != nil {
		return r, fmt.Errorf("binance %s: api key permissions: %w", v.cfg.Name, err)
	}
	r.Reachable = true
	for _, p := range []struct {
		on   bool
		name string
	}{
		{perm.EnableReading, "reading"}, {perm.EnableSpotAndMarginTrading, "spot and margin trading"},
		{perm.EnableMargin, "margin"}, {perm.EnableFutures, "futures"}, {perm.EnableVanillaOptions, "options"},
		{perm.EnableWithdrawals, "withdrawals"}, {perm.EnableInternalTransfer, "internal transfer"},
		{perm.PermitsUniversalTransfer, "universal transfer"},
	} {
		if p.on {
			r.Permissions = append(r.Permissions, p.name)
		}
	}
	withdraw := perm.EnableWithdrawals || perm.EnableInternalTransfer || perm.PermitsUniversalTransfer
	ip := perm.IPRestrict
	r.CanWithdraw, r.IPRestricted = &withdraw, &ip
	if !perm.EnableSpotAndMarginTrading {
		r.Warnings = append(r.Warnings, "spot trading is not enabled on this key: every order will be refused")
	}
	if !ip {
		r.Warnings = append(r.Warnings, "IP restriction is off: restrict the key to this host's addresses")
	}
	return v.orderHeadroom(ctx, r)
}

// orderHeadroom adds the request-weight and order-count budgets used.
func (v *Venue) orderHeadroom(ctx context.Context, r venues.KeyReport) (venues.KeyReport, error) {
	var limits []*gobinance.RateLimitFull
	err := v.call(ctx, false, func(ctx context.Context) (err error) {
		limits, err = v.c.NewRateLimitService().Do(ctx, v.recvWindow())
		return err
	})
	if err != nil {
		return r, fmt.Errorf("binance %s: order rate limits: %w", v.cfg.Name, err)
	}
	v.mu.Lock()
	r.RateLimit = fmt.Sprintf("request weight %d of %d per minute", v.weight1m, v.weightLimit)
	v.mu.Unlock()
	for _, l := range limits {
		r.RateLimit += fmt.Sprintf("; orders %d of %d per %d %s", l.Count, l.Limit, l.IntervalNum, l.Interval)
	}
	return r, nil
}
