package diff

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/pollrelay/pollrelay/config"
)

func raws(rs []json.RawMessage) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r)
	}
	return out
}

// TestCompileDerived: the terminal states and rule matchers compiled from
// the values of config's TestDerivedFields.
func TestCompileDerived(t *testing.T) {
	a := parseSource(t, "  - {name: a, url: 'http://x/a', terminal: ready}\n")
	b := parseSource(t, `  - name: b
    url: http://x/b
    terminal: [ready, 3, true, null, {code: 1}]
    events: [{type: t, from: 1, to: 'err*'}]
`)
	if got := raws(a.TerminalStates()); !slices.Equal(got, []string{`"ready"`}) {
		t.Errorf("a terminal = %v", got)
	}
	if got := raws(b.TerminalStates()); !slices.Equal(got, []string{`"ready"`, "3", "true", "null", `{"code":1}`}) {
		t.Errorf("b terminal = %v", got)
	}
	r := b.rules[0]
	if r.From != 1 || !r.from.Match(json.RawMessage("1")) || r.from.Match(json.RawMessage(`"1"`)) {
		t.Errorf("from 1: %#v", r.From)
	}
	if !r.to.Match(json.RawMessage(`"errored"`)) || r.to.Match(json.RawMessage(`"ready"`)) {
		t.Errorf("to err*: wrong matches")
	}
}

// TestCompileDefaults: a rule that names no states matches every one and
// has no `when`, as config's TestDefaults has it.
func TestCompileDefaults(t *testing.T) {
	s := parseSource(t, "  - {name: tasks, url: 'http://x/tasks', events: [{type: tasks.changed}]}\n")
	if r := s.rules[0]; !slices.Equal(r.On, config.Kinds{"changed"}) || !r.from.MatchesAll() || !r.to.MatchesAll() || r.when != nil {
		t.Errorf("rule defaults = %+v", r)
	}
}

// TestCompileReportsPath: a source built by hand rather than loaded is
// still refused with the path of what does not compile.
func TestCompileReportsPath(t *testing.T) {
	src := &config.Source{Name: "s", Events: []config.Rule{
		{Type: "ok", On: config.Kinds{"changed"}},
		{Type: "bad", On: config.Kinds{"changed"}, To: []any{"ready", "[x"}},
	}}
	_, err := Compile(src)
	if err == nil || !strings.Contains(err.Error(), `events[1].to[1]: bad glob "[x"`) {
		t.Errorf("Compile = %v, want the bad glob with its path", err)
	}
	src.Events[1] = config.Rule{Type: "bad", On: config.Kinds{"member_added"}, Members: ".tags["}
	if _, err := Compile(src); err == nil || !strings.Contains(err.Error(), "events[1].members: ") {
		t.Errorf("Compile = %v, want the bad members expression with its path", err)
	}
}
