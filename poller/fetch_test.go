package poller

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// seen is what an upstream received.
type seen struct {
	method, auth, contentType, body string
	user, pass                      string
	basic                           bool
}

func recordingServer(t *testing.T, answer string) (*httptest.Server, func() []seen) {
	var mu sync.Mutex
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s := seen{method: r.Method, auth: r.Header.Get("Authorization"), contentType: r.Header.Get("Content-Type"), body: string(b)}
		s.user, s.pass, s.basic = r.BasicAuth()
		mu.Lock()
		got = append(got, s)
		mu.Unlock()
		fmt.Fprint(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []seen {
		mu.Lock()
		defer mu.Unlock()
		return append([]seen(nil), got...)
	}
}

func TestAuthAndBody(t *testing.T) {
	srv, got := recordingServer(t, `{"data": [{"id": "a", "status": "ok"}]}`)
	tests := []struct {
		name, cfg string
		check     func(t *testing.T, s seen)
	}{
		{"bearer", "auth: {bearer: tok-123}", func(t *testing.T, s seen) {
			if s.auth != "Bearer tok-123" || s.method != "GET" || s.body != "" {
				t.Errorf("got %+v", s)
			}
		}},
		{"basic", "auth: {basic: {username: u, password: 'p:w'}}", func(t *testing.T, s seen) {
			if !s.basic || s.user != "u" || s.pass != "p:w" {
				t.Errorf("got %+v", s)
			}
		}},
		{"POST JSON body", "method: POST, body: {query: 'query { tasks { id status } }', variables: {first: 10}}", func(t *testing.T, s seen) {
			var b map[string]any
			if s.method != "POST" || s.contentType != "application/json" || json.Unmarshal([]byte(s.body), &b) != nil || b["query"] != "query { tasks { id status } }" {
				t.Errorf("got %+v", s)
			}
		}},
		{"raw header", "headers: {Authorization: 'Token abc'}", func(t *testing.T, s seen) {
			if s.auth != "Token abc" {
				t.Errorf("got %+v", s)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := compiledSource(t, fmt.Sprintf("  - {name: s, url: '%s', items: '.data[]', %s}\n", srv.URL, tc.cfg))
			before := len(got())
			// Twice: a retried or repeated request must carry the body again.
			for range 2 {
				if _, _, err := Fetch(context.Background(), src, newFetcher(src, testLogger(t), func(int) {}, nil)); err != nil {
					t.Fatal(err)
				}
			}
			all := got()[before:]
			if len(all) != 2 {
				t.Fatalf("%d requests", len(all))
			}
			for _, s := range all {
				tc.check(t, s)
			}
		})
	}
}

func TestWatchRequestFillsTheID(t *testing.T) {
	srv, got := recordingServer(t, `{"status": "ok"}`)
	src := source(t, fmt.Sprintf(`  - {name: w, url: '%s/t/{id}', method: POST, body: '{"query": "task", "id": "{id}"}', terminal: [ok]}`+"\n", srv.URL))
	ob, page, err := ProbeWatch(context.Background(), src, `x"y/z`, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if ob.ID != `x"y/z` || string(ob.State) != `"ok"` || page.Status != 200 {
		t.Errorf("observation %+v, page %+v", ob, page)
	}
	if s := got()[0]; s.body != `{"query": "task", "id": "x\"y/z"}` {
		t.Errorf("body sent = %s", s.body)
	}
}

// TestSecretsNeverLogged fails requests carrying a token in the URL's
// query and user info and a bearer token, and looks for them in logs,
// errors and the status the API serves.
func TestSecretsNeverLogged(t *testing.T) {
	const q, user, bearer = "query-s3cret", "userinfo-s3cret", "bearer-s3cret"
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close() // connection refused: net/http's error quotes the URL
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError) // retried, then failed
	}))
	defer failing.Close()

	for _, base := range []string{deadURL, failing.URL} {
		log, buf := captureLogger()
		u := strings.Replace(base, "http://", "http://u:"+user+"@", 1) + "/x?api_key=" + q
		st := openStore(t, t.TempDir())
		m := NewManager(st, NewMetrics(prometheus.NewRegistry()), log)
		m.Start(context.Background(), sources(t, fmt.Sprintf("  - {name: s, url: '%s', auth: {bearer: %s}, interval: 1h}\n", u, bearer)))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := m.PollNow(ctx, "s")
		cancel()
		status := fmt.Sprintf("%+v", m.Status())
		m.Stop()
		st.Close()
		if err == nil {
			t.Fatal("poll succeeded")
		}
		for _, secret := range []string{q, user, bearer} {
			for what, text := range map[string]string{"error": err.Error(), "logs": buf.String(), "status": status} {
				if strings.Contains(text, secret) {
					t.Errorf("%s leaks %s: %s", what, secret, text)
				}
			}
		}
		if !strings.Contains(err.Error(), "api_key=redacted") {
			t.Errorf("error should still name the redacted URL: %v", err)
		}
	}
}

func TestStatusAndMetrics(t *testing.T) {
	up := newTasks(map[string]string{"a": "queued", "b": "queued"})
	h, _, _ := watchSetup(t, up, ", watch_from: tasks")
	defer h.close()
	h.mustPoll("tasks")
	h.mustPoll("task")
	list, watch := h.status("tasks"), h.status("task")
	if list.Kind != KindList || list.Interval != "1h0m0s" || list.LastOutcome != OutcomeSuccess || list.ItemsTracked != 2 ||
		list.LastPollAt.IsZero() || list.LastSuccess.IsZero() || !list.NextPollAt.After(list.LastPollAt) {
		t.Errorf("list status = %+v", list)
	}
	if watch.Kind != KindWatch || watch.WatchesActive != 2 || watch.ItemsTracked != 2 || watch.LastOutcome != OutcomeSuccess {
		t.Errorf("watch status = %+v", watch)
	}
	if got := counter(t, h.reg, "pollrelay_watches_active", map[string]string{"source": "task"}); got != 2 {
		t.Errorf("watches_active = %v", got)
	}
	if problems, err := testutil.GatherAndLint(h.reg); err != nil || len(problems) > 0 {
		t.Errorf("metrics lint: %v %v", problems, err)
	}
}

func TestHelpers(t *testing.T) {
	urls := []struct{ tmpl, id, want string }{
		{"https://a/t/{id}/status", "v_1", "https://a/t/v_1/status"},
		{"https://a/t/{id}", "a/b c", "https://a/t/a%2Fb%20c"},
		{"https://a/t?id={id}", "a&b=c d", "https://a/t?id=a%26b%3Dc+d"},
	}
	for _, u := range urls {
		if got := watchURL(u.tmpl, u.id); got != u.want {
			t.Errorf("watchURL(%q, %q) = %q, want %q", u.tmpl, u.id, got, u.want)
		}
	}
	for v, want := range map[string]time.Duration{"60": time.Minute, "": 0, "x": 0, "-1": 0, "999999": MaxUpstreamPause, "9300000000": MaxUpstreamPause, "99999999999999999999": MaxUpstreamPause, "-99999999999999999999": 0} {
		if got := pollInterval(http.Header{"X-Poll-Interval": {v}}); got != want {
			t.Errorf("pollInterval(%q) = %v, want %v", v, got, want)
		}
	}
}

// A secret an upstream echoes where the quoted body is cut is cut whole
// first: no prefix of it is left before the "…".
func TestSnippetCutsSecretsAcrossTheCut(t *testing.T) {
	const tok = "tok_0123456789abcdefghijklmnopqrstuvwxyz"
	src := compiledSource(t, "  - {name: s, url: 'http://upstream.test/s', auth: {bearer: "+tok+"}}\n")
	f := newFetcher(src, quietLogger(t), func(int) {}, nil)
	for pad := snippetLen - len(tok); pad <= snippetLen; pad++ {
		body := strings.Repeat("x", pad) + tok + strings.Repeat("y", 100)
		got := f.snippet([]byte(body))
		if strings.Contains(got, tok[:8]) {
			t.Fatalf("pad %d: %s", pad, got)
		}
	}
}

// Any error quoting a shortened body (a 200 that is not JSON, say) has
// what is left of a secret at the cut removed too.
func TestRedactErrorCutsSecretsAtTheCut(t *testing.T) {
	const tok = "tok_0123456789abcdefghijklmnopqrstuvwxyz"
	secrets := sourceSecrets(source(t, "  - {name: s, url: 'http://upstream.test/s', auth: {bearer: "+tok+"}}\n"))
	for pad := snippetLen - len(tok); pad <= snippetLen; pad++ {
		body := strings.Repeat("x", pad) + tok + strings.Repeat("y", 100)
		err := redactError(pollErr(OutcomeDecode, "response is not JSON: %s", Snippet([]byte(body))), secrets)
		if strings.Contains(err.Error(), tok[:minSecretPrefix]) {
			t.Fatalf("pad %d: %s", pad, err)
		}
	}
}

// minSecretPrefix is the shortest start of a secret redaction must catch.
const minSecretPrefix = 4
