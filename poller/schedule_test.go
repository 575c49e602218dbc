package poller

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pollrelay/pollrelay/store"
)

// These tests run under testing/synctest: the clock is fake and moves only
// when every goroutine in the bubble is blocked, so "30s later" is exact
// and costs no wall time. Badger is opened inside each bubble (it starts
// goroutines) and the upstream is an in-process handler (a socket would
// keep the bubble from ever being idle).

// recorder is an upstream that notes when each request arrived.
type recorder struct {
	mu       sync.Mutex
	at       []time.Time
	paths    []string
	inflight int
	maxIn    int
	// answer writes the response to request n (0-based).
	answer func(n int, w http.ResponseWriter, r *http.Request)
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	n := len(rc.at)
	rc.at = append(rc.at, time.Now())
	rc.paths = append(rc.paths, r.URL.Path)
	rc.inflight++
	rc.maxIn = max(rc.maxIn, rc.inflight)
	rc.mu.Unlock()
	defer func() {
		rc.mu.Lock()
		rc.inflight--
		rc.mu.Unlock()
	}()
	rc.answer(n, w, r)
}

func (rc *recorder) times() []time.Time {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.at)
}

func gaps(ts []time.Time) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(ts); i++ {
		out = append(out, ts[i].Sub(ts[i-1]))
	}
	return out
}

// maxInWindow is the most requests in any window [t, t+w) starting at a
// request.
func maxInWindow(ts []time.Time, w time.Duration) int {
	best, j := 0, 0
	for i := range ts {
		for j < len(ts) && ts[j].Sub(ts[i]) < w {
			j++
		}
		best = max(best, j-i)
	}
	return best
}

func okJSON(body string) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, body)
	}
}

// putWatches adds n watches directly to the store.
func putWatches(t *testing.T, st store.Store, source string, n int) {
	t.Helper()
	b := st.NewBatch()
	for i := range n {
		err := b.Group(func(tx store.Txn) error {
			return tx.PutWatch(&store.Watch{Source: source, ID: fmt.Sprintf("id-%05d", i), Origin: store.OriginAPI, CreatedAt: time.Now()})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestWatchRequestsSpreadEvenly is the measurement of issue 3: 10,000
// watched ids at interval 10s must arrive as ~1,000 requests/s spread over
// the interval, never a burst. The ideal is 100 requests in any 100ms.
func TestWatchRequestsSpreadEvenly(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 requests")
	}
	synctest.Test(t, func(t *testing.T) {
		rc := &recorder{answer: okJSON(`{"status":"queued"}`)}
		h := newHarnessLog(t, handlerTransport{rc}, quietLogger(t))
		const n, interval = 10000, 10 * time.Second
		putWatches(t, h.st, "w", n)
		start := time.Now()
		h.start(sources(t, "  - {name: w, url: 'http://upstream.test/tasks/{id}', interval: 10s, terminal: [done]}\n"))
		time.Sleep(interval - time.Nanosecond) // the first round, which starts at once
		synctest.Wait()
		ts := rc.times()
		h.close()

		if len(ts) != n {
			t.Fatalf("%d requests in the first interval, want %d", len(ts), n)
		}
		last := ts[len(ts)-1].Sub(start)
		peak := maxInWindow(ts, 100*time.Millisecond)
		peak10 := maxInWindow(ts, 10*time.Millisecond)
		t.Logf("10,000 watched ids, interval 10s: max %d requests in any 100ms window (even-spread ideal 100), max %d in any 10ms (ideal 10); last request %v after the first", peak, peak10, last)
		if peak > 101 || peak10 > 11 {
			t.Errorf("requests bunch up: %d in 100ms, %d in 10ms", peak, peak10)
		}
		if last < interval*99/100 {
			t.Errorf("round squeezed into %v, want it spread over %v", last, interval)
		}
	})
}

func TestRateAndConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rc := &recorder{answer: func(_ int, w http.ResponseWriter, _ *http.Request) {
			time.Sleep(3 * time.Second) // a slow upstream
			fmt.Fprint(w, `{"status":"queued"}`)
		}}
		h := newHarness(t, handlerTransport{rc})
		putWatches(t, h.st, "w", 12)
		h.start(sources(t, "  - {name: w, url: 'http://upstream.test/tasks/{id}', interval: 1h, timeout: 10s, rate: 2/s, concurrency: 3, terminal: [done]}\n"))
		synctest.Wait() // the first round has started
		h.mustPoll("w") // every watch due at once: only rate and concurrency hold them back
		// The first round, spread over the hour, had sent one request when
		// PollNow cut it short.
		ts := rc.times()[1:]
		h.close()

		if len(ts) != 12 {
			t.Fatalf("%d requests, want 12", len(ts))
		}
		for i, g := range gaps(ts) {
			if g < 500*time.Millisecond {
				t.Errorf("requests %d and %d only %v apart, rate is 2/s", i, i+1, g)
			}
		}
		if got := maxInWindow(ts, time.Second); got > 2 {
			t.Errorf("%d requests in one second, rate is 2/s", got)
		}
		if rc.maxIn != 3 {
			t.Errorf("max in flight = %d, want concurrency 3", rc.maxIn)
		}
	})
}

func TestListRatePacesPages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rc := &recorder{}
		rc.answer = func(n int, w http.ResponseWriter, r *http.Request) {
			next := "null"
			if n%4 < 3 {
				next = fmt.Sprintf("%q", fmt.Sprint(n+1))
			}
			fmt.Fprintf(w, `{"data": [{"id": %d, "status": "a"}], "next": %s}`, n, next)
		}
		h := newHarness(t, handlerTransport{rc})
		srcs := sources(t, "  - {name: l, url: 'http://upstream.test/l', items: '.data[]', interval: 1h, rate: 60/m, pagination: {next: .next, param: c}}\n")
		h.start(srcs)
		untilFirstPoll(&srcs[0]) // the first poll has started
		h.mustPoll("l")
		ts := rc.times()
		h.close()
		if len(ts) != 8 {
			t.Fatalf("%d requests, want two polls of 4 pages", len(ts))
		}
		for i, g := range gaps(ts) {
			if g < time.Second {
				t.Errorf("pages %d and %d %v apart, rate is 60/m", i, i+1, g)
			}
		}
	})
}

func TestRetryAfterPausesTheSource(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		value  func(now time.Time) string
		// unit is the header's resolution: an HTTP-date names a second.
		unit time.Duration
	}{
		{"429 delta-seconds", 429, func(time.Time) string { return "120" }, 0},
		{"503 HTTP-date", 503, func(now time.Time) string { return now.Add(120 * time.Second).UTC().Format(http.TimeFormat) }, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rc := &recorder{answer: func(n int, w http.ResponseWriter, _ *http.Request) {
					if n == 0 {
						w.Header().Set("Retry-After", tc.value(time.Now()))
						w.WriteHeader(tc.status)
						return
					}
					fmt.Fprint(w, `{"id":1,"status":"ok"}`)
				}}
				h := newHarness(t, handlerTransport{rc})
				srcs := sources(t, "  - {name: s, url: 'http://upstream.test/s', interval: 10s}\n")
				h.start(srcs)
				start := untilFirstPoll(&srcs[0])
				st := h.status("s")
				want := start.Add(120 * time.Second)
				if tc.unit > 0 {
					want = want.Truncate(tc.unit)
				}
				if !st.PausedUntil.Equal(want) || !st.NextPollAt.Equal(want) {
					t.Errorf("paused until %v, next poll %v; want both %v", st.PausedUntil, st.NextPollAt, want)
				}
				time.Sleep(130 * time.Second)
				synctest.Wait()
				ts := rc.times()
				h.close()
				if len(ts) < 2 || !ts[1].Equal(want) {
					t.Fatalf("requests at %v: want the second at %v, as asked", ts, want)
				}
				if got := counter(t, h.reg, "pollrelay_upstream_requests_total", map[string]string{"code": fmt.Sprint(tc.status)}); got != 1 {
					t.Errorf("upstream_requests_total{code=%d} = %v, want 1 (no quick retry)", tc.status, got)
				}
			})
		})
	}
}

func TestRetryAfterPausesAWatchRoundWithoutABurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rc := &recorder{answer: func(n int, w http.ResponseWriter, _ *http.Request) {
			if n == 3 {
				w.Header().Set("Retry-After", "30")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			fmt.Fprint(w, `{"status":"queued"}`)
		}}
		h := newHarness(t, handlerTransport{rc})
		putWatches(t, h.st, "w", 10)
		h.start(sources(t, "  - {name: w, url: 'http://upstream.test/tasks/{id}', interval: 10s, terminal: [done]}\n"))
		time.Sleep(4 * time.Second)
		synctest.Wait()
		if st := h.status("w"); st.PausedUntil.IsZero() {
			t.Error("status does not show the pause")
		}
		time.Sleep(36 * time.Second)
		synctest.Wait()
		ts := rc.times()[:10]
		h.close()
		g := gaps(ts)
		// 1s apart; after the 429 (request 3) nothing for 30s, then the rest
		// of the round resumes 1s apart rather than all at once.
		want := []time.Duration{time.Second, time.Second, time.Second, 31 * time.Second, time.Second, time.Second, time.Second, time.Second, time.Second}
		if !slices.Equal(g, want) {
			t.Errorf("gaps = %v, want %v", g, want)
		}
	})
}

func TestBackoffAndRecovery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rc := &recorder{answer: func(n int, w http.ResponseWriter, _ *http.Request) {
			if n < 5 {
				http.Error(w, "no", http.StatusNotFound) // not retried by the client
				return
			}
			fmt.Fprint(w, `{"id":1,"status":"ok"}`)
		}}
		h := newHarness(t, handlerTransport{rc})
		h.start(sources(t, "  - {name: s, url: 'http://upstream.test/s', interval: 10s, max_backoff: 40s}\n"))
		time.Sleep(4 * time.Minute)
		synctest.Wait()
		ts := rc.times()
		st := h.status("s")
		h.close()
		g := gaps(ts)
		if len(g) < 7 {
			t.Fatalf("only %d requests", len(ts))
		}
		// Failure 1 waits for the next slot; 2 doubles the interval, 3
		// doubles again, then max_backoff caps it; success returns to the
		// interval.
		if g[0] > 10*time.Second || g[1] != 20*time.Second || g[2] != 40*time.Second || g[3] != 40*time.Second || g[4] != 40*time.Second {
			t.Errorf("backoff gaps = %v", g[:5])
		}
		for _, d := range g[5:] {
			if d > 10*time.Second {
				t.Errorf("after recovery gaps = %v, want the 10s interval", g[5:])
				break
			}
		}
		if st.Failures != 0 || st.LastOutcome != OutcomeSuccess || st.LastError != "" {
			t.Errorf("status after recovery = %+v", st)
		}
		if got := counter(t, h.reg, "pollrelay_polls_total", map[string]string{"source": "s", "outcome": "http_error"}); got != 5 {
			t.Errorf("polls_total{http_error} = %v, want 5", got)
		}
	})
}

func TestXPollIntervalRaisesTheInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rc := &recorder{answer: func(n int, w http.ResponseWriter, _ *http.Request) {
			if n < 3 {
				w.Header().Set("X-Poll-Interval", "60")
			}
			fmt.Fprint(w, `{"id":1,"status":"ok"}`)
		}}
		h := newHarness(t, handlerTransport{rc})
		srcs := sources(t, "  - {name: s, url: 'http://upstream.test/s', interval: 10s}\n")
		h.start(srcs)
		untilFirstPoll(&srcs[0])
		if got := h.status("s").Interval; got != "1m0s" {
			t.Errorf("status interval = %s, want 1m0s", got)
		}
		time.Sleep(4 * time.Minute)
		synctest.Wait()
		ts := rc.times()
		h.close()
		g := gaps(ts)
		if len(g) < 5 {
			t.Fatalf("gaps = %v", g)
		}
		for _, d := range g[:3] {
			if d != time.Minute {
				t.Errorf("gaps while the upstream asks for 60s: %v", g[:3])
				break
			}
		}
		for _, d := range g[3:] {
			if d > 10*time.Second {
				t.Errorf("gaps after it stopped asking: %v, want the 10s interval", g[3:])
				break
			}
		}
	})
}

// TestWatchTTLExpiry: a watch whose TTL runs out fires watch_expired once
// and stops being polled, with a restart in between.
func TestWatchTTLExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rc := &recorder{answer: okJSON(`{"status":"queued"}`)}
		h := newHarness(t, handlerTransport{rc})
		srcs := sources(t, "  - {name: w, url: 'http://upstream.test/tasks/{id}', interval: 10s, watch_ttl: 1m, ids: [a], terminal: [done]}\n")
		h.start(srcs)
		time.Sleep(30 * time.Second)
		synctest.Wait()
		h.restart(srcs)
		time.Sleep(45 * time.Second)
		synctest.Wait()
		evs := h.events()
		if got := types(evs); !slices.Equal(got, []string{"w.watch_expired:a"}) {
			t.Fatalf("events = %v", got)
		}
		if e := evs[0]; string(e.Previous) != `"queued"` || e.Watch == nil || string(e.Watch.Metadata) != "{}" {
			t.Errorf("event = %+v", e)
		}
		n := len(rc.times())
		time.Sleep(time.Minute)
		synctest.Wait()
		if h.watch("w", "a") != nil || len(rc.times()) != n || len(h.events()) != 1 {
			t.Error("expired watch still polled, present or fired again")
		}
		if got := counter(t, h.reg, "pollrelay_transitions_total", map[string]string{"source": "w", "type": "watch_expired"}); got != 1 {
			t.Errorf("transitions_total{watch_expired} = %v", got)
		}
		h.close()
	})
}
