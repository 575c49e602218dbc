package config

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/glob"
)

// Pattern is a rule's `from:`, `to:` or `state:` as the file means it:
// the states it accepts. diff builds its matcher from it.
type Pattern struct {
	// Any is set when every state matches, null included: no value, or
	// `*` among the values.
	Any bool
	// Values are compared exactly with a state, as canonical JSON.
	Values []json.RawMessage
	// Globs are matched against string states (see package glob).
	Globs []string
}

// ParsePattern reads a `from:`, `to:` or `state:` value: nil (anything), a
// single value or a list. A string containing *, ? or [ is a glob over
// string states; any other value must equal the state. The error of a bad
// element names its index: `[2]: bad glob "[x"`.
func ParsePattern(v any) (Pattern, error) {
	if v == nil {
		return Pattern{Any: true}, nil
	}
	list, ok := v.([]any)
	if !ok {
		list = []any{v}
	}
	var p Pattern
	for i, e := range list {
		if s, ok := e.(string); ok && strings.ContainsAny(s, "*?[") {
			if s == "*" {
				return Pattern{Any: true}, nil
			}
			if !glob.Valid(s) {
				return Pattern{}, fmt.Errorf("[%d]: bad glob %q", i, s)
			}
			p.Globs = append(p.Globs, s)
			continue
		}
		c, err := event.Canonical(e)
		if err != nil {
			return Pattern{}, fmt.Errorf("[%d]: %w", i, err)
		}
		p.Values = append(p.Values, c)
	}
	return p, nil
}

func containsIDPlaceholder(u string) bool { return strings.Contains(u, "{id}") }
