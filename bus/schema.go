// Package bus carries fills and events over NATS JetStream: the stream
// layout, the versioned JSON message schema, an embedded server for the
// default single-process setup, and a connection to an external cluster.
package bus

import (
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Stream names and subject roots.
const (
	FillsStream   = "BLOCKEXEC_FILLS"
	EventsStream  = "BLOCKEXEC_EVENTS"
	FillsSubject  = "blockexec.fills"  // .<parent>.<venue>
	EventsSubject = "blockexec.events" // .<parent>.<kind>

	FillSchema  = "blockexec.fill.v1"
	EventSchema = "blockexec.event.v1"
)

// Event kinds, the last token of an event subject.
const (
	KindAccepted       = "accepted"
	KindSlice          = "slice"
	KindChildPlaced    = "child_placed"
	KindChildRejected  = "child_rejected"
	KindChildCancelled = "child_cancelled"
	KindSliceShort     = "slice_short"
	KindChildUnknown   = "child_unknown"
	KindPaused         = "paused"
	KindResumed        = "resumed"
	KindAmended        = "amended"
	KindDone           = "done"
)

// Token makes s safe as one NATS subject token: '.', '*', '>' and
// whitespace become '_'.
func Token(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', '*', '>', ' ', '\t', '\r', '\n':
			return '_'
		}
		return r
	}, s)
}

// FillSubjectFor returns blockexec.fills.<parent>.<venue>.
func FillSubjectFor(parent, venue string) string {
	return FillsSubject + "." + Token(parent) + "." + Token(venue)
}

// EventSubjectFor returns blockexec.events.<parent>.<kind>.
func EventSubjectFor(parent, kind string) string {
	return EventsSubject + "." + Token(parent) + "." + Token(kind)
}

// FillMsg is the body of a message on BLOCKEXEC_FILLS. Decimals are strings.
type FillMsg struct {
	Schema    string          `json:"schema"`
	ParentID  string          `json:"parent_id"`
	ClientID  string          `json:"client_order_id"`
	OrderID   string          `json:"order_id"`
	Venue     string          `json:"venue"`
	TradeID   string          `json:"trade_id"`
	Symbol    string          `json:"symbol"`
	Side      string          `json:"side"`
	Price     decimal.Decimal `json:"price"`
	Qty       decimal.Decimal `json:"qty"`
	Fee       decimal.Decimal `json:"fee"`
	FeeAsset  string          `json:"fee_asset"`
	Liquidity string          `json:"liquidity"`
	Time      time.Time       `json:"time"`
}

// MsgID is the JetStream de-duplication id of a fill: venue:trade id.
func (m FillMsg) MsgID() string { return m.Venue + ":" + m.TradeID }

// EventMsg is the body of a message on BLOCKEXEC_EVENTS. Exactly one of the
// payload pointers is set, matching Kind.
type EventMsg struct {
	Schema   string    `json:"schema"`
	ParentID string    `json:"parent_id"`
	Kind     string    `json:"kind"`
	Seq      int64     `json:"seq"` // per parent, from 1
	Time     time.Time `json:"time"`

	Parent    *ParentInfo    `json:"parent,omitempty"`    // accepted, amended (the new terms)
	Slice     *SliceInfo     `json:"slice,omitempty"`     // slice
	Child     *ChildInfo     `json:"child,omitempty"`     // child_placed, child_cancelled, child_unknown
	Rejection *RejectionInfo `json:"rejection,omitempty"` // child_rejected
	Short     *ShortInfo     `json:"short,omitempty"`     // slice_short
	Summary   *SummaryInfo   `json:"summary,omitempty"`   // done
}

// MsgID is the JetStream de-duplication id of an event: parent:seq.
func (m EventMsg) MsgID() string { return m.ParentID + ":" + strconv.FormatInt(m.Seq, 10) }

// ParentInfo describes an accepted parent order.
type ParentInfo struct {
	Side             string          `json:"side"`
	Symbol           string          `json:"symbol"`
	QuoteAsset       string          `json:"quote_asset,omitempty"` // the asset prices, proceeds and fees are counted in
	Quantity         decimal.Decimal `json:"quantity"`
	Strategy         string          `json:"strategy"`
	Start            time.Time       `json:"start"`
	End              time.Time       `json:"end"`
	ArrivalPrice     decimal.Decimal `json:"arrival_price"`
	LimitPrice       decimal.Decimal `json:"limit_price"` // floor (sell) or ceiling (buy); zero if none
	SlippageBandBps  decimal.Decimal `json:"slippage_band_bps"`
	MaxParticipation decimal.Decimal `json:"max_participation"`
	Venues           []string        `json:"venues"`
}

// SliceInfo reports one scheduling step.
type SliceInfo struct {
	Seq       int             `json:"seq"`
	Target    decimal.Decimal `json:"target"`    // cumulative target quantity
	Filled    decimal.Decimal `json:"filled"`    // cumulative filled before this slice
	Shortfall decimal.Decimal `json:"shortfall"` // target − filled
	// MaxParticipation is the highest share of a venue's volume the parent
	// has taken in any window so far (as the done summary reports it at
	// the end), for a live view.
	MaxParticipation decimal.Decimal `json:"max_participation,omitzero"`
}

// ChildInfo describes a child order.
type ChildInfo struct {
	ClientID string          `json:"client_order_id"`
	Venue    string          `json:"venue"`
	Side     string          `json:"side"`
	Price    decimal.Decimal `json:"price"`
	Qty      decimal.Decimal `json:"qty"`
	TIF      string          `json:"tif"`
	Filled   decimal.Decimal `json:"filled"`
	Status   string          `json:"status,omitempty"`
	// Mid is the venue's mid price in the book the child was priced on
	// (absent for a child recorded after an unknown outcome): the market
	// price the post-trade chart draws fills against.
	Mid decimal.Decimal `json:"mid,omitzero"`
}

// RejectionInfo explains a child that risk or the venue refused.
type RejectionInfo struct {
	Venue  string          `json:"venue"`
	Check  string          `json:"check"`  // risk check or "venue"
	Reason string          `json:"reason"` // with the numbers
	Price  decimal.Decimal `json:"price"`
	Qty    decimal.Decimal `json:"qty"`
}

// ShortInfo explains why a slice placed less than its shortfall: per
// venue, what held it back (no depth inside the limit, no participation
// headroom, dust below the venue's minimum, a venue sitting out). The
// unplaced quantity stays in the schedule.
type ShortInfo struct {
	Shortfall decimal.Decimal `json:"shortfall"`
	Placed    decimal.Decimal `json:"placed"` // quantity sent in child orders
	Venues    []VenueShort    `json:"venues"`
}

// VenueShort is one venue's reason for taking less of a slice.
type VenueShort struct {
	Venue  string `json:"venue"`
	Reason string `json:"reason"`
}

// SummaryInfo is the engine's own tally when a parent ends.
type SummaryInfo struct {
	State            string          `json:"state"` // done, cancelled, failed
	Filled           decimal.Decimal `json:"filled_quantity"`
	Unfilled         decimal.Decimal `json:"unfilled_quantity"`
	MarketVWAP       decimal.Decimal `json:"market_vwap"`
	MaxParticipation decimal.Decimal `json:"max_participation"`
	ChildOrders      int             `json:"child_orders"`
	Fills            int             `json:"fills"`
	Rejections       int             `json:"rejections"`
	Reason           string          `json:"reason,omitempty"`
}
