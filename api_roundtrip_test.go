package main

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// TestAPISubscriptionRoundTrip: what GET answers, PATCH takes back. A GET
// answer sent back is a 200 that changes nothing (not the stored record,
// not its version, not what GET answers next), retry policy, hidden
// credentials and read-only fields included; and the retry it shows is
// one PATCH sets.
func TestAPISubscriptionRoundTrip(t *testing.T) {
	e := newAPIEnv(t)
	hook := strings.Replace(e.rc.URL, "http://", "http://user:hook-password@", 1) + "/shaped"
	var created map[string]any
	if code := e.c.Do("POST", "/v1/subscriptions", map[string]any{
		"name": "shaped", "url": hook, "method": "put", "events": []string{"tasks.*"},
		"headers":   map[string]string{"Authorization": "Bearer upstream-token-0123456789", "X-Env": "prod"},
		"payload":   "{event: .type, id: .data.id}",
		"retry":     map[string]any{"every": "1m", "for": "3m", "jitter": 0},
		"signature": map[string]any{"scheme": "hmac-sha256", "header": "X-Sig"}, "secret": "shared-hmac-secret-0123",
		"disable_after": "1h", "test_event": "shaped.test",
	}, &created); code != 201 {
		t.Fatalf("create: %d %v", code, created)
	}
	for id, wantRetry := range map[string]string{"shaped": "map[jitter:0 schedule:[1m0s 1m0s 1m0s]]", "app": "map[jitter:0.2 schedule:[100ms]]"} {
		var got map[string]any
		if code := e.c.Do("GET", "/v1/subscriptions/"+id, nil, &got); code != 200 {
			t.Fatalf("get %s: %d %v", id, code, got)
		}
		// fmt prints a map's keys in order.
		if r := got["retry"]; fmt.Sprint(r) != wantRetry {
			t.Errorf("%s: retry shown as %v, want %s", id, r, wantRetry)
		}
		before := storedSub(t, e.b, id)
		var patched, again map[string]any
		if code := e.c.Do("PATCH", "/v1/subscriptions/"+id, got, &patched); code != 200 {
			t.Fatalf("%s: PATCH with its own GET answer: %d %v", id, code, patched)
		}
		e.c.Do("GET", "/v1/subscriptions/"+id, nil, &again)
		if !reflect.DeepEqual(patched, got) || !reflect.DeepEqual(again, got) {
			t.Errorf("%s: the round trip changed it:\n GET    %v\n PATCH  %v\n GET    %v", id, got, patched, again)
		}
		if after := storedSub(t, e.b, id); before != nil &&
			(after.Version != before.Version || !bytes.Equal(after.Spec, before.Spec) || !after.UpdatedAt.Equal(before.UpdatedAt)) {
			t.Errorf("%s: the round trip rewrote the record: version %d → %d, spec %s → %s", id, before.Version, after.Version, before.Spec, after.Spec)
		}
	}
	if h := created["headers"].(map[string]any); h["Authorization"] != "redacted" || strings.Contains(created["url"].(string), "hook-password") {
		t.Errorf("credentials shown: url %v headers %v", created["url"], h)
	}
	if rec := storedSub(t, e.b, "shaped"); !bytes.Contains(rec.Spec, []byte("hook-password")) || !bytes.Contains(rec.Spec, []byte("upstream-token-0123456789")) {
		t.Errorf("the round trip lost a hidden credential: %s", rec.Spec)
	}

	// The retry GET shows is the one PATCH sets: change it in that shape.
	var got, patched map[string]any
	e.c.Do("GET", "/v1/subscriptions/shaped", nil, &got)
	got["retry"] = map[string]any{"schedule": []string{"2s", "1m"}, "jitter": 0.1}
	before := storedSub(t, e.b, "shaped")
	if code := e.c.Do("PATCH", "/v1/subscriptions/shaped", got, &patched); code != 200 ||
		fmt.Sprint(patched["retry"]) != "map[jitter:0.1 schedule:[2s 1m0s]]" {
		t.Fatalf("PATCH retry in the shape GET shows: %d %v", code, patched["retry"])
	}
	if after := storedSub(t, e.b, "shaped"); after.Version != before.Version+1 {
		t.Errorf("a real change: version %d → %d, want one more", before.Version, after.Version)
	}
	// A config subscription takes its answer back, and nothing else.
	e.c.Do("GET", "/v1/subscriptions/app", nil, &got)
	got["timeout"] = "5s"
	if code := e.c.Do("PATCH", "/v1/subscriptions/app", got, &patched); code != 409 {
		t.Errorf("PATCH a config subscription's timeout: %d %v, want 409", code, patched)
	}
}
