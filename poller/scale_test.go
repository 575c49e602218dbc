package poller

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pollrelay/pollrelay/config"
)

// manySources is n list sources named s0…s{n-1} polling base+/s/i.
func manySources(t *testing.T, n int, base, interval, extra string) []config.Source {
	t.Helper()
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "  - {name: s%d, url: '%s/s/%d', interval: %s, items: '.data[]'%s}\n", i, base, i, interval, extra)
	}
	return sources(t, b.String())
}

// TestFirstPollsSpreadOverTheInterval starts 300 list sources with the
// same interval, as a restart does, and records each one's first request:
// each comes at the source's own offset into the interval (the slot its
// later polls keep), so no tenth of the interval holds much more than a
// tenth of them. None has stored state: a new source waits for its slot
// too.
func TestFirstPollsSpreadOverTheInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, interval, buckets = 300, 10 * time.Second, 10
		var mu sync.Mutex
		first := map[string]time.Time{}
		polls := map[string]int{}
		up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			if _, ok := first[r.URL.Path]; !ok {
				first[r.URL.Path] = time.Now()
			}
			polls[r.URL.Path]++
			mu.Unlock()
			fmt.Fprint(w, `{"data":[{"id":"a","status":"ready"}]}`)
		})
		h := newHarnessLog(t, handlerTransport{up}, slog.New(slog.DiscardHandler))
		srcs := manySources(t, n, "http://upstream.test", "10s", "")
		start := time.Now()
		h.start(srcs)
		time.Sleep(interval - time.Nanosecond)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(first) != n {
			t.Fatalf("%d of %d sources polled within the first interval", len(first), n)
		}
		var count [buckets]int
		for i, s := range srcs {
			at := first[fmt.Sprintf("/s/%d", i)]
			if want := start.Add(offset(s.Name, interval)); !at.Equal(want) {
				t.Errorf("%s: first poll at +%v, want its offset +%v", s.Name, at.Sub(start), want.Sub(start))
			}
			if polls[fmt.Sprintf("/s/%d", i)] != 1 {
				t.Errorf("%s polled %d times in one interval", s.Name, polls[fmt.Sprintf("/s/%d", i)])
			}
			count[at.Sub(start)*buckets/interval]++
		}
		// Evenly spread is n/buckets (30) each; the hash is not perfectly
		// even, so allow half as much again. All at once is 300 in one.
		for b, c := range count {
			if c > n/buckets*3/2 {
				t.Errorf("%d first polls in tenth %d of the interval, want at most %d: %v", c, b, n/buckets*3/2, count)
				break
			}
		}
		h.close()
	})
}

// seriesOf counts the gathered series labelled source=name.
func seriesOf(t *testing.T, reg *prometheus.Registry, name string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "source" && lp.GetValue() == name {
					n++
				}
			}
		}
	}
	return n
}

// TestReloadsKeepGoroutinesFlat polls 200 list sources over real
// connections, then reloads the same config, a changed one (every source
// restarts), one without half of them and the first again, several
// times: after each, the goroutine count comes back to where it was. A
// loop of a changed or removed source must leave nothing behind (its
// connections above all, and a removed one's metric series); an
// unchanged one keeps its loop.
func TestReloadsKeepGoroutinesFlat(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		fmt.Fprint(w, `{"data":[{"id":"a","status":"ready"}]}`)
	}))
	defer srv.Close()
	h := newHarnessLog(t, nil, slog.New(slog.DiscardHandler))
	const n = 200
	base := manySources(t, n, srv.URL, "1h", "")
	changed := manySources(t, n, srv.URL, "1h", ", object: '{id}'")
	half := base[:n/2]
	pollAll := func(srcs []config.Source) {
		t.Helper()
		var wg sync.WaitGroup
		for _, s := range srcs {
			wg.Go(func() { h.mustPoll(s.Name) })
		}
		wg.Wait()
	}
	h.start(base)
	pollAll(base)
	runtime.GC()
	baseline := runtime.NumGoroutine()
	// Idle connections the shared pool keeps are the slack; a loop or a
	// transport left behind per source would be hundreds.
	const slack = 20
	settled := func(step string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > baseline+slack {
			if time.Now().After(deadline) {
				t.Fatalf("after %s: %d goroutines, %d before the reloads", step, runtime.NumGoroutine(), baseline)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for round := range 3 {
		for _, step := range []struct {
			name string
			srcs []config.Source
			// restarts: s0's settings differ from the running ones.
			restarts bool
		}{{"the same config", base, false}, {"a changed config", changed, true}, {"half the sources", half, true}, {"the first config", base, false}} {
			prev := h.m.loop("s0")
			h.m.Apply(step.srcs)
			if restarted := h.m.loop("s0") != prev; restarted != step.restarts {
				t.Errorf("after %s: s0's loop restarted: %v", step.name, restarted)
			}
			pollAll(step.srcs)
			settled(fmt.Sprintf("round %d, %s", round+1, step.name))
			if got := seriesOf(t, h.reg, fmt.Sprintf("s%d", n-1)); (len(step.srcs) == n) != (got > 0) {
				t.Errorf("after %s: %d series of s%d", step.name, got, n-1)
			}
		}
	}
	if got := len(h.m.Status()); got != n {
		t.Errorf("%d sources after the reloads, want %d", got, n)
	}
	t.Logf("%d requests; goroutines %d before the reloads, %d after", requests.Load(), baseline, runtime.NumGoroutine())
}
