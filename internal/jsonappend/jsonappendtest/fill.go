// Package jsonappendtest builds values for the tests of hand-written JSON
// encoders: it sets every exported field of a struct, recursively, either
// from fuzzed bytes or all to distinct non-zero values, so that a test
// comparing an encoder with encoding/json covers each field, including one
// added to the struct later.
package jsonappendtest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

var (
	decimalType = reflect.TypeFor[decimal.Decimal]()
	timeType    = reflect.TypeFor[time.Time]()
	rawType     = reflect.TypeFor[json.RawMessage]()
)

// Fill sets every exported field reachable from ptr (a pointer) from
// data, read as a stream: nil, empty or filled slices, maps and pointers;
// strings of any bytes (invalid UTF-8 too); decimals of small and huge
// coefficients and exponents; times in any zone, some outside what
// time.Time.MarshalJSON accepts. Once data runs out, the rest is zero.
func Fill(ptr any, data []byte) {
	s := &source{data: data}
	s.fill(reflect.ValueOf(ptr).Elem(), 0)
}

// FillAll sets every exported field reachable from ptr to a non-zero value
// that differs from the other fields' (so a field written under another's
// name shows): two elements in each slice and map, strings that need
// escaping, decimals with fractions, times with nanoseconds in a zone.
func FillAll(ptr any) {
	s := &source{full: true}
	s.fill(reflect.ValueOf(ptr).Elem(), 0)
}

type source struct {
	data []byte
	full bool
	n    int // values set so far, to tell FillAll's apart
}

func (s *source) byte() byte {
	if len(s.data) == 0 {
		return 0
	}
	c := s.data[0]
	s.data = s.data[1:]
	return c
}

func (s *source) uint64() uint64 {
	var p [8]byte
	n := copy(p[:], s.data)
	s.data = s.data[n:]
	return binary.LittleEndian.Uint64(p[:])
}

// count is a length: from 0 to 2 (FillAll: 2).
func (s *source) count() int {
	if s.full {
		return 2
	}
	return int(s.byte() % 3)
}

// present decides whether a pointer, slice or map is nil.
func (s *source) present() bool { return s.full || s.byte()%4 != 0 }

// specials are strings encoding/json escapes.
var specials = []string{"", "plain", "a<b>&c", `q"uo\te`, "ctl\x00\x01\x1f\x7f\b\f\n\r\t", "line\u2028para\u2029",
	"bad\xff\xfeutf8\xc3", "é€😀", "\xe2\x80"}

func (s *source) string() string {
	if s.full {
		return fmt.Sprintf("v%d %s", s.n, specials[s.n%len(specials)])
	}
	n := int(s.byte() % 24)
	if n >= 16 {
		return specials[n%len(specials)]
	}
	n = min(n, len(s.data))
	str := string(s.data[:n])
	s.data = s.data[n:]
	return str
}

func (s *source) decimal() decimal.Decimal {
	if s.full {
		return decimal.New(int64(s.n)*1000+7, -int32(s.n%7))
	}
	switch k := s.byte(); k % 4 {
	case 0:
		return decimal.Decimal{}
	case 1: // a huge coefficient
		c := new(big.Int).SetUint64(s.uint64())
		c.Mul(c, new(big.Int).SetUint64(s.uint64()|1))
		if k&4 != 0 {
			c.Neg(c)
		}
		return decimal.NewFromBigInt(c, int32(int8(s.byte())))
	default:
		return decimal.New(int64(s.uint64()), int32(int8(s.byte())))
	}
}

func (s *source) time() time.Time {
	if s.full {
		zone := time.FixedZone("", (s.n%27-13)*3600+s.n%2*1800)
		return time.Date(2026, 3, 1+s.n%28, s.n%24, 17, 42, 123456789+s.n, time.UTC).In(zone)
	}
	switch k := s.byte(); k % 4 {
	case 0:
		return time.Time{}
	case 1: // anywhere in time.Time's range, and any offset up to 30 hours
		t := time.Unix(int64(s.uint64()>>1)-1<<62, int64(s.uint64()%1e9))
		return t.In(time.FixedZone("X", int(int32(s.uint64()))%(30*3600)))
	default: // years 1900 to 2100, in whole-quarter-hour zones
		t := time.Unix(int64(s.uint64()%(200*365*86400))-70*365*86400, int64(s.uint64()%1e9))
		return t.In(time.FixedZone("", (int(s.byte())%105-52)*900))
	}
}

// raws are JSON texts, compact or not, some that encoding/json escapes,
// one invalid.
var raws = []json.RawMessage{nil, {}, json.RawMessage(`{"n":1,"s":"x"}`), json.RawMessage(` { "a" : [1, 2.5e3, true, null] }` + "\n"),
	json.RawMessage(`{"a":"<&>"}`), json.RawMessage("[\"\u2028\"]"), json.RawMessage(`"é"`), json.RawMessage(`{"a":`)}

func (s *source) raw() json.RawMessage {
	if s.full {
		return json.RawMessage(fmt.Sprintf(`{"n":%d}`, s.n))
	}
	return raws[int(s.byte())%len(raws)]
}

func (s *source) fill(v reflect.Value, depth int) {
	if depth > 8 {
		panic(fmt.Sprintf("jsonappendtest: %s nests too deep", v.Type()))
	}
	s.n++
	switch {
	case v.Type() == decimalType:
		v.Set(reflect.ValueOf(s.decimal()))
		return
	case v.Type() == timeType:
		v.Set(reflect.ValueOf(s.time()))
		return
	case v.Type() == rawType:
		v.Set(reflect.ValueOf(s.raw()))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s.string())
	case reflect.Bool:
		v.SetBool(s.full || s.byte()&1 == 1)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if s.full {
			v.SetInt(int64(s.n))
		} else {
			v.SetInt(int64(s.uint64()))
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if s.full {
			v.SetUint(uint64(s.n))
		} else {
			v.SetUint(s.uint64())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				s.fill(v.Field(i), depth+1)
			}
		}
	case reflect.Pointer:
		if s.present() {
			v.Set(reflect.New(v.Type().Elem()))
			s.fill(v.Elem(), depth+1)
		}
	case reflect.Slice:
		if s.present() {
			n := s.count()
			v.Set(reflect.MakeSlice(v.Type(), n, n))
			for i := range n {
				s.fill(v.Index(i), depth+1)
			}
		}
	case reflect.Map:
		if s.present() {
			v.Set(reflect.MakeMap(v.Type()))
			for range s.count() {
				k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
				s.fill(k, depth+1)
				s.fill(e, depth+1)
				v.SetMapIndex(k, e)
			}
		}
	default:
		panic(fmt.Sprintf("jsonappendtest: cannot fill a %s", v.Type()))
	}
}

// Appender is a value with a hand-written JSON encoder.
type Appender interface {
	AppendJSON(b []byte) ([]byte, error)
}

// Check fails t unless v.AppendJSON, appending to other bytes, writes
// what json.Marshal(v) writes, or fails where it fails.
func Check(t testing.TB, v Appender) {
	t.Helper()
	const prefix = "prefix"
	got, gotErr := v.AppendJSON([]byte(prefix))
	if string(got[:len(prefix)]) != prefix {
		t.Fatalf("the bytes appended to were changed: %q", got)
	}
	got = got[len(prefix):]
	want, err := json.Marshal(v)
	switch {
	case err != nil && gotErr == nil:
		t.Fatalf("encoding/json fails (%v), the encoder wrote %s", err, got)
	case err == nil && gotErr != nil:
		t.Fatalf("the encoder fails (%v), encoding/json writes %s", gotErr, want)
	case err == nil && !bytes.Equal(got, want):
		i := 0
		for i < min(len(got), len(want)) && got[i] == want[i] {
			i++
		}
		t.Fatalf("differs from encoding/json at byte %d:\n got  …%s\n want …%s", i, got[max(i-40, 0):], want[max(i-40, 0):])
	}
}

// CheckAll Checks a T set by FillAll: every field, so that a field added
// to T (or to a type within) and not to its encoder fails.
func CheckAll[T Appender](t testing.TB) {
	t.Helper()
	var v T
	FillAll(&v)
	Check(t, v)
}

// Fuzz runs f's target: a T set by Fill from the fuzzed bytes, Checked.
func Fuzz[T Appender](f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		var v T
		Fill(&v, data)
		Check(t, v)
	})
}

// Bench measures json.Marshal(v) (sub-benchmark encoding_json) against
// v.AppendJSON into a fresh buffer of size bytes (AppendJSON), as the
// encoders' callers allocate.
func Bench(b *testing.B, v Appender, size int) {
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.AppendJSON(make([]byte, 0, size)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
