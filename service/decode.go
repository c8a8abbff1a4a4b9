package service

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/api"
)

// DefaultMaxBody is the largest request body accepted unless configured.
const DefaultMaxBody = 64 << 10

// Decode reads one JSON object into v, strictly: an unknown field, a wrong
// type, trailing data or a body over max bytes is a 400 (413 for the size)
// naming the field. Decimals may be strings or numbers; either way their
// digits are read exactly.
func Decode(body []byte, max int, v any) *api.Error {
	if len(body) > max {
		return api.Errorf(http.StatusRequestEntityTooLarge, api.CodeTooLarge, "the body has %d bytes; at most %d", len(body), max)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return api.BadField("", "the body is empty: send a JSON object")
	}
	// Decimals and times first, with their field's path: their own
	// decoders' errors do not say which field they were reading.
	var raw any
	rd := json.NewDecoder(bytes.NewReader(body))
	rd.UseNumber()
	if err := rd.Decode(&raw); err == nil {
		// encoding/json matches names regardless of case and keeps the
		// last of two equal keys; a gateway or audit log reading the same
		// body would see another order. Names must match exactly, once.
		if aerr := duplicateKeys(body); aerr != nil {
			return aerr
		}
		if aerr := precheck(raw, reflect.TypeOf(v), ""); aerr != nil {
			return aerr
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return api.BadField("", "one JSON object only: there is more after it")
	}
	return nil
}

// decodeOptional is Decode for a body that may be left out: an empty (or
// blank) body leaves v as it is.
func decodeOptional(body []byte, max int, v any) *api.Error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	return Decode(body, max, v)
}

var (
	decimalType = reflect.TypeOf(decimal.Decimal{})
	timeType    = reflect.TypeOf(time.Time{})
	// plainDecimal is what a decimal may be written as: digits with a sign
	// and a point, no exponent (as in the config files).
	plainDecimal = regexp.MustCompile(`^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$`)
)

// precheck walks a decoded JSON value along the Go type it is meant for
// and checks every decimal and time in it, naming the field.
func precheck(v any, t reflect.Type, path string) *api.Error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == decimalType:
		var text string
		switch x := v.(type) {
		case string:
			text = x
		case json.Number:
			text = x.String()
		case nil:
			return nil
		default:
			return api.BadField(path, "want a decimal such as \"400\" or 0.1, got %s", kindOf(v))
		}
		if !plainDecimal.MatchString(text) || len(text) > 64 {
			return api.BadField(path, "want a decimal written as plain digits such as \"400\" or \"0.1\" (no exponent, separators or units), got %q", text)
		}
	case t == timeType:
		x, ok := v.(string)
		if v == nil {
			return nil
		}
		if !ok {
			return api.BadField(path, "want an RFC 3339 time such as \"2024-10-01T08:00:00Z\", got %s", kindOf(v))
		}
		if _, err := time.Parse(time.RFC3339, x); err != nil {
			return api.BadField(path, "want an RFC 3339 time such as \"2024-10-01T08:00:00Z\", got %q", x)
		}
	case t.Kind() == reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil // the strict decoder names the type error
		}
		fields := make(map[string]reflect.Type, t.NumField())
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			fields[name] = f.Type
		}
		for _, key := range sortedKeys(obj) {
			ft, ok := fields[key]
			if !ok {
				return unknownField(join(path, key), key, fields)
			}
			if aerr := precheck(obj[key], ft, join(path, key)); aerr != nil {
				return aerr
			}
		}
	case t.Kind() == reflect.Slice:
		list, ok := v.([]any)
		if !ok {
			return nil
		}
		for i, e := range list {
			if aerr := precheck(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); aerr != nil {
				return aerr
			}
		}
	case t.Kind() == reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		for k, e := range obj {
			if aerr := precheck(e, t.Elem(), join(path, k)); aerr != nil {
				return aerr
			}
		}
	}
	return nil
}

// unknownField refuses a key no field has, naming the field it differs
// from only in case, if any.
func unknownField(path, key string, fields map[string]reflect.Type) *api.Error {
	for name := range fields {
		if strings.EqualFold(name, key) {
			return api.BadField(path, "unknown field %q: field names are case-sensitive, did you mean %q?", key, name)
		}
	}
	return api.BadField(path, "unknown field %q", key)
}

func sortedKeys(obj map[string]any) []string {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// duplicateKeys refuses an object that names a key twice, at any depth.
func duplicateKeys(body []byte) *api.Error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	// One frame per open object or array: an object's keys seen so far,
	// the key whose value comes next, an array's next index.
	type frame struct {
		path   string
		keys   map[string]bool // nil for an array
		key    string
		expect bool // an object's next token is a key
		index  int
	}
	var stack []*frame
	childPath := func() string {
		if len(stack) == 0 {
			return ""
		}
		f := stack[len(stack)-1]
		if f.keys == nil {
			return fmt.Sprintf("%s[%d]", f.path, f.index)
		}
		return join(f.path, f.key)
	}
	// valueDone moves the enclosing frame past a value.
	valueDone := func() {
		if len(stack) == 0 {
			return
		}
		f := stack[len(stack)-1]
		if f.keys == nil {
			f.index++
		} else {
			f.expect = true
		}
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // the strict decoder names syntax errors
		}
		if len(stack) > 0 {
			if f := stack[len(stack)-1]; f.keys != nil && f.expect {
				if key, ok := tok.(string); ok {
					if f.keys[key] {
						return api.BadField(join(f.path, key), "the field %q appears twice", key)
					}
					f.keys[key] = true
					f.key, f.expect = key, false
					continue
				}
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{path: childPath(), keys: map[string]bool{}, expect: true})
		case json.Delim('['):
			stack = append(stack, &frame{path: childPath()})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
		if len(stack) == 0 {
			return nil
		}
	}
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// kindOf names a decoded JSON value's kind.
func kindOf(v any) string {
	switch v.(type) {
	case bool:
		return "true or false"
	case float64, json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return "null"
}

// decodeError names the field of a JSON decoding error.
func decodeError(err error) *api.Error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return api.BadField("", "want a JSON object, got %s", te.Value)
		}
		return api.BadField(field, "want %s, got %s", jsonKind(te.Type.String()), te.Value)
	case errors.As(err, &se):
		return api.BadField("", "not valid JSON at byte %d: %v", se.Offset, se)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return api.BadField(name, "unknown field %q", name)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return api.BadField("", "the JSON ends too soon")
	}
	// decimal.Decimal's own errors ("can't convert x to decimal") carry no
	// field; say what is expected.
	return api.BadField("", "%s (decimals are strings or numbers such as \"400\" or 0.1, times RFC 3339)", err.Error())
}

// jsonKind says in JSON words what a Go type wants.
func jsonKind(goType string) string {
	switch {
	case strings.Contains(goType, "decimal.Decimal"):
		return "a decimal such as \"400\""
	case strings.Contains(goType, "time.Time"):
		return "an RFC 3339 time"
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map") || strings.Contains(goType, "."):
		return "an object"
	case strings.HasPrefix(goType, "int") || strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "bool":
		return "true or false"
	}
	return "a " + goType
}
