package diff

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/glob"
	"github.com/pollrelay/pollrelay/jqexpr"
)

// Source is a configured source as the diff runs it: the config's plain
// values, with its event rules and terminal states compiled once, when
// the source starts. A reload compares the config; an unchanged source
// keeps its Source.
type Source struct {
	*config.Source
	rules []Rule
	// stalls are the stalled rules by their index in rules; nil without.
	stalls   map[int]*Rule
	terminal []json.RawMessage
}

// Rule is a config rule compiled.
type Rule struct {
	*config.Rule
	from, to, state Matcher
	// when and members are nil when the rule has none.
	when, members *jqexpr.Expr
}

// Compile builds the Source of src. A config that loaded compiles: the
// config checked every expression and pattern, and an error names the one
// that fails by its path under the source.
func Compile(src *config.Source) (*Source, error) {
	s := &Source{Source: src}
	for i := range src.Events {
		r, err := compileRule(&src.Events[i])
		if err != nil {
			return nil, fmt.Errorf("source %s: events[%d].%w", src.Name, i, err)
		}
		s.rules = append(s.rules, r)
	}
	for i := range s.rules {
		if s.rules[i].On.Has(event.Stalled) {
			if s.stalls == nil {
				s.stalls = map[int]*Rule{}
			}
			s.stalls[i] = &s.rules[i]
		}
	}
	for i, t := range src.Terminal {
		enc, err := event.Canonical(t)
		if err != nil {
			return nil, fmt.Errorf("source %s: terminal[%d]: %w", src.Name, i, err)
		}
		s.terminal = append(s.terminal, enc)
	}
	return s, nil
}

func compileRule(cr *config.Rule) (Rule, error) {
	r := Rule{Rule: cr}
	var err error
	if r.from, err = NewMatcher(cr.From); err != nil {
		return r, fmt.Errorf("from%w", err)
	}
	if r.to, err = NewMatcher(cr.To); err != nil {
		return r, fmt.Errorf("to%w", err)
	}
	if r.state, err = NewMatcher(cr.State); err != nil {
		return r, fmt.Errorf("state%w", err)
	}
	if r.when, err = optionalJQ(cr.When); err != nil {
		return r, fmt.Errorf("when: %w", err)
	}
	if r.members, err = optionalJQ(cr.Members); err != nil {
		return r, fmt.Errorf("members: %w", err)
	}
	return r, nil
}

// optionalJQ compiles src, or returns nil for an empty one.
func optionalJQ(src string) (*jqexpr.Expr, error) {
	if strings.TrimSpace(src) == "" {
		return nil, nil
	}
	return jqexpr.Shared(src)
}

// Stalls returns the source's stalled rules by their index in its rule
// list, or nil when it has none.
func (s *Source) Stalls() map[int]*Rule { return s.stalls }

// TerminalStates are the states that end a watch of a watch source, as
// canonical JSON.
func (s *Source) TerminalStates() []json.RawMessage { return s.terminal }

// IsTerminal reports whether state ends a watch of the watch source s.
func (s *Source) IsTerminal(state json.RawMessage) bool {
	return slices.ContainsFunc(s.terminal, func(t json.RawMessage) bool { return bytes.Equal(t, state) })
}

// Matcher matches a state given as canonical JSON. The zero Matcher matches
// every state, including null; so does `*`.
type Matcher struct {
	set    bool
	values []json.RawMessage // canonical JSON, compared exactly
	globs  []string          // matched against string states
}

// NewMatcher builds a Matcher from a rule's `from:`, `to:` or `state:`
// value (see config.ParsePattern).
func NewMatcher(v any) (Matcher, error) {
	p, err := config.ParsePattern(v)
	if err != nil || p.Any {
		return Matcher{}, err
	}
	return Matcher{set: true, values: p.Values, globs: p.Globs}, nil
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
