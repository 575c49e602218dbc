package poller

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/pollrelay/pollrelay/diff"
)

const (
	redirectKey    = "header-s3cret"
	redirectQuery  = "query-s3cret"
	redirectBearer = "bearer-s3cret"
)

// hits records the requests a server received.
type hits struct {
	mu  sync.Mutex
	got []*http.Request
}

func (h *hits) add(r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.got = append(h.got, r)
}

func (h *hits) all() []*http.Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*http.Request(nil), h.got...)
}

// redirectSource is a source at base whose requests carry a header, a
// bearer token and a query key.
func redirectSource(base string) string {
	return fmt.Sprintf("  - {name: s, url: '%s/list?api_key=%s', items: '.data[]', headers: {X-Api-Key: %s}, auth: {bearer: %s}, interval: 1h}\n",
		base, redirectQuery, redirectKey, redirectBearer)
}

// TestRedirectToAnotherHostRefused: upstream A redirects to upstream B (a
// different port is a different host). B must receive nothing, the poll
// fails as redirect_refused naming the redirect, and no credential appears
// in the error, the status or the logs.
func TestRedirectToAnotherHostRefused(t *testing.T) {
	var atB hits
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		atB.add(r)
		fmt.Fprint(w, `{"data": [{"id": "stolen", "status": "x"}]}`)
	}))
	defer b.Close()
	targets := map[string]string{
		"absolute":        b.URL + "/steal",
		"with query":      b.URL + "/steal?token=" + redirectQuery + "&x=1",
		"with user info":  strings.Replace(b.URL, "http://", "http://u:"+redirectKey+"@", 1) + "/steal",
		"scheme relative": "//" + strings.TrimPrefix(b.URL, "http://") + "/steal",
		"echoing secrets": b.URL + "/" + redirectKey + "/" + redirectBearer + "?k=" + redirectQuery,
	}
	for name, target := range targets {
		for _, code := range []int{301, 302, 303, 307, 308} {
			t.Run(fmt.Sprintf("%s/%d", name, code), func(t *testing.T) {
				a := httptest.NewServer(http.RedirectHandler(target, code))
				defer a.Close()
				log, buf := captureLogger()
				h := newHarnessLog(t, nil, log)
				h.start(sources(t, redirectSource(a.URL)))
				err := h.pollNow("s")
				pe, ok := errors.AsType[*PollError](err)
				if !ok || pe.Outcome != OutcomeRedirect {
					t.Fatalf("err = %v, want a %s poll error", err, OutcomeRedirect)
				}
				if !strings.Contains(err.Error(), "redirect") || !strings.Contains(err.Error(), strings.TrimPrefix(b.URL, "http://")) {
					t.Errorf("the error does not name the redirect: %v", err)
				}
				status := fmt.Sprintf("%+v", h.status("s"))
				for _, secret := range []string{redirectKey, redirectQuery, redirectBearer} {
					for what, text := range map[string]string{"error": err.Error(), "status": status, "logs": buf.String()} {
						if strings.Contains(text, secret) {
							t.Errorf("%s leaks %s: %s", what, secret, text)
						}
					}
				}
				// The loop's own first poll may have run beside PollNow.
				if n := counter(t, h.reg, "pollrelay_polls_total", map[string]string{"source": "s", "outcome": OutcomeRedirect}); n < 1 {
					t.Errorf("polls_total{outcome=%s} = %v, want at least 1", OutcomeRedirect, n)
				}
				if n := counter(t, h.reg, "pollrelay_polls_total", map[string]string{"source": "s", "outcome": OutcomeSuccess}); n != 0 {
					t.Errorf("polls_total{outcome=%s} = %v, want 0", OutcomeSuccess, n)
				}
				if len(h.events()) != 0 || h.item("s", "stolen") != nil {
					t.Error("the other host's items were taken")
				}
			})
		}
	}
	if got := atB.all(); len(got) != 0 {
		t.Errorf("the other host received %d requests, e.g. headers %v", len(got), got[0].Header)
	}
}

// TestRedirectOnTheSameHost: a redirect to the source's own scheme and host
// is followed with the source's credentials and without a Referer.
func TestRedirectOnTheSameHost(t *testing.T) {
	var seen hits
	mux := http.NewServeMux()
	mux.Handle("/list", http.RedirectHandler("/v2/list?page=1", http.StatusMovedPermanently))
	mux.HandleFunc("/v2/list", func(w http.ResponseWriter, r *http.Request) {
		seen.add(r)
		fmt.Fprint(w, `{"data": [{"id": "a", "status": "x"}]}`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	src := compiledSource(t, redirectSource(srv.URL))
	obs, _, err := Fetch(context.Background(), src, newFetcher(src, testLogger(t), func(int) {}, nil))
	if err != nil || len(obs) != 1 || obs[0].ID != "a" {
		t.Fatalf("obs = %v, err = %v", obs, err)
	}
	got := seen.all()
	if len(got) != 1 {
		t.Fatalf("%d requests reached the new location", len(got))
	}
	r := got[0]
	if r.Header.Get("X-Api-Key") != redirectKey || r.Header.Get("Authorization") != "Bearer "+redirectBearer {
		t.Errorf("credentials not carried on the same host: %v", r.Header)
	}
	if ref, ok := r.Header["Referer"]; ok {
		t.Errorf("a Referer was sent: %q", ref)
	}
}

// TestRedirectSchemeChangeRefused: https to http on the same host and port
// would send the credentials in clear text.
func TestRedirectSchemeChangeRefused(t *testing.T) {
	var seen hits
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.add(r)
		http.Redirect(w, r, "http://"+r.Host+"/plain?k="+redirectQuery, http.StatusFound)
	}))
	defer srv.Close()
	src := compiledSource(t, redirectSource(srv.URL))
	f := newFetcher(src, testLogger(t), func(int) {}, srv.Client().Transport)
	_, err := fetchListing(context.Background(), src, f, diff.Validators{}, nil, plainRequest(src))
	pe, ok := errors.AsType[*PollError](err)
	if !ok || pe.Outcome != OutcomeRedirect || !strings.Contains(err.Error(), "scheme") || pe.Status != http.StatusFound {
		t.Fatalf("err = %v, want a %s naming the scheme", err, OutcomeRedirect)
	}
	if strings.Contains(err.Error(), redirectQuery) {
		t.Errorf("the error leaks the query: %v", err)
	}
	if n := len(seen.all()); n != 1 {
		t.Errorf("%d requests, want 1 (no retry of a refused redirect)", n)
	}
}

// TestRedirectLoopBounded: a chain of redirects on the source's own host
// ends after maxRedirects.
func TestRedirectLoopBounded(t *testing.T) {
	var seen hits
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.add(r)
		http.Redirect(w, r, fmt.Sprintf("/hop%d", len(seen.all())), http.StatusFound)
	}))
	defer srv.Close()
	src := compiledSource(t, redirectSource(srv.URL))
	_, _, err := Fetch(context.Background(), src, newFetcher(src, testLogger(t), func(int) {}, nil))
	if pe, ok := errors.AsType[*PollError](err); !ok || pe.Outcome != OutcomeRedirect {
		t.Fatalf("err = %v, want %s", err, OutcomeRedirect)
	}
	if n := len(seen.all()); n != maxRedirects+1 {
		t.Errorf("%d requests, want %d", n, maxRedirects+1)
	}
}

func TestSameOrigin(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"https://api.example.com/x", "https://api.example.com:443/y", true},
		{"http://api.example.com:80/x", "http://api.example.com/y?z", true},
		{"https://API.example.com/x", "https://api.EXAMPLE.com/y", true},
		{"http://[::1]:80/", "http://[::1]/", true},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8081/", false},
		{"https://api.example.com/", "http://api.example.com/", false},
		{"http://api.example.com/", "https://api.example.com/", false},
		{"https://api.example.com/", "https://api.example.com@evil.example/", false},
		{"https://api.example.com/", "https://api.example.com.evil.example/", false},
		{"https://api.example.com/", "https://evil.example/api.example.com", false},
		{"https://api.example.com:443/", "https://api.example.com:8443/", false},
		{"http://api.example.com/", "ftp://api.example.com/", false},
	}
	for _, tc := range tests {
		a, _ := url.Parse(tc.a)
		b, _ := url.Parse(tc.b)
		if got := sameOrigin(a, b); got != tc.want {
			t.Errorf("sameOrigin(%s, %s) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestWatchRedirectToAnotherHostRefused: a watch source's per-id request
// is held to the same rule.
func TestWatchRedirectToAnotherHostRefused(t *testing.T) {
	var atB hits
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		atB.add(r)
		fmt.Fprint(w, `{"task_id": "x", "status": "ready"}`)
	}))
	defer b.Close()
	a := httptest.NewServer(http.RedirectHandler(b.URL+"/tasks/x", http.StatusFound))
	defer a.Close()
	src := source(t, fmt.Sprintf("  - {name: task, url: '%s/tasks/{id}?api_key=%s', id: .task_id, state: .status, terminal: [ready], interval: 1h, headers: {X-Api-Key: %s}}\n",
		a.URL, redirectQuery, redirectKey))
	_, page, err := ProbeWatch(context.Background(), src, "x", testLogger(t))
	if pe, ok := errors.AsType[*PollError](err); !ok || pe.Outcome != OutcomeRedirect || page.Status != http.StatusFound {
		t.Fatalf("err = %v, page %+v, want %s", err, page, OutcomeRedirect)
	}
	if n := len(atB.all()); n != 0 {
		t.Errorf("the other host received %d requests", n)
	}
}
