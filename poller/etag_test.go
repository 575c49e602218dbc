package poller

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// versioned answers with an ETag per version of its content, and 304 when
// the request's If-None-Match names the current one.
type versioned struct {
	mu      sync.Mutex
	reqs    int
	n304    int
	inm     []string // If-None-Match of each request
	version func(n int) int
	body    func(v int) string
}

func (u *versioned) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := u.reqs
	u.reqs++
	u.inm = append(u.inm, r.Header.Get("If-None-Match"))
	v := u.version(n)
	etag := fmt.Sprintf(`"v%d"`, v)
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		u.n304++
		w.WriteHeader(http.StatusNotModified)
		return
	}
	fmt.Fprint(w, u.body(v))
}

func (u *versioned) share() (int, int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.n304, u.reqs
}

// TestETagListSource polls a single-page listing ten times while it changes
// twice: the other seven polls are 304s that decode and diff nothing.
func TestETagListSource(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &versioned{
			version: func(n int) int { return 1 + btoi(n >= 3) + btoi(n >= 7) },
			body: func(v int) string {
				return fmt.Sprintf(`{"data": [{"id": "a", "status": "s%d"}, {"id": "b", "status": "same"}]}`, v)
			},
		}
		h := newHarness(t, handlerTransport{up})
		srcs := sources(t, "  - {name: l, url: 'http://upstream.test/l', items: '.data[]', interval: 10s}\n")
		h.start(srcs)
		for _, n := up.share(); n < 10; _, n = up.share() {
			time.Sleep(time.Second)
			synctest.Wait()
		}
		n304, total := up.share()
		t.Logf("ETag list source: %d of %d requests answered 304 (%.0f%%)", n304, total, 100*float64(n304)/float64(total))
		if n304 != 7 || total != 10 {
			t.Errorf("%d of %d answered 304, want 7 of 10", n304, total)
		}
		if got := types(h.events()); !slices.Equal(got, []string{"l.changed:a", "l.changed:a"}) {
			t.Errorf("events = %v", got)
		}
		if got := counter(t, h.reg, "pollrelay_upstream_requests_total", map[string]string{"source": "l", "code": "304"}); got != 7 {
			t.Errorf(`upstream_requests_total{code="304"} = %v, want 7`, got)
		}
		if got := counter(t, h.reg, "pollrelay_polls_total", map[string]string{"source": "l", "outcome": OutcomeNotModified}); got != 7 {
			t.Errorf("polls_total{not_modified} = %v, want 7", got)
		}
		if st := h.status("l"); st.LastOutcome != OutcomeNotModified || st.ItemsTracked != 2 || st.Failures != 0 {
			t.Errorf("status = %+v", st)
		}

		// A reload that changes what is extracted must not trust the old
		// validators: the first request after it is unconditional.
		srcs = sources(t, "  - {name: l, url: 'http://upstream.test/l', items: '.data[]', object: '{id}', interval: 10s}\n")
		h.restart(srcs)
		untilFirstPoll(&srcs[0])
		up.mu.Lock()
		last := up.inm[len(up.inm)-1]
		up.mu.Unlock()
		if last != "" {
			t.Errorf("request after a config change sent If-None-Match %s", last)
		}
		h.close()
	})
}

// TestETagWatchSource: 20 watches polled for 5 rounds while two of them
// change once each.
func TestETagWatchSource(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		state := map[string]string{}
		version := map[string]int{}
		var reqs, n304 int
		up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			id := r.URL.Path[len("/tasks/"):]
			reqs++
			etag := fmt.Sprintf(`"%s-%d"`, id, version[id])
			w.Header().Set("ETag", etag)
			if r.Header.Get("If-None-Match") == etag {
				n304++
				w.WriteHeader(http.StatusNotModified)
				return
			}
			st := state[id]
			if st == "" {
				st = "queued"
			}
			fmt.Fprintf(w, `{"status": %q}`, st)
		})
		set := func(id, st string) {
			mu.Lock()
			defer mu.Unlock()
			state[id] = st
			version[id]++
		}
		h := newHarness(t, handlerTransport{up})
		putWatches(t, h.st, "w", 20)
		h.start(sources(t, "  - {name: w, url: 'http://upstream.test/tasks/{id}', interval: 10s, terminal: [done]}\n"))
		time.Sleep(10 * time.Second) // round 1
		set("id-00003", "processing")
		time.Sleep(20 * time.Second) // rounds 2, 3
		set("id-00011", "processing")
		time.Sleep(20*time.Second - time.Nanosecond) // rounds 4, 5
		synctest.Wait()
		mu.Lock()
		got304, total := n304, reqs
		mu.Unlock()
		t.Logf("ETag watch source: %d of %d requests answered 304 (%.0f%%)", got304, total, 100*float64(got304)/float64(total))
		if total != 100 || got304 != 78 {
			t.Errorf("%d of %d answered 304, want 78 of 100", got304, total)
		}
		if got := types(h.events()); !slices.Equal(got, []string{"w.changed:id-00003", "w.changed:id-00011"}) {
			t.Errorf("events = %v", got)
		}
		h.close()
	})
}

// TestETagWithSettle: a state that has not settled must be seen in a body
// again, so its validators are not stored and the next poll is
// unconditional; otherwise a steady upstream would 304 forever and the
// state would never settle.
func TestETagWithSettle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &versioned{
			version: func(n int) int { return 1 + btoi(n >= 2) },
			body: func(v int) string {
				return fmt.Sprintf(`{"data": [{"id": "a", "status": "s%d"}]}`, v)
			},
		}
		h := newHarness(t, handlerTransport{up})
		h.start(sources(t, "  - {name: l, url: 'http://upstream.test/l', items: '.data[]', interval: 10s, settle: 2}\n"))
		for _, n := up.share(); n < 5; _, n = up.share() {
			time.Sleep(time.Second)
			synctest.Wait()
		}
		evs := types(h.events())
		h.close()
		up.mu.Lock()
		defer up.mu.Unlock()
		// 0: baseline (200), 1: 304, 2: new state, pending (200),
		// 3: unconditional, settles (200), 4: 304.
		want := []string{"", `"v1"`, `"v1"`, "", `"v2"`}
		if !slices.Equal(up.inm[:5], want) {
			t.Errorf("If-None-Match sent = %q, want %q", up.inm[:5], want)
		}
		if !slices.Equal(evs, []string{"l.changed:a"}) {
			t.Errorf("events = %v", evs)
		}
	})
}

// TestETagStalledStillChecked: a 304 skips the diff, but a stalled rule
// still fires from the stored entry time.
func TestETagStalledStillChecked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &versioned{
			version: func(int) int { return 1 },
			body:    func(int) string { return `{"data": [{"id": "a", "status": "queued"}]}` },
		}
		h := newHarness(t, handlerTransport{up})
		h.start(sources(t, `  - name: l
    url: 'http://upstream.test/l'
    items: '.data[]'
    interval: 10s
    events: [{type: job.stuck, on: stalled, state: queued, after: 30s}]
`))
		time.Sleep(time.Minute)
		synctest.Wait()
		if n304, total := up.share(); n304 != total-1 {
			t.Errorf("%d of %d answered 304", n304, total)
		}
		if got := types(h.events()); !slices.Equal(got, []string{"job.stuck:a"}) {
			t.Errorf("events = %v", got)
		}
		h.close()
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
