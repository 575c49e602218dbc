package poller

import (
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// everyKind is a `sources:` list using every rule kind (from, to, when,
// members, stalled with state), both kinds of watch source (ids with
// watch_from, adaptive) and every pagination style.
const everyKind = `  - name: cursor
    url: %[1]s/v1/tasks
    items: '.data[]'
    pagination: {next: .next, param: cursor}
    events:
      - {type: 'tasks.{current}', on: changed, from: '*', to: [ready, errored]}
      - {type: tasks.left, from: 'proc*'}
      - {type: tasks.urgent, to: ready, when: '.object.priority > 1'}
      - {type: tasks.born_ready, on: [created, changed], to: ready}
      - {type: tasks.gone, on: deleted}
      - {type: tasks.stuck, on: stalled, state: [queued, 'wait*'], after: 10m}
      - {type: 'tasks.tag.{member}', on: [member_added, member_removed], members: '.tags | map(ascii_downcase)', from: '*'}
  - {name: next-url, url: '%[1]s/v1/tasks', items: '.data[]', pagination: {next_url: .links.next}}
  - {name: links, url: '%[1]s/v1/tasks', items: '.data[]', pagination: {link_header: true, max_pages: 5}}
  - {name: pages, url: '%[1]s/v1/tasks', items: '.data[]', pagination: {page_param: p, limit_param: n, limit: 50}}
  - {name: offsets, url: '%[1]s/v1/tasks', items: '.data[]', pagination: {offset_param: o, limit_param: n}}
  - name: single
    url: %[1]s/v1/summary
    method: POST
    body: {query: summary, filter: [1, 2.5, true]}
    rate: 300/m
    headers: {X-Api-Key: key-0123456789abcdef}
    auth: {bearer: bearer-0123456789abcdef}
    id: '"summary"'
    state: '.data[0].status'
    object: '{first: .data[0].id}'
    settle: 2
    deletes: false
    events:
      - {type: summary.changed, from: [queued, null, 3], to: '*'}
  - name: status
    url: %[1]s/v1/tasks/{id}
    ids: [a, b]
    terminal: [ready, {code: 1}, 3]
    watch_from: cursor
    watch_ttl: 24h
    events:
      - {type: 'status.{current}', to: ready, when: '.watch.metadata != null'}
      - {type: status.stuck, on: stalled, state: processing, after: 1h}
      - {type: 'status.tag.{member}', on: member_added, members: '.tags // []'}
  - {name: adaptive, url: '%[1]s/v1/tasks/{id}', interval: adaptive, min_interval: 1h, ids: [a], terminal: ready}
`

// TestReloadUnchangedKeepsEveryLoop: applying a fresh parse of the same
// file restarts no loop, whatever rules, watches and pagination the
// sources use; a change to one source restarts that one alone.
func TestReloadUnchangedKeepsEveryLoop(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"data":[{"id":"a","status":"queued"}]}`)
	}))
	defer up.Close()
	yaml := fmt.Sprintf(everyKind, up.URL)
	h := newHarness(t, nil)
	h.start(sources(t, yaml))
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
		h.m.Apply(sources(t, yaml))
		after := running()
		for _, name := range slices.Sorted(maps.Keys(before)) {
			if after[name] != before[name] {
				t.Errorf("%s restarted by a reload of the same file", name)
			}
		}
	}

	h.m.Apply(sources(t, strings.Replace(yaml, "members: '.tags |", "members: '.labels |", 1)))
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
