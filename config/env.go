package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	goyaml "go.yaml.in/yaml/v3"

	"github.com/pollrelay/pollrelay/internal/check"
)

// envPrefix starts every variable that overrides a config key.
const envPrefix = "POLLRELAY_"

// envRef matches `$${` (an escaped, literal `${`) or a `${NAME}` reference.
var envRef = regexp.MustCompile(`\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandingParser is koanf's YAML parser followed by ${ENV} expansion of
// every string value (not keys), at any depth, including inside free-form
// values such as a source's body.
type expandingParser struct {
	lookup func(string) (string, bool)
}

// Unmarshal parses YAML and expands environment references.
func (e expandingParser) Unmarshal(b []byte) (map[string]any, error) {
	m, err := yaml.Parser().Unmarshal(b)
	var te *goyaml.TypeError
	if errors.As(err, &te) {
		// Decoding into a mapping fails with a type error only when the
		// document is not one; the library's message names Go's types.
		return nil, errors.New("the file must be a mapping of keys such as sources: and subscriptions:, not a list or a single value")
	}
	if err != nil {
		return nil, err
	}
	out, _ := e.expand(m).(map[string]any)
	return out, nil
}

// Marshal encodes YAML; koanf's Parser interface requires it.
func (e expandingParser) Marshal(m map[string]any) ([]byte, error) {
	return yaml.Parser().Marshal(m)
}

// expand returns v with its strings expanded. Maps with non-string keys
// (`1: x` in YAML) become map[string]any so later steps see one map type.
func (e expandingParser) expand(v any) any {
	switch x := v.(type) {
	case string:
		return expandString(x, e.lookup)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			out[k] = e.expand(val)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			out[fmt.Sprint(k)] = e.expand(val)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = e.expand(val)
		}
		return out
	default:
		return v
	}
}

// expandString replaces each ${NAME} with the variable's value ("" when
// unset) and each $${ with a literal ${.
func expandString(s string, lookup func(string) (string, bool)) string {
	if !strings.Contains(s, "${") {
		return s
	}
	return envRef.ReplaceAllStringFunc(s, func(ref string) string {
		if ref == "$${" {
			return "${"
		}
		v, _ := lookup(ref[2 : len(ref)-1])
		return v
	})
}

// envOverrides looks up POLLRELAY_<KEY> for every scalar key of Config that
// is not inside a list and returns the values found as a nested map, plus
// each overridden path and its variable for error messages.
//
// The keys are derived from Config's koanf tags rather than by listing the
// environment, so a stray POLLRELAY_ variable (such as one a wrapper script
// uses) is never mistaken for an unknown config key.
func envOverrides(lookup func(string) (string, bool)) (map[string]any, map[string]string) {
	out := map[string]any{}
	from := map[string]string{}
	for _, key := range scalarKeys(reflect.TypeFor[Config](), nil) {
		name := envPrefix + strings.ToUpper(strings.Join(key, "__"))
		v, ok := lookup(name)
		if !ok {
			continue
		}
		m := out
		for _, part := range key[:len(key)-1] {
			sub, ok := m[part].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[part] = sub
			}
			m = sub
		}
		m[key[len(key)-1]] = v
		from[strings.Join(key, ".")] = name
	}
	return out, from
}

// scalarKeys lists the key paths of t's scalar fields, descending into
// nested structs but not into lists, maps, pointers or free-form values.
func scalarKeys(t reflect.Type, prefix []string) [][]string {
	var out [][]string
	for _, f := range check.Fields(t) {
		key := append(slices.Clone(prefix), f.Name)
		switch ft := f.Type; {
		case ft == reflect.TypeFor[time.Duration]():
			out = append(out, key)
		case ft.Kind() == reflect.Struct:
			out = append(out, scalarKeys(ft, key)...)
		case check.IsScalarKind(ft.Kind()):
			out = append(out, key)
		}
	}
	return out
}
