package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/notifier"
	"github.com/pollrelay/pollrelay/poller"
	"github.com/pollrelay/pollrelay/store/badger"
	"github.com/pollrelay/pollrelay/subscription"
)

const fuzzToken = "fuzz-token-0123456789"

// fuzzConfig has one watch source, so PUT /v1/watches reaches the real
// poller, and delivery to private networks off, so the SSRF check runs.
// Nothing listens on 127.0.0.1:9; the poller's interval keeps it idle.
const fuzzConfig = `
storage: {in_memory: true}
api_token: ` + fuzzToken + `
sources:
  - name: status
    url: http://127.0.0.1:9/tasks/{id}
    interval: 1h
    terminal: [done]
`

// control is the Control the fuzz server needs: a fixed config. Created
// subscriptions are stored by the handler; nothing delivers them, since the
// fuzzer checks decoding, not delivery.
type control struct {
	cfg *config.Config
}

func (c control) Config() *config.Config      { return c.cfg }
func (c control) SubscriptionsChanged() error { return nil }
func (c control) ReloadFile() error           { return errors.New("reload: no config file") }

// newFuzzServer builds the real handler over an in-memory store, the real
// poller and notifier; everything stops in cleanup.
func newFuzzServer(tb testing.TB) http.Handler {
	tb.Helper()
	cfg, err := config.Parse([]byte(fuzzConfig))
	if err != nil {
		tb.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	st, err := badger.Open(badger.Options{InMemory: true, Logger: log})
	if err != nil {
		tb.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	pm := poller.NewManager(st, poller.NewMetrics(reg), log)
	ctx, cancel := context.WithCancel(context.Background())
	pm.Start(ctx, cfg.Sources)
	n := notifier.New(st, notifier.NewMetrics(reg), log, notifier.Options{})
	tb.Cleanup(func() {
		cancel()
		pm.Stop()
		st.Close()
	})
	subs := subscription.NewRegistry(log)
	if err := subs.SetConfig(cfg.Subscriptions); err != nil {
		tb.Fatal(err)
	}
	return New(Options{Token: fuzzToken, Logger: log, Store: st, Poller: pm, Notifier: n, Control: control{cfg}, Subscriptions: subs})
}

// FuzzAPIDecode sends arbitrary bodies to the two routes that take the
// richest input, through the real handler: bad input must be a 4xx with a
// JSON error, never a 500 or a panic.
func FuzzAPIDecode(f *testing.F) {
	f.Add(uint8(0), "app", []byte(`{"name":"app","url":"https://example.com/hook","events":["task.*"]}`))
	f.Add(uint8(0), "app", []byte(`{"name":"app","url":"http://169.254.169.254/","secret":""}`))
	f.Add(uint8(0), "app", []byte(`{"name":"x","url":"https://example.com/","retry":{"schedule":["1s",-1]},"payload":".["}`))
	f.Add(uint8(1), "t1", []byte(`{"ttl":"2h","metadata":{"user":"u1"}}`))
	f.Add(uint8(1), "t1", []byte(`{"ttl":"-5s","metadata":[1,2]}`))
	f.Add(uint8(1), "../x", []byte(`{"ttl":"1h"} trailing`))
	h := newFuzzServer(f)
	f.Fuzz(func(t *testing.T, route uint8, id string, body []byte) {
		var req *http.Request
		if route%2 == 0 {
			req = httptest.NewRequest("POST", "/v1/subscriptions", bytes.NewReader(body))
		} else {
			// The id goes in as one escaped path segment, so the fuzzer
			// reaches the poller's id checks rather than the router's.
			req = httptest.NewRequest("PUT", "/v1/watches/status/"+url.PathEscape(id), bytes.NewReader(body))
		}
		req.Header.Set("Authorization", "Bearer "+fuzzToken)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		res := w.Result()
		out, _ := io.ReadAll(res.Body)
		if res.StatusCode >= 500 {
			t.Fatalf("%s %s %q: %d %s", req.Method, req.URL.Path, body, res.StatusCode, out)
		}
		if res.StatusCode >= 400 {
			var e struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(out, &e); err != nil || e.Error == "" {
				t.Fatalf("%s %s %q: %d with no JSON error: %s", req.Method, req.URL.Path, body, res.StatusCode, out)
			}
		}
	})
}
