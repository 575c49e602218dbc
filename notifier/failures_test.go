package notifier

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/store"
)

// clock is a settable clock for tests on real sockets, where synctest's
// fake time can't reach: the test moves it and wakes the notifier.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Receivers that fail in each way the network allows: every failure is a
// recorded attempt with a reason, the delivery is scheduled for its retry,
// and the retry (same webhook-id) succeeds once the receiver recovers.
func TestFailingReceivers(t *testing.T) {
	cases := []struct {
		name    string
		fail    func(w http.ResponseWriter, r *http.Request)
		outcome string
		status  int
		errText string
		// next is the window the retry must fall in, after the attempt.
		min, max time.Duration
		disabled bool
	}{
		{
			name:    "500",
			fail:    func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) },
			outcome: OutcomeHTTPError, status: 500, errText: "status 500",
			min: 8 * time.Second, max: 12 * time.Second,
		},
		{
			name: "hangs past the timeout",
			fail: func(_ http.ResponseWriter, r *http.Request) {
				<-r.Context().Done()
			},
			outcome: OutcomeTimeout, errText: "no response within 200ms",
			min: 8 * time.Second, max: 12 * time.Second,
		},
		{
			name: "resets the connection",
			fail: func(w http.ResponseWriter, _ *http.Request) {
				conn, _, err := w.(http.Hijacker).Hijack()
				if err != nil {
					panic(err)
				}
				conn.Close()
			},
			outcome: OutcomeConnection, errText: "EOF",
			min: 8 * time.Second, max: 12 * time.Second,
		},
		{
			name: "redirects",
			fail: func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/elsewhere", http.StatusFound)
			},
			outcome: OutcomeHTTPError, status: 302, errText: "redirects are not followed",
			min: 8 * time.Second, max: 12 * time.Second,
		},
		{
			name: "429 with Retry-After",
			fail: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "17")
				w.WriteHeader(http.StatusTooManyRequests)
			},
			outcome: OutcomeHTTPError, status: 429, errText: "status 429",
			min: 17 * time.Second, max: 17 * time.Second,
		},
		{
			name:    "410",
			fail:    func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) },
			outcome: OutcomeHTTPError, status: 410, errText: "status 410",
			min: 8 * time.Second, max: 12 * time.Second, disabled: true,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var paths []string
			attempt := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				// net/http notices a client hanging up only once the body
				// is read.
				io.Copy(io.Discard, r.Body)
				mu.Lock()
				paths = append(paths, r.URL.Path)
				attempt++
				n := attempt
				mu.Unlock()
				if n == 1 {
					c.fail(w, r)
					return
				}
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()
			clk := newClock()
			subs := parseSubs(t, `name: app
				url: `+srv.URL+`/hook
				secret: `+testSecret+`
				timeout: 200ms
				retry: {schedule: [10s]}`)
			e := start(t, t.TempDir(), subs, Options{Now: clk.Now})
			ev := e.emit("task.ready", "a")

			d := e.waitState("app", ev.ID, store.Retrying)
			as := e.attempts(ev.ID)
			if len(as) != 1 {
				t.Fatalf("%d attempts logged, want 1", len(as))
			}
			a := as[0]
			if a.Outcome != c.outcome || a.Status != c.status || !strings.Contains(a.Error, c.errText) {
				t.Errorf("attempt: outcome %q status %d error %q; want %q %d %q", a.Outcome, a.Status, a.Error, c.outcome, c.status, c.errText)
			}
			if strings.Contains(a.Error, srv.URL) {
				t.Errorf("attempt error quotes the subscription URL: %q", a.Error)
			}
			if wait := d.NextAt.Sub(a.At); wait < c.min || wait > c.max {
				t.Errorf("retry scheduled %s after the attempt, want [%s, %s]", wait, c.min, c.max)
			}
			if st, _ := e.n.Stats("app"); st.Disabled != c.disabled || st.FailureCount != 1 {
				t.Errorf("stats: %+v, want disabled=%t", st, c.disabled)
			}

			clk.Advance(c.max)
			e.n.Wake()
			if c.disabled {
				if err := e.n.SetDisabled(t.Context(), "app", false); err != nil {
					t.Fatal(err)
				}
			}
			e.waitState("app", ev.ID, store.Delivered)
			as = e.attempts(ev.ID)
			if len(as) != 2 || as[1].Outcome != OutcomeSuccess || as[1].Status != 204 {
				t.Errorf("attempts after recovery: %+v", as)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, p := range paths {
				if p != "/hook" {
					t.Errorf("a request went to %s: redirects must not be followed", p)
				}
			}
		})
	}
}
