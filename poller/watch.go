package poller

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/pollrelay/pollrelay/diff"
	"github.com/pollrelay/pollrelay/store"
)

// watchLoop polls a watch source: a round of one request per watched id.
type watchLoop struct {
	*loop
	// synced is set once `ids:` and watch_from items have been turned
	// into watches (retried each round until it works).
	synced bool
	// sched is the per-watch schedule of an adaptive source; nil
	// otherwise. Only the polling goroutine touches it.
	sched *sched
	// storeErrs are the store failures of rounds last logged, by what
	// failed (see noteStoreErr); guarded by mu.
	storeErrs map[string]string
	// watchAdds counts addWatches calls, so a round's count of the watches
	// it loaded does not overwrite one that changed meanwhile; guarded by
	// mu.
	watchAdds uint64
}

func newWatchLoop(l *loop) *watchLoop {
	w := &watchLoop{loop: l}
	if l.src.Adaptive() {
		w.sched = newSched()
		l.m.metrics.detectionDelay.WithLabelValues(l.src.Name)
	}
	return w
}

// pollOnce is a round; one that no PollNow waits for (cut set) is spread
// over the interval, and a PollNow cuts it short.
func (l *watchLoop) pollOnce(ctx context.Context, start time.Time, cut <-chan struct{}) error {
	return l.round(ctx, start, cut)
}

// round polls every watch of the source once. Spread, request i of n
// starts at start + i×interval/n, so 10,000 ids at 10s become one request
// per millisecond, never a burst; otherwise (PollNow) all are due at once.
// Either way at most `concurrency` requests are in flight and `rate` holds.
// A 429/503 with Retry-After pauses the round and shifts what remains of
// it by the pause, so it resumes spread out rather than in a catch-up
// burst. The round fails only when every request failed: one bad id is
// that watch's problem, not the source's. An adaptive source's round
// (every min_interval) polls only the watches due by their own schedule
// (adaptive.go); PollNow still polls them all.
//
// A round no PollNow waits for (cut set) is spread, and a PollNow cuts it
// short: what is in flight finishes, and the run loop follows with a full
// round at once, so the caller sees every watch polled after its call.
func (l *watchLoop) round(ctx context.Context, start time.Time, cut <-chan struct{}) error {
	watches, spread, err := l.roundWatches(start, cut != nil)
	if err != nil {
		err = &PollError{Outcome: OutcomeStore, Err: err}
		l.finish(start, OutcomeStore, err)
		return err
	}
	r := newWatchRound(ctx, l, start, watches, spread, cut)
	if err := r.run(); err != nil {
		return err
	}
	return r.conclude()
}

// roundWatches loads the watches a round polls, and whether it spreads
// them over the interval.
func (l *watchLoop) roundWatches(start time.Time, spread bool) ([]store.Watch, bool, error) {
	if !l.synced {
		l.syncWatches(start)
	}
	since := l.watchChanges()
	watches, err := l.loadWatches()
	if err != nil {
		return nil, false, fmt.Errorf("load watches: %w", err)
	}
	l.setWatches(len(watches), since)
	if l.sched != nil {
		due, err := l.dueWatches(watches, start)
		if err != nil {
			return nil, false, err
		}
		// PollNow (spread false) still polls every watch, as promised.
		// Otherwise each watch's due time is its own; spreading them
		// again over the round would only delay them, and `rate` still
		// smooths a burst.
		if spread {
			watches, spread = due, false
		}
	}
	return watches, spread, nil
}

// fetchWatch polls one watched id.
func (l *watchLoop) fetchWatch(ctx context.Context, w store.Watch) watchDone {
	d := watchDone{ob: diff.WatchObservation{ID: w.ID}}
	var hdr http.Header
	if w.ValidatorsFor == l.vkey {
		hdr = conditional(w.ETag, w.LastModified)
	}
	resp, err := l.f.do(ctx, watchURL(l.src.URL, w.ID), watchBody(l.src.body, w.ID), hdr)
	if err == nil {
		d.asked = pollInterval(resp.header)
		if resp.status == http.StatusNotModified {
			d.ob.NotModified, d.outcome = true, OutcomeNotModified
			return d
		}
		var doc any
		if doc, err = decode(resp.body, resp.status); err == nil {
			d.ob.Observation, err = extractWatch(ctx, l.src, doc, w.ID)
		}
		if err == nil && (l.src.progress != nil || l.src.eta != nil) {
			d.hint = hintOf(ctx, l.src, doc, l.m.now())
		}
		d.ob.Validators = diff.Validators{ETag: resp.header.Get("ETag"), LastModified: resp.header.Get("Last-Modified"), For: l.vkey}
	}
	if err != nil {
		d.err, d.outcome = fmt.Errorf("watch %s: %w", w.ID, err), OutcomeNetwork
		if pe, ok := errors.AsType[*PollError](err); ok {
			d.outcome = pe.Outcome
		}
		return d
	}
	d.outcome = OutcomeSuccess
	return d
}

// applyWatches writes a batch of watch results and accounts for them.
func (l *watchLoop) applyWatches(obs []diff.WatchObservation) error {
	res, err := diff.ApplyWatches(l.ctx, l.store(), l.src.Source, obs, l.m.now())
	for _, t := range res.Transitions {
		l.m.metrics.transitions.WithLabelValues(l.src.Name, t.Kind).Inc()
	}
	for _, e := range res.RuleErrors {
		l.log.Warn("event rule failed", "error", e.Error())
	}
	for _, e := range res.Events {
		l.log.Debug("event", "event_id", e.ID, "type", e.Type, "item", e.ItemID)
	}
	if res.Ended+res.Expired > 0 {
		l.log.Info("watches ended", "terminal", res.Ended, "expired", res.Expired)
	}
	l.mu.Lock()
	l.st.ItemsTracked += res.NewItems
	l.st.WatchesActive -= res.Ended + res.Expired
	tracked, active := l.st.ItemsTracked, l.st.WatchesActive
	l.mu.Unlock()
	l.m.metrics.tracked.WithLabelValues(l.src.Name).Set(float64(tracked))
	l.m.metrics.watches.WithLabelValues(l.src.Name).Set(float64(active))
	l.noteStoreErr("write watch results", err)
	return err
}

// noteStoreErr logs a failure to store a watch round's results or
// learning once until it changes, and the next success once: a store that
// refuses writes (a full disk) would otherwise be logged every round.
func (l *watchLoop) noteStoreErr(what string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.storeErrs == nil {
		l.storeErrs = map[string]string{}
	}
	switch {
	case err != nil && err.Error() != l.storeErrs[what]:
		l.log.Warn(what, "error", err.Error())
		l.storeErrs[what] = err.Error()
	case err == nil && l.storeErrs[what] != "":
		l.log.Info(what + " works again")
		delete(l.storeErrs, what)
	}
}

// noteFailures logs a round in which some watches failed, once until the
// kind of failure changes, and the round after which none failed.
func (l *watchLoop) noteFailures(failed, total int, example error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if failed == 0 {
		if l.lastErr != "" {
			l.log.Info("watch polls recovered")
			l.lastErr = ""
		}
		return
	}
	kind := "partial"
	if pe, ok := errors.AsType[*PollError](example); ok {
		kind = pe.Outcome
	}
	if kind != l.lastErr {
		l.log.Warn("some watch polls failed", "failed", failed, "watches", total, "error", example.Error())
		l.lastErr = kind
	}
}

// syncWatches turns `ids:` and the watch_from list's items into watches.
// It runs before the first round and again before each round until it
// succeeds.
func (l *watchLoop) syncWatches(now time.Time) {
	added, removed, err := diff.SyncConfigWatches(l.store(), l.src.Source, now)
	if err != nil {
		l.log.Warn("sync configured ids", "error", err.Error())
		return
	}
	if l.src.WatchFrom != "" {
		n, err := diff.WatchListed(l.store(), l.src.Source, now)
		if err != nil {
			l.log.Warn("watch items of watch_from source", "watch_from", l.src.WatchFrom, "error", err.Error())
			return
		}
		added += n
	}
	if added+removed > 0 {
		l.log.Info("watches synced", "added", added, "removed", removed)
	}
	l.synced = true
}

// loadWatches returns the source's watches in a stable order by hash of
// id: each id keeps its place in the round from one round to the next,
// and ids with a common prefix don't cluster.
func (l *watchLoop) loadWatches() ([]store.Watch, error) {
	type keyed struct {
		h uint64
		w store.Watch
	}
	var ks []keyed
	err := l.store().View(func(t store.Txn) error {
		return t.Watches(l.src.Name, "", "", func(w *store.Watch) bool {
			h := fnv.New64a()
			h.Write([]byte(w.ID))
			ks = append(ks, keyed{h.Sum64(), *w})
			return true
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ks, func(a, b keyed) int {
		if a.h != b.h {
			if a.h < b.h {
				return -1
			}
			return 1
		}
		return strings.Compare(a.w.ID, b.w.ID)
	})
	out := make([]store.Watch, len(ks))
	for i := range ks {
		out[i] = ks[i].w
	}
	return out, nil
}

// watchChanges counts the watches added or removed outside rounds so far.
func (l *watchLoop) watchChanges() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.watchAdds
}

// setWatches records the n watches a round loaded, unless a watch was
// added or removed since (a PUT or DELETE racing the load): the load may
// or may not have seen it, and its own count already moved the number.
// The next round sets it again.
func (l *watchLoop) setWatches(n int, since uint64) {
	l.mu.Lock()
	if l.watchAdds == since {
		l.st.WatchesActive = n
	}
	v := l.st.WatchesActive
	l.mu.Unlock()
	l.m.metrics.watches.WithLabelValues(l.src.Name).Set(float64(v))
}

func (l *watchLoop) addWatches(n int) {
	l.mu.Lock()
	l.watchAdds++
	l.st.WatchesActive = max(l.st.WatchesActive+n, 0)
	v := l.st.WatchesActive
	l.mu.Unlock()
	l.m.metrics.watches.WithLabelValues(l.src.Name).Set(float64(v))
}

func (l *watchLoop) setPaused(until time.Time) {
	l.mu.Lock()
	l.st.PausedUntil = until
	l.mu.Unlock()
}
