// Package harness holds the outside world pollrelay's tests run against,
// shared by the tests of package main (a bridge in the test process) and
// those of e2e (the real binary): a task API whose items a test changes, a
// receiver that checks every webhook with the official Standard Webhooks
// library, an API client that holds each answer to openapi.json, and
// waiting and metric helpers. Only tests import it.
package harness

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Upstream is a task API whose items the test changes.
type Upstream struct {
	URL string

	mu    sync.Mutex
	items map[string]string // id → status
	hits  int
}

// NewUpstream serves items as {"data": [{"id", "status", "embedding"}]}
// until the test ends.
func NewUpstream(t testing.TB, items map[string]string) *Upstream {
	u := &Upstream{items: items}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	t.Cleanup(srv.Close)
	u.URL = srv.URL
	return u
}

// Requests is how many listings the upstream has served.
func (u *Upstream) Requests() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits
}

// Set changes the items under the upstream's lock.
func (u *Upstream) Set(f func(items map[string]string)) {
	u.mu.Lock()
	defer u.mu.Unlock()
	f(u.items)
}

// Delivery is one webhook request as the receiver got it.
type Delivery struct {
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

// Receiver verifies every request with the official Standard Webhooks
// library, an implementation independent of pollrelay's.
type Receiver struct {
	URL  string
	Got  chan Delivery
	Fail func(d Delivery, attempt int) int // status to answer; 0 = 204

	wh       *standardwebhooks.Webhook
	mu       sync.Mutex
	attempts map[string]int
}

// NewReceiver receives webhooks signed with secret until the test ends;
// a request the official verifier rejects fails the test.
func NewReceiver(t testing.TB, secret string) *Receiver {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	rc := &Receiver{wh: wh, Got: make(chan Delivery, 1000), attempts: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := rc.wh.Verify(body, r.Header); err != nil {
			t.Errorf("signature rejected by the official verifier: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		d := Delivery{ID: r.Header.Get("webhook-id"), Timestamp: r.Header.Get("webhook-timestamp"), Body: body}
		if err := json.Unmarshal(body, &d.Env); err != nil {
			t.Errorf("body is not the envelope: %v", err)
		}
		rc.mu.Lock()
		rc.attempts[d.ID]++
		n := rc.attempts[d.ID]
		rc.mu.Unlock()
		d.Status = http.StatusNoContent
		if rc.Fail != nil {
			if s := rc.Fail(d, n); s != 0 {
				d.Status = s
			}
		}
		w.WriteHeader(d.Status)
		rc.Got <- d
	}))
	t.Cleanup(srv.Close)
	rc.URL = srv.URL
	return rc
}

// Next returns the next delivery or fails after a generous deadline.
func (rc *Receiver) Next(t testing.TB) Delivery {
	t.Helper()
	select {
	case d := <-rc.Got:
		return d
	case <-time.After(15 * time.Second):
		t.Fatal("no webhook arrived")
		return Delivery{}
	}
}
