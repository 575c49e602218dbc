package poller

import (
	"context"
	"errors"
	"time"

	"github.com/pollrelay/pollrelay/diff"
	"github.com/pollrelay/pollrelay/poller/adaptive"
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
	// hint is what the response said of the item's progress.
	hint adaptive.Hint
}

// watchRound is one round over a watch source's watches (see
// watchLoop.round): it dispatches the requests as they fall due, collects
// their results and writes them in batches.
type watchRound struct {
	l       *watchLoop
	ctx     context.Context
	start   time.Time
	watches []store.Watch
	spread  bool
	iv      time.Duration
	conc    int
	results chan watchDone
	timer   *time.Timer
	// cut is closed by a PollNow; nil once seen, and for a round that
	// answers one.
	cut <-chan struct{}

	// end is how many watches the round polls: all, or those dispatched
	// when a PollNow cut it short.
	end, dispatched, inflight int
	pending                   []diff.WatchObservation
	firstPending              time.Time
	// shift delays what remains of a spread round by the pauses a
	// Retry-After asked for; pausedUntil is the last pause's end.
	shift       time.Duration
	pausedUntil time.Time
	ok, failed  int
	lastFail    error
	lastOutcome string
	asked       time.Duration
	storeErr    error
}

func newWatchRound(ctx context.Context, l *watchLoop, start time.Time, watches []store.Watch, spread bool, cut <-chan struct{}) *watchRound {
	conc := max(l.src.Concurrency, 1)
	return &watchRound{
		l: l, ctx: ctx, start: start, watches: watches, spread: spread, cut: cut,
		iv: l.interval(), conc: conc, results: make(chan watchDone, conc),
		end: len(watches), lastOutcome: OutcomeSuccess,
	}
}

// run dispatches and collects until every watch dispatched has answered,
// or the context ends (its error is returned, and nothing recorded).
func (r *watchRound) run() error {
	r.timer = time.NewTimer(time.Hour)
	defer r.timer.Stop()
	for {
		now := r.l.m.now()
		r.dispatch(now)
		if r.flushDue(now) {
			r.flush()
		}
		if r.done() {
			return nil
		}
		r.arm(now)
		if err := r.wait(); err != nil {
			return err
		}
	}
}

// due is when request i starts.
func (r *watchRound) due(i int) time.Time {
	if !r.spread {
		return r.start
	}
	// i×iv/n without overflowing int64 for a million ids at 24h.
	n := time.Duration(len(r.watches))
	return r.start.Add(r.shift + r.iv/n*time.Duration(i) + r.iv%n*time.Duration(i)/n)
}

// dispatch starts the requests due by now, within the concurrency and any
// pause; an expired watch needs no request, only its result written.
func (r *watchRound) dispatch(now time.Time) {
	for r.dispatched < r.end && r.inflight < r.conc && !r.due(r.dispatched).After(now) && !r.pausedUntil.After(now) {
		w := r.watches[r.dispatched]
		r.dispatched++
		if w.Expired(now) {
			if len(r.pending) == 0 {
				r.firstPending = now
			}
			r.pending = append(r.pending, diff.WatchObservation{ID: w.ID, Expired: true})
			continue
		}
		r.inflight++
		go func() { r.results <- r.l.fetchWatch(r.ctx, w) }()
	}
}

func (r *watchRound) done() bool { return r.dispatched == r.end && r.inflight == 0 }

// flushDue reports whether the pending results are written now: a full
// batch, one that waited flushDelay, or the round's last.
func (r *watchRound) flushDue(now time.Time) bool {
	return len(r.pending) >= flushSize || len(r.pending) > 0 && (now.Sub(r.firstPending) >= flushDelay || r.done())
}

func (r *watchRound) flush() {
	if len(r.pending) == 0 {
		return
	}
	if err := r.l.applyWatches(r.pending); err != nil {
		r.storeErr = err
	}
	r.pending = r.pending[:0]
}

// arm sets the timer for the next request due or the pending batch's
// flush, whichever comes first.
func (r *watchRound) arm(now time.Time) {
	var wake time.Time
	if r.dispatched < r.end && r.inflight < r.conc {
		wake = r.due(r.dispatched)
		if r.pausedUntil.After(wake) {
			wake = r.pausedUntil
		}
	}
	if len(r.pending) > 0 && (wake.IsZero() || r.firstPending.Add(flushDelay).Before(wake)) {
		wake = r.firstPending.Add(flushDelay)
	}
	if !wake.IsZero() {
		r.timer.Reset(max(wake.Sub(now), 0))
	}
}

// wait blocks until the timer fires, a result arrives or a PollNow cuts
// the round short; it returns the context's error when it ends.
func (r *watchRound) wait() error {
	select {
	case <-r.ctx.Done():
		for ; r.inflight > 0; r.inflight-- {
			<-r.results // in-flight requests end with ctx; don't leak them
		}
		return r.ctx.Err()
	case <-r.timer.C:
	case <-r.cut:
		r.end, r.cut = r.dispatched, nil
	case d := <-r.results:
		r.received(d)
	}
	return nil
}

// received accounts for one request's result.
func (r *watchRound) received(d watchDone) {
	l := r.l
	r.inflight--
	l.m.metrics.polls.WithLabelValues(l.src.Name, d.outcome).Inc()
	r.asked = max(r.asked, d.asked)
	if d.err != nil {
		r.failedOne(d)
		return
	}
	r.ok++
	if l.sched != nil {
		l.observed(d.ob, d.hint, l.m.now())
	}
	if len(r.pending) == 0 {
		r.firstPending = l.m.now()
	}
	r.pending = append(r.pending, d.ob)
}

// failedOne accounts for a failed request; a Retry-After pauses the round.
func (r *watchRound) failedOne(d watchDone) {
	l := r.l
	d.err = redactError(d.err, l.secrets)
	r.failed++
	r.lastFail, r.lastOutcome = d.err, d.outcome
	l.log.Debug("watch poll failed", "id", d.ob.ID, "outcome", d.outcome, "error", d.err.Error())
	if l.sched != nil {
		l.failedWatch(d.ob.ID, l.m.now())
	}
	if pe, isPE := errors.AsType[*PollError](d.err); isPE && pe.RetryAfter > 0 {
		r.pause(pe.RetryAfter)
	}
}

// pause holds the round for d from now, shifting what remains of it by as
// much as the pause grew.
func (r *watchRound) pause(d time.Duration) {
	now := r.l.m.now()
	if until := now.Add(d); until.After(r.pausedUntil) {
		base := now
		if r.pausedUntil.After(now) {
			base = r.pausedUntil
		}
		r.shift += until.Sub(base)
		r.pausedUntil = until
		r.l.setPaused(until)
	}
}

// conclude records the round's outcome: it failed if its results could
// not be stored, or if every request failed.
func (r *watchRound) conclude() error {
	l := r.l
	l.setPaused(time.Time{})
	if l.sched != nil {
		// Only the learning is lost on a failure; the round's results are
		// stored.
		l.noteStoreErr("save histograms", l.saveHistograms())
	}
	if r.ok > 0 {
		l.setAsked(r.asked)
	}
	l.m.metrics.duration.WithLabelValues(l.src.Name).Observe(l.m.now().Sub(r.start).Seconds())

	switch {
	case r.storeErr != nil:
		err := storeFailure(r.storeErr)
		l.finish(r.start, err.Outcome, err)
		return err
	case r.failed > 0 && r.ok == 0:
		l.finish(r.start, r.lastOutcome, r.lastFail)
		return r.lastFail
	}
	l.finish(r.start, OutcomeSuccess, nil)
	if r.failed > 0 {
		// Some ids fail while others answer: worth a line, once per kind.
		l.noteFailures(r.failed, len(r.watches), r.lastFail)
	} else {
		l.noteFailures(0, len(r.watches), nil)
	}
	return nil
}
