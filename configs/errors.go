package configs

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// FieldError is the only error Parse and Load return: it names the file,
// the line and column of the offending value (or of the nearest enclosing
// key when the value is missing), the field's path such as
// parents[0].max_participation, and what is wrong and what is allowed.
// Line and Column are 1-based; Path is empty for syntax errors.
type FieldError struct {
	File   string
	Line   int
	Column int
	Path   string
	Msg    string
}

// Error formats the error as file:line:col: path: msg, the form editors and
// CI logs recognise. An empty File or Path is left out.
func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	fmt.Fprintf(&b, "%d:%d: ", e.Line, e.Column)
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// positions finds where a config path sits in the parsed source.
type positions struct {
	file string
	body ast.Node // the document's root node; nil for an empty file
}

// fieldError builds a FieldError positioned at path or, when the path is not
// in the source, at its nearest present ancestor.
func (p positions) fieldError(path, msg string) *FieldError {
	line, col := p.locate(path)
	return &FieldError{File: p.file, Line: line, Column: col, Path: path, Msg: msg}
}

// at builds a FieldError at a token's position.
func (p positions) at(tk *token.Token, path, msg string) *FieldError {
	e := &FieldError{File: p.file, Line: 1, Column: 1, Path: path, Msg: msg}
	if tk != nil && tk.Position != nil && tk.Position.Line >= 1 {
		e.Line, e.Column = tk.Position.Line, max(tk.Position.Column, 1)
	}
	return e
}

// segment is one step of a config path: a mapping key or a list index.
type segment struct {
	key   string
	index int // -1 for a key
}

// splitPath reads "parents[0].venues[1]" into its steps. It is the
// inverse of the paths this package prints; malformed input yields the
// steps that could be read.
func splitPath(path string) []segment {
	var segs []segment
	for part := range strings.SplitSeq(path, ".") {
		key, rest, _ := strings.Cut(part, "[")
		if key != "" {
			segs = append(segs, segment{key: key, index: -1})
		}
		for rest != "" {
			num, after, ok := strings.Cut(rest, "]")
			i, err := strconv.Atoi(num)
			if !ok || err != nil || i < 0 {
				return segs
			}
			segs = append(segs, segment{index: i})
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return segs
}

// locate returns the line and column of path: the value itself when it is a
// scalar or list, the key when it is a mapping or null, and the nearest
// present ancestor when it is missing.
func (p positions) locate(path string) (line, col int) {
	n, line, col, found := p.find(path)
	if !found {
		return line, col
	}
	switch unwrap(n).(type) {
	case *ast.NullNode, *ast.MappingNode, *ast.MappingValueNode:
		return line, col
	}
	return tokenPos(n.GetToken(), line, col)
}

// find walks path from the root. It returns the deepest node reached, the
// position of the key or list entry that led there, and whether every step
// was present.
func (p positions) find(path string) (n ast.Node, line, col int, found bool) {
	if p.body == nil {
		return nil, 1, 1, false
	}
	n = p.body
	line, col = startOf(n)
	for _, seg := range splitPath(path) {
		var next ast.Node
		n = unwrap(n)
		if seg.index < 0 {
			for _, mv := range mappingValues(n) {
				if keyText(mv.Key) == seg.key {
					next = mv.Value
					line, col = tokenPos(mv.Key.GetToken(), line, col)
					break
				}
			}
		} else if s, ok := n.(*ast.SequenceNode); ok && seg.index < len(s.Values) {
			next = s.Values[seg.index]
			line, col = startOf(next)
		}
		if next == nil {
			return n, line, col, false
		}
		n = next
	}
	return n, line, col, true
}

// startOf is where a node begins as a reader sees it: a block mapping's
// token is its first colon, so use its first key instead.
func startOf(n ast.Node) (line, col int) {
	if mvs := mappingValues(n); len(mvs) > 0 && mvs[0].Key != nil {
		return tokenPos(mvs[0].Key.GetToken(), 1, 1)
	}
	return tokenPos(n.GetToken(), 1, 1)
}

func tokenPos(tk *token.Token, line, col int) (int, int) {
	if tk == nil || tk.Position == nil || tk.Position.Line < 1 {
		return line, col
	}
	return tk.Position.Line, max(tk.Position.Column, 1)
}

// unwrap looks through anchors and tags to the value they decorate.
func unwrap(n ast.Node) ast.Node {
	for range 64 {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		default:
			return n
		}
	}
	return n
}

func mappingValues(n ast.Node) []*ast.MappingValueNode {
	switch m := n.(type) {
	case *ast.MappingNode:
		return m.Values
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{m}
	}
	return nil
}

func keyText(k ast.MapKeyNode) string {
	if k == nil {
		return ""
	}
	if s, ok := k.(*ast.StringNode); ok {
		return s.Value
	}
	if tk := k.GetToken(); tk != nil {
		return tk.Value
	}
	return ""
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// pathOf finds the config path of the node (or mapping key) holding tk.
func pathOf(n ast.Node, path string, tk *token.Token) (string, ast.Node, bool) {
	if n == nil {
		return "", nil, false
	}
	if n.GetToken() == tk {
		return path, n, true
	}
	switch v := n.(type) {
	case *ast.AnchorNode:
		return pathOf(v.Value, path, tk)
	case *ast.TagNode:
		return pathOf(v.Value, path, tk)
	case *ast.SequenceNode:
		for i, e := range v.Values {
			if p, m, ok := pathOf(e, fmt.Sprintf("%s[%d]", path, i), tk); ok {
				return p, m, true
			}
		}
	case *ast.MappingNode, *ast.MappingValueNode:
		for _, mv := range mappingValues(v) {
			p := join(path, keyText(mv.Key))
			if mv.Key != nil && mv.Key.GetToken() == tk {
				return p, mv.Key, true
			}
			if mv.GetToken() == tk {
				return p, mv, true
			}
			if p, m, ok := pathOf(mv.Value, p, tk); ok {
				return p, m, true
			}
		}
	}
	return "", nil, false
}

// fromYAML turns an error from the YAML parser or decoder into a FieldError
// with the position of its token and a message in the config's terms.
func (p positions) fromYAML(err error) *FieldError {
	var ye yaml.Error
	if !errors.As(err, &ye) {
		return p.fieldError("", err.Error())
	}
	tk := ye.GetToken()
	var se *yaml.SyntaxError
	if errors.As(err, &se) || p.body == nil || tk == nil {
		return p.at(tk, "", ye.GetMessage())
	}
	path, node, _ := pathOf(p.body, "", tk)
	var ue *yaml.UnknownFieldError
	if errors.As(err, &ue) {
		return p.unknownField(path, tk)
	}
	if sec, ok := sections[pattern(path)]; ok {
		return p.at(tk, path, fmt.Sprintf("want %s, got %s", sec.describe(), kindOf(node)))
	}
	return p.at(tk, path, ye.GetMessage())
}

// unknownField reports the first unknown key of the mapping that holds the
// one the decoder found, so the report does not depend on map order.
func (p positions) unknownField(path string, tk *token.Token) *FieldError {
	parent := ""
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		parent = path[:i]
	}
	sec := sections[pattern(parent)]
	if n, _, _, ok := p.find(parent); ok {
		for _, mv := range mappingValues(unwrap(n)) {
			k := keyText(mv.Key)
			if k != "<<" && !slices.Contains(sec.fields, k) {
				path, tk = join(parent, k), mv.Key.GetToken()
				break
			}
		}
	}
	key := path[strings.LastIndexByte(path, '.')+1:]
	msg := fmt.Sprintf("unknown field %q", key)
	if s := closest(key, sec.fields); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	if len(sec.fields) > 0 {
		msg += "; allowed fields are " + strings.Join(sec.fields, ", ")
	}
	if l := strings.ToLower(key); pattern(parent) == "venues[]" && (strings.Contains(l, "secret") || strings.Contains(l, "key") ||
		strings.Contains(l, "password") || strings.Contains(l, "passphrase")) {
		msg += "; secrets never go in the config: name where they are with api_key_env / api_key_file and api_secret_env / api_secret_file"
	}
	return p.at(tk, path, msg)
}

// section describes one mapping of the schema for error messages.
type section struct {
	name   string
	list   bool // a list of such mappings
	fields []string
}

func (s section) describe() string {
	if s.list {
		return fmt.Sprintf("a list of %s, each a mapping with fields %s", s.name, strings.Join(s.fields, ", "))
	}
	return fmt.Sprintf("a mapping of %s with fields %s", s.name, strings.Join(s.fields, ", "))
}

// sections maps a path pattern (indices removed) to its schema mapping; the
// field lists come from the yaml tags of the raw structs so they cannot drift.
var sections = map[string]section{
	"":              {name: "config sections", fields: yamlFields(rawConfig{})},
	"run":           {name: "run settings", fields: yamlFields(rawRun{})},
	"nats":          {name: "NATS settings", fields: yamlFields(rawNATS{})},
	"ledger":        {name: "ledger settings", fields: yamlFields(rawLedger{})},
	"market":        {name: "market settings", fields: yamlFields(rawMarket{})},
	"risk":          {name: "risk settings", fields: yamlFields(rawRisk{})},
	"service":       {name: "service settings", fields: yamlFields(rawService{})},
	"venues":        {name: "venues", list: true, fields: yamlFields(rawVenue{})},
	"venues[]":      {name: "venue settings", fields: yamlFields(rawVenue{})},
	"parents":       {name: "parent orders", list: true, fields: yamlFields(rawParent{})},
	"parents[]":     {name: "parent order settings", fields: yamlFields(rawParent{})},
	"parents[].pov": {name: "POV rates", fields: yamlFields(rawPOV{})},
	"parents[].ac":  {name: "Almgren–Chriss settings", fields: yamlFields(rawAC{})},
}

func yamlFields(v any) []string {
	t := reflect.TypeOf(v)
	out := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		out = append(out, name)
	}
	return out
}

// pattern drops list indices: parents[3] -> parents[].
func pattern(path string) string {
	var b strings.Builder
	skip := false
	for _, r := range path {
		switch {
		case r == '[':
			skip = true
			b.WriteRune(r)
		case r == ']':
			skip = false
			b.WriteRune(r)
		case !skip:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// kindOf names a node's YAML kind for "got ..." messages.
func kindOf(n ast.Node) string {
	if n == nil {
		return "nothing"
	}
	switch v := unwrap(n).(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.NullNode:
		return "null"
	case *ast.BoolNode:
		return fmt.Sprintf("the boolean %v", v.Value)
	case *ast.StringNode:
		return fmt.Sprintf("the string %q", v.Value)
	case *ast.IntegerNode, *ast.FloatNode:
		return "the number " + v.GetToken().Value
	case *ast.AliasNode:
		return "an alias"
	case *ast.LiteralNode:
		return "a block scalar (| or >)"
	}
	return "a " + n.Type().String()
}

// closest suggests the allowed name within two edits of s, if any.
func closest(s string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(s, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
