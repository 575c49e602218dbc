package config

import (
	"runtime"
	"testing"
)

// TestIdenticalExpressionsShareOneCompiled: sources with the same jq text
// share one compiled expression, within a config and across a reload
// while the running config holds it; a different text gets its own.
func TestIdenticalExpressionsShareOneCompiled(t *testing.T) {
	const yaml = `sources:
  - {name: a, url: "http://127.0.0.1:9/a", items: '.data[] | select(.kind == "x")', state: '.status'}
  - {name: b, url: "http://127.0.0.1:9/b", items: '.data[] | select(.kind == "x")', state: '.status'}
  - {name: c, url: "http://127.0.0.1:9/c", items: '.rows[]', state: '.status'}
`
	running := mustParse(t, yaml, noEnv)
	a, b, c := running.Sources[0], running.Sources[1], running.Sources[2]
	if a.ItemsExpr != b.ItemsExpr || a.StateExpr != c.StateExpr || a.IDExpr != b.IDExpr {
		t.Error("identical expressions in one config were compiled apart")
	}
	if a.ItemsExpr == c.ItemsExpr {
		t.Error("different expressions share a compiled form")
	}
	reloaded := mustParse(t, yaml, noEnv)
	if reloaded.Sources[0].ItemsExpr != a.ItemsExpr {
		t.Error("a reload compiled an expression the running config already had")
	}
	if got := reloaded.Sources[0].ItemsExpr.String(); got != `.data[] | select(.kind == "x")` {
		t.Errorf("shared expression is %q", got)
	}
	runtime.KeepAlive(running)
}
