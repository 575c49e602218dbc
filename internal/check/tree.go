package check

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

var durationType = reflect.TypeFor[time.Duration]()

// Field is a struct field that can be set from a tree.
type Field struct {
	Name string // koanf key
	reflect.StructField
}

// Fields lists t's fields that have a koanf key, in declaration order.
// Fields tagged `koanf:"-"` cannot be set from a tree.
func Fields(t reflect.Type) []Field {
	var out []Field
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("koanf"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		out = append(out, Field{Name: name, StructField: f})
	}
	return out
}

// IsScalarKind reports whether a field of kind k holds a single value.
func IsScalarKind(k reflect.Kind) bool {
	switch k {
	case reflect.String, reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// Tree checks the keys of m, a generic YAML or JSON tree at path, against
// struct type t (by its koanf tags) before decoding, reporting to p. See
// checker.
func Tree(p *Problems, path string, t reflect.Type, m map[string]any) {
	(&checker{p: p}).checkStruct(path, t, m)
}

// checker walks a generic tree against Go types (by their koanf tags)
// before decoding. It reports unknown keys and values of the
// wrong type with their path and deletes them from the tree, so the decoder
// only ever sees values it can take and every other problem still gets
// reported. It also converts values the decoder would mangle: a bool for a
// string field stays "true" (not "1"), and env-expanded strings such as
// "4" or "true" become numbers and bools.
type checker struct {
	p *Problems
}

// checkStruct checks the keys of m against struct type t.
func (c *checker) checkStruct(path string, t reflect.Type, m map[string]any) {
	fields := Fields(t)
	for _, k := range SortedKeys(m) {
		kp := JoinKey(path, k)
		i := indexOfField(fields, k)
		if i < 0 {
			c.p.Bad(kp, "unknown key")
			delete(m, k)
			continue
		}
		if v, ok := c.check(kp, fields[i].Type, m[k]); ok {
			m[k] = v
		} else {
			delete(m, k)
		}
	}
}

func indexOfField(fields []Field, name string) int {
	for i, f := range fields {
		if f.Name == name {
			return i
		}
	}
	return -1
}

// check checks v against type t and returns the value to decode, or false
// to leave the field at its default (a null, or a value already reported).
func (c *checker) check(path string, t reflect.Type, v any) (any, bool) {
	if v == nil {
		// null is "not set", except for free-form values where it is a value.
		return nil, t.Kind() == reflect.Interface
	}
	if t == durationType {
		return c.duration(path, v)
	}
	switch t.Kind() {
	case reflect.Interface:
		return v, true
	case reflect.Pointer:
		return c.check(path, t.Elem(), v)
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			c.p.Bad(path, "must be a mapping")
			return nil, false
		}
		c.checkStruct(path, t, m)
		return m, true
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			c.p.Bad(path, "must be a mapping")
			return nil, false
		}
		for _, k := range SortedKeys(m) {
			if e, ok := c.check(JoinKey(path, k), t.Elem(), m[k]); ok {
				m[k] = e
			} else {
				delete(m, k)
			}
		}
		return m, true
	case reflect.Slice:
		return c.list(path, t, v)
	case reflect.String:
		switch x := v.(type) {
		case string:
			return x, true
		case bool:
			return strconv.FormatBool(x), true
		case int, int64, uint64:
			return fmt.Sprint(x), true
		case float64:
			return strconv.FormatFloat(x, 'g', -1, 64), true
		}
		// No value in the message: the field may hold a secret.
		c.p.Bad(path, "must be a string")
		return nil, false
	case reflect.Bool:
		switch x := v.(type) {
		case bool:
			return x, true
		case string:
			if b, err := strconv.ParseBool(strings.TrimSpace(x)); err == nil {
				return b, true
			}
		}
		c.p.Bad(path, "must be true or false")
		return nil, false
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n, ok := toInt(v, t.Bits()); ok {
			return n, true
		}
		c.p.Bad(path, "must be an integer")
		return nil, false
	case reflect.Float32, reflect.Float64:
		if f, ok := toFloat(v); ok {
			return f, true
		}
		c.p.Bad(path, "must be a number")
		return nil, false
	}
	return v, true
}

// list checks a list value. A free-form list ([]any) takes a single value
// as a one-element list; a list of scalars also takes a comma-separated
// string, like koanf's string-to-slice hook.
func (c *checker) list(path string, t reflect.Type, v any) (any, bool) {
	elem := t.Elem()
	list, isList := v.([]any)
	switch {
	case isList:
	case elem.Kind() == reflect.Interface:
		return []any{v}, true
	default:
		s, ok := v.(string)
		if !ok || !(IsScalarKind(elem.Kind()) || elem == durationType) {
			c.p.Bad(path, "must be a list")
			return nil, false
		}
		for _, part := range strings.Split(s, ",") {
			list = append(list, strings.TrimSpace(part))
		}
	}
	for i, e := range list {
		ep := fmt.Sprintf("%s[%d]", path, i)
		ev, ok := c.check(ep, elem, e)
		if !ok {
			// A list can't lose an element without shifting the indexes in
			// later messages, so a placeholder stands in for it.
			ev = placeholder(elem)
		}
		list[i] = ev
	}
	return list, true
}

// placeholder is the zero value of t as the decoder takes it.
func placeholder(t reflect.Type) any {
	switch {
	case t.Kind() == reflect.Struct, t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct:
		return map[string]any{}
	case t == durationType:
		return "0s"
	}
	return reflect.Zero(t).Interface()
}

// duration accepts only strings: a bare number has no unit, and the decoder
// would silently read 15 as 15 nanoseconds.
func (c *checker) duration(path string, v any) (any, bool) {
	s, ok := v.(string)
	if !ok {
		c.p.Bad(path, `must be a duration string like "15s"`)
		return nil, false
	}
	if _, err := ParseDuration(s); err != nil {
		c.p.Bad(path, "%v", err)
		return nil, false
	}
	return s, true
}

func toInt(v any, bits int) (int64, bool) {
	var n int64
	switch x := v.(type) {
	case int:
		n = int64(x)
	case int64:
		n = x
	case uint64:
		if x > math.MaxInt64 {
			return 0, false
		}
		n = int64(x)
	case float64:
		if x != math.Trunc(x) || x < math.MinInt64 || x >= math.MaxInt64 {
			return 0, false
		}
		n = int64(x)
	case string:
		var err error
		if n, err = strconv.ParseInt(strings.TrimSpace(x), 10, 64); err != nil {
			return 0, false
		}
	default:
		return 0, false
	}
	if bits < 64 && (n < -(1<<(bits-1)) || n >= 1<<(bits-1)) {
		return 0, false
	}
	return n, true
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil
	}
	return 0, false
}

// dayPrefix matches a leading whole number of days, as in "7d" or "1d12h".
var dayPrefix = regexp.MustCompile(`^(\d+)d`)

// ParseDuration is time.ParseDuration plus a leading whole number of days
// ("7d", "1d12h"), which retention and watch TTLs are naturally given in.
func ParseDuration(s string) (time.Duration, error) {
	in := s
	s = strings.TrimSpace(s)
	var days time.Duration
	if m := dayPrefix.FindStringSubmatch(s); m != nil {
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || n > int64(math.MaxInt64/(24*time.Hour)) {
			return 0, fmt.Errorf("invalid duration %q", in)
		}
		days = time.Duration(n) * 24 * time.Hour
		s = s[len(m[0]):]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || (days > 0 && (d < 0 || d > math.MaxInt64-days)) {
		return 0, fmt.Errorf("invalid duration %q", in)
	}
	return days + d, nil
}

// durationHook decodes duration strings with ParseDuration. koanf drops its
// own duration hook when given a DecoderConfig, so this puts one back.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String || to != durationType {
		return data, nil
	}
	return ParseDuration(reflect.ValueOf(data).String())
}

// simpleKey is a key that reads unambiguously after a dot in a path.
var simpleKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// JoinKey appends a map key to a path: `a.b`, or `a["X-Api.Key"]` when the
// key would be ambiguous.
func JoinKey(path, key string) string {
	if !simpleKey.MatchString(key) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// SortedKeys returns m's keys in order, so problems come out the same
// way every time.
func SortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
