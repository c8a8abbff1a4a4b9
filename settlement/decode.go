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
// string values without escapes; ok is false for anything else.
func readFlatFill(data []byte) (m bus.FillMsg, ok bool) {
	p := flat{b: data}
	if !p.byte('{') {
		return m, false
	}
	if p.byte('}') {
		return m, p.end()
	}
	for {
		key, ok := p.str()
		if !ok || !p.byte(':') {
			return m, false
		}
		val, ok := p.str()
		if !ok || !setFill(&m, key, val) {
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

// str reads a string without escapes or control characters; its bytes
// must be valid UTF-8 for the result to equal encoding/json's, which
// set checks.
func (p *flat) str() ([]byte, bool) {
	if !p.byte('"') {
		return nil, false
	}
	j := bytes.IndexByte(p.b[p.i:], '"')
	if j < 0 {
		return nil, false
	}
	s := p.b[p.i : p.i+j]
	for _, c := range s {
		if c == '\\' || c < 0x20 || c >= 0x80 {
			return nil, false
		}
	}
	p.i += j + 1
	return s, true
}

func (p *flat) end() bool {
	p.ws()
	return p.i == len(p.b)
}

// setFill assigns one field of a fill; false for a key encoding/json
// would match differently (unknown, other case) or a value it would read
// otherwise.
func setFill(m *bus.FillMsg, key, val []byte) bool {
	var err error
	switch string(key) {
	case "schema":
		m.Schema = string(val)
	case "parent_id":
		m.ParentID = string(val)
	case "client_order_id":
		m.ClientID = string(val)
	case "order_id":
		m.OrderID = string(val)
	case "venue":
		m.Venue = string(val)
	case "trade_id":
		m.TradeID = string(val)
	case "symbol":
		m.Symbol = string(val)
	case "side":
		m.Side = string(val)
	case "fee_asset":
		m.FeeAsset = string(val)
	case "liquidity":
		m.Liquidity = string(val)
	case "price":
		m.Price, err = decimal.NewFromString(string(val))
	case "qty":
		m.Qty, err = decimal.NewFromString(string(val))
	case "fee":
		m.Fee, err = decimal.NewFromString(string(val))
	case "time":
		err = m.Time.UnmarshalText(val)
	default:
		return false
	}
	return err == nil
}
