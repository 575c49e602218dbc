package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/signature"
	"github.com/pollrelay/pollrelay/store"
)

// upstream is a task API whose items the test changes.
type upstream struct {
	mu    sync.Mutex
	items map[string]string // id → status
	srv   *httptest.Server
	hits  int
}

func newUpstream(t *testing.T, items map[string]string) *upstream {
	u := &upstream{items: items}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		defer u.mu.Unlock()
		u.hits++
		ids := make([]string, 0, len(u.items))
		for id := range u.items {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		data := []map[string]any{}
		for _, id := range ids {
			data = append(data, map[string]any{"id": id, "status": u.items[id], "embedding": []float64{0.1, 0.2}})
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"data": data})
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) requests() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits
}

func (u *upstream) set(f func(items map[string]string)) {
	u.mu.Lock()
	defer u.mu.Unlock()
	f(u.items)
}

// delivery is one webhook request as the receiver got it.
type delivery struct {
	ID        string
	Timestamp string
	Body      []byte
	Env       struct {
		Type      string `json:"type"`
		Timestamp string `json:"timestamp"`
		Data      struct {
			Source   string          `json:"source"`
			ID       string          `json:"id"`
			Previous json.RawMessage `json:"previous"`
			Current  json.RawMessage `json:"current"`
			Object   json.RawMessage `json:"object"`
		} `json:"data"`
	}
	Status int
}

// receiver verifies every request with the official Standard Webhooks
// library, an implementation independent of pollrelay's.
type receiver struct {
	t    *testing.T
	wh   *standardwebhooks.Webhook
	srv  *httptest.Server
	got  chan delivery
	fail func(d delivery, attempt int) int // status to answer; 0 = 204

	mu       sync.Mutex
	attempts map[string]int
}

func newReceiver(t *testing.T, secret string) *receiver {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	rc := &receiver{t: t, wh: wh, got: make(chan delivery, 1000), attempts: map[string]int{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := rc.wh.Verify(body, r.Header); err != nil {
			t.Errorf("signature rejected by the official verifier: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		d := delivery{ID: r.Header.Get("webhook-id"), Timestamp: r.Header.Get("webhook-timestamp"), Body: body}
		if err := json.Unmarshal(body, &d.Env); err != nil {
			t.Errorf("body is not the envelope: %v", err)
		}
		rc.mu.Lock()
		rc.attempts[d.ID]++
		n := rc.attempts[d.ID]
		rc.mu.Unlock()
		d.Status = http.StatusNoContent
		if rc.fail != nil {
			if s := rc.fail(d, n); s != 0 {
				d.Status = s
			}
		}
		w.WriteHeader(d.Status)
		rc.got <- d
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// next returns the next delivery or fails after a generous deadline.
func (rc *receiver) next(t *testing.T) delivery {
	t.Helper()
	select {
	case d := <-rc.got:
		return d
	case <-time.After(15 * time.Second):
		t.Fatal("no webhook arrived")
		return delivery{}
	}
}

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
	waitFor(t, 15*time.Second, func() bool {
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
	up := newUpstream(t, map[string]string{"a": "queued", "b": "queued"})
	rc := newReceiver(t, secret)
	// The first attempt at a's event fails: it must be retried with the
	// same webhook-id.
	rc.fail = func(d delivery, attempt int) int {
		if d.Env.Data.ID == "a" && attempt == 1 {
			return http.StatusInternalServerError
		}
		return 0
	}
	b, _ := startBridge(t, fmt.Sprintf(e2eConfig, t.TempDir(), up.srv.URL, rc.srv.URL, secret))

	pollNow(t, b, "tasks") // baseline: records a and b, fires nothing
	up.set(func(m map[string]string) {
		m["a"] = "ready"
		m["c"] = "queued"
		delete(m, "b")
	})
	pollNow(t, b, "tasks")

	byItem := map[string][]delivery{}
	for range 4 { // a fails once, then a, b and c succeed
		d := rc.next(t)
		byItem[d.Env.Data.ID] = append(byItem[d.Env.Data.ID], d)
	}
	select {
	case d := <-rc.got:
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
	case d := <-rc.got:
		t.Fatalf("unchanged poll fired %s", d.Env.Type)
	case <-time.After(300 * time.Millisecond):
	}
}
