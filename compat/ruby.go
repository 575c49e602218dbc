package compat

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
)

// rubyInspect renders a JSON value as Ruby's #inspect shows it once Rails
// has parsed the body, which is how DAM's 422 quotes a parameter's value:
// nil, "text", 5, 1.5, true, ["a", 1], {"k"=>"v"}.
func rubyInspect(v any) string {
	switch x := v.(type) {
	case nil:
		return "nil"
	case string:
		return rubyString(x)
	case bool:
		return strconv.FormatBool(x)
	case json.Number:
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = rubyInspect(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		// A parsed JSON object keeps its keys' order in Ruby; Go's map has
		// none, so they are sorted.
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = rubyString(k) + "=>" + rubyInspect(x[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return "nil"
}

// rubyString quotes s as String#inspect does for the common escapes.
func rubyString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '#':
			// "#{", "#$" and "#@" would interpolate: Ruby escapes the hash.
			if i+1 < len(s) && strings.IndexByte("{$@", s[i+1]) >= 0 {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		default:
			if r < ' ' || r == 0x7f {
				b.WriteString(`\x` + strings.ToUpper(strconv.FormatInt(int64(r)+0x100, 16)[1:]))
				continue
			}
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
