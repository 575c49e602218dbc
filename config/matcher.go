package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/glob"
)

// Matcher matches a state given as canonical JSON. The zero Matcher matches
// every state, including null; so does `*`.
type Matcher struct {
	set    bool
	values []json.RawMessage // canonical JSON, compared exactly
	globs  []string          // matched against string states
}

// NewMatcher builds a Matcher from a config value: nil (anything), a single
// value or a list. A string containing *, ? or [ is a glob over string
// states; any other value must equal the state.
func NewMatcher(v any) (Matcher, error) {
	if v == nil {
		return Matcher{}, nil
	}
	list, ok := v.([]any)
	if !ok {
		list = []any{v}
	}
	m := Matcher{set: true}
	for i, e := range list {
		if s, ok := e.(string); ok && strings.ContainsAny(s, "*?[") {
			if s == "*" {
				return Matcher{}, nil
			}
			if !glob.Valid(s) {
				return Matcher{}, fmt.Errorf("[%d]: bad glob %q", i, s)
			}
			m.globs = append(m.globs, s)
			continue
		}
		c, err := event.Canonical(e)
		if err != nil {
			return Matcher{}, fmt.Errorf("[%d]: %w", i, err)
		}
		m.values = append(m.values, c)
	}
	return m, nil
}

// Match reports whether state matches.
func (m Matcher) Match(state json.RawMessage) bool {
	if !m.set {
		return true
	}
	if len(state) == 0 {
		state = event.Null
	}
	for _, v := range m.values {
		if bytes.Equal(v, state) {
			return true
		}
	}
	if len(m.globs) == 0 || state[0] != '"' {
		return false
	}
	s := event.Text(state)
	for _, g := range m.globs {
		if glob.Match(g, s) {
			return true
		}
	}
	return false
}

// MatchesAll reports whether the matcher accepts every state.
func (m Matcher) MatchesAll() bool { return !m.set }

func containsIDPlaceholder(u string) bool { return strings.Contains(u, "{id}") }
