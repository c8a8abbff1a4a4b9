// Package jsonappend appends JSON values byte for byte as encoding/json
// writes them (its string escaping, time.Time's and decimal.Decimal's own
// MarshalJSON), without reflection: the building blocks of the hand-written
// encoders of the bus messages and the engine's checkpoints.
package jsonappend

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// Native reports whether decimals are written as encoding/json writes
// them, a quoted String(): false once decimal.MarshalJSONWithoutQuotes is
// set, and an encoder then falls back to Marshal.
func Native() bool { return !decimal.MarshalJSONWithoutQuotes }

// Marshal appends json.Marshal(v) to b: the fallback for a value a
// hand-written encoder does not write as encoding/json does.
func Marshal(b []byte, v any) ([]byte, error) {
	out, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	return append(b, out...), nil
}

// String appends s as a JSON string, escaped as encoding/json escapes it:
// <, > and & as \u003c, \u003e and \u0026, U+2028 and U+2029, and each
// byte of invalid UTF-8 as \ufffd.
func String(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if safe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

const hex = "0123456789abcdef"

// safe marks the ASCII bytes encoding/json writes as they are (its
// htmlSafeSet): from the space on, but for a quote, a backslash, <, > and &.
var safe = func() (t [utf8.RuneSelf]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// Bytes appends p as encoding/json writes a []byte: base64 (standard, with
// padding) in quotes, or null for nil.
func Bytes(b []byte, p []byte) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, p)
	return append(b, '"')
}

// Int appends n.
func Int(b []byte, n int64) []byte { return strconv.AppendInt(b, n, 10) }

// Bool appends true or false.
func Bool(b []byte, v bool) []byte { return strconv.AppendBool(b, v) }

// Time appends t as time.Time.MarshalJSON writes it: RFC 3339 with
// nanoseconds, in quotes. ok is false for a time that MarshalJSON refuses
// (a year outside [0,9999], a zone offset of 24 hours or more); b is then
// as it was.
func Time(b []byte, t time.Time) (out []byte, ok bool) {
	n0 := len(b)
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	// The checks of time.Time.appendStrictRFC3339.
	num2 := func(p []byte) byte { return 10*(p[0]-'0') + (p[1] - '0') }
	switch {
	case b[n0+1+len("9999")] != '-':
		return b[:n0], false
	case b[len(b)-1] != 'Z':
		if c := b[len(b)-len("Z07:00")]; '0' <= c && c <= '9' || num2(b[len(b)-len("07:00"):]) >= 24 {
			return b[:n0], false
		}
	}
	return append(b, '"'), true
}

// Decimal appends d as decimal.Decimal.MarshalJSON writes it when
// decimal.MarshalJSONWithoutQuotes is false (see Native): d.String() in
// quotes.
func Decimal(b []byte, d decimal.Decimal) []byte {
	b = append(b, '"')
	b = appendDecimal(b, d)
	return append(b, '"')
}

// maxExp bounds the exponents appendDecimal writes itself; beyond, the
// output is as long as the exponent and String() writes it.
const maxExp = 64

// appendDecimal appends d.String() without allocating for a coefficient of
// up to 18 digits (one that fits an int64 exactly).
func appendDecimal(b []byte, d decimal.Decimal) []byte {
	exp := int(d.Exponent())
	if exp > maxExp || exp < -maxExp || exp > 0 && decimal.UseScientificNotation || d.NumDigits() > 18 {
		return append(b, d.String()...)
	}
	c := d.CoefficientInt64()
	if c == 0 {
		if exp < 0 && !decimal.TrimTrailingZeros {
			return append(append(b, "0."...), zeros[:-exp]...)
		}
		return append(b, '0')
	}
	if exp >= 0 {
		return append(strconv.AppendInt(b, c, 10), zeros[:exp]...)
	}
	if c < 0 {
		b = append(b, '-')
		c = -c
	}
	var buf [20]byte
	digits := strconv.AppendInt(buf[:0], c, 10)
	point := len(digits) + exp // digits before the point; < 1: "0." and -point zeros first
	intPart, fracPart := digits[:max(point, 0)], digits[max(point, 0):]
	if decimal.TrimTrailingZeros {
		for len(fracPart) > 0 && fracPart[len(fracPart)-1] == '0' {
			fracPart = fracPart[:len(fracPart)-1]
		}
	}
	if len(intPart) == 0 {
		b = append(b, '0')
	}
	b = append(b, intPart...)
	if len(fracPart) > 0 {
		b = append(b, '.')
		b = append(b, zeros[:max(-point, 0)]...)
		b = append(b, fracPart...)
	}
	return b
}

const zeros = "0000000000000000000000000000000000000000000000000000000000000000"

// SortedKeys returns m's keys in the order encoding/json writes them
// (byte-wise), in keys' storage when it has room.
func SortedKeys[V any](keys []string, m map[string]V) []string {
	keys = keys[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Array appends s as encoding/json writes a slice: null if nil, else each
// element as elem writes it, in brackets. ok is false as soon as an
// element's is (elem could not write it as encoding/json would).
func Array[T any](b []byte, s []T, elem func(*T, []byte) ([]byte, bool)) (out []byte, ok bool) {
	if s == nil {
		return append(b, "null"...), true
	}
	b = append(b, '[')
	for i := range s {
		if i > 0 {
			b = append(b, ',')
		}
		if b, ok = elem(&s[i], b); !ok {
			return b, false
		}
	}
	return append(b, ']'), true
}

// Strings appends s as encoding/json writes a []string.
func Strings(b []byte, s []string) []byte {
	b, _ = Array(b, s, func(s *string, b []byte) ([]byte, bool) { return String(b, *s), true })
	return b
}

// RawMessage appends raw as encoding/json writes a json.RawMessage (null
// if nil), if raw is valid JSON that needs no compacting or escaping (as
// json.Marshal writes it): ok is false otherwise, and b is as it was.
func RawMessage(b []byte, raw json.RawMessage) (out []byte, ok bool) {
	if raw == nil {
		return append(b, "null"...), true
	}
	for _, c := range raw {
		if compactOrEscaped[c] {
			return b, false
		}
	}
	if !json.Valid(raw) {
		return b, false
	}
	return append(b, raw...), true
}

// compactOrEscaped marks the bytes encoding/json's compacting of a
// json.RawMessage may change: white space, <, > and &, and the first byte
// of U+2028 and U+2029.
var compactOrEscaped = [256]bool{' ': true, '\t': true, '\n': true, '\r': true, '<': true, '>': true, '&': true, 0xE2: true}
