package config

import (
	"path"
	"slices"
	"strings"
	"testing"
)

func TestGlobsIntersect(t *testing.T) {
	cases := []struct {
		a, b string
		want bool
	}{
		{"video.status.*", "video.status.*", true},
		{"video.*", "video.status.*", true},
		{"video.stauts.*", "video.status.*", false},
		{"*.ready", "video.status.*", true},
		{"video.status.ready", "video.status.*", true},
		{"video.?tatus.*", "video.status.*", true},
		{"video.[st]tatus.x", "video.*.x", true},
		{"video.[^s]tatus.x", "video.status.x", false},
		{"task.*", "video.*", false},
		{"*", "anything", true},
		{"a*b*c", "*x*", true},
		{"abc", "abd", false},
		{`lit\*`, "lit*", true},
		{`lit\*`, `lit\*`, true},
	}
	for _, c := range cases {
		if got := globsIntersect(c.a, c.b); got != c.want {
			t.Errorf("globsIntersect(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
		if got := globsIntersect(c.b, c.a); got != c.want {
			t.Errorf("globsIntersect(%q, %q) = %v, want %v", c.b, c.a, got, c.want)
		}
	}
}

// TestWarnings: a glob no source can emit, a short secret and a rule that
// misses items born in its target state are warned about, and the config
// still loads.
func TestWarnings(t *testing.T) {
	yaml := `storage: {in_memory: true}
sources:
  - name: videos
    url: http://127.0.0.1:9/videos
    items: '.data[]'
    events:
      - {type: 'video.status.{current}', on: changed, to: [ready, errored]}
      - {type: video.gone, on: deleted}
  - name: plain
    url: http://127.0.0.1:9/plain
  - name: task
    url: http://127.0.0.1:9/tasks/{id}
    terminal: [done]
    events:
      - {type: 'task.{current}', on: changed, to: done}
subscriptions:
  - name: app
    url: http://127.0.0.1:9/hook
    events: ['video.stauts.*', 'video.status.*', 'plain.created', 'task.done', 'task.watch_expired', 'pollrelay.ping', 'nothing.*']
    secret: [whsec_c2hvcnQ=, whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]
`
	cfg, err := ParseWith([]byte(yaml), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Warnings()
	want := []string{
		`subscriptions[0].events[0]: "video.stauts.*" matches no event type any source emits (video.status.*, video.gone, plain.created, plain.changed, plain.deleted, task.*, task.watch_expired, pollrelay.ping)`,
		`subscriptions[0].events[6]: "nothing.*" matches no event type any source emits (video.status.*, video.gone, plain.created, plain.changed, plain.deleted, task.*, task.watch_expired, pollrelay.ping)`,
		"subscriptions[0].secret[0]: the key is 5 bytes; use at least 24 random bytes (`pollrelay secret` prints a fresh 32-byte one)",
		"sources[0].events[0]: fires on changed only, so an item first seen already in a to: state fires nothing; on: [created, changed] announces it too",
	}
	if !slices.Equal(got, want) {
		t.Errorf("warnings:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestGlobsIntersectAgainstBruteForce compares globsIntersect with a
// search for a common string, over every pair of short globs: a string
// both match, if any, is never longer than the two globs together.
func TestGlobsIntersectAgainstBruteForce(t *testing.T) {
	tokens := []string{"a", "b", "*", "?", "[ab]", "[^a]"}
	var globs []string
	var grow func(prefix string, n int)
	grow = func(prefix string, n int) {
		if prefix != "" {
			globs = append(globs, prefix)
		}
		if n == 0 {
			return
		}
		for _, tk := range tokens {
			grow(prefix+tk, n-1)
		}
	}
	grow("", 3)
	var strs []string
	var gen func(prefix string, n int)
	gen = func(prefix string, n int) {
		strs = append(strs, prefix)
		if n == 0 {
			return
		}
		for _, c := range []string{"a", "b", "c"} {
			gen(prefix+c, n-1)
		}
	}
	gen("", 6)
	// Each glob's matches as a bit set over strs, so a pair is one AND.
	matches := make(map[string][]uint64, len(globs))
	for _, g := range globs {
		m := make([]uint64, (len(strs)+63)/64)
		for i, s := range strs {
			if ok, _ := path.Match(g, s); ok {
				m[i/64] |= 1 << (i % 64)
			}
		}
		matches[g] = m
	}
	for _, a := range globs {
		for _, b := range globs {
			want := false
			for w := range matches[a] {
				if matches[a][w]&matches[b][w] != 0 {
					want = true
					break
				}
			}
			if got := globsIntersect(a, b); got != want {
				t.Fatalf("globsIntersect(%q, %q) = %v, a common string exists: %v", a, b, got, want)
			}
		}
	}
}
