package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/internal/harness"
	"github.com/pollrelay/pollrelay/poller"
	"github.com/pollrelay/pollrelay/signature"
)

// TestAPIRefusesRunawayPayloads: a payload sent to /v1 is tried on sample
// envelopes within the jq limits, on create and on PATCH, and refused
// with 422 naming the field; the stored subscription is left as it was.
func TestAPIRefusesRunawayPayloads(t *testing.T) {
	e := newAPIEnv(t)
	for _, bomb := range []string{`def f: [f]; f`, `def f: f; f`, `"x" * 1e9`, `[range(1e9)]`,
		`reduce range(40) as $i ([0]; [., .]) | tojson`, `.[5e8] = 1`, `error("always")`} {
		var body map[string]any
		code := e.c.Do("POST", "/v1/subscriptions", map[string]any{"name": "bomb", "url": e.rc.URL + "/b",
			"secret": e.secret, "payload": bomb}, &body)
		if code != http.StatusUnprocessableEntity || !strings.HasPrefix(fmt.Sprint(body["error"]), "payload: ") {
			t.Errorf("create with %s: %d %v", bomb, code, body)
		}
	}
	if code := e.c.Do("POST", "/v1/subscriptions", map[string]any{"name": "shaped", "url": e.rc.URL + "/s",
		"secret": e.secret, "payload": "{kind: .type}"}, nil); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	var body map[string]any
	if code := e.c.Do("PATCH", "/v1/subscriptions/shaped", map[string]any{"payload": "def f: f; f"}, &body); code != http.StatusUnprocessableEntity ||
		!strings.HasPrefix(fmt.Sprint(body["error"]), "payload: ") {
		t.Errorf("PATCH to a bomb: %d %v", code, body)
	}
	var got map[string]any
	e.c.Do("GET", "/v1/subscriptions/shaped", nil, &got)
	if got["payload"] != "{kind: .type}" {
		t.Errorf("after a refused PATCH the payload is %v", got["payload"])
	}
	// Reading a field only real events have fails on the ping sample alone.
	if code := e.c.Do("PATCH", "/v1/subscriptions/shaped", map[string]any{"payload": "{s: (.data.object.status | ascii_downcase)}"}, nil); code != http.StatusOK {
		t.Errorf("PATCH to a data-dependent payload: %d", code)
	}
}

// TestRuleOverALimitFailsThePoll: a `when` or `members` that runs away on
// a transition fails the poll with extract_error instead of recording the
// state without its events; the next poll after the fix delivers it.
func TestRuleOverALimitFailsThePoll(t *testing.T) {
	for name, rule := range map[string]string{
		"when":    `{type: task.ready, on: changed, when: 'def f: [f]; f'}`,
		"members": `{type: task.member, on: member_added, members: '[limit(1e9; repeat(.))]'}`,
	} {
		t.Run(name, func(t *testing.T) {
			up := harness.NewUpstream(t, map[string]string{"a": "queued"})
			secret := signature.NewSecret()
			rc := harness.NewReceiver(t, secret)
			yaml := fmt.Sprintf(`
listen: 127.0.0.1:0
storage: {path: %q}
log: {level: info, format: text}
sources:
  - name: tasks
    url: %s/v1/tasks
    interval: 1h
    items: '.data[]'
    events: [%s]
subscriptions:
  - {name: app, url: "%s/hook", secret: %s}
`, t.TempDir(), up.URL, rule, rc.URL, secret)
			b, _ := startBridge(t, yaml)
			pollNow(t, b, "tasks")
			up.Set(func(items map[string]string) { items["a"] = "ready" })
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := b.poller.PollNow(ctx, "tasks")
			var pe *poller.PollError
			if !errors.As(err, &pe) || pe.Outcome != poller.OutcomeExtract || !strings.Contains(err.Error(), "limit") {
				t.Fatalf("poll: %v, want extract_error over a limit", err)
			}
			var st poller.Status
			for _, s := range b.poller.Status() {
				if s.Name == "tasks" {
					st = s
				}
			}
			if st.LastOutcome != poller.OutcomeExtract {
				t.Errorf("status %+v", st)
			}
		})
	}
}
