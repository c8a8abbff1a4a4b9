package service

import (
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/shopspring/decimal"

	"github.com/blockexec/blockexec/api"
	"github.com/blockexec/blockexec/bus"
)

// openAPISchemas maps the document's object schemas to the Go types they
// describe; request types take decimals as DecimalInput.
var openAPISchemas = map[string]struct {
	typ     reflect.Type
	request bool
}{
	"OrderRequest":  {reflect.TypeOf(api.OrderRequest{}), true},
	"POV":           {reflect.TypeOf(api.POV{}), true},
	"Amendment":     {reflect.TypeOf(api.Amendment{}), true},
	"KillRequest":   {reflect.TypeOf(api.KillRequest{}), true},
	"Order":         {reflect.TypeOf(api.Order{}), false},
	"OrderList":     {reflect.TypeOf(api.OrderList{}), false},
	"FillList":      {reflect.TypeOf(api.FillList{}), false},
	"Fill":          {reflect.TypeOf(bus.FillMsg{}), false},
	"KillResult":    {reflect.TypeOf(api.KillResult{}), false},
	"KillState":     {reflect.TypeOf(api.KillState{}), false},
	"Event":         {reflect.TypeOf(api.Event{}), false},
	"ParentInfo":    {reflect.TypeOf(bus.ParentInfo{}), false},
	"SliceInfo":     {reflect.TypeOf(bus.SliceInfo{}), false},
	"ChildInfo":     {reflect.TypeOf(bus.ChildInfo{}), false},
	"RejectionInfo": {reflect.TypeOf(bus.RejectionInfo{}), false},
	"ShortInfo":     {reflect.TypeOf(bus.ShortInfo{}), false},
	"VenueShort":    {reflect.TypeOf(bus.VenueShort{}), false},
	"SummaryInfo":   {reflect.TypeOf(bus.SummaryInfo{}), false},
	"Health":        {reflect.TypeOf(api.Health{}), false},
	"ErrorBody":     {reflect.TypeOf(api.ErrorBody{}), false},
	"Error":         {reflect.TypeOf(api.Error{}), false},
}

// The document's schemas that are not objects: names the field types use.
var openAPIScalars = map[string]bool{"ID": true, "State": true, "Decimal": true, "DecimalInput": true}

func loadOpenAPI(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile("../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("api/openapi.yaml: %v", err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Fatalf("openapi: %q, want 3.1.x", v)
	}
	return doc
}

func mapAt(t *testing.T, v any, path ...string) map[string]any {
	t.Helper()
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: not a mapping", strings.Join(path, "."))
		}
		v = m[p]
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s: not a mapping", strings.Join(path, "."))
	}
	return m
}

func TestOpenAPI_DocumentsExactlyTheRoutesServed(t *testing.T) {
	doc := loadOpenAPI(t)
	documented := map[string]map[string]any{} // "METHOD path" → operation
	for path, item := range mapAt(t, doc, "paths") {
		for method, op := range item.(map[string]any) {
			if method == "parameters" {
				continue
			}
			documented[strings.ToUpper(method)+" "+path] = op.(map[string]any)
		}
	}
	served := map[string]route{}
	for _, rt := range routes() {
		served[rt.method+" "+rt.path] = rt
	}
	for k := range served {
		if documented[k] == nil {
			t.Errorf("%s is served but not in api/openapi.yaml", k)
		}
	}
	for k, op := range documented {
		rt, ok := served[k]
		if !ok {
			t.Errorf("%s is in api/openapi.yaml but not served", k)
			continue
		}
		scope, _ := op["x-scope"].(string)
		if scope != rt.scope {
			t.Errorf("%s: x-scope %q, the route's scope is %q", k, scope, rt.scope)
		}
		if sec, has := op["security"]; rt.scope == "" && (!has || len(sec.([]any)) != 0) {
			t.Errorf("%s takes no key: want security: []", k)
		} else if rt.scope != "" && has {
			t.Errorf("%s is signed: it must not override the document's security", k)
		}
		var query []string
		params, _ := op["parameters"].([]any)
		for _, p := range params {
			if pm := p.(map[string]any); pm["in"] == "query" {
				query = append(query, pm["name"].(string))
			}
		}
		want := append([]string(nil), rt.query...)
		sort.Strings(query)
		sort.Strings(want)
		if strings.Join(query, ",") != strings.Join(want, ",") {
			t.Errorf("%s: query parameters %v documented, %v taken", k, query, want)
		}
		if rt.scope != "" {
			responses := mapAt(t, op, "responses")
			for _, code := range []string{"401", "403", "429", "413"} {
				if responses[code] == nil {
					t.Errorf("%s: response %s not documented", k, code)
				}
			}
		}
	}
}

func TestOpenAPI_SchemasMatchTheAPITypesFieldForField(t *testing.T) {
	doc := loadOpenAPI(t)
	schemas := mapAt(t, doc, "components", "schemas")
	for name := range schemas {
		if _, ok := openAPISchemas[name]; !ok && !openAPIScalars[name] {
			t.Errorf("schema %s describes no api type the test knows", name)
		}
	}
	refs := map[reflect.Type]string{}
	for name, s := range openAPISchemas {
		refs[s.typ] = name
	}
	for name, s := range openAPISchemas {
		t.Run(name, func(t *testing.T) {
			schema, ok := schemas[name].(map[string]any)
			if !ok {
				t.Fatalf("no schema %s for %s", name, s.typ)
			}
			if schema["type"] != "object" {
				t.Fatalf("type %v, want object", schema["type"])
			}
			props, _ := schema["properties"].(map[string]any)
			fields := jsonFields(s.typ)
			for tag, f := range fields {
				p, ok := props[tag].(map[string]any)
				if !ok {
					t.Errorf("field %s (%s) is not documented", tag, f.Name)
					continue
				}
				if got, want := schemaKind(p), goKind(f.Type, s.request, refs); got != want {
					t.Errorf("%s: documented as %s, the Go field %s is %s", tag, got, f.Type, want)
				}
			}
			for tag := range props {
				if _, ok := fields[tag]; !ok {
					t.Errorf("property %s is not a field of %s", tag, s.typ)
				}
			}
			required := map[string]bool{}
			if list, ok := schema["required"].([]any); ok {
				for _, r := range list {
					required[r.(string)] = true
				}
			}
			for tag, f := range fields {
				opts := f.Tag.Get("json")
				omit := strings.Contains(opts, ",omitempty") || strings.Contains(opts, ",omitzero")
				switch {
				case s.request && required[tag] && omit:
					t.Errorf("%s is required but may be left out (omitempty)", tag)
				case !s.request && required[tag] == omit:
					t.Errorf("%s: required is %v, but the server always sends it: %v", tag, required[tag], !omit)
				}
			}
			for r := range required {
				if _, ok := fields[r]; !ok {
					t.Errorf("required %s is not a field", r)
				}
			}
		})
	}
}

// TestOpenAPI_EveryReferenceResolves walks the document for $ref.
func TestOpenAPI_EveryReferenceResolves(t *testing.T) {
	doc := loadOpenAPI(t)
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				parts := strings.Split(strings.TrimPrefix(ref, "#/"), "/")
				var cur any = doc
				for _, p := range parts {
					m, _ := cur.(map[string]any)
					cur = m[p]
				}
				if cur == nil {
					t.Errorf("%s: $ref %s resolves to nothing", at, ref)
				}
			}
			for k, e := range x {
				walk(e, at+"/"+k)
			}
		case []any:
			for _, e := range x {
				walk(e, at)
			}
		}
	}
	walk(doc, "")
}

// jsonFields are a struct's fields by JSON name.
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f
	}
	return out
}

var (
	decimalGoType = reflect.TypeOf(decimal.Decimal{})
	timeGoType    = reflect.TypeOf(time.Time{})
)

// goKind says what a Go field's schema must be, in schemaKind's words.
func goKind(t reflect.Type, request bool, refs map[reflect.Type]string) string {
	switch {
	case t == decimalGoType && request:
		return "ref:DecimalInput"
	case t == decimalGoType:
		return "ref:Decimal"
	case t == timeGoType:
		return "time"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return goKind(t.Elem(), request, refs)
	case reflect.Slice:
		return "array<" + goKind(t.Elem(), request, refs) + ">"
	case reflect.Map:
		return "map<" + goKind(t.Elem(), request, refs) + ">"
	case reflect.Struct:
		if name, ok := refs[t]; ok {
			return "ref:" + name
		}
		return "struct " + t.String()
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "integer"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	}
	return t.String()
}

// schemaKind names a property's schema: ref:X, time, array<…>, map<…>,
// or its type. ID and State are strings.
func schemaKind(p map[string]any) string {
	if ref, ok := p["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		if name == "ID" || name == "State" {
			return "string"
		}
		return "ref:" + name
	}
	switch p["type"] {
	case "array":
		items, _ := p["items"].(map[string]any)
		return "array<" + schemaKind(items) + ">"
	case "object":
		if ap, ok := p["additionalProperties"].(map[string]any); ok {
			return "map<" + schemaKind(ap) + ">"
		}
		return "object"
	case "string":
		if p["format"] == "date-time" {
			return "time"
		}
		return "string"
	}
	s, _ := p["type"].(string)
	return s
}
