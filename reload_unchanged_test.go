package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// everyKindSources is a `sources:` list using every rule kind (from, to,
// when, members, stalled with state), both kinds of watch source (ids
// with watch_from, adaptive) and every pagination style. Every interval
// is an hour, so no poll runs but those the test asks for.
const everyKindSources = `  - name: cursor
    url: %[1]s/v1/tasks
    interval: 1h
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
  - {name: next-url, url: '%[1]s/v1/tasks', interval: 1h, items: '.data[]', pagination: {next_url: .links.next}}
  - {name: links, url: '%[1]s/v1/tasks', interval: 1h, items: '.data[]', pagination: {link_header: true, max_pages: 5}}
  - {name: pages, url: '%[1]s/v1/tasks', interval: 1h, items: '.data[]', pagination: {page_param: p, limit_param: n, limit: 50}}
  - {name: offsets, url: '%[1]s/v1/tasks', interval: 1h, items: '.data[]', pagination: {offset_param: o, limit_param: n}}
  - name: single
    url: %[1]s/v1/summary
    interval: 1h
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
    interval: 1h
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

var everyKindNames = []string{"cursor", "next-url", "links", "pages", "offsets", "single", "status", "adaptive"}

// TestSIGHUPUnchangedRestartsNoSource drives the real binary: a SIGHUP
// with the file unchanged restarts no source loop, for sources using
// every rule kind, watch sources and every pagination style. A loop that
// restarted would show: a list source's last poll is forgotten, a watch
// source starts a round at once. Changing one source's members rule then
// restarts that source alone.
func TestSIGHUPUnchangedRestartsNoSource(t *testing.T) {
	bin := binary(t)
	up := newUpstream(t, map[string]string{"a": "queued"})
	addr := freeAddr(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "pollrelay.yaml")
	file := fmt.Sprintf(`
listen: %s
api_token: %s
storage: {path: %q}
log: {level: info, format: text}
sources:
`, addr, signalsToken, filepath.Join(dir, "data")) + fmt.Sprintf(everyKindSources, up.srv.URL)
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(file)
	p := startProcess(t, bin, "run", "--config", path)
	c := apiClient{t: t, base: "http://" + addr, token: signalsToken}
	waitFor(t, 20*time.Second, func() bool { return strings.Contains(getMetrics(addr), `pollrelay_source_up{source="adaptive"}`) })
	for _, name := range everyKindNames {
		if code := c.do("POST", "/v1/sources/"+name+"/poll", nil, nil); code/100 != 2 {
			t.Fatalf("poll %s: status %d", name, code)
		}
	}
	lastPolls := func() map[string]string {
		t.Helper()
		var srcs struct {
			Data []struct {
				Name       string `json:"name"`
				LastPollAt string `json:"last_poll_at"`
			} `json:"data"`
		}
		if code := c.do("GET", "/v1/sources", nil, &srcs); code != 200 {
			t.Fatalf("GET /v1/sources: %d", code)
		}
		out := map[string]string{}
		for _, s := range srcs.Data {
			out[s.Name] = s.LastPollAt
		}
		return out
	}
	before := lastPolls()
	for _, name := range everyKindNames {
		if before[name] == "" {
			t.Fatalf("%s has not polled: %v", name, before)
		}
	}
	reloads := 0
	sighup := func() {
		t.Helper()
		reloads++
		p.cmd.Process.Signal(syscall.SIGHUP)
		waitFor(t, 20*time.Second, func() bool {
			log, _ := os.ReadFile(p.log.Name())
			return strings.Count(string(log), "config reloaded") == reloads
		})
	}

	sighup()
	sighup()
	after := lastPolls()
	for _, name := range everyKindNames {
		if after[name] != before[name] {
			t.Errorf("%s restarted by a SIGHUP with the file unchanged: last poll %q, was %q", name, after[name], before[name])
		}
	}
	log, _ := os.ReadFile(p.log.Name())
	_, sinceReload, _ := strings.Cut(string(log), "SIGHUP: reloading config")
	if strings.Contains(sinceReload, "first poll") {
		t.Error("a SIGHUP with the file unchanged scheduled a first poll")
	}

	write(strings.Replace(file, "members: '.tags |", "members: '.labels |", 1))
	sighup()
	after = lastPolls()
	for _, name := range everyKindNames {
		if restarted := after[name] != before[name]; restarted != (name == "cursor") {
			t.Errorf("%s: restarted %v after a change to cursor's members rule (last poll %q, was %q)", name, restarted, after[name], before[name])
		}
	}
}
