package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/internal/harness"
	"github.com/pollrelay/pollrelay/signature"
	"github.com/pollrelay/pollrelay/store"
)

const e2eConfig = `
listen: 127.0.0.1:0
storage: {path: %q}
log: {level: debug, format: text}
sources:
  - name: tasks
    url: %s/v1/tasks
    interval: 1h
    items: '.data[]'
    object: 'del(.embedding)'
    events:
      - {type: 'task.{current}', on: changed, from: '*', to: [ready, errored]}
      - {type: task.created, on: created}
      - {type: task.deleted, on: deleted}
subscriptions:
  - name: app
    url: %s/hook
    secret: %s
    retry: {schedule: [100ms, 100ms]}
`

// startBridge runs a bridge until the test ends; stop (idempotent) ends it
// earlier, after an orderly shutdown.
func startBridge(t *testing.T, yaml string) (b *Bridge, stop func()) {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b, err = NewBridge(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	stop = runUntilCleanup(t, b)
	return b, stop
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func pollNow(t *testing.T, b *Bridge, source string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.poller.PollNow(ctx, source); err != nil {
		t.Fatalf("poll %s: %v", source, err)
	}
}

// runUntilCleanup runs b until the test ends, or until the returned
// (idempotent) stop is called; either way after an orderly shutdown.
func runUntilCleanup(t testing.TB, b *Bridge) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	<-b.Started()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("bridge stopped with %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// newServer serves h on loopback until the test ends and returns its URL.
func newServer(t testing.TB, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// waitDelivered waits until the outbox is empty and no delivery is queued:
// every event so far has been fanned out and delivered (or is dead).
func waitDelivered(t *testing.T, b *Bridge) {
	t.Helper()
	harness.WaitFor(t, 15*time.Second, func() bool {
		idle := false
		err := b.st.View(func(tx store.Txn) error {
			ids, err := tx.Outbox(1)
			if err != nil || len(ids) > 0 {
				return err
			}
			_, queued, err := tx.NextDue()
			idle = !queued
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return idle
	})
}

func TestEndToEnd(t *testing.T) {
	secret := signature.NewSecret()
	up := harness.NewUpstream(t, map[string]string{"a": "queued", "b": "queued"})
	rc := harness.NewReceiver(t, secret)
	// The first attempt at a's event fails: it must be retried with the
	// same webhook-id.
	rc.Fail = func(d harness.Delivery, attempt int) int {
		if d.Env.Data.ID == "a" && attempt == 1 {
			return http.StatusInternalServerError
		}
		return 0
	}
	b, _ := startBridge(t, fmt.Sprintf(e2eConfig, t.TempDir(), up.URL, rc.URL, secret))

	pollNow(t, b, "tasks") // baseline: records a and b, fires nothing
	up.Set(func(m map[string]string) {
		m["a"] = "ready"
		m["c"] = "queued"
		delete(m, "b")
	})
	pollNow(t, b, "tasks")

	byItem := map[string][]harness.Delivery{}
	for range 4 { // a fails once, then a, b and c succeed
		d := rc.Next(t)
		byItem[d.Env.Data.ID] = append(byItem[d.Env.Data.ID], d)
	}
	select {
	case d := <-rc.Got:
		t.Fatalf("unexpected extra webhook %s for %s", d.Env.Type, d.Env.Data.ID)
	case <-time.After(300 * time.Millisecond):
	}

	a := byItem["a"]
	if len(a) != 2 || a[0].Status != 500 || a[1].Status != 204 {
		t.Fatalf("a: want a failed attempt then a retry, got %+v", a)
	}
	if a[0].ID != a[1].ID || !strings.HasPrefix(a[0].ID, "evt_") {
		t.Errorf("a retry changed webhook-id: %q then %q", a[0].ID, a[1].ID)
	}
	if string(a[0].Body) != string(a[1].Body) {
		t.Errorf("a retry changed the body")
	}
	e := a[1].Env
	if e.Type != "task.ready" || e.Data.Source != "tasks" || string(e.Data.Previous) != `"queued"` || string(e.Data.Current) != `"ready"` {
		t.Errorf("a envelope: %+v", e)
	}
	if string(e.Data.Object) != `{"id":"a","status":"ready"}` {
		t.Errorf("a object: %s (the embedding should be projected away)", e.Data.Object)
	}
	if _, err := time.Parse(time.RFC3339Nano, e.Timestamp); err != nil || !strings.HasSuffix(e.Timestamp, "Z") {
		t.Errorf("timestamp %q is not RFC 3339 UTC", e.Timestamp)
	}
	if got := byItem["b"]; len(got) != 1 || got[0].Env.Type != "task.deleted" || string(got[0].Env.Data.Current) != "null" || string(got[0].Env.Data.Previous) != `"queued"` {
		t.Errorf("b: want one task.deleted, got %+v", got)
	}
	if got := byItem["c"]; len(got) != 1 || got[0].Env.Type != "task.created" || string(got[0].Env.Data.Previous) != "null" {
		t.Errorf("c: want one task.created, got %+v", got)
	}

	// An unchanged poll fires nothing.
	pollNow(t, b, "tasks")
	select {
	case d := <-rc.Got:
		t.Fatalf("unchanged poll fired %s", d.Env.Type)
	case <-time.After(300 * time.Millisecond):
	}
}
