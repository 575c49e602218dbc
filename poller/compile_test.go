package poller

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/pollrelay/pollrelay/config"
)

// compiledSource builds a source from the YAML of one `sources:` element,
// compiled as its loop would.
func compiledSource(t *testing.T, yaml string) *compiled {
	t.Helper()
	c, err := compile(source(t, yaml))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func compileAll(t *testing.T, srcs []config.Source) []*compiled {
	t.Helper()
	out := make([]*compiled, len(srcs))
	for i := range srcs {
		c, err := compile(&srcs[i])
		if err != nil {
			t.Fatal(err)
		}
		out[i] = c
	}
	return out
}

// TestIdenticalExpressionsShareOneCompiled: sources with the same jq text
// share one compiled expression, within a config and across a reload
// while the running sources hold it; a different text gets its own.
func TestIdenticalExpressionsShareOneCompiled(t *testing.T) {
	const yaml = `  - {name: a, url: "http://127.0.0.1:9/a", items: '.data[] | select(.kind == "x")', state: '.status'}
  - {name: b, url: "http://127.0.0.1:9/b", items: '.data[] | select(.kind == "x")', state: '.status'}
  - {name: c, url: "http://127.0.0.1:9/c", items: '.rows[]', state: '.status'}
`
	running := compileAll(t, sources(t, yaml))
	a, b, c := running[0], running[1], running[2]
	if a.items != b.items || a.state != c.state || a.id != b.id {
		t.Error("identical expressions in one config were compiled apart")
	}
	if a.items == c.items {
		t.Error("different expressions share a compiled form")
	}
	reloaded := compileAll(t, sources(t, yaml))
	if reloaded[0].items != a.items {
		t.Error("a reload compiled an expression the running config already had")
	}
	if got := reloaded[0].items.String(); got != `.data[] | select(.kind == "x")` {
		t.Errorf("shared expression is %q", got)
	}
	runtime.KeepAlive(running)
}

// TestCompiledDefaults: the expressions, body and rate of a source that
// sets none, as config's TestDefaults parses it.
func TestCompiledDefaults(t *testing.T) {
	s := compiledSource(t, `  - name: tasks
    url: http://127.0.0.1:9000/tasks
    items: '.[]'
    pagination: {page_param: page, limit_param: n}
    events: [{type: tasks.changed}]
`)
	if s.id == nil || s.id.String() != ".id" || s.state == nil || s.state.String() != ".status" ||
		s.items == nil || s.object != nil {
		t.Errorf("source expressions: items %v id %v state %v object %v", s.items, s.id, s.state, s.object)
	}
	if s.rate != 0 || s.body != nil {
		t.Errorf("source: rate %v body %q", s.rate, s.body)
	}
	if _, ok := s.pages.style.(pageNumbers); !ok || s.pages.maxPages != 100 {
		t.Errorf("pagination = %#v", s.pages)
	}
}

// TestPaginationCompiles: each `pagination:` style compiles to its own
// type, and a pagination that names none is refused.
func TestPaginationCompiles(t *testing.T) {
	for yaml, want := range map[string]pageStyle{
		"{next: .next, param: cursor}":                nextToken{},
		"{next_url: .links.next}":                     nextURL{},
		"{link_header: true}":                         linkHeader{},
		"{page_param: p, limit_param: n}":             pageNumbers{},
		"{offset_param: o, limit_param: n}":           offsets{},
		"{offset_param: o, limit_param: n, limit: 5}": offsets{},
	} {
		s := compiledSource(t, "  - {name: s, url: 'http://127.0.0.1:9/s', items: '.data[]', pagination: "+yaml+"}\n")
		if fmt.Sprintf("%T", s.pages.style) != fmt.Sprintf("%T", want) {
			t.Errorf("%s: style %T, want %T", yaml, s.pages.style, want)
		}
	}
	_, err := compile(&config.Source{Name: "s", ID: ".id", State: ".status", Pagination: &config.Pagination{MaxPages: 1}})
	if err == nil || !strings.Contains(err.Error(), "pagination: choose one of") {
		t.Errorf("compile = %v, want the missing style refused", err)
	}
}
