package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/pollrelay/pollrelay/internal/harness"
	"github.com/pollrelay/pollrelay/signature"
)

const apiToken = "test-api-token-7d1c2b"

// apiConfig is a bridge with a token, one list source, one config
// subscription and a watch source.
const apiConfig = `
listen: 127.0.0.1:0
api_token: %s
storage: {path: %q}
log: {level: info, format: text}
delivery: {allow_private_networks: true}
sources:
  - name: tasks
    url: %s/v1/tasks
    interval: 1h
    items: '.data[]'
  - name: task-status
    url: %s/v1/tasks/{id}
    interval: 1h
    terminal: [ready]
subscriptions:
  - name: app
    url: %s/hook
    secret: %s
    retry: {schedule: [100ms]}
`

type apiEnv struct {
	b      *Bridge
	c      harness.APIClient
	up     *harness.Upstream
	rc     *harness.Receiver
	secret string
	dir    string
	stop   func()
}

func startAPI(t *testing.T, dir string, up *harness.Upstream, rc *harness.Receiver, secret string) *apiEnv {
	t.Helper()
	b, stop := startBridge(t, fmt.Sprintf(apiConfig, apiToken, dir, up.URL, up.URL, rc.URL, secret))
	return &apiEnv{
		b: b, c: harness.APIClient{T: t, Base: "http://" + b.Addr(), Token: apiToken}, up: up, rc: rc, secret: secret, dir: dir,
		stop: stop,
	}
}

func newAPIEnv(t *testing.T) *apiEnv {
	secret := signature.NewSecret()
	return startAPI(t, t.TempDir(), harness.NewUpstream(t, map[string]string{"a": "queued"}), harness.NewReceiver(t, secret), secret)
}

func TestAPIAuth(t *testing.T) {
	e := newAPIEnv(t)
	var body map[string]string
	noToken := harness.APIClient{T: t, Base: e.c.Base}
	if code := noToken.Do("GET", "/v1/subscriptions", nil, &body); code != 401 || body["error"] == "" {
		t.Errorf("no token: %d %v", code, body)
	}
	wrong := harness.APIClient{T: t, Base: e.c.Base, Token: "nope"}
	if code := wrong.Do("GET", "/v1/sources", nil, &body); code != 401 {
		t.Errorf("wrong token: %d", code)
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/v1/openapi.json"} {
		resp, err := http.Get(e.c.Base + p)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("%s without a token: %v %v", p, resp.StatusCode, err)
		}
		resp.Body.Close()
	}
	if code := e.c.Do("GET", "/v1/nothing", nil, &body); code != 404 {
		t.Errorf("unknown route: %d", code)
	}
	if code := e.c.Do("DELETE", "/v1/sources", nil, &body); code != 405 || !strings.Contains(body["error"], "GET") {
		t.Errorf("wrong method: %d %v", code, body)
	}
}

func TestAPIOffWithoutToken(t *testing.T) {
	up := harness.NewUpstream(t, map[string]string{})
	b, _ := startBridge(t, fmt.Sprintf(e2eConfig, t.TempDir(), up.URL, "http://127.0.0.1:9", signature.NewSecret()))
	var body map[string]string
	c := harness.APIClient{T: t, Base: "http://" + b.Addr(), Token: "anything"}
	if code := c.Do("GET", "/v1/subscriptions", nil, &body); code != 404 || !strings.Contains(body["error"], "api_token") {
		t.Errorf("/v1 without api_token: %d %v", code, body)
	}
}

func TestAPISubscriptions(t *testing.T) {
	e := newAPIEnv(t)
	var sub map[string]any
	code := e.c.Do("POST", "/v1/subscriptions", map[string]any{
		"name": "second", "url": e.rc.URL + "/hook2", "events": []string{"tasks.*"},
	}, &sub)
	if code != 201 {
		t.Fatalf("create: %d %v", code, sub)
	}
	secret, _ := sub["secret"].(string)
	if !strings.HasPrefix(secret, "whsec_") || sub["managed_by"] != "api" {
		t.Fatalf("create answer: %v", sub)
	}
	var got map[string]any
	if code := e.c.Do("GET", "/v1/subscriptions/second", nil, &got); code != 200 || got["secret"] != nil {
		t.Errorf("get: %d, secret shown again: %v", code, got["secret"])
	}
	for _, k := range []string{"disabled", "failure_count", "last_response_status", "queue_length", "retry_queue_length"} {
		if _, ok := got[k]; !ok {
			t.Errorf("get: no %s in %v", k, got)
		}
	}
	var lst struct {
		Data []map[string]any `json:"data"`
	}
	e.c.Do("GET", "/v1/subscriptions", nil, &lst)
	if len(lst.Data) != 2 || lst.Data[1]["managed_by"] != "config" || lst.Data[0]["name"] != "second" {
		t.Errorf("list: %v", lst.Data)
	}
	var errBody map[string]any
	cases := []struct {
		method, path string
		body         any
		code         int
		msg          string
	}{
		{"POST", "/v1/subscriptions", map[string]any{"name": "second", "url": "http://127.0.0.1:1/x"}, 409, "name:"},
		{"POST", "/v1/subscriptions", map[string]any{"name": "bad", "url": "ftp://x"}, 422, "url: must be an absolute http or https URL"},
		{"POST", "/v1/subscriptions", map[string]any{"name": "bad", "url": "http://169.254.169.254/latest"}, 422, "url:"},
		{"POST", "/v1/subscriptions", map[string]any{"name": "bad", "url": "http://x/", "events": []string{"[x"}}, 422, "events[0]: bad glob"},
		{"POST", "/v1/subscriptions", map[string]any{"name": "bad", "url": "http://x/", "nope": 1}, 422, "nope: unknown key"},
		{"POST", "/v1/subscriptions", "not an object", 422, "body:"},
		{"GET", "/v1/subscriptions/nobody", nil, 404, "no subscription"},
		{"PATCH", "/v1/subscriptions/app", map[string]any{"url": "http://127.0.0.1:2/"}, 409, "config file"},
		{"DELETE", "/v1/subscriptions/app", nil, 409, "config file"},
		{"PATCH", "/v1/subscriptions/second", map[string]any{"secret": "x"}, 422, "rotate-secret"},
		{"PATCH", "/v1/subscriptions/second", map[string]any{"timeout": "forever"}, 422, "timeout"},
		{"GET", "/v1/subscriptions?limit=0", nil, 422, "limit"},
	}
	for _, c := range cases {
		errBody = nil
		code := e.c.Do(c.method, c.path, c.body, &errBody)
		msg, _ := errBody["error"].(string)
		if code != c.code || !strings.Contains(msg, c.msg) {
			t.Errorf("%s %s %v: %d %q, want %d containing %q", c.method, c.path, c.body, code, msg, c.code, c.msg)
		}
	}
	if code := e.c.Do("PATCH", "/v1/subscriptions/second", map[string]any{"events": []string{"other.*"}}, &got); code != 200 || fmt.Sprint(got["events"]) != "[other.*]" {
		t.Errorf("patch: %d %v", code, got)
	}
	if code := e.c.Do("PATCH", "/v1/subscriptions/app", map[string]any{"disabled": true}, &got); code != 200 || got["disabled"] != true {
		t.Errorf("disable a config subscription: %d %v", code, got)
	}
	if code := e.c.Do("PATCH", "/v1/subscriptions/app", map[string]any{"disabled": false}, &got); code != 200 || got["disabled"] != false {
		t.Errorf("enable: %d %v", code, got)
	}

	// API subscriptions survive a restart; the secret stays hidden.
	e.stop()
	e2 := startAPI(t, e.dir, e.up, e.rc, e.secret)
	got = nil
	if code := e2.c.Do("GET", "/v1/subscriptions/second", nil, &got); code != 200 || got["managed_by"] != "api" || got["secret"] != nil {
		t.Errorf("after restart: %d %v", code, got)
	}
	if code := e2.c.Do("DELETE", "/v1/subscriptions/second", nil, nil); code != 204 {
		t.Errorf("delete: %d", code)
	}
	if code := e2.c.Do("GET", "/v1/subscriptions/second", nil, &got); code != 404 {
		t.Errorf("after delete: %d", code)
	}
}

// TestAPIRotateSecret: during the overlap every webhook carries two
// signatures, one per secret, and each verifies on its own.
func TestAPIRotateSecret(t *testing.T) {
	e := newAPIEnv(t)
	got := make(chan *http.Request, 4)
	bodies := make(chan []byte, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r
		bodies <- b
	}))
	defer hook.Close()
	var sub map[string]any
	if code := e.c.Do("POST", "/v1/subscriptions", map[string]any{"name": "rot", "url": hook.URL}, &sub); code != 201 {
		t.Fatalf("create: %d %v", code, sub)
	}
	oldSecret := sub["secret"].(string)
	var rot map[string]any
	if code := e.c.Do("POST", "/v1/subscriptions/rot/rotate-secret", nil, &rot); code != 200 {
		t.Fatalf("rotate: %d %v", code, rot)
	}
	newSecret := rot["secret"].(string)
	if newSecret == oldSecret || !strings.HasPrefix(newSecret, "whsec_") {
		t.Fatalf("rotate gave %q", newSecret)
	}
	var ping map[string]string
	if code := e.c.Do("POST", "/v1/subscriptions/rot/ping", nil, &ping); code != 202 {
		t.Fatalf("ping: %d %v", code, ping)
	}
	var r *http.Request
	select {
	case r = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("ping not delivered")
	}
	body := <-bodies
	if sigs := strings.Fields(r.Header.Get("webhook-signature")); len(sigs) != 2 {
		t.Fatalf("want two signatures during the overlap, got %q", r.Header.Get("webhook-signature"))
	}
	for _, s := range []string{oldSecret, newSecret} {
		wh, _ := standardwebhooks.NewWebhook(s)
		if err := wh.Verify(body, r.Header); err != nil {
			t.Errorf("secret %d does not verify: %v", len(s), err)
		}
	}
	if !bytes.Contains(body, []byte(`"pollrelay.ping"`)) || r.Header.Get("webhook-id") != ping["event_id"] {
		t.Errorf("ping body %s, id %s vs %s", body, r.Header.Get("webhook-id"), ping["event_id"])
	}
}

func TestAPIEventsSourcesItems(t *testing.T) {
	e := newAPIEnv(t)
	var polled map[string]any
	if code := e.c.Do("POST", "/v1/sources/tasks/poll", nil, &polled); code != 200 {
		t.Fatalf("poll: %d %v", code, polled)
	}
	e.up.Set(func(m map[string]string) { m["a"] = "ready"; m["b"] = "queued" })
	e.c.Do("POST", "/v1/sources/tasks/poll", nil, nil)
	e.rc.Next(t)
	e.rc.Next(t)
	waitDelivered(t, e.b)

	var events struct {
		Data       []map[string]any `json:"data"`
		NextCursor string           `json:"next_cursor"`
	}
	if code := e.c.Do("GET", "/v1/events?source=tasks&limit=1", nil, &events); code != 200 || len(events.Data) != 1 || events.NextCursor == "" {
		t.Fatalf("events page 1: %d %+v", code, events)
	}
	first := events.Data[0]["id"].(string)
	cursor := events.NextCursor
	events.Data, events.NextCursor = nil, ""
	e.c.Do("GET", "/v1/events?source=tasks&limit=1&cursor="+cursor, nil, &events)
	if len(events.Data) != 1 || events.Data[0]["id"] == first || events.NextCursor != "" {
		t.Fatalf("events page 2: %+v", events)
	}
	if !(events.Data[0]["id"].(string) < first) {
		t.Errorf("events are not newest first")
	}
	e.c.Do("GET", "/v1/events?type=tasks.created", nil, &events)
	if len(events.Data) != 1 || events.Data[0]["item_id"] != "b" {
		t.Errorf("type filter: %+v", events.Data)
	}
	var ev map[string]any
	if code := e.c.Do("GET", "/v1/events/"+first, nil, &ev); code != 200 || len(ev["deliveries"].([]any)) != 1 {
		t.Errorf("event: %d %v", code, ev)
	}
	var atts struct {
		Data []map[string]any `json:"data"`
	}
	if code := e.c.Do("GET", "/v1/events/"+first+"/attempts", nil, &atts); code != 200 || len(atts.Data) != 1 || atts.Data[0]["status"] != float64(204) {
		t.Errorf("attempts: %d %v", code, atts)
	}
	var red map[string]int
	if code := e.c.Do("POST", "/v1/events/"+first+"/redeliver", nil, &red); code != 202 || red["deliveries"] != 1 {
		t.Errorf("redeliver: %d %v", code, red)
	}
	if d := e.rc.Next(t); d.ID != first {
		t.Errorf("redelivered %s, want %s", d.ID, first)
	}
	for _, p := range []string{"/v1/events/evt_nope", "/v1/events/evt_nope/attempts", "/v1/items/tasks/zzz", "/v1/items/nosuch/a"} {
		if code := e.c.Do("GET", p, nil, nil); code != 404 {
			t.Errorf("%s: %d, want 404", p, code)
		}
	}
	if code := e.c.Do("POST", "/v1/sources/nosuch/poll", nil, nil); code != 404 {
		t.Errorf("poll unknown source: %d", code)
	}
	var item map[string]any
	if code := e.c.Do("GET", "/v1/items/tasks/a", nil, &item); code != 200 || item["state"] != "ready" || len(item["history"].([]any)) != 2 {
		t.Errorf("item: %d %v", code, item)
	}
	var srcs struct {
		Data []map[string]any `json:"data"`
	}
	e.c.Do("GET", "/v1/sources", nil, &srcs)
	if len(srcs.Data) != 2 || srcs.Data[1]["name"] != "tasks" || srcs.Data[1]["items_tracked"] != float64(2) || srcs.Data[1]["last_outcome"] != "success" {
		t.Errorf("sources: %v", srcs.Data)
	}
}

func TestAPIWatches(t *testing.T) {
	e := newAPIEnv(t)
	var w map[string]any
	if code := e.c.Do("PUT", "/v1/watches/task-status/a", map[string]any{"ttl": "2h", "metadata": map[string]string{"order": "o-1"}}, &w); code != 200 || w["id"] != "a" {
		t.Fatalf("put watch: %d %v", code, w)
	}
	var ws struct {
		Data []map[string]any `json:"data"`
	}
	if code := e.c.Do("GET", "/v1/watches", nil, &ws); code != 200 || len(ws.Data) != 1 {
		t.Errorf("list watches: %d %v", code, ws)
	}
	var body map[string]string
	if code := e.c.Do("PUT", "/v1/watches/tasks/a", nil, &body); code != 422 {
		t.Errorf("watch on a list source: %d %v", code, body)
	}
	if code := e.c.Do("PUT", "/v1/watches/task-status/a", map[string]any{"ttl": "soon"}, &body); code != 422 || !strings.Contains(body["error"], "ttl") {
		t.Errorf("bad ttl: %d %v", code, body)
	}
	if code := e.c.Do("PUT", "/v1/watches/nosuch/a", nil, &body); code != 404 {
		t.Errorf("unknown source: %d", code)
	}
	if code := e.c.Do("DELETE", "/v1/watches/task-status/a", nil, nil); code != 204 {
		t.Errorf("delete watch: %d", code)
	}
	if code := e.c.Do("DELETE", "/v1/watches/task-status/a", nil, &body); code != 404 {
		t.Errorf("delete again: %d", code)
	}
}

func TestAPIReload(t *testing.T) {
	secret := signature.NewSecret()
	up := harness.NewUpstream(t, map[string]string{"a": "queued"})
	rc := harness.NewReceiver(t, secret)
	dir := t.TempDir()
	path := filepath.Join(dir, "pollrelay.yaml")
	good := fmt.Sprintf(apiConfig, apiToken, filepath.Join(dir, "data"), up.URL, up.URL, rc.URL, secret)
	os.WriteFile(path, []byte(good), 0o600)
	b, _ := startBridge(t, good)
	b.path = path
	c := harness.APIClient{T: t, Base: "http://" + b.Addr(), Token: apiToken}

	// An invalid file: 422 with the problems, the old config keeps running.
	os.WriteFile(path, []byte(strings.Replace(good, "interval: 1h", "interval: 1ms", 1)), 0o600)
	var body map[string]any
	if code := c.Do("POST", "/v1/reload", nil, &body); code != 422 || !strings.Contains(fmt.Sprint(body["error"]), "interval") {
		t.Errorf("invalid reload: %d %v", code, body)
	}
	var srcs struct {
		Data []map[string]any `json:"data"`
	}
	c.Do("GET", "/v1/sources", nil, &srcs)
	if len(srcs.Data) != 2 {
		t.Errorf("after a failed reload: %v", srcs.Data)
	}
	// A valid change that removes the watch source.
	removed := strings.Replace(good, "  - name: task-status\n    url: "+up.URL+"/v1/tasks/{id}\n    interval: 1h\n    terminal: [ready]\n", "", 1)
	os.WriteFile(path, []byte(removed), 0o600)
	if code := c.Do("POST", "/v1/reload", nil, &body); code != 200 {
		t.Fatalf("valid reload: %d %v", code, body)
	}
	srcs.Data = nil
	c.Do("GET", "/v1/sources", nil, &srcs)
	if len(srcs.Data) != 1 || srcs.Data[0]["name"] != "tasks" {
		t.Errorf("after removing a source: %v", srcs.Data)
	}
}

// delivery.require_https: the API refuses an http:// subscription URL with
// a 422 that says why, and takes an https:// one.
func TestAPIRequireHTTPS(t *testing.T) {
	up := harness.NewUpstream(t, map[string]string{"a": "queued"})
	b, _ := startBridge(t, fmt.Sprintf(`
listen: 127.0.0.1:0
api_token: %s
storage: {path: %q}
delivery: {allow_private_networks: true, require_https: true}
sources:
  - name: tasks
    url: %s/v1/tasks
    interval: 1h
    items: '.data[]'
`, apiToken, t.TempDir(), up.URL))
	c := harness.APIClient{T: t, Base: "http://" + b.Addr(), Token: apiToken}
	var res map[string]any
	if code := c.Do("POST", "/v1/subscriptions", map[string]any{"name": "plain", "url": "http://127.0.0.1:9/hook"}, &res); code != 422 ||
		!strings.Contains(fmt.Sprint(res["error"]), "url: must be https:// (delivery.require_https is on)") {
		t.Errorf("http:// under require_https: %d %v", code, res)
	}
	if code := c.Do("POST", "/v1/subscriptions", map[string]any{"name": "tls", "url": "https://127.0.0.1:9/hook"}, &res); code != 201 {
		t.Errorf("https:// under require_https: %d %v", code, res)
	}
	if code := c.Do("PATCH", "/v1/subscriptions/tls", map[string]any{"url": "http://127.0.0.1:9/hook"}, &res); code != 422 {
		t.Errorf("PATCH to http:// under require_https: %d %v", code, res)
	}
}

// TestAPIWatchAnswersMatchTheSchema: once a watch has been polled against
// an upstream sending validators, GET /v1/watches shows when it was first
// observed and none of the poller's conditional-request bookkeeping; the
// client checks every answer against openapi.json.
func TestAPIWatchAnswersMatchTheSchema(t *testing.T) {
	secret := signature.NewSecret()
	rc := harness.NewReceiver(t, secret)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Last-Modified", "Mon, 12 Jan 2026 10:00:00 GMT")
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		fmt.Fprint(w, `{"data":[],"id":"a","status":"queued"}`)
	}))
	defer up.Close()
	b, _ := startBridge(t, fmt.Sprintf(apiConfig, apiToken, t.TempDir(), up.URL, up.URL, rc.URL, secret))
	c := harness.APIClient{T: t, Base: "http://" + b.Addr(), Token: apiToken}
	if code := c.Do("PUT", "/v1/watches/task-status/a", map[string]any{"ttl": "2h"}, nil); code != 200 {
		t.Fatalf("put watch: %d", code)
	}
	var ws struct {
		Data []map[string]any `json:"data"`
	}
	harness.WaitFor(t, 20*time.Second, func() bool {
		c.Do("POST", "/v1/sources/task-status/poll", nil, nil)
		ws.Data = nil
		c.Do("GET", "/v1/watches", nil, &ws)
		return len(ws.Data) == 1 && ws.Data[0]["observed_at"] != nil
	})
	for _, internal := range []string{"etag", "last_modified", "validators_for"} {
		if _, ok := ws.Data[0][internal]; ok {
			t.Errorf("GET /v1/watches shows %s: %v", internal, ws.Data[0])
		}
	}
}

// GET /v1/quarantine lists an upstream item whose id is over the key
// limit, skipped by the poll that applied the rest of its listing; POST
// …/retry forgets it until the next poll skips it again; /metrics counts
// it. A watch id over the limit is refused at PUT.
func TestAPIQuarantine(t *testing.T) {
	secret := signature.NewSecret()
	giant := strings.Repeat("g", 70000)
	e := startAPI(t, t.TempDir(), harness.NewUpstream(t, map[string]string{"a": "queued", giant: "queued"}), harness.NewReceiver(t, secret), secret)
	poll := func() {
		t.Helper()
		if code := e.c.Do("POST", "/v1/sources/tasks/poll", nil, nil); code != 200 {
			t.Fatalf("poll: %d", code)
		}
	}
	poll()
	e.up.Set(func(m map[string]string) { m["a"] = "ready"; m[giant] = "ready" })
	poll()
	if d := e.rc.Next(t); d.Env.Data.ID != "a" {
		t.Errorf("delivered %s, want a's change", d.Body)
	}
	type page struct {
		Data []struct {
			ID          string `json:"id"`
			Kind        string `json:"kind"`
			Source      string `json:"source"`
			ItemID      string `json:"item_id"`
			ItemIDBytes int    `json:"item_id_bytes"`
			Count       int    `json:"count"`
			Reason      string `json:"reason"`
		} `json:"data"`
		NextCursor string `json:"next_cursor"`
	}
	var q page
	if code := e.c.Do("GET", "/v1/quarantine?kind=item", nil, &q); code != 200 || len(q.Data) != 1 {
		t.Fatalf("quarantine: %d %+v", code, q)
	}
	r := q.Data[0]
	if r.Kind != "item" || r.Source != "tasks" || r.ItemIDBytes != 70000 || !strings.HasPrefix(giant, r.ItemID) || len(r.ItemID) > 256 || r.Count < 2 || !strings.Contains(r.Reason, "1024-byte limit") {
		t.Errorf("record %+v", r)
	}
	var none page
	if code := e.c.Do("GET", "/v1/quarantine?kind=delivery", nil, &none); code != 200 || len(none.Data) != 0 {
		t.Errorf("kind=delivery: %d %+v", code, none)
	}
	var body map[string]string
	if code := e.c.Do("GET", "/v1/quarantine?kind=nope", nil, &body); code != 422 {
		t.Errorf("bad kind: %d %v", code, body)
	}
	if v, ok := harness.MetricValue(harness.Metrics(e.b.Addr()), `pollrelay_quarantined_total{kind="item"}`); !ok || v < 2 {
		t.Errorf("pollrelay_quarantined_total{kind=\"item\"} = %v (found %v), want ≥ 2", v, ok)
	}

	if code := e.c.Do("POST", "/v1/quarantine/"+r.ID+"/retry", nil, &body); code != 202 {
		t.Fatalf("retry: %d %v", code, body)
	}
	if code := e.c.Do("POST", "/v1/quarantine/"+r.ID+"/retry", nil, &body); code != 404 {
		t.Errorf("retry again: %d %v, want 404", code, body)
	}
	q = page{}
	if e.c.Do("GET", "/v1/quarantine", nil, &q); len(q.Data) != 0 {
		t.Errorf("after retry: %+v", q)
	}
	poll()
	q = page{}
	if e.c.Do("GET", "/v1/quarantine", nil, &q); len(q.Data) != 1 || q.Data[0].ID != r.ID || q.Data[0].Count != 1 {
		t.Errorf("after the next poll: %+v, want the item set aside again", q)
	}

	if code := e.c.Do("PUT", "/v1/watches/task-status/"+strings.Repeat("w", 2000), nil, &body); code != 422 {
		t.Errorf("watch id over the limit: %d %v, want 422", code, body)
	}
}
