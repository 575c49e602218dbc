package main

import (
	"testing"
)

// TestAPIReplayFromZeroTime: 0001-01-01T00:00:00Z is a time like any
// other, so a replay from it replays everything rather than answering
// that since is missing; only a since that is absent is.
func TestAPIReplayFromZeroTime(t *testing.T) {
	e := newAPIEnv(t)
	pollNow(t, e.b, "tasks")
	e.up.Set(func(items map[string]string) { items["b"] = "queued" })
	pollNow(t, e.b, "tasks")
	e.rc.Next(t)
	waitDelivered(t, e.b)
	var out map[string]any
	code := e.c.Do("POST", "/v1/subscriptions/app/replay", map[string]any{"since": "0001-01-01T00:00:00Z"}, &out)
	if code != 202 || out["replayed"] != float64(1) {
		t.Errorf("replay since the zero time: %d %v, want 202 replaying the one event", code, out)
	}
	if d := e.rc.Next(t); d.Env.Data.ID != "b" {
		t.Errorf("replayed %s, want b", d.Env.Data.ID)
	}
	code = e.c.Do("POST", "/v1/subscriptions/app/replay", map[string]any{"until": "2026-01-15T10:30:00Z"}, &out)
	if code != 422 || out["error"] != "since: required, an RFC 3339 time such as 2026-01-15T10:30:00Z" {
		t.Errorf("replay without since: %d %v", code, out)
	}
}
