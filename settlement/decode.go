package settlement

import (
	"bytes"
	"encoding/json"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/bus"
)

// decodeFillBody decodes a fill as encoding/json would. The engine's
// fills are a flat object of plain strings, which readFlatFill reads in a
// fraction of the time (decoding was a third of the recorder's work per
// fill); anything else, such as an escape, a number, null or an unknown
// key, goes to encoding/json.
func decodeFillBody(data []byte) (bus.FillMsg, error) {
	if m, ok := readFlatFill(data); ok {
		return m, nil
	}
	var m bus.FillMsg
	err := json.Unmarshal(data, &m)
	return m, err
}

// readFlatFill reads {"key":"value",…} with the keys of bus.FillMsg and
// string values without escapes; ok is false for anything else. The body
// is copied into one string, of which the fields are slices: one
// allocation instead of one a field.
func readFlatFill(data []byte) (m bus.FillMsg, ok bool) {
	p := flat{b: data, s: string(data)}
	if !p.byte('{') {
		return m, false
	}
	if p.byte('}') {
		return m, p.end()
	}
	for {
		ki, kj, ok := p.str()
		if !ok || !p.byte(':') {
			return m, false
		}
		vi, vj, ok := p.str()
		if !ok || !setFill(&m, p.b[ki:kj], p.s[vi:vj], p.b[vi:vj]) {
			return m, false
		}
		if p.byte('}') {
			return m, p.end()
		}
		if !p.byte(',') {
			return m, false
		}
	}
}

type flat struct {
	b []byte
	s string // b as a string
	i int
}

func (p *flat) ws() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n' || p.b[p.i] == '\r') {
		p.i++
	}
}

// byte consumes c after any white space.
func (p *flat) byte(c byte) bool {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str reads a string without escapes or control characters, or any
// byte past ASCII (whose UTF-8 encoding/json would check), and returns
// where its text starts and ends in p.b.
func (p *flat) str() (i, j int, ok bool) {
	if !p.byte('"') {
		return 0, 0, false
	}
	n := bytes.IndexByte(p.b[p.i:], '"')
	if n < 0 {
		return 0, 0, false
	}
	for _, c := range p.b[p.i : p.i+n] {
		if c == '\\' || c < 0x20 || c >= 0x80 {
			return 0, 0, false
		}
	}
	i, j = p.i, p.i+n
	p.i = j + 1
	return i, j, true
}

func (p *flat) end() bool {
	p.ws()
	return p.i == len(p.b)
}

// setFill assigns one field of a fill, val (raw is the same bytes); false
// for a key encoding/json would match differently (unknown, other case)
// or a value it would read otherwise.
func setFill(m *bus.FillMsg, key []byte, val string, raw []byte) bool {
	var err error
	switch string(key) {
	case "schema":
		m.Schema = val
	case "parent_id":
		m.ParentID = val
	case "client_order_id":
		m.ClientID = val
	case "order_id":
		m.OrderID = val
	case "venue":
		m.Venue = val
	case "trade_id":
		m.TradeID = val
	case "symbol":
		m.Symbol = val
	case "side":
		m.Side = val
	case "fee_asset":
		m.FeeAsset = val
	case "liquidity":
		m.Liquidity = val
	case "price":
		m.Price, err = decimal.NewFromString(val)
	case "qty":
		m.Qty, err = decimal.NewFromString(val)
	case "fee":
		m.Fee, err = decimal.NewFromString(val)
	case "time":
		err = m.Time.UnmarshalText(raw)
	default:
		return false
	}
	return err == nil
}
