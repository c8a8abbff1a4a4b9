// Package api is the wire contract of the blockexec service: the JSON
// bodies of its HTTP and NATS APIs, its errors, and how a request is
// signed. The server (package service) and the Go client (package client)
// both speak it; api/openapi.yaml describes it for everyone else.
//
// Decimals travel as JSON strings ("400", "63000.5") and are read exactly;
// a JSON number is accepted too, taken digit for digit. Times are RFC 3339.
package api

import (
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/bus"
)

// OrderRequest submits a parent order (POST /v1/orders). ClientOrderID is
// the idempotency key: the same id with the same body returns the order
// made the first time; with another body it is refused (409). It is also
// the order's id, unique on the service.
type OrderRequest struct {
	ClientOrderID string          `json:"client_order_id"`
	Side          string          `json:"side"`   // buy or sell
	Symbol        string          `json:"symbol"` // e.g. BTCUSDT
	Quantity      decimal.Decimal `json:"quantity"`
	Strategy      string          `json:"strategy,omitempty"` // twap (default), vwap, pov, ac
	// Start defaults to now. End, or Duration (Go syntax: 8h, 90m), says
	// when the schedule ends; exactly one of them.
	Start               *time.Time        `json:"start,omitempty"`
	End                 *time.Time        `json:"end,omitempty"`
	Duration            string            `json:"duration,omitempty"`
	SliceInterval       string            `json:"slice_interval,omitempty"`       // default 1m
	ParticipationWindow string            `json:"participation_window,omitempty"` // default the slice interval
	MaxParticipation    decimal.Decimal   `json:"max_participation"`              // (0, 1]
	SlippageBandBps     decimal.Decimal   `json:"slippage_band_bps"`              // > 0
	FloorPrice          *decimal.Decimal  `json:"floor_price,omitempty"`          // sell only
	CeilingPrice        *decimal.Decimal  `json:"ceiling_price,omitempty"`        // buy only
	MaxChildNotional    *decimal.Decimal  `json:"max_child_notional,omitempty"`
	MaxVenueShare       *decimal.Decimal  `json:"max_venue_share,omitempty"` // (0, 1]
	Venues              []string          `json:"venues,omitempty"`          // default every venue
	POV                 *POV              `json:"pov,omitempty"`             // strategy pov
	ACLambda            *decimal.Decimal  `json:"ac_lambda,omitempty"`       // strategy ac
	VolumeCurve         []decimal.Decimal `json:"volume_curve,omitempty"`    // strategy vwap: 24 hourly weights
}

// POV are a percentage-of-volume order's rates, fractions in (0, 1).
type POV struct {
	Rate    decimal.Decimal  `json:"rate"`
	MinRate *decimal.Decimal `json:"min_rate,omitempty"`
	MaxRate *decimal.Decimal `json:"max_rate,omitempty"`
}

// Amendment changes a working order's terms (PATCH /v1/orders/{id});
// absent fields stay as they are. A floor or ceiling of "0" removes it.
type Amendment struct {
	FloorPrice       *decimal.Decimal `json:"floor_price,omitempty"`
	CeilingPrice     *decimal.Decimal `json:"ceiling_price,omitempty"`
	SlippageBandBps  *decimal.Decimal `json:"slippage_band_bps,omitempty"`
	MaxParticipation *decimal.Decimal `json:"max_participation,omitempty"`
	End              *time.Time       `json:"end,omitempty"`
}

// Order is a parent order as the service shows it.
type Order struct {
	ID               string                     `json:"id"`
	ClientOrderID    string                     `json:"client_order_id"`
	Client           string                     `json:"client"` // the API client that submitted it
	State            string                     `json:"state"`  // accepted, working, paused, done, cancelled, failed
	Reason           string                     `json:"reason,omitempty"`
	Side             string                     `json:"side"`
	Symbol           string                     `json:"symbol"`
	Strategy         string                     `json:"strategy"`
	Quantity         decimal.Decimal            `json:"quantity"`
	FilledQuantity   decimal.Decimal            `json:"filled_quantity"`
	UnfilledQuantity decimal.Decimal            `json:"unfilled_quantity"`
	PendingQuantity  decimal.Decimal            `json:"pending_quantity"` // children of unknown outcome
	Target           decimal.Decimal            `json:"target"`           // the schedule's cumulative target at the last slice
	AveragePrice     decimal.Decimal            `json:"average_price"`
	ArrivalPrice     decimal.Decimal            `json:"arrival_price"`
	ShortfallBps     decimal.Decimal            `json:"shortfall_bps"`
	MarketVWAP       decimal.Decimal            `json:"market_vwap"`
	MaxParticipation decimal.Decimal            `json:"max_participation"` // the cap
	SlippageBandBps  decimal.Decimal            `json:"slippage_band_bps"`
	LimitPrice       decimal.Decimal            `json:"limit_price"` // floor (sell) or ceiling (buy); zero if none
	Fees             decimal.Decimal            `json:"fees"`
	OtherFees        map[string]decimal.Decimal `json:"other_fees,omitempty"`
	ChildOrders      int                        `json:"child_orders"`
	Fills            int                        `json:"fills"`
	Rejections       int                        `json:"rejections"`
	Venues           []string                   `json:"venues"`
	Start            time.Time                  `json:"start"`
	End              time.Time                  `json:"end"`
	Updated          time.Time                  `json:"updated"`
}

// OrderList is GET /v1/orders.
type OrderList struct {
	Orders []Order `json:"orders"`
}

// FillList is GET /v1/orders/{id}/fills: every fill the ledger holds.
type FillList struct {
	Fills []bus.FillMsg `json:"fills"`
}

// KillRequest is POST /v1/kill: cancel every order and refuse new ones
// until the switch is released (DELETE /v1/kill).
type KillRequest struct {
	Reason string `json:"reason"`
}

// KillResult lists the orders the kill cancelled. Errors lists what could
// not be published on the way (the orders were cancelled all the same).
type KillResult struct {
	Cancelled  []Order   `json:"cancelled"`
	KillSwitch KillState `json:"kill_switch"`
	Errors     []string  `json:"errors,omitempty"`
}

// KillState is the kill switch: engaged since when and why. While it is
// engaged, a submitted order is refused with 503 and code "killed".
type KillState struct {
	Engaged bool       `json:"engaged"`
	Reason  string     `json:"reason,omitempty"`
	Since   *time.Time `json:"since,omitempty"`
}

// Event is one order event, as on the bus (schema blockexec.event.v1).
type Event = bus.EventMsg

// Health is GET /healthz.
type Health struct {
	Status string            `json:"status"` // ok or degraded
	Checks map[string]string `json:"checks"` // component → ok or what is wrong
}
