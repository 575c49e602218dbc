package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/internal/harness"
	"github.com/pollrelay/pollrelay/internal/pgtest"
	"github.com/pollrelay/pollrelay/signature"
	"github.com/pollrelay/pollrelay/store"
)

const migrateConfig = `
listen: 127.0.0.1:0
api_token: migrate-test-token-0123456789
delivery: {allow_private_networks: true}
storage: {path: %q%s}
sources:
  - name: tasks
    url: %s/v1/tasks
    interval: 1h
    items: '.data[]'
    events:
      - {type: 'task.{current}', on: changed, to: ready}
subscriptions:
  - name: app
    url: %s/hook
    secret: %s
    retry: {schedule: [50ms]}
`

// apiCall sends a /v1 request to b and decodes the answer into out.
func apiCall(t *testing.T, b *Bridge, method, path, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+b.Addr()+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer migrate-test-token-0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	return resp.StatusCode
}

// TestMigrateRoundTrip moves a store that has baselined items, a pending
// retry, a dead letter and an API subscription into PostgreSQL, and runs
// on from there: nothing fires again, the retry goes out at its time
// under its webhook-id, signed with the subscription's secret.
func TestMigrateRoundTrip(t *testing.T) {
	pgURL, schema := pgtest.URL(t), pgtest.Schema(t)
	dir := t.TempDir()
	up := harness.NewUpstream(t, map[string]string{"a": "queued", "b": "queued", "c": "ready"})
	appSecret := signature.NewSecret()
	app := harness.NewReceiver(t, appSecret)
	app.Fail = func(harness.Delivery, int) int { return 500 } // every attempt: a dead letter

	yaml := fmt.Sprintf(migrateConfig, dir, "", up.URL, app.URL, appSecret)
	b, stop := startBridge(t, yaml)
	apiSecret := signature.NewSecret()
	apiRcv := harness.NewReceiver(t, apiSecret)
	first := true
	apiRcv.Fail = func(harness.Delivery, int) int {
		if first {
			first = false
			return 500 // one failure: the retry is due 4 s later
		}
		return 0
	}
	body := fmt.Sprintf(`{"name":"api","url":%q,"secret":%q,"retry":{"schedule":["4s"]}}`, apiRcv.URL+"/hook", apiSecret)
	if code := apiCall(t, b, "POST", "/v1/subscriptions", body, nil); code != 201 {
		t.Fatalf("create subscription: %d", code)
	}
	pollNow(t, b, "tasks") // the baseline
	up.Set(func(m map[string]string) { m["a"] = "ready" })
	pollNow(t, b, "tasks")
	failed := apiRcv.Next(t)
	if failed.Status != 500 || failed.Env.Type != "task.ready" {
		t.Fatalf("first attempt = %d %s", failed.Status, failed.Env.Type)
	}
	app.Next(t)
	app.Next(t) // both attempts failed: dead
	var retryAt time.Time
	harness.WaitFor(t, 10*time.Second, func() bool {
		var dead bool
		err := b.st.View(func(tx store.Txn) error {
			return tx.Deliveries(func(d *store.Delivery) error {
				switch {
				case d.Subscription == "app":
					dead = d.State == store.Dead
				case d.State == store.Retrying:
					retryAt = d.NextAt
				}
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		return dead && !retryAt.IsZero()
	})
	stop()

	var out bytes.Buffer
	if code := run([]string{"migrate", "--from", dir, "--to", pgURL, "--schema", schema}, &out, &out); code != 0 {
		t.Fatalf("migrate exited %d:\n%s", code, out.String())
	}
	t.Logf("migrate:\n%s", out.String())
	if code := run([]string{"migrate", "--from", dir, "--to", pgURL, "--schema", schema}, &out, &out); code != 1 ||
		!strings.Contains(out.String(), "is not empty") {
		t.Fatalf("a second migrate into the same schema exited %d:\n%s", code, out.String())
	}

	app.Fail = nil
	pg := fmt.Sprintf(", postgres: {url: %q, schema: %s}", pgURL, schema)
	b2, _ := startBridge(t, fmt.Sprintf(migrateConfig, t.TempDir(), pg, up.URL, app.URL, appSecret))
	retried := apiRcv.Next(t)
	if retried.ID != failed.ID || retried.Status != 204 || retried.Env.Type != "task.ready" {
		t.Fatalf("retry after migrate = %s %d %s; want %s 204 task.ready", retried.ID, retried.Status, retried.Env.Type, failed.ID)
	}
	if now := time.Now(); now.Before(retryAt) {
		t.Fatalf("the retry went out at %v, before its time %v", now, retryAt)
	}
	pollNow(t, b2, "tasks") // unchanged: nothing new fires
	waitDelivered(t, b2)
	select {
	case d := <-apiRcv.Got:
		t.Fatalf("after migrate the api subscription got %s %s", d.ID, d.Env.Type)
	case d := <-app.Got:
		t.Fatalf("after migrate the app subscription got %s %s", d.ID, d.Env.Type)
	default:
	}
	err := b2.st.View(func(tx store.Txn) error {
		return tx.Deliveries(func(d *store.Delivery) error {
			if d.Subscription == "app" && d.State != store.Dead {
				t.Errorf("app's delivery of %s is %s after migrate, want dead", d.EventID, d.State)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestMigrateRefusesALiveStoreAndNoStore(t *testing.T) {
	pgURL, schema := pgtest.URL(t), pgtest.Schema(t)
	dir := t.TempDir()
	up := harness.NewUpstream(t, map[string]string{"a": "queued"})
	rc := harness.NewReceiver(t, signature.NewSecret())
	startBridge(t, fmt.Sprintf(migrateConfig, dir, "", up.URL, rc.URL, signature.NewSecret()))
	var out bytes.Buffer
	code := run([]string{"migrate", "--from", dir, "--to", pgURL, "--schema", schema}, &out, &out)
	if code != 1 || !strings.Contains(out.String(), "is in use") {
		t.Errorf("migrate from a running store exited %d:\n%s", code, out.String())
	}
	out.Reset()
	code = run([]string{"migrate", "--from", t.TempDir(), "--to", pgURL, "--schema", schema}, &out, &out)
	if code != 1 || !strings.Contains(out.String(), "no embedded store there") {
		t.Errorf("migrate from an empty directory exited %d:\n%s", code, out.String())
	}
	out.Reset()
	code = run([]string{"migrate", "--from", dir, "--to", "postgres://root:hunter2-secret@127.0.0.1:1/x", "--schema", "Bad-Name"}, &out, &out)
	if code != 2 || strings.Contains(out.String(), "hunter2") {
		t.Errorf("migrate with a bad schema exited %d:\n%s", code, out.String())
	}
	out.Reset()
	stopDir := t.TempDir()
	b, stop := startBridge(t, fmt.Sprintf(migrateConfig, stopDir, "", up.URL, rc.URL, signature.NewSecret()))
	pollNow(t, b, "tasks")
	stop()
	code = run([]string{"migrate", "--from", stopDir, "--to", "postgres://root:hunter2-secret@127.0.0.1:1/x"}, &out, &out)
	if code != 1 || strings.Contains(out.String(), "hunter2") {
		t.Errorf("migrate to an unreachable server exited %d, or showed the password:\n%s", code, out.String())
	}
}
