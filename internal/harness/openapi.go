package harness

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pollrelay/pollrelay/api"
)

// The API tests check every answer they get against api/openapi.json: the
// route and status must be documented, and the body must match the
// schema, properties and all, so an undocumented field (or an internal
// one leaking out) fails the test that received it.

var (
	openAPIOnce sync.Once
	openAPIRoot map[string]any
)

func openAPI() map[string]any {
	openAPIOnce.Do(func() {
		if err := json.Unmarshal(api.OpenAPI(), &openAPIRoot); err != nil {
			panic(fmt.Sprintf("openapi.json: %v", err))
		}
	})
	return openAPIRoot
}

// CheckAgainstOpenAPI returns what in an answer the document does not
// describe, or nil.
func CheckAgainstOpenAPI(method, rawPath string, status int, body []byte) []string {
	doc := openAPI()
	p, _, _ := strings.Cut(rawPath, "?")
	tmpl, ok := matchTemplate(doc, p)
	op, _ := dig(doc, "paths", tmpl, strings.ToLower(method)).(map[string]any)
	var resp map[string]any
	if op != nil {
		resp, _ = dig(op, "responses", strconv.Itoa(status)).(map[string]any)
		if resp == nil {
			resp, _ = dig(op, "responses", "default").(map[string]any)
		}
	}
	var schema map[string]any
	switch {
	case resp != nil:
		schema, _ = dig(resolve(doc, resp), "content", "application/json", "schema").(map[string]any)
	case status >= 400:
		// A route, method or status the document does not list (a probe
		// of a wrong path, a 401 without a token) still answers the
		// documented error shape.
		schema = map[string]any{"$ref": "#/components/schemas/Error"}
		tmpl = p
	case !ok:
		return []string{fmt.Sprintf("%s %s: no such path in openapi.json", method, p)}
	case op == nil:
		return []string{fmt.Sprintf("%s %s: method not in openapi.json", method, tmpl)}
	default:
		return []string{fmt.Sprintf("%s %s: status %d not in openapi.json", method, tmpl, status)}
	}
	if schema == nil {
		if len(body) > 0 {
			return []string{fmt.Sprintf("%s %s %d: answers a body openapi.json does not describe: %.200s", method, tmpl, status, body)}
		}
		return nil
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return []string{fmt.Sprintf("%s %s %d: not JSON: %v", method, tmpl, status, err)}
	}
	var errs []string
	validate(doc, schema, v, "body", &errs)
	for i := range errs {
		errs[i] = fmt.Sprintf("%s %s %d: %s", method, tmpl, status, errs[i])
	}
	return errs
}

// matchTemplate finds the documented path a request path is an instance
// of, preferring the one with the most literal segments.
func matchTemplate(doc map[string]any, p string) (string, bool) {
	paths, _ := doc["paths"].(map[string]any)
	segs := strings.Split(p, "/")
	best, bestLit := "", -1
	for tmpl := range paths {
		ts := strings.Split(tmpl, "/")
		if len(ts) != len(segs) {
			continue
		}
		lit, ok := 0, true
		for i, s := range ts {
			switch {
			case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
				ok = ok && segs[i] != ""
			case s == segs[i]:
				lit++
			default:
				ok = false
			}
		}
		if ok && lit > bestLit {
			best, bestLit = tmpl, lit
		}
	}
	return best, bestLit >= 0
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// resolve follows a local $ref ("#/components/...").
func resolve(doc, m map[string]any) map[string]any {
	for {
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		next, _ := dig(doc, strings.Split(strings.TrimPrefix(ref, "#/"), "/")...).(map[string]any)
		if next == nil {
			panic("openapi.json: dangling $ref " + ref)
		}
		m = next
	}
}

// validate checks v against the subset of JSON Schema openapi.json uses:
// $ref, type (one or a list), enum, const, properties, required,
// additionalProperties, items, anyOf/oneOf/allOf and format date-time.
// An object schema that lists properties allows no others unless
// additionalProperties says so.
func validate(doc, s map[string]any, v any, at string, errs *[]string) {
	s = resolve(doc, s)
	fail := func(format string, args ...any) { *errs = append(*errs, at+": "+fmt.Sprintf(format, args...)) }
	for _, key := range []string{"anyOf", "oneOf"} {
		if alts, ok := s[key].([]any); ok {
			matched := false
			for _, a := range alts {
				var sub []string
				validate(doc, a.(map[string]any), v, at, &sub)
				if len(sub) == 0 {
					matched = true
					break
				}
			}
			if !matched {
				fail("matches none of %s", key)
			}
		}
	}
	if _, ok := s["allOf"]; ok {
		s = mergeAllOf(doc, s)
	}
	if enum, ok := s["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return reflect.DeepEqual(e, v) }) {
		fail("%v is not one of %v", v, enum)
	}
	if c, ok := s["const"]; ok && !reflect.DeepEqual(c, v) {
		fail("%v is not %v", v, c)
	}
	if t, ok := s["type"]; ok {
		var types []string
		switch x := t.(type) {
		case string:
			types = []string{x}
		case []any:
			for _, e := range x {
				types = append(types, e.(string))
			}
		}
		if !slices.Contains(types, jsonType(v)) && !(jsonType(v) == "integer" && slices.Contains(types, "number")) {
			fail("is %s, want %s", jsonType(v), strings.Join(types, " or "))
			return
		}
	}
	switch x := v.(type) {
	case string:
		if s["format"] == "date-time" {
			if _, err := time.Parse(time.RFC3339Nano, x); err != nil {
				fail("%q is not a date-time", x)
			}
		}
	case []any:
		if items, ok := s["items"].(map[string]any); ok {
			for i, e := range x {
				validate(doc, items, e, fmt.Sprintf("%s[%d]", at, i), errs)
			}
		}
	case map[string]any:
		validateObject(doc, s, x, at, errs)
	}
}

// mergeAllOf folds allOf into one schema: an object built from parts
// allows the properties of every part.
func mergeAllOf(doc, s map[string]any) map[string]any {
	out := map[string]any{}
	props := map[string]any{}
	var required []any
	var parts []map[string]any
	parts = append(parts, s)
	for _, a := range s["allOf"].([]any) {
		p := resolve(doc, a.(map[string]any))
		if _, nested := p["allOf"]; nested {
			p = mergeAllOf(doc, p)
		}
		parts = append(parts, p)
	}
	for _, p := range parts {
		for k, v := range p {
			switch k {
			case "allOf":
			case "properties":
				for pk, pv := range v.(map[string]any) {
					props[pk] = pv
				}
			case "required":
				required = append(required, v.([]any)...)
			default:
				out[k] = v
			}
		}
	}
	out["properties"], out["required"] = props, required
	return out
}

func validateObject(doc, s map[string]any, x map[string]any, at string, errs *[]string) {
	props, _ := s["properties"].(map[string]any)
	for _, r := range asStrings(s["required"]) {
		if _, ok := x[r]; !ok {
			*errs = append(*errs, fmt.Sprintf("%s: lacks required property %q", at, r))
		}
	}
	keys := make([]string, 0, len(x))
	for k := range x {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if ps, ok := props[k].(map[string]any); ok {
			validate(doc, ps, x[k], at+"."+k, errs)
			continue
		}
		switch ap := s["additionalProperties"].(type) {
		case bool:
			if !ap {
				*errs = append(*errs, fmt.Sprintf("%s: property %q is not in the schema", at, k))
			}
		case map[string]any:
			validate(doc, ap, x[k], at+"."+k, errs)
		case nil:
			if props != nil {
				*errs = append(*errs, fmt.Sprintf("%s: property %q is not in the schema", at, k))
			}
		}
	}
}

func asStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, e := range list {
		out = append(out, e.(string))
	}
	return out
}

func jsonType(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case float64:
		if x == float64(int64(x)) {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}
