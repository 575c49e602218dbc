package config

import (
	"slices"
	"strings"
	"testing"
)

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
