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

// Results of watch requests are written in batches: at most flushSize
// at a time, and none waits longer than flushDelay. One synced commit per
// request would cap a watch source near the disk's commit rate; batches
// keep it at a few commits a second however many ids are watched.
const (
	flushSize  = 256
	flushDelay = 100 * time.Millisecond
)

// watchDone is the outcome of one watch request.
type watchDone struct {
	ob      diff.WatchObservation
	outcome string
	err     error
	// asked is X-Poll-Interval from the response (0 = none).
	asked time.Duration
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
func (l *loop) round(ctx context.Context, start time.Time, spread bool) error {
	if !l.synced {
		l.syncWatches(start)
	}
	since := l.watchChanges()
	watches, err := l.loadWatches()
	if err != nil {
		err = &PollError{Outcome: OutcomeStore, Err: fmt.Errorf("load watches: %w", err)}
		l.finish(start, OutcomeStore, err)
		return err
	}
	l.setWatches(len(watches), since)
	// cuttable: a PollNow may cut this round short (see below).
	cuttable := spread
	if l.sched != nil {
		due, err := l.dueWatches(watches, start)
		if err != nil {
			err = &PollError{Outcome: OutcomeStore, Err: err}
			l.finish(start, OutcomeStore, err)
			return err
		}
		// PollNow (spread false) still polls every watch, as promised.
		// Otherwise each watch's due time is its own; spreading them
		// again over the round would only delay them, and `rate` still
		// smooths a burst.
		if spread {
			watches, spread, cuttable = due, false, true
		}
	}
	n := len(watches)
	iv := l.interval()
	conc := max(l.src.Concurrency, 1)
	results := make(chan watchDone, conc)

	var (
		dispatched, inflight int
		pending              []diff.WatchObservation
		firstPending         time.Time
		shift                time.Duration
		pausedUntil          time.Time
		ok, failed           int
		lastFail             error
		lastOutcome          = OutcomeSuccess
		asked                time.Duration
		storeErr             error
	)
	due := func(i int) time.Time {
		if !spread {
			return start
		}
		// i×iv/n without overflowing int64 for a million ids at 24h.
		return start.Add(shift + iv/time.Duration(n)*time.Duration(i) + iv%time.Duration(n)*time.Duration(i)/time.Duration(n))
	}
	flush := func() {
		if len(pending) == 0 {
			return
		}
		if err := l.applyWatches(pending); err != nil {
			storeErr = err
		}
		pending = pending[:0]
	}
	// A PollNow during a spread round cuts it short: what is in flight
	// finishes, and the run loop follows with a full round at once, so the
	// caller sees every watch polled after its call.
	end := n
	var interrupt chan struct{}
	if cuttable {
		interrupt = l.interrupt
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := l.m.now()
		for dispatched < end && inflight < conc && !due(dispatched).After(now) && !pausedUntil.After(now) {
			w := watches[dispatched]
			dispatched++
			if w.Expired(now) {
				if len(pending) == 0 {
					firstPending = now
				}
				pending = append(pending, diff.WatchObservation{ID: w.ID, Expired: true})
				continue
			}
			inflight++
			go func() { results <- l.fetchWatch(ctx, w) }()
		}
		if len(pending) >= flushSize || len(pending) > 0 && (now.Sub(firstPending) >= flushDelay || dispatched == end && inflight == 0) {
			flush()
		}
		if dispatched == end && inflight == 0 {
			break
		}
		var wake time.Time
		if dispatched < end && inflight < conc {
			wake = due(dispatched)
			if pausedUntil.After(wake) {
				wake = pausedUntil
			}
		}
		if len(pending) > 0 && (wake.IsZero() || firstPending.Add(flushDelay).Before(wake)) {
			wake = firstPending.Add(flushDelay)
		}
		if !wake.IsZero() {
			timer.Reset(max(wake.Sub(now), 0))
		}
		select {
		case <-ctx.Done():
			for ; inflight > 0; inflight-- {
				<-results // in-flight requests end with ctx; don't leak them
			}
			return ctx.Err()
		case <-timer.C:
		case <-interrupt:
			end, interrupt = dispatched, nil
		case d := <-results:
			inflight--
			l.m.metrics.polls.WithLabelValues(l.src.Name, d.outcome).Inc()
			asked = max(asked, d.asked)
			if d.err != nil {
				d.err = redactError(d.err, l.secrets)
				failed++
				lastFail, lastOutcome = d.err, d.outcome
				l.log.Debug("watch poll failed", "id", d.ob.ID, "outcome", d.outcome, "error", d.err.Error())
				if l.sched != nil {
					l.failedWatch(d.ob.ID, l.m.now())
				}
				if pe, isPE := errors.AsType[*PollError](d.err); isPE && pe.RetryAfter > 0 {
					now := l.m.now()
					if until := now.Add(pe.RetryAfter); until.After(pausedUntil) {
						base := now
						if pausedUntil.After(now) {
							base = pausedUntil
						}
						shift += until.Sub(base)
						pausedUntil = until
						l.setPaused(until)
					}
				}
				continue
			}
			ok++
			if l.sched != nil {
				l.observed(d.ob, l.m.now())
			}
			if len(pending) == 0 {
				firstPending = l.m.now()
			}
			pending = append(pending, d.ob)
		}
	}
	l.setPaused(time.Time{})
	if l.sched != nil {
		// Only the learning is lost on a failure; the round's results are
		// stored.
		l.noteStoreErr("save histograms", l.saveHistograms())
	}
	if ok > 0 {
		l.setAsked(asked)
	}
	l.m.metrics.duration.WithLabelValues(l.src.Name).Observe(l.m.now().Sub(start).Seconds())

	switch {
	case storeErr != nil:
		err = &PollError{Outcome: OutcomeStore, Err: storeErr}
		l.finish(start, OutcomeStore, err)
		return err
	case failed > 0 && ok == 0:
		l.finish(start, lastOutcome, lastFail)
		return lastFail
	}
	l.finish(start, OutcomeSuccess, nil)
	if failed > 0 {
		// Some ids fail while others answer: worth a line, once per kind.
		l.noteFailures(failed, n, lastFail)
	} else {
		l.noteFailures(0, n, nil)
	}
	return nil
}

// fetchWatch polls one watched id.
func (l *loop) fetchWatch(ctx context.Context, w store.Watch) watchDone {
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
func (l *loop) applyWatches(obs []diff.WatchObservation) error {
	res, err := diff.ApplyWatches(l.ctx, l.m.st, l.src.Source, obs, l.m.now())
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
func (l *loop) noteStoreErr(what string, err error) {
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
func (l *loop) noteFailures(failed, total int, example error) {
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
func (l *loop) syncWatches(now time.Time) {
	added, removed, err := diff.SyncConfigWatches(l.m.st, l.src.Source, now)
	if err != nil {
		l.log.Warn("sync configured ids", "error", err.Error())
		return
	}
	if l.src.WatchFrom != "" {
		n, err := diff.WatchListed(l.m.st, l.src.Source, now)
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
func (l *loop) loadWatches() ([]store.Watch, error) {
	type keyed struct {
		h uint64
		w store.Watch
	}
	var ks []keyed
	err := l.m.st.View(func(t store.Txn) error {
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
func (l *loop) watchChanges() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.watchAdds
}

// setWatches records the n watches a round loaded, unless a watch was
// added or removed since (a PUT or DELETE racing the load): the load may
// or may not have seen it, and its own count already moved the number.
// The next round sets it again.
func (l *loop) setWatches(n int, since uint64) {
	l.mu.Lock()
	if l.watchAdds == since {
		l.st.WatchesActive = n
	}
	v := l.st.WatchesActive
	l.mu.Unlock()
	l.m.metrics.watches.WithLabelValues(l.src.Name).Set(float64(v))
}

func (l *loop) addWatches(n int) {
	l.mu.Lock()
	l.watchAdds++
	l.st.WatchesActive = max(l.st.WatchesActive+n, 0)
	v := l.st.WatchesActive
	l.mu.Unlock()
	l.m.metrics.watches.WithLabelValues(l.src.Name).Set(float64(v))
}

func (l *loop) setPaused(until time.Time) {
	l.mu.Lock()
	l.st.PausedUntil = until
	l.mu.Unlock()
}
