package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/internal/harness"
	"github.com/pollrelay/pollrelay/signature"
)

// TestMetricsLint runs the same checks as `promtool check metrics` over
// everything a running bridge exposes, and checks the contract's names.
func TestMetricsLint(t *testing.T) {
	e := newAPIEnv(t)
	e.c.Do("POST", "/v1/sources/tasks/poll", nil, nil)
	problems, err := testutil.GatherAndLint(e.b.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
	mfs, err := e.b.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, mf := range mfs {
		have[mf.GetName()] = true
	}
	for _, name := range []string{
		"pollrelay_polls_total", "pollrelay_poll_duration_seconds", "pollrelay_items_tracked",
		"pollrelay_transitions_total", "pollrelay_deliveries_total", "pollrelay_delivery_duration_seconds",
		"pollrelay_delivery_queue", "pollrelay_upstream_requests_total", "pollrelay_source_up",
		"pollrelay_source_last_success_timestamp_seconds", "pollrelay_config_last_reload_successful",
		"pollrelay_config_last_reload_success_timestamp_seconds", "pollrelay_store_free_bytes",
		"pollrelay_store_writes_refused_total", "pollrelay_quarantined_total", "go_goroutines", "process_resident_memory_bytes",
	} {
		if !have[name] {
			t.Errorf("metric %s is not exposed", name)
		}
	}
}

// lockedBuffer collects log output from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestNoSecretLeaks runs a bridge whose upstream fails with the token in
// its error page and a receiver that fails, exercises the API, and checks
// that no secret (upstream token, basic password, webhook secret, API
// token, a subscription secret after create) appears in logs, API answers
// or metrics.
func TestNoSecretLeaks(t *testing.T) {
	const (
		upstreamToken = "upstream-token-SECRET-1"
		basicPassword = "basic-pass-SECRET-2"
		token         = "api-token-SECRET-3"
		accessToken   = "oauth-access-SECRET-4"
		clientSecret  = "oauth-client-SECRET-5"
		queryKey      = "query-key-SECRET-6"
	)
	webhookSecret := signature.NewSecret()
	var calls atomic.Int64
	up := harness.NewUpstream(t, map[string]string{"a": "queued"})
	bad := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		// An upstream that echoes credentials in its error page.
		http.Error(w, "denied for "+r.Header.Get("Authorization")+" "+r.Header.Get("X-Api-Key")+" "+r.URL.RawQuery, http.StatusForbidden)
	})
	badSrv := newServer(t, bad)
	// An OAuth 2.0 token endpoint: /ok issues the access token, /down
	// fails echoing the client credentials it was sent.
	tokenSrv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/down" {
			id, sec, _ := r.BasicAuth()
			r.ParseForm()
			http.Error(w, "cannot issue for "+id+":"+sec+" "+r.Header.Get("Authorization")+" "+r.PostForm.Encode(), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, accessToken)
	}))
	rc := harness.NewReceiver(t, webhookSecret)
	rc.Fail = func(harness.Delivery, int) int { return 500 }
	yaml := fmt.Sprintf(`
listen: 127.0.0.1:0
api_token: %s
storage: {path: %q}
log: {level: debug, format: json}
delivery: {allow_private_networks: true}
sources:
  - name: tasks
    url: %s/v1/tasks?api_key=%s
    interval: 1h
    items: '.data[]'
    auth: {bearer: %s}
  - name: denied
    url: %s/x
    interval: 1h
    headers: {X-Api-Key: %s}
    auth: {bearer: %s}
  - name: basic
    url: %s/x
    interval: 1h
    auth: {basic: {username: u, password: %s}}
  - name: oauthed
    url: {{BAD}}/x
    interval: 1h
    auth: {oauth2: {token_url: '{{TOKEN}}/ok', client_id: c, client_secret: {{CS}}}}
  - name: oauthdown
    url: {{BAD}}/x
    interval: 1h
    auth: {oauth2: {token_url: '{{TOKEN}}/down', client_id: c, client_secret: {{CS}}}}
  - name: keyed
    url: {{BAD}}/x
    interval: 1h
    auth: {query: {name: key, value: {{QK}}}}
subscriptions:
  - name: app
    url: %s/hook
    secret: %s
    retry: {schedule: [100ms]}
`, token, t.TempDir(), up.URL, upstreamToken, upstreamToken, badSrv, upstreamToken, upstreamToken, badSrv, basicPassword, rc.URL, webhookSecret)
	yaml = strings.NewReplacer("{{BAD}}", badSrv, "{{TOKEN}}", tokenSrv, "{{CS}}", clientSecret, "{{QK}}", queryKey).Replace(yaml)
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	b, err := NewBridge(cfg, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, b)
	c := harness.APIClient{T: t, Base: "http://" + b.Addr(), Token: token}

	var answers strings.Builder
	record := func(method, path string, body any) map[string]any {
		var out map[string]any
		c.Do(method, path, body, &out)
		fmt.Fprintf(&answers, "%v\n", out)
		return out
	}
	record("POST", "/v1/sources/tasks/poll", nil)
	up.Set(func(m map[string]string) { m["a"] = "ready" })
	record("POST", "/v1/sources/tasks/poll", nil)
	record("POST", "/v1/sources/denied/poll", nil)
	for _, name := range []string{"oauthed", "oauthdown", "keyed"} {
		record("POST", "/v1/sources/"+name+"/poll", nil)
	}
	rc.Next(t)
	rc.Next(t) // the retry
	created := map[string]any{}
	c.Do("POST", "/v1/subscriptions", map[string]any{"name": "api-sub", "url": rc.URL + "/2"}, &created)
	subSecret, _ := created["secret"].(string)
	for _, p := range []string{"/v1/sources", "/v1/subscriptions", "/v1/subscriptions/app", "/v1/subscriptions/api-sub", "/v1/events", "/v1/watches"} {
		record("GET", p, nil)
	}
	var ev struct {
		Data []map[string]any `json:"data"`
	}
	c.Do("GET", "/v1/events", nil, &ev)
	for _, e := range ev.Data {
		record("GET", fmt.Sprintf("/v1/events/%s/attempts", e["id"]), nil)
	}
	resp, err := http.Get("http://" + b.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	if subSecret == "" || calls.Load() == 0 {
		t.Fatalf("setup: secret %q, denied calls %d", subSecret, calls.Load())
	}
	for name, text := range map[string]string{"logs": logs.String(), "API answers": answers.String(), "metrics": string(metrics)} {
		for _, secret := range []string{upstreamToken, basicPassword, token, webhookSecret, subSecret, webhookSecret[len("whsec_"):],
			accessToken, clientSecret, queryKey} {
			if strings.Contains(text, secret) {
				i := strings.Index(text, secret)
				t.Errorf("%s contain a secret (%d chars) near %q", name, len(secret), text[max(0, i-120):i])
			}
		}
	}
}
