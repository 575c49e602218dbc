package poller

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/event"
)

// faultSource is a list source over srv with a short timeout, so a body
// that never ends fails within a second.
func faultSource(srv *httptest.Server, extra string) string {
	return fmt.Sprintf("  - {name: l, url: '%s/tasks', items: '.data[]', interval: 1h, timeout: 1s%s}\n", srv.URL, extra)
}

// writeListing answers a listing of id/status pairs, in order, duplicates
// and all, with the given Content-Type.
func writeListing(w http.ResponseWriter, contentType string, pairs ...string) {
	var b strings.Builder
	b.WriteString(`{"data":[`)
	for i := 0; i+1 < len(pairs); i += 2 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"id":%q,"status":%q}`, pairs[i], pairs[i+1])
	}
	b.WriteString("]}")
	w.Header().Set("Content-Type", contentType)
	fmt.Fprint(w, b.String())
}

// kinds lists events as "kind:item:previous→current".
func kinds(evs []*event.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = fmt.Sprintf("%s:%s:%s→%s", e.Kind, e.ItemID, event.Text(e.Previous), event.Text(e.Current))
	}
	return out
}

// TestUpstreamFaults: an upstream that answers garbage while an item
// really changes. Each faulty poll fails with its outcome counted and a
// log line, reveals nothing and invents nothing; the first good poll
// after it finds the real change exactly once.
func TestUpstreamFaults(t *testing.T) {
	const bigBody = 50 << 20
	var written atomic.Int64 // bytes of the 50 MiB body the server got out
	cases := []struct {
		name    string
		fault   func(w http.ResponseWriter, r *http.Request)
		outcome string
		errText string
	}{
		{
			name: "HTML error page with 200",
			fault: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				fmt.Fprint(w, "<html><body><h1>Service temporarily unavailable</h1></body></html>")
			},
			outcome: OutcomeDecode, errText: "response is not JSON",
		},
		{
			name: "truncated JSON",
			fault: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, `{"data":[{"id":"a","status":"rea`)
			},
			outcome: OutcomeDecode, errText: "response is not JSON",
		},
		{
			name: "50 MiB body",
			fault: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				chunk := []byte(strings.Repeat(" ", 64<<10))
				for written.Load() < bigBody {
					n, err := w.Write(chunk)
					written.Add(int64(n))
					if err != nil {
						return // the client hung up: what this case wants
					}
				}
			},
			outcome: OutcomeTooLarge, errText: "max_body_bytes",
		},
		{
			name: "body that never ends",
			fault: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, `{"data":[`)
				tick := time.NewTicker(10 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-r.Context().Done():
						return
					case <-tick.C:
						fmt.Fprint(w, `{"id":"x","status":"y"},`)
						w.(http.Flusher).Flush()
					}
				}
			},
			outcome: OutcomeNetwork, errText: "read body",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up := newTasks(map[string]string{"a": "queued", "b": "queued"})
			srv := httptest.NewServer(up)
			defer srv.Close()
			log, logs := captureLogger()
			h := newHarnessLog(t, nil, log)
			h.start(sources(t, faultSource(srv, "")))
			h.mustPoll("l") // the baseline

			up.set("a", "ready") // the change the fault hides
			up.mu.Lock()
			up.fail = func(w http.ResponseWriter, r *http.Request) bool { c.fault(w, r); return true }
			up.mu.Unlock()
			err := h.pollNow("l")
			pe, ok := errors.AsType[*PollError](err)
			if !ok || pe.Outcome != c.outcome || !strings.Contains(err.Error(), c.errText) {
				t.Fatalf("poll: %v; want a %s PollError mentioning %q", err, c.outcome, c.errText)
			}
			if n := counter(t, h.reg, "pollrelay_polls_total", map[string]string{"source": "l", "outcome": c.outcome}); n < 1 {
				t.Errorf("pollrelay_polls_total{outcome=%q} = %v", c.outcome, n)
			}
			if s := logs.String(); !strings.Contains(s, `msg="poll failed" source=l outcome=`+c.outcome) {
				t.Errorf("no poll failed line with outcome %s in:\n%s", c.outcome, s)
			}
			if evs := h.events(); len(evs) != 0 {
				t.Errorf("a failed poll emitted %v", kinds(evs))
			}
			if got := event.Text(h.item("l", "a").State); got != "queued" {
				t.Errorf("a failed poll stored a's state %s", got)
			}
			if c.outcome == OutcomeTooLarge {
				// The cap is 10 MiB; what got out past it sat in socket
				// buffers when the client hung up.
				if n := written.Load(); n >= bigBody {
					t.Errorf("the whole %d-byte body was sent: the client read past its cap", n)
				}
				t.Logf("server wrote %d MiB of the 50 MiB body before the client hung up", written.Load()>>20)
			}

			up.mu.Lock()
			up.fail = nil
			up.mu.Unlock()
			h.mustPoll("l")
			want := []string{`changed:a:queued→ready`}
			if got := kinds(h.events()); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("after recovery: %v, want %v", got, want)
			}
			if !strings.Contains(logs.String(), `msg="poll recovered"`) {
				t.Errorf("recovery not logged")
			}
		})
	}
}

// TestUpstreamListingQuirks: listings that are valid JSON but odd. Each
// step is one poll of the given listing (id, status pairs) and the events
// the whole run has emitted after it; only real, settled changes fire.
func TestUpstreamListingQuirks(t *testing.T) {
	type step struct {
		contentType string
		listing     []string
		events      []string
	}
	cases := []struct {
		name  string
		extra string // source config
		steps []step
		log   string // a line the run must log once
	}{
		{
			name: "wrong content-type with valid JSON is accepted",
			steps: []step{
				{"text/html; charset=utf-8", []string{"a", "ready", "b", "queued"}, []string{"changed:a:queued→ready"}},
			},
		},
		{
			name:  "ids disappear and reappear, deletes off",
			extra: ", deletes: false",
			steps: []step{
				{"application/json", []string{"a", "queued"}, nil},
				{"application/json", []string{"a", "queued", "b", "queued"}, nil},
			},
		},
		{
			name:  "ids disappear and reappear, deletes on",
			extra: ", deletes: true",
			steps: []step{
				{"application/json", []string{"a", "queued"}, []string{"deleted:b:queued→null"}},
				{"application/json", []string{"a", "queued"}, []string{"deleted:b:queued→null"}},
				{"application/json", []string{"a", "queued", "b", "queued"}, []string{"deleted:b:queued→null", "created:b:null→queued"}},
			},
		},
		{
			name: "duplicate ids in one listing: the first wins",
			steps: []step{
				{"application/json", []string{"a", "queued", "a", "ready", "b", "queued"}, nil},
				{"application/json", []string{"a", "queued", "a", "ready", "b", "queued"}, nil},
				{"application/json", []string{"a", "ready", "a", "queued", "b", "queued"}, []string{"changed:a:queued→ready"}},
			},
			log: `msg="listing repeats ids; the first occurrence of each is used" source=l duplicates=1 example_id=a`,
		},
		{
			name:  "a listing flapping between two states, settle 2",
			extra: ", settle: 2",
			steps: []step{
				{"application/json", []string{"a", "ready", "b", "queued"}, nil},
				{"application/json", []string{"a", "queued", "b", "queued"}, nil},
				{"application/json", []string{"a", "ready", "b", "queued"}, nil},
				{"application/json", []string{"a", "queued", "b", "queued"}, nil},
				{"application/json", []string{"a", "ready", "b", "queued"}, nil},
				{"application/json", []string{"a", "ready", "b", "queued"}, []string{"changed:a:queued→ready"}},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up := newTasks(map[string]string{"a": "queued", "b": "queued"})
			srv := httptest.NewServer(up)
			defer srv.Close()
			log, logs := captureLogger()
			h := newHarnessLog(t, nil, log)
			h.start(sources(t, faultSource(srv, c.extra)))
			h.mustPoll("l") // the baseline
			// Start polls at once too; count from here.
			ok := map[string]string{"source": "l", "outcome": OutcomeSuccess}
			before := counter(t, h.reg, "pollrelay_polls_total", ok)
			for i, s := range c.steps {
				up.mu.Lock()
				up.fail = func(w http.ResponseWriter, _ *http.Request) bool {
					writeListing(w, s.contentType, s.listing...)
					return true
				}
				up.mu.Unlock()
				h.mustPoll("l")
				if got := kinds(h.events()); strings.Join(got, " ") != strings.Join(s.events, " ") {
					t.Fatalf("after step %d (%v): events %v, want %v", i+1, s.listing, got, s.events)
				}
			}
			if n := counter(t, h.reg, "pollrelay_polls_total", ok) - before; n != float64(len(c.steps)) {
				t.Errorf("pollrelay_polls_total{outcome=success} grew by %v, want %d", n, len(c.steps))
			}
			if c.log != "" {
				if n := strings.Count(logs.String(), c.log); n != 1 {
					t.Errorf("%q logged %d times, want once:\n%s", c.log, n, logs.String())
				}
			}
		})
	}
}

// jumpyClock is a wall clock an operator (or NTP) moves: set changes the
// time every later reading starts from.
type jumpyClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *jumpyClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *jumpyClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// TestClockJumps: the wall clock jumps back and forth between polls of an
// unchanged listing. Transitions depend on states, not on time, so nothing
// fires; a stalled rule fires once when the clock says the stay is long
// enough, and not again when the clock goes back and forward over it.
func TestClockJumps(t *testing.T) {
	up := newTasks(map[string]string{"a": "queued", "b": "queued"})
	srv := httptest.NewServer(up)
	defer srv.Close()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clk := &jumpyClock{t: t0}
	h := newHarness(t, nil)
	h.m.now = clk.Now
	h.start(sources(t, faultSource(srv, ", events: [{type: 'task.{current}', on: changed}, {type: task.stuck, on: stalled, state: queued, after: 30m}]")))
	h.mustPoll("l") // the baseline, at t0

	steps := []struct {
		at     time.Duration // clock offset from t0 for this poll
		change string        // "id=status" made upstream before it
		events string
	}{
		{-time.Hour, "", ""},
		{-24 * time.Hour, "", ""},
		{10 * time.Minute, "", ""},
		{10 * time.Minute, "a=ready", "task.ready:a"},
		{2 * time.Hour, "", "task.ready:a task.stuck:b"},
		{0, "", "task.ready:a task.stuck:b"},
		{3 * time.Hour, "", "task.ready:a task.stuck:b"},
		{-time.Hour, "", "task.ready:a task.stuck:b"},
	}
	for i, s := range steps {
		clk.set(t0.Add(s.at))
		if id, st, ok := strings.Cut(s.change, "="); ok {
			up.set(id, st)
		}
		h.mustPoll("l")
		if got := strings.Join(types(h.events()), " "); got != s.events {
			t.Fatalf("step %d (clock t0%+v): events %q, want %q", i+1, s.at, got, s.events)
		}
	}
}
