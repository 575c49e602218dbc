package poller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/internal/redact"
	"github.com/pollrelay/pollrelay/store"
)

// Kinds of source, as Status shows them.
const (
	KindList   = "list"   // `items:` yields many items per response
	KindSingle = "single" // one object per response
	KindWatch  = "watch"  // one request per watched id ({id} in the URL)
)

// Status is what the API shows about a source (GET /v1/sources).
type Status struct {
	Name string `json:"name"`
	URL  string `json:"url"` // credentials and query values redacted
	Kind string `json:"kind"`
	// Interval is the configured interval, or the longer one the upstream
	// asked for with X-Poll-Interval.
	Interval string `json:"interval"`
	// LastPollAt is when the last poll (for a watch source: the last round
	// over its watches) started; LastOutcome is one of the Outcome*
	// values and LastError its message when it failed.
	LastPollAt  time.Time `json:"last_poll_at,omitzero"`
	LastOutcome string    `json:"last_outcome,omitempty"`
	LastError   string    `json:"last_error,omitempty"`
	// LastDurationMS is how long that poll (or round) took.
	LastDurationMS float64   `json:"last_duration_ms,omitempty"`
	LastSuccess    time.Time `json:"last_success_at,omitzero"`
	// ItemsTracked counts stored items; WatchesActive the ids a watch
	// source polls.
	ItemsTracked  int       `json:"items_tracked"`
	WatchesActive int       `json:"watches_active"`
	NextPollAt    time.Time `json:"next_poll_at,omitzero"`
	// PausedUntil is set while the source honours a 429/503 Retry-After.
	PausedUntil time.Time `json:"paused_until,omitzero"`
	Failures    int       `json:"consecutive_failures"`
	// Progress is set while a listing is being fetched, page by page.
	Progress *Progress `json:"progress,omitempty"`
	// Holder is the member that holds the source's lease and polls it,
	// as this member last saw; empty while no live member holds it.
	Holder string `json:"holder,omitempty"`
	// Listing, for an incremental source, says what its last successful
	// poll asked for: "full", or "changes" since Watermark (as sent).
	Listing   string `json:"listing,omitempty"`
	Watermark string `json:"watermark,omitempty"`
}

// Progress is how far a running poll has come: a long first listing can
// take minutes, and this is what an operator watches meanwhile.
type Progress struct {
	StartedAt time.Time `json:"started_at"`
	Pages     int       `json:"pages"`
	Items     int       `json:"items"`
}

// progressLogEvery is how often a poll still running logs how far it got;
// a poll shorter than that logs nothing.
const progressLogEvery = 10 * time.Second

func sortStatus(s []Status) {
	slices.SortFunc(s, func(a, b Status) int { return strings.Compare(a.Name, b.Name) })
}

// loop schedules and runs the polls of one source: at most one at a time,
// on the manager's scheduler or at once for PollNow. What a poll does is
// its kind's: a listLoop's listing or a watchLoop's round.
type loop struct {
	kind   pollKind
	m      *Manager
	src    *compiled
	f      *fetcher
	log    *slog.Logger
	off    time.Duration
	vkey   string // validatorsFor(src)
	ctx    context.Context
	cancel context.CancelFunc
	// due and idx are the loop's place on the manager's scheduler, which
	// guards them.
	due time.Time
	idx int

	// gate guards running, stopped and waiters; it is taken before the
	// scheduler's lock, never after.
	gate sync.Mutex
	// running is set while a goroutine polls; at most one does.
	running bool
	stopped bool
	// held is set while this member holds the source's lease, under
	// token; only then does a poll start. cancelPoll cancels the poll
	// in progress, for a lease that expired under it.
	held       bool
	token      int64
	cancelPoll context.CancelFunc
	// waiters are PollNow calls the next poll answers.
	waiters []chan error
	// runs counts the polling goroutine, so stop can wait for it.
	runs sync.WaitGroup
	// cut is the running poll's, made by the polling goroutine for a poll
	// no PollNow waits for and closed by the first PollNow that arrives
	// meanwhile (both under gate): a spread watch round ends early then.
	cut chan struct{}

	mu sync.Mutex
	st Status
	// asked is the interval X-Poll-Interval asked for; 0 = none.
	asked time.Duration
	// lastErr is the failure last logged, so a repeated failure is logged
	// once and its recovery once.
	lastErr string
	// secrets are the source's credentials, cut from every error shown.
	secrets *redact.Set
	// db is the store a poll reads and writes through: fenced by the
	// lease's token while the lease is held.
	db atomic.Pointer[storeRef]
}

// watchKind is l's watch loop, if it polls a watch source (l may be nil).
func (l *loop) watchKind() (*watchLoop, bool) {
	if l == nil {
		return nil, false
	}
	w, ok := l.kind.(*watchLoop)
	return w, ok
}

// pollKind is what a loop does each time it polls.
type pollKind interface {
	// pollOnce polls once. cut is closed by a PollNow that arrives
	// meanwhile, and nil when the poll answers one.
	pollOnce(ctx context.Context, start time.Time, cut <-chan struct{}) error
}

func newLoop(m *Manager, src *compiled) *loop {
	ctx := m.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithCancel(ctx)
	log := m.log.With("source", src.Name)
	m.metrics.initSource(src.Name)
	kind := KindSingle
	switch {
	case src.IsWatch():
		kind = KindWatch
	case src.items != nil:
		kind = KindList
	}
	l := &loop{
		m: m, src: src, log: log, ctx: ctx, cancel: cancel, secrets: sourceSecrets(src.cfg()),
		off:  offset(src.Name, src.Interval),
		vkey: validatorsFor(src),
		idx:  -1,
		st:   Status{Name: src.Name, URL: redact.URL(src.URL), Kind: kind, Interval: statusInterval(src.cfg())},
	}
	if src.cron != nil {
		l.off = offset(src.Name, src.cron.Spread(m.now()))
		l.st.Interval = src.cron.String()
	}
	l.db.Store(&storeRef{m.st})
	if src.IsWatch() {
		l.kind = newWatchLoop(l)
	} else {
		l.kind = &listLoop{loop: l}
	}
	rt := m.transport
	if rt == nil {
		rt = m.pool.get(transportKey(src.cfg()))
	}
	l.f = newFetcher(src, log, func(code int) {
		m.metrics.requests.WithLabelValues(src.Name, strconv.Itoa(code)).Inc()
	}, rt)
	return l
}

// firstPoll is when a source just started polls first: its slot on the
// grid, as every later poll, so a restart of many sources does not poll
// them all at once, whether or not they have stored state (a new source
// waits too: at most the interval its config asks for). A watch source
// starts its first round at once: the round spreads its requests over the
// interval itself.
func (l *loop) firstPoll(now time.Time) time.Time {
	if l.src.IsWatch() {
		return now
	}
	return l.slotAfter(now, l.src.Interval)
}

// slotAfter is the first time after t on the source's grid: its
// schedule's fires, or every interval, shifted by the source's offset.
func (l *loop) slotAfter(t time.Time, interval time.Duration) time.Time {
	if c := l.src.cron; c != nil {
		return c.Next(t.Add(-l.off)).Add(l.off)
	}
	return nextSlot(t, interval, l.off)
}

func (l *loop) setNext(at time.Time) {
	l.mu.Lock()
	l.st.NextPollAt = at
	l.mu.Unlock()
}

// fire starts a poll when the scheduler finds the loop due.
func (l *loop) fire() {
	l.gate.Lock()
	defer l.gate.Unlock()
	l.startLocked()
}

// startLocked starts the polling goroutine unless one runs already or the
// loop was stopped. The caller holds l.gate.
func (l *loop) startLocked() {
	if l.running || l.stopped || !l.held {
		return
	}
	l.running = true
	l.m.sched.remove(l)
	l.runs.Add(1)
	go l.run()
}

// pollNow asks for a poll at once; the reply arrives on the returned
// channel when it ends. A spread watch round in progress is cut short and
// followed by a full one. While the source's lease is not held the poll
// waits for it.
func (l *loop) pollNow() (<-chan error, bool) {
	reply := make(chan error, 1)
	l.gate.Lock()
	defer l.gate.Unlock()
	if l.stopped {
		return nil, false
	}
	l.waiters = append(l.waiters, reply)
	if l.cut != nil {
		close(l.cut)
		l.cut = nil
	}
	l.startLocked()
	return reply, true
}

// halt stops the loop: no poll starts after it, and the one in progress
// (if any) is cancelled. stop also waits for that poll to end.
func (l *loop) halt() {
	l.gate.Lock()
	l.stopped = true
	l.m.sched.remove(l)
	l.gate.Unlock()
	l.cancel()
}

func (l *loop) stop() {
	l.halt()
	l.runs.Wait()
}

// run polls, answering the PollNow calls waiting when it started, then
// again at once while more arrived, and puts the loop back on the
// scheduler for its next slot; failures back off. A watch source's poll
// is a round over all its watches, spread over the interval unless a
// PollNow asked for it.
func (l *loop) run() {
	defer l.runs.Done()
	for {
		l.gate.Lock()
		waiters := l.waiters
		l.waiters = nil
		var cut chan struct{}
		if len(waiters) == 0 {
			cut = make(chan struct{})
		}
		l.cut = cut
		ctx, cancel := context.WithCancel(l.ctx)
		l.cancelPoll = cancel
		l.gate.Unlock()
		start := l.m.now()
		err := l.kind.pollOnce(ctx, start, cut)
		if ctx.Err() != nil && l.ctx.Err() == nil {
			err = fmt.Errorf("poll %s: %w", l.src.Name, ErrLeaseLost)
		}
		for _, w := range waiters {
			w <- redactError(err, l.secrets)
		}
		next := time.Time{}
		if ctx.Err() == nil {
			next = l.nextPoll(start, err)
		}
		l.gate.Lock()
		l.cut, l.cancelPoll = nil, nil
		cancel()
		if len(l.waiters) > 0 && l.ctx.Err() == nil && l.held {
			l.gate.Unlock()
			continue
		}
		l.running = false
		switch {
		case l.ctx.Err() != nil:
			for _, w := range l.waiters {
				w <- fmt.Errorf("poll %s: source stopped", l.src.Name)
			}
			l.waiters = nil
		case l.stopped || !l.held:
			// Waiters wait for the lease to come back.
		default:
			l.setNext(next)
			l.m.sched.add(l, next)
		}
		l.gate.Unlock()
		return
	}
}

// interval is the configured interval, raised to what the upstream asked.
func (l *loop) interval() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.src.Adaptive() && l.src.IsWatch() {
		// An adaptive source's round polls only the watches that are due;
		// rounds come every min_interval so none waits much past its time.
		return max(l.src.MinInterval, l.asked)
	}
	return max(l.src.Interval, l.asked)
}

// setAsked records X-Poll-Interval (0 when the upstream stopped sending it).
func (l *loop) setAsked(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if d != l.asked && d > l.src.Interval {
		l.log.Info("upstream asked for a longer interval (X-Poll-Interval)", "interval", d.String())
	}
	l.asked = d
	if l.src.cron == nil {
		l.st.Interval = max(l.src.Interval, d).String()
	}
}

// nextPoll is the next grid slot, pushed back after consecutive upstream
// failures (exponentially, up to max_backoff) or for as long as a 429/503
// asked.
// A watch round spreads its requests over the interval itself, so rounds
// follow each other an interval apart (at once if one overran): each id
// is polled once per interval.
func (l *loop) nextPoll(start time.Time, err error) time.Time {
	now := l.m.now()
	iv := l.interval()
	var next time.Time
	if l.src.IsWatch() {
		if next = start.Add(iv); next.Before(now) {
			next = now
		}
	} else {
		next = l.slotAfter(now, iv)
		// The grid may come round sooner than X-Poll-Interval after this
		// poll (the first poll is off the grid); the upstream's word wins.
		if l.src.Interval < iv && next.Before(start.Add(iv)) {
			next = start.Add(iv)
			if l.src.cron != nil {
				next = l.slotAfter(next, iv)
			}
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.st.PausedUntil = time.Time{}
	if err == nil {
		return next
	}
	if pe, ok := errors.AsType[*PollError](err); ok && pe.RetryAfter > 0 {
		l.st.PausedUntil = now.Add(pe.RetryAfter)
		if l.src.cron != nil {
			// Only ever within the schedule's times.
			return l.slotAfter(l.st.PausedUntil.Add(-time.Nanosecond), iv)
		}
		return l.st.PausedUntil
	}
	// A store that refused the poll's writes (a full disk, say) is not the
	// upstream's fault: backing off would only delay noticing that it takes
	// writes again.
	if pe, ok := errors.AsType[*PollError](err); ok && (pe.Outcome == OutcomeStore || pe.Outcome == OutcomeFenced) {
		return next
	}
	if l.st.Failures > 1 {
		if l.src.cron != nil {
			iv = l.src.cron.Gap(now)
		}
		back := iv << min(l.st.Failures-1, 16)
		back = min(back, max(l.src.MaxBackoff, iv))
		if t := now.Add(back); t.After(next) {
			if l.src.cron != nil {
				return l.slotAfter(t.Add(-time.Nanosecond), iv)
			}
			return t
		}
	}
	return next
}

// initTracked counts a newly started source's stored items, unless a
// poll (which knows better) finished first. A watch source's watches are
// counted by its first round, which starts at once.
func (l *loop) initTracked() {
	if l.ctx.Err() != nil {
		return
	}
	n, err := l.countTracked()
	if err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.st.LastPollAt.IsZero() {
		l.st.ItemsTracked = n
		l.m.metrics.tracked.WithLabelValues(l.src.Name).Set(float64(n))
	}
}

// carry starts a restarted source's counts where its previous loop left
// them, until a poll or a count says otherwise.
func (l *loop) carry(old Status) {
	l.mu.Lock()
	l.st.ItemsTracked = old.ItemsTracked
	if l.src.IsWatch() {
		// A list source has no watches, whatever it was before.
		l.st.WatchesActive = old.WatchesActive
	}
	l.mu.Unlock()
	l.m.metrics.tracked.WithLabelValues(l.src.Name).Set(float64(old.ItemsTracked))
	if l.src.IsWatch() {
		l.m.metrics.watches.WithLabelValues(l.src.Name).Set(float64(old.WatchesActive))
	} else {
		l.m.metrics.watches.dropSource(l.src.Name)
	}
}

func (l *loop) countTracked() (int, error) {
	var n int
	err := l.store().View(func(t store.Txn) error {
		var err error
		n, err = t.CountItems(l.src.Name)
		return err
	})
	return n, err
}

func (l *loop) setTracked(n int) {
	l.m.metrics.tracked.WithLabelValues(l.src.Name).Set(float64(n))
	l.mu.Lock()
	l.st.ItemsTracked = n
	l.mu.Unlock()
}

// finish records a poll's (or a watch round's) outcome in the status and
// the source's gauges, logging a failure once and its recovery once.
func (l *loop) finish(start time.Time, outcome string, err error) {
	name := l.src.Name
	m := l.m.metrics
	l.mu.Lock()
	defer l.mu.Unlock()
	l.st.LastPollAt = start
	l.st.LastOutcome = outcome
	l.st.Progress = nil
	l.st.LastDurationMS = float64(l.m.now().Sub(start).Microseconds()) / 1000
	err = redactError(err, l.secrets)
	if outcome == OutcomeFenced {
		// Not the source's failure: another member polls it now.
		l.st.LastError = err.Error()
		l.log.Warn("poll discarded: another member holds the source's lease now", "error", err.Error())
		return
	}
	if err != nil {
		m.up.WithLabelValues(name).Set(0)
		l.st.LastError = err.Error()
		l.st.Failures++
		if msg := err.Error(); msg != l.lastErr {
			l.log.Warn("poll failed", "outcome", outcome, "error", msg, "consecutive_failures", l.st.Failures)
			l.lastErr = msg
		}
		return
	}
	m.up.WithLabelValues(name).Set(1)
	m.lastSuccess.WithLabelValues(name).Set(float64(start.UnixNano()) / 1e9)
	if l.lastErr != "" {
		l.log.Info("poll recovered", "after_failures", l.st.Failures)
		l.lastErr = ""
	}
	l.st.LastError, l.st.LastSuccess = "", start
	l.st.Failures = 0
}

func (l *loop) status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st
}

// sameSource reports whether a reload left a source's settings unchanged.
// A config holds plain values only, so two loads of one file are equal.
func sameSource(a, b *config.Source) bool {
	return reflect.DeepEqual(a, b)
}
