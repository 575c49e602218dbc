package poller

import (
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/pollrelay/pollrelay/config"
)

// TestReloadUnchangedKeepsEveryLoop: applying a fresh parse of the same
// file restarts no loop, whatever rules, watches and pagination the
// sources use (testdata/config/every-kind.yaml); a change to one source
// restarts that one alone.
func TestReloadUnchangedKeepsEveryLoop(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"data":[{"id":"a","status":"queued"}]}`)
	}))
	defer up.Close()
	fixture, err := os.ReadFile("../testdata/config/every-kind.yaml")
	if err != nil {
		t.Fatal(err)
	}
	yaml := "storage: {in_memory: true}\n" + strings.ReplaceAll(string(fixture), "${UPSTREAM}", up.URL)
	parse := func(yaml string) []config.Source {
		t.Helper()
		cfg, err := config.ParseWith([]byte(yaml), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Sources
	}
	h := newHarness(t, nil)
	h.start(parse(yaml))
	running := func() map[string]*loop {
		h.m.mu.Lock()
		defer h.m.mu.Unlock()
		return maps.Clone(h.m.loops)
	}
	before := running()
	if len(before) != 8 {
		t.Fatalf("%d loops running, want 8", len(before))
	}

	for range 2 {
		h.m.Apply(parse(yaml))
		after := running()
		for _, name := range slices.Sorted(maps.Keys(before)) {
			if after[name] != before[name] {
				t.Errorf("%s restarted by a reload of the same file", name)
			}
		}
	}

	h.m.Apply(parse(strings.Replace(yaml, "members: '.tags |", "members: '.labels |", 1)))
	after := running()
	for _, name := range slices.Sorted(maps.Keys(before)) {
		if restarted := after[name] != before[name]; restarted != (name == "cursor") {
			t.Errorf("%s: restarted %v after a change to cursor's members rule", name, restarted)
		}
	}
	if w := h.m.watchersOf("cursor"); len(w) != 1 || w[0] != after["status"].src.Source {
		t.Errorf("watchers of cursor = %v, want the running status source", w)
	}
}
