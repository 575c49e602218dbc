package poller

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pollrelay/pollrelay/store"
)

// stayUpstream serves tasks that are queued for exactly stay after their
// first request, then done; it records every request's time per id.
type stayUpstream struct {
	mu    sync.Mutex
	stay  time.Duration
	first map[string]time.Time
	polls map[string][]time.Time
}

func (u *stayUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	defer u.mu.Unlock()
	id := r.URL.Path[len("/tasks/"):]
	now := time.Now()
	if _, ok := u.first[id]; !ok {
		u.first[id] = now
	}
	u.polls[id] = append(u.polls[id], now)
	st := "queued"
	if now.Sub(u.first[id]) >= u.stay {
		st = "done"
	}
	fmt.Fprintf(w, `{"status": %q}`, st)
}

// costs returns the mean requests per task and mean detection delay of
// the ids with the given prefix, and the shortest gap between two polls
// of one id.
func (u *stayUpstream) costs(prefix string) (reqs float64, delay, minGap time.Duration) {
	u.mu.Lock()
	defer u.mu.Unlock()
	var n int
	minGap = time.Hour
	for id, ps := range u.polls {
		if id[:len(prefix)] != prefix {
			continue
		}
		n++
		reqs += float64(len(ps))
		delay += ps[len(ps)-1].Sub(u.first[id].Add(u.stay))
		for i := 1; i < len(ps); i++ {
			minGap = min(minGap, ps[i].Sub(ps[i-1]))
		}
	}
	return reqs / float64(n), delay / time.Duration(n), minGap
}

func putNamedWatches(t *testing.T, st store.Store, source, prefix string, n int) {
	t.Helper()
	err := st.Update(func(tx store.Txn) error {
		for i := range n {
			w := &store.Watch{Source: source, ID: fmt.Sprintf("%s%02d", prefix, i), Origin: store.OriginAPI, CreatedAt: time.Now()}
			if err := tx.PutWatch(w); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestAdaptiveWatchSource: 30 tasks, each queued for 65s, are polled at
// the fixed 10s fallback while the source learns; 30 more are then polled
// from what it learned, with fewer requests and a shorter delay, never
// more often than min_interval. The learning survives a restart.
func TestAdaptiveWatchSource(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &stayUpstream{stay: 65 * time.Second, first: map[string]time.Time{}, polls: map[string][]time.Time{}}
		h := newHarness(t, handlerTransport{up})
		srcs := sources(t, "  - {name: w, url: 'http://upstream.test/tasks/{id}', interval: adaptive, min_interval: 2s, terminal: [done]}\n")
		if !srcs[0].Adaptive() || srcs[0].Interval != 15*time.Second {
			t.Fatalf("source = adaptive %v, interval %v", srcs[0].Adaptive(), srcs[0].Interval)
		}
		putNamedWatches(t, h.st, "w", "a", 30)
		h.start(srcs)
		time.Sleep(3 * time.Minute)
		synctest.Wait()
		// A restart keeps what was learned: the histogram is in Badger.
		h.restart(srcs)
		putNamedWatches(t, h.st, "w", "b", 30)
		time.Sleep(3 * time.Minute)
		synctest.Wait()

		fixedReqs, fixedDelay, _ := up.costs("a")
		reqs, delay, minGap := up.costs("b")
		t.Logf("learning (fixed 15s): %.1f requests per task, mean delay %v", fixedReqs, fixedDelay)
		t.Logf("adaptive:             %.1f requests per task, mean delay %v", reqs, delay)
		if reqs > fixedReqs || delay >= fixedDelay {
			t.Errorf("adaptive spent %.1f requests for %v delay; fixed %.1f for %v", reqs, delay, fixedReqs, fixedDelay)
		}
		if minGap < 2*time.Second {
			t.Errorf("an id was polled %v after its previous poll, below min_interval 2s", minGap)
		}
		var states []string
		err := h.st.View(func(tx store.Txn) error {
			return tx.Histograms("w", func(state string, _ []byte) error {
				states = append(states, state)
				return nil
			})
		})
		if err != nil || len(states) != 1 || states[0] != `"queued"` {
			t.Errorf("stored histograms = %q, %v; want one for \"queued\"", states, err)
		}
		if got := histogramCount(t, h, "pollrelay_detection_delay_seconds"); got != 30 {
			t.Errorf("detection_delay_seconds count after the restart = %d, want 30", got)
		}
		h.close()
	})
}

// histogramCount returns the sample count of a histogram metric.
func histogramCount(t *testing.T, h *harness, name string) uint64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	return 0
}

// progressUpstream is a job that runs 100s from the first request for
// it, reporting its progress in percent, or only the time it has left.
type progressUpstream struct {
	mu    sync.Mutex
	start time.Time
	polls []time.Time
	eta   bool
}

func (u *progressUpstream) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	u.mu.Lock()
	defer u.mu.Unlock()
	now := time.Now()
	if u.start.IsZero() {
		u.start = now
	}
	u.polls = append(u.polls, now)
	took := now.Sub(u.start)
	switch {
	case took >= 100*time.Second:
		fmt.Fprint(w, `{"status": "done", "progress": 100}`)
	case u.eta:
		fmt.Fprintf(w, `{"status": "running", "left": %d}`, int((100*time.Second - took).Seconds()))
	default:
		fmt.Fprintf(w, `{"status": "running", "progress": %d}`, int(took.Seconds()))
	}
}

// An adaptive watch source with progress: (or eta:) polls its job just
// after the completion it predicts: a few requests where the fixed
// fallback (15s) would make seven, and the end seen within seconds.
func TestAdaptiveProgressAndETA(t *testing.T) {
	for _, hint := range []string{"progress: .progress", "eta: .left"} {
		t.Run(hint, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				up := &progressUpstream{eta: strings.HasPrefix(hint, "eta")}
				h := newHarness(t, handlerTransport{up})
				srcs := sources(t, "  - {name: w, url: 'http://upstream.test/jobs/{id}', interval: adaptive, terminal: [done], "+hint+"}\n")
				putNamedWatches(t, h.st, "w", "j", 1)
				h.start(srcs)
				time.Sleep(5 * time.Minute)
				synctest.Wait()
				evs := types(h.events())
				h.close()
				up.mu.Lock()
				defer up.mu.Unlock()
				last := up.polls[len(up.polls)-1].Sub(up.start)
				t.Logf("%d requests; the end seen %v after it", len(up.polls), last-100*time.Second)
				if len(up.polls) > 4 || last < 100*time.Second || last > 105*time.Second {
					t.Errorf("polled at %v: want at most 4 requests, the last within 5s after the end at 100s", up.polls)
				}
				if len(evs) != 1 || !strings.HasSuffix(evs[0], ":j00") {
					t.Errorf("events = %v, want the one terminal event of j00", evs)
				}
			})
		})
	}
}
