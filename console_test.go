package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/internal/harness"
	"github.com/pollrelay/pollrelay/internal/syncbuf"
	"github.com/pollrelay/pollrelay/store"
)

// Upstream- and receiver-controlled text that would run as script if the
// console did not escape it.
const (
	hostileID     = `<script>alert("id")</script>`
	hostileID2    = `"><img src=x onerror=alert('id2')>`
	hostileState  = `"><img src=x onerror=alert('state')>`
	hostileAnswer = `<script>alert("answer")</script>"><img src=x onerror=alert('answer')>`
	consoleToken  = "console-test-token"
)

// consoleRig is a running bridge behind the console: an upstream whose
// items the test changes and a receiver that fails (with a hostile answer)
// until told to accept.
type consoleRig struct {
	b      *Bridge
	base   string // http://addr
	accept atomic.Bool

	mu    sync.Mutex
	items []map[string]any
}

func (r *consoleRig) set(items ...map[string]any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.items = items
}

func newConsoleRig(t *testing.T) *consoleRig {
	t.Helper()
	rig := &consoleRig{}
	rig.set(map[string]any{"id": "job-1", "status": "queued"})
	up := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		rig.mu.Lock()
		defer rig.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"data": rig.items})
	}))
	recv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if rig.accept.Load() {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, hostileAnswer)
	}))
	rig.b, _ = startBridge(t, fmt.Sprintf(`
listen: 127.0.0.1:0
api_token: %s
storage: {in_memory: true}
sources:
  - name: jobs
    url: %s
    interval: 1h
    timeout: 5s
    items: '.data[]'
    id: '.id'
    state: '.status'
    events:
      - {type: 'job.{current}', on: created}
      - {type: 'job.{current}', on: changed}
subscriptions:
  - name: app
    url: %s
    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
    retry: {schedule: [10ms]}
`, consoleToken, up, recv))
	rig.base = "http://" + rig.b.Addr()
	pollNow(t, rig.b, "jobs") // the baseline
	return rig
}

// transition makes job-1 ready and adds the hostile items, polls, and
// waits until every delivery is dead (the receiver refuses them all).
func (r *consoleRig) transition(t *testing.T) {
	t.Helper()
	r.set(
		map[string]any{"id": "job-1", "status": "ready"},
		map[string]any{"id": hostileID, "status": hostileState},
		map[string]any{"id": hostileID2, "status": "queued"},
	)
	pollNow(t, r.b, "jobs")
	waitDelivered(t, r.b)
}

// firstEvent returns the id of the event about item id.
func (r *consoleRig) event(t *testing.T, id string) string {
	t.Helper()
	found := ""
	err := r.b.st.View(func(tx store.Txn) error {
		return tx.Events("", func(e *event.Event) bool {
			if e.ItemID == id {
				found = e.ID
				return false
			}
			return true
		})
	})
	if err != nil || found == "" {
		t.Fatalf("no event about %q (%v)", id, err)
	}
	return found
}

// signIn returns a client holding a console session.
func signIn(t *testing.T, base, token string) (*http.Client, *http.Response) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.PostForm(base+"/ui/login", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return c, resp
}

func page(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// TestConsoleEscapesWhatUpstreamsSend puts markup in ids, states and a
// receiver's answers and checks that no page of the console carries it as
// markup: only escaped text.
func TestConsoleEscapesWhatUpstreamsSend(t *testing.T) {
	rig := newConsoleRig(t)
	rig.transition(t)
	c, _ := signIn(t, rig.base, consoleToken)
	evID := rig.event(t, hostileID)
	q := url.QueryEscape
	pages := []string{
		"/ui/",
		"/ui/items?source=jobs",
		"/ui/items?source=jobs&id=" + q("<script>"),
		"/ui/item?source=jobs&id=" + q(hostileID),
		"/ui/item?source=jobs&id=" + q(hostileID2),
		"/ui/events",
		"/ui/events?source=" + q(hostileID2),
		"/ui/event?id=" + evID,
		"/ui/event?id=" + q(hostileID),
		"/ui/subscriptions",
		"/ui/dead",
		"/ui/dead?subscription=" + q(hostileID2),
	}
	for _, p := range pages {
		code, body := page(t, c, rig.base+p)
		if code != http.StatusOK && code != http.StatusNotFound {
			t.Errorf("%s: %d", p, code)
		}
		for _, raw := range []string{"<script", "<img", `alert("`, `alert('`} {
			if strings.Contains(body, raw) {
				t.Errorf("%s carries %q unescaped:\n%s", p, raw, body)
			}
		}
	}
	_, body := page(t, c, rig.base+"/ui/event?id="+evID)
	if !strings.Contains(body, "&lt;script&gt;alert(&#34;answer&#34;)&lt;/script&gt;") {
		t.Errorf("the event page does not show the receiver's answer as text:\n%s", body)
	}
	_, body = page(t, c, rig.base+"/ui/items?source=jobs")
	if !strings.Contains(body, "&lt;script&gt;alert(&#34;id&#34;)&lt;/script&gt;") || !strings.Contains(body, "&#34;&gt;&lt;img src=x onerror=alert(&#39;id2&#39;)&gt;") {
		t.Errorf("the items page does not show the hostile ids as text:\n%s", body)
	}
}

// TestConsoleRefusesWithoutTokenOrCSRF: a wrong token gets no session, a
// page without a session sends to sign-in, and an action needs the
// session's CSRF token.
func TestConsoleRefusesWithoutTokenOrCSRF(t *testing.T) {
	rig := newConsoleRig(t)
	rig.transition(t)
	evID := rig.event(t, "job-1")

	bad, resp := signIn(t, rig.base, "wrong-token")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a wrong token: %d, want 401", resp.StatusCode)
	}
	if u, _ := url.Parse(rig.base + "/ui/"); len(bad.Jar.Cookies(u)) != 0 {
		t.Errorf("a wrong token got cookies %v", bad.Jar.Cookies(u))
	}
	noRedirect := &http.Client{Jar: bad.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if resp, err := noRedirect.Get(rig.base + "/ui/events"); err != nil || resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" {
		t.Errorf("a page without a session: %v %v", resp, err)
	}
	if resp, _ := bad.PostForm(rig.base+"/ui/redeliver", url.Values{"event": {evID}}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("an action without a session: %d, want 401", resp.StatusCode)
	}

	c, resp := signIn(t, rig.base, consoleToken)
	u, _ := url.Parse(rig.base + "/ui/")
	cks := c.Jar.Cookies(u)
	if resp.StatusCode != http.StatusOK || len(cks) != 1 {
		t.Fatalf("sign in: %d, cookies %v", resp.StatusCode, cks)
	}
	setCookie := resp.Request.Response.Header.Get("Set-Cookie")
	for _, attr := range []string{"HttpOnly", "SameSite=Strict", "Path=/ui/"} {
		if !strings.Contains(setCookie, attr) {
			t.Errorf("session cookie %q lacks %s", setCookie, attr)
		}
	}
	_, body := page(t, c, rig.base+"/ui/event?id="+evID)
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token on the event page:\n%s", body)
	}
	before := attempts(t, rig, evID)
	for _, form := range []url.Values{
		{"event": {evID}},
		{"event": {evID}, "csrf": {"forged"}},
		{"event": {evID}, "csrf": {m[1][:len(m[1])-1]}},
	} {
		resp, err := c.PostForm(rig.base+"/ui/redeliver", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("redeliver with csrf %q: %d, want 403", form.Get("csrf"), resp.StatusCode)
		}
	}
	if got := attempts(t, rig, evID); got != before {
		t.Errorf("a refused action redelivered: %d attempts, then %d", before, got)
	}
	rig.accept.Store(true)
	resp, err := c.PostForm(rig.base+"/ui/redeliver", url.Values{"event": {evID}, "csrf": {m[1]}})
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("redeliver with the CSRF token: %v %v", resp, err)
	}
	resp.Body.Close()
	harness.WaitFor(t, 15*time.Second, func() bool { return attempts(t, rig, evID) > before })
}

func attempts(t *testing.T, rig *consoleRig, evID string) int {
	t.Helper()
	var n int
	err := rig.b.st.View(func(tx store.Txn) error {
		a, err := tx.Attempts(evID)
		n = len(a)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

var demoConsole = regexp.MustCompile(`console +(http://\S+)/ui/ +sign in with the token (\S+)`)

// TestDemoPrintsTheConsole: the demo's banner names the console and a
// token that signs in to it.
func TestDemoPrintsTheConsole(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out := &syncbuf.Buffer{}
	done := make(chan error, 1)
	go func() { done <- runDemo(ctx, out, &syncbuf.Buffer{}) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	var m []string
	harness.WaitFor(t, 10*time.Second, func() bool { m = demoConsole.FindStringSubmatch(out.String()); return m != nil })
	c, resp := signIn(t, m[1], m[2])
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("signing in with the demo's token: %d", resp.StatusCode)
	}
	harness.WaitFor(t, 10*time.Second, func() bool {
		_, body := page(t, c, m[1]+"/ui/events?source=jobs")
		return strings.Contains(body, "job.processing")
	})
	if *screenshots != "" {
		demoScreenshot(t, m[1], m[2])
	}
}

// TestConsolePollNow: the sources page's button polls at once, so an item
// the upstream just added is on the items page without waiting an interval.
func TestConsolePollNow(t *testing.T) {
	rig := newConsoleRig(t)
	c, _ := signIn(t, rig.base, consoleToken)
	_, body := page(t, c, rig.base+"/ui/")
	m := csrfField.FindStringSubmatch(body)
	if m == nil || !strings.Contains(body, `name="source" value="jobs"`) {
		t.Fatalf("no poll-now form on the sources page:\n%s", body)
	}
	rig.set(map[string]any{"id": "job-1", "status": "queued"}, map[string]any{"id": "job-new", "status": "queued"})
	resp, err := c.PostForm(rig.base+"/ui/poll", url.Values{"source": {"jobs"}, "csrf": {m[1]}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "Polled jobs.") {
		t.Fatalf("poll now: %d\n%s", resp.StatusCode, b)
	}
	if _, body := page(t, c, rig.base+"/ui/items?source=jobs&id=new"); !strings.Contains(body, "job-new") {
		t.Errorf("the polled item is not listed:\n%s", body)
	}
	resp, err = c.PostForm(rig.base+"/ui/poll", url.Values{"source": {"nope"}, "csrf": {m[1]}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "There is no source &#34;nope&#34;.") {
		t.Errorf("poll now of an unknown source:\n%s", b)
	}
}

// A listing still being fetched shows on the sources page how far it has
// come, and nothing once it is done.
func TestConsoleShowsPollProgress(t *testing.T) {
	release := make(chan struct{})
	up := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page := r.URL.Query().Get("page")
		if page == "2" {
			<-release // the second page takes as long as the test wants
		}
		items := []map[string]any{}
		if page == "1" || page == "2" {
			for i := range 10 {
				items = append(items, map[string]any{"id": fmt.Sprintf("p%s-%d", page, i), "status": "ok"})
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"data": items})
	}))
	b, _ := startBridge(t, fmt.Sprintf(`
listen: 127.0.0.1:0
api_token: %s
storage: {in_memory: true}
sources:
  - name: big
    url: %s
    interval: 1h
    timeout: 30s
    items: '.data[]'
    pagination: {page_param: page, limit_param: per_page, limit: 10}
`, consoleToken, up))
	base := "http://" + b.Addr()
	c, _ := signIn(t, base, consoleToken)
	done := make(chan error, 1)
	go func() { done <- b.poller.PollNow(context.Background(), "big") }()
	harness.WaitFor(t, 10*time.Second, func() bool {
		_, body := page(t, c, base+"/ui/")
		return strings.Contains(body, "10 items, 1 pages so far")
	})
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, body := page(t, c, base+"/ui/"); strings.Contains(body, "so far") {
		t.Errorf("a finished poll still shows progress:\n%s", body)
	}
}
