package bus

import (
	"github.com/blockexec/blockexec/internal/jsonappend"
)

// The messages are encoded by hand: encoding/json took a large share of
// the serving loop's time. Each encoder writes exactly what json.Marshal
// writes (schema_json_test.go holds them to it) and falls back to it for
// what it does not write itself.

// Typical encoded sizes, to allocate a message's buffer once.
const (
	fillSizeHint  = 384
	eventSizeHint = 512
)

// AppendJSON appends m as json.Marshal encodes it, and fails where it
// fails (a time outside the years 0 to 9999).
func (m FillMsg) AppendJSON(b []byte) ([]byte, error) {
	if out, ok := m.appendJSON(b); ok {
		return out, nil
	}
	return jsonappend.Marshal(b, m)
}

func (m *FillMsg) appendJSON(b []byte) ([]byte, bool) {
	if !jsonappend.Native() {
		return b, false
	}
	b = append(b, `{"schema":`...)
	b = jsonappend.String(b, m.Schema)
	b = append(b, `,"parent_id":`...)
	b = jsonappend.String(b, m.ParentID)
	b = append(b, `,"client_order_id":`...)
	b = jsonappend.String(b, m.ClientID)
	b = append(b, `,"order_id":`...)
	b = jsonappend.String(b, m.OrderID)
	b = append(b, `,"venue":`...)
	b = jsonappend.String(b, m.Venue)
	b = append(b, `,"trade_id":`...)
	b = jsonappend.String(b, m.TradeID)
	b = append(b, `,"symbol":`...)
	b = jsonappend.String(b, m.Symbol)
	b = append(b, `,"side":`...)
	b = jsonappend.String(b, m.Side)
	b = append(b, `,"price":`...)
	b = jsonappend.Decimal(b, m.Price)
	b = append(b, `,"qty":`...)
	b = jsonappend.Decimal(b, m.Qty)
	b = append(b, `,"fee":`...)
	b = jsonappend.Decimal(b, m.Fee)
	b = append(b, `,"fee_asset":`...)
	b = jsonappend.String(b, m.FeeAsset)
	b = append(b, `,"liquidity":`...)
	b = jsonappend.String(b, m.Liquidity)
	b = append(b, `,"time":`...)
	b, ok := jsonappend.Time(b, m.Time)
	return append(b, '}'), ok
}

// AppendJSON appends m as json.Marshal encodes it, and fails where it
// fails (a time outside the years 0 to 9999).
func (m EventMsg) AppendJSON(b []byte) ([]byte, error) {
	if out, ok := m.appendJSON(b); ok {
		return out, nil
	}
	return jsonappend.Marshal(b, m)
}

func (m *EventMsg) appendJSON(b []byte) ([]byte, bool) {
	if !jsonappend.Native() {
		return b, false
	}
	b = append(b, `{"schema":`...)
	b = jsonappend.String(b, m.Schema)
	b = append(b, `,"parent_id":`...)
	b = jsonappend.String(b, m.ParentID)
	b = append(b, `,"kind":`...)
	b = jsonappend.String(b, m.Kind)
	b = append(b, `,"seq":`...)
	b = jsonappend.Int(b, m.Seq)
	b = append(b, `,"time":`...)
	b, ok := jsonappend.Time(b, m.Time)
	if !ok {
		return b, false
	}
	if m.Parent != nil {
		b = append(b, `,"parent":`...)
		if b, ok = m.Parent.appendJSON(b); !ok {
			return b, false
		}
	}
	if m.Slice != nil {
		b = append(b, `,"slice":`...)
		b = m.Slice.appendJSON(b)
	}
	if m.Child != nil {
		b = append(b, `,"child":`...)
		b = m.Child.appendJSON(b)
	}
	if m.Rejection != nil {
		b = append(b, `,"rejection":`...)
		b = m.Rejection.appendJSON(b)
	}
	if m.Short != nil {
		b = append(b, `,"short":`...)
		b = m.Short.appendJSON(b)
	}
	if m.Summary != nil {
		b = append(b, `,"summary":`...)
		b = m.Summary.appendJSON(b)
	}
	return append(b, '}'), true
}

func (p *ParentInfo) appendJSON(b []byte) ([]byte, bool) {
	b = append(b, `{"side":`...)
	b = jsonappend.String(b, p.Side)
	b = append(b, `,"symbol":`...)
	b = jsonappend.String(b, p.Symbol)
	if p.QuoteAsset != "" {
		b = append(b, `,"quote_asset":`...)
		b = jsonappend.String(b, p.QuoteAsset)
	}
	b = append(b, `,"quantity":`...)
	b = jsonappend.Decimal(b, p.Quantity)
	b = append(b, `,"strategy":`...)
	b = jsonappend.String(b, p.Strategy)
	b = append(b, `,"start":`...)
	b, ok1 := jsonappend.Time(b, p.Start)
	b = append(b, `,"end":`...)
	b, ok2 := jsonappend.Time(b, p.End)
	b = append(b, `,"arrival_price":`...)
	b = jsonappend.Decimal(b, p.ArrivalPrice)
	b = append(b, `,"limit_price":`...)
	b = jsonappend.Decimal(b, p.LimitPrice)
	b = append(b, `,"slippage_band_bps":`...)
	b = jsonappend.Decimal(b, p.SlippageBandBps)
	b = append(b, `,"max_participation":`...)
	b = jsonappend.Decimal(b, p.MaxParticipation)
	b = append(b, `,"venues":`...)
	b = jsonappend.Strings(b, p.Venues)
	return append(b, '}'), ok1 && ok2
}

func (s *SliceInfo) appendJSON(b []byte) []byte {
	b = append(b, `{"seq":`...)
	b = jsonappend.Int(b, int64(s.Seq))
	b = append(b, `,"target":`...)
	b = jsonappend.Decimal(b, s.Target)
	b = append(b, `,"filled":`...)
	b = jsonappend.Decimal(b, s.Filled)
	b = append(b, `,"shortfall":`...)
	b = jsonappend.Decimal(b, s.Shortfall)
	if !s.MaxParticipation.IsZero() { // omitzero: decimal.Decimal's IsZero
		b = append(b, `,"max_participation":`...)
		b = jsonappend.Decimal(b, s.MaxParticipation)
	}
	return append(b, '}')
}

func (c *ChildInfo) appendJSON(b []byte) []byte {
	b = append(b, `{"client_order_id":`...)
	b = jsonappend.String(b, c.ClientID)
	b = append(b, `,"venue":`...)
	b = jsonappend.String(b, c.Venue)
	b = append(b, `,"side":`...)
	b = jsonappend.String(b, c.Side)
	b = append(b, `,"price":`...)
	b = jsonappend.Decimal(b, c.Price)
	b = append(b, `,"qty":`...)
	b = jsonappend.Decimal(b, c.Qty)
	b = append(b, `,"tif":`...)
	b = jsonappend.String(b, c.TIF)
	b = append(b, `,"filled":`...)
	b = jsonappend.Decimal(b, c.Filled)
	if c.Status != "" {
		b = append(b, `,"status":`...)
		b = jsonappend.String(b, c.Status)
	}
	if !c.Mid.IsZero() {
		b = append(b, `,"mid":`...)
		b = jsonappend.Decimal(b, c.Mid)
	}
	return append(b, '}')
}

func (r *RejectionInfo) appendJSON(b []byte) []byte {
	b = append(b, `{"venue":`...)
	b = jsonappend.String(b, r.Venue)
	b = append(b, `,"check":`...)
	b = jsonappend.String(b, r.Check)
	b = append(b, `,"reason":`...)
	b = jsonappend.String(b, r.Reason)
	b = append(b, `,"price":`...)
	b = jsonappend.Decimal(b, r.Price)
	b = append(b, `,"qty":`...)
	b = jsonappend.Decimal(b, r.Qty)
	return append(b, '}')
}

func (s *ShortInfo) appendJSON(b []byte) []byte {
	b = append(b, `{"shortfall":`...)
	b = jsonappend.Decimal(b, s.Shortfall)
	b = append(b, `,"placed":`...)
	b = jsonappend.Decimal(b, s.Placed)
	b = append(b, `,"venues":`...)
	b, _ = jsonappend.Array(b, s.Venues, (*VenueShort).appendJSON)
	return append(b, '}')
}

func (v *VenueShort) appendJSON(b []byte) ([]byte, bool) {
	b = append(b, `{"venue":`...)
	b = jsonappend.String(b, v.Venue)
	b = append(b, `,"reason":`...)
	b = jsonappend.String(b, v.Reason)
	return append(b, '}'), true
}

func (s *SummaryInfo) appendJSON(b []byte) []byte {
	b = append(b, `{"state":`...)
	b = jsonappend.String(b, s.State)
	b = append(b, `,"filled_quantity":`...)
	b = jsonappend.Decimal(b, s.Filled)
	b = append(b, `,"unfilled_quantity":`...)
	b = jsonappend.Decimal(b, s.Unfilled)
	b = append(b, `,"market_vwap":`...)
	b = jsonappend.Decimal(b, s.MarketVWAP)
	b = append(b, `,"max_participation":`...)
	b = jsonappend.Decimal(b, s.MaxParticipation)
	b = append(b, `,"child_orders":`...)
	b = jsonappend.Int(b, int64(s.ChildOrders))
	b = append(b, `,"fills":`...)
	b = jsonappend.Int(b, int64(s.Fills))
	b = append(b, `,"rejections":`...)
	b = jsonappend.Int(b, int64(s.Rejections))
	if s.Reason != "" {
		b = append(b, `,"reason":`...)
		b = jsonappend.String(b, s.Reason)
	}
	return append(b, '}')
}
