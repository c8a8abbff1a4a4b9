package engine

import (
	"time"

	"github.com/blockexec/blockexec/bus"
	"github.com/blockexec/blockexec/internal/jsonappend"
)

// A checkpoint is encoded by hand, once or twice a slice: encoding/json
// took a large share of the serving loop's time. The encoder writes
// exactly what json.Marshal writes (checkpoint_json_test.go holds it to
// it) and falls back to it for what it does not write itself; decoding
// stays with encoding/json.

// AppendJSON appends c as json.Marshal encodes it, and fails where it
// fails (a time outside the years 0 to 9999).
func (c Checkpoint) AppendJSON(b []byte) ([]byte, error) {
	if out, ok := c.appendJSON(b); ok {
		return out, nil
	}
	return jsonappend.Marshal(b, c)
}

func (c *Checkpoint) appendJSON(b []byte) ([]byte, bool) {
	if !jsonappend.Native() {
		return b, false
	}
	b = append(b, `{"parent_id":`...)
	b = jsonappend.String(b, c.ParentID)
	b = append(b, `,"saved":`...)
	b, ok := jsonappend.Time(b, c.Saved)
	if c.Owner != "" {
		b = append(b, `,"owner":`...)
		b = jsonappend.String(b, c.Owner)
	}
	if len(c.Origin) > 0 {
		b = append(b, `,"origin":`...)
		b = jsonappend.Bytes(b, c.Origin)
	}
	b = append(b, `,"state":`...)
	b = jsonappend.String(b, c.State)
	if c.ResumeTo != "" {
		b = append(b, `,"resume_to":`...)
		b = jsonappend.String(b, c.ResumeTo)
	}
	if c.Reason != "" {
		b = append(b, `,"reason":`...)
		b = jsonappend.String(b, c.Reason)
	}
	b = append(b, `,"end":`...)
	b, ok = appendTime(b, c.End, ok)
	b = append(b, `,"limit_price":`...)
	b = jsonappend.Decimal(b, c.LimitPrice)
	b = append(b, `,"band_bps":`...)
	b = jsonappend.Decimal(b, c.BandBps)
	b = append(b, `,"max_participation":`...)
	b = jsonappend.Decimal(b, c.MaxParticipation)
	b = append(b, `,"arrival_price":`...)
	b = jsonappend.Decimal(b, c.ArrivalPrice)
	b = append(b, `,"next":`...)
	b, ok = appendTime(b, c.Next, ok)
	b = append(b, `,"seen":`...)
	b, ok = appendTime(b, c.Seen, ok)
	b = append(b, `,"slice":`...)
	b = jsonappend.Int(b, int64(c.Slice))
	b = append(b, `,"seq_reserved":`...)
	b = jsonappend.Int(b, c.SeqReserved)
	b = append(b, `,"filled":`...)
	b = jsonappend.Decimal(b, c.Filled)
	b = append(b, `,"notional":`...)
	b = jsonappend.Decimal(b, c.Notional)
	b = append(b, `,"fees":`...)
	b = jsonappend.Decimal(b, c.Fees)
	b = append(b, `,"max_participation_seen":`...)
	b = jsonappend.Decimal(b, c.MaxPart)
	b = append(b, `,"target":`...)
	b = jsonappend.Decimal(b, c.Target)
	b = append(b, `,"children":`...)
	b = jsonappend.Int(b, int64(c.Children))
	b = append(b, `,"fills":`...)
	b = jsonappend.Int(b, int64(c.Fills))
	b = append(b, `,"rejections":`...)
	b = jsonappend.Int(b, int64(c.Rejects))
	b = append(b, `,"venues":`...)
	b, _ = jsonappend.Array(b, c.Venues, (*VenueTally).appendJSON)
	if len(c.OtherFees) > 0 {
		b = append(b, `,"other_fees":{`...)
		var keys [8]string
		for i, k := range jsonappend.SortedKeys(keys[:0], c.OtherFees) {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonappend.String(b, k)
			b = append(b, ':')
			b = jsonappend.Decimal(b, c.OtherFees[k])
		}
		b = append(b, '}')
	}
	if len(c.Open) > 0 && ok {
		b = append(b, `,"open":`...)
		b, ok = jsonappend.Array(b, c.Open, (*OpenChild).appendJSON)
	}
	if len(c.Recent) > 0 && ok {
		b = append(b, `,"recent":`...)
		b, ok = jsonappend.Array(b, c.Recent, (*RecentFill).appendJSON)
	}
	if len(c.Events) > 0 && ok {
		b = append(b, `,"events":`...)
		b, ok = jsonappend.Array(b, c.Events, appendEvent)
	}
	if len(c.Schedule) > 0 && ok {
		b = append(b, `,"schedule":`...)
		b, ok = jsonappend.RawMessage(b, c.Schedule)
	}
	return append(b, '}'), ok
}

// appendTime appends t, and whether it and the times before it could be
// written as encoding/json writes them.
func appendTime(b []byte, t time.Time, ok bool) ([]byte, bool) {
	b, tok := jsonappend.Time(b, t)
	return b, ok && tok
}

func (v *VenueTally) appendJSON(b []byte) ([]byte, bool) {
	b = append(b, `{"Venue":`...)
	b = jsonappend.String(b, v.Venue)
	b = append(b, `,"Filled":`...)
	b = jsonappend.Decimal(b, v.Filled)
	b = append(b, `,"Notional":`...)
	b = jsonappend.Decimal(b, v.Notional)
	b = append(b, `,"Fees":`...)
	b = jsonappend.Decimal(b, v.Fees)
	b = append(b, `,"Fills":`...)
	b = jsonappend.Int(b, int64(v.Fills))
	return append(b, '}'), true
}

func (c *OpenChild) appendJSON(b []byte) ([]byte, bool) {
	b = append(b, `{"venue":`...)
	b = jsonappend.String(b, c.Venue)
	b = append(b, `,"client_id":`...)
	b = jsonappend.String(b, c.ClientID)
	b = append(b, `,"symbol":`...)
	b = jsonappend.String(b, c.Symbol)
	b = append(b, `,"side":`...)
	b = jsonappend.String(b, c.Side)
	b = append(b, `,"price":`...)
	b = jsonappend.Decimal(b, c.Price)
	b = append(b, `,"qty":`...)
	b = jsonappend.Decimal(b, c.Qty)
	b = append(b, `,"tif":`...)
	b = jsonappend.String(b, c.TIF)
	b = append(b, `,"since":`...)
	b, ok := jsonappend.Time(b, c.Since)
	b = append(b, `,"seq":`...)
	b = jsonappend.Int(b, c.Seq)
	b = append(b, `,"recorded":`...)
	b = jsonappend.Bool(b, c.Recorded)
	if len(c.Fills) > 0 && ok {
		b = append(b, `,"fills":`...)
		b, ok = jsonappend.Array(b, c.Fills, appendFill)
	}
	return append(b, '}'), ok
}

func (f *RecentFill) appendJSON(b []byte) ([]byte, bool) {
	b = append(b, `{"venue":`...)
	b = jsonappend.String(b, f.Venue)
	b = append(b, `,"time":`...)
	b, ok := jsonappend.Time(b, f.Time)
	b = append(b, `,"qty":`...)
	b = jsonappend.Decimal(b, f.Qty)
	return append(b, '}'), ok
}

func appendEvent(m *bus.EventMsg, b []byte) ([]byte, bool) {
	b, err := m.AppendJSON(b)
	return b, err == nil
}

func appendFill(m *bus.FillMsg, b []byte) ([]byte, bool) {
	b, err := m.AppendJSON(b)
	return b, err == nil
}
