package poller

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/diff"
	"github.com/pollrelay/pollrelay/store"
)

// Status is what the API shows about a source.
type Status struct {
	Name         string    `json:"name"`
	URL          string    `json:"url"`
	LastPollAt   time.Time `json:"last_poll_at,omitzero"`
	LastOutcome  string    `json:"last_outcome,omitempty"`
	LastError    string    `json:"last_error,omitempty"`
	LastSuccess  time.Time `json:"last_success_at,omitzero"`
	ItemsTracked int       `json:"items_tracked"`
	NextPollAt   time.Time `json:"next_poll_at,omitzero"`
	PausedUntil  time.Time `json:"paused_until,omitzero"`
	Failures     int       `json:"consecutive_failures"`
}

func sortStatus(s []Status) {
	slices.SortFunc(s, func(a, b Status) int { return strings.Compare(a.Name, b.Name) })
}

type loop struct {
	m       *Manager
	src     *config.Source
	f       *fetcher
	log     *slog.Logger
	off     time.Duration
	ctx     context.Context
	cancel  context.CancelFunc
	pollNow chan chan error
	done    chan struct{}

	mu sync.Mutex
	st Status
	// lastErr is the failure last logged, so a repeated failure is logged
	// once and its recovery once.
	lastErr string
}

func newLoop(m *Manager, src *config.Source) *loop {
	ctx := m.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithCancel(ctx)
	log := m.log.With("source", src.Name)
	m.metrics.initSource(src.Name)
	l := &loop{
		m: m, src: src, log: log, ctx: ctx, cancel: cancel,
		off:     offset(src.Name, src.Interval),
		pollNow: make(chan chan error),
		done:    make(chan struct{}),
		st:      Status{Name: src.Name, URL: RedactURL(src.URL)},
	}
	l.f = newFetcher(src, log, func(code int) {
		m.metrics.requests.WithLabelValues(src.Name, strconv.Itoa(code)).Inc()
	})
	return l
}

func (l *loop) stop() {
	l.cancel()
	<-l.done
}

// run polls at once, then on the source's grid; failures back off.
func (l *loop) run() {
	defer close(l.done)
	if n, err := l.countTracked(); err == nil {
		l.setTracked(n)
	}
	next := l.m.now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		timer.Reset(max(next.Sub(l.m.now()), 0))
		l.mu.Lock()
		l.st.NextPollAt = next
		l.mu.Unlock()
		var reply chan error
		select {
		case <-l.ctx.Done():
			return
		case <-timer.C:
		case reply = <-l.pollNow:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
		err := l.poll(l.ctx)
		if reply != nil {
			reply <- err
		}
		next = l.nextPoll(err)
	}
}

// nextPoll is the next grid slot, pushed back after consecutive failures
// (exponentially, up to max_backoff) or for as long as a 429/503 asked.
func (l *loop) nextPoll(err error) time.Time {
	now := l.m.now()
	next := nextSlot(now, l.src.Interval, l.off)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.st.PausedUntil = time.Time{}
	if err == nil {
		return next
	}
	if pe, ok := errors.AsType[*PollError](err); ok && pe.RetryAfter > 0 {
		l.st.PausedUntil = now.Add(pe.RetryAfter)
		return l.st.PausedUntil
	}
	if l.st.Failures > 1 {
		back := l.src.Interval << min(l.st.Failures-1, 16)
		back = min(back, max(l.src.MaxBackoff, l.src.Interval))
		if t := now.Add(back); t.After(next) {
			return t
		}
	}
	return next
}

func (l *loop) countTracked() (int, error) {
	var n int
	err := l.m.st.View(func(t *store.Txn) error {
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

// poll fetches, extracts and applies one listing.
func (l *loop) poll(ctx context.Context) error {
	start := l.m.now()
	obs, complete, err := Fetch(ctx, l.src, l.f)
	var res diff.Result
	if err == nil {
		res, err = diff.Apply(ctx, l.m.st, l.src, obs, complete, l.m.now())
		if err != nil && ctx.Err() == nil {
			err = &PollError{Outcome: OutcomeStore, Err: err}
		}
	}
	if ctx.Err() != nil {
		return ctx.Err() // shutting down: neither success nor failure
	}
	l.m.metrics.duration.WithLabelValues(l.src.Name).Observe(l.m.now().Sub(start).Seconds())
	l.record(start, res, err)
	return err
}

func (l *loop) record(start time.Time, res diff.Result, err error) {
	name := l.src.Name
	m := l.m.metrics
	l.mu.Lock()
	defer l.mu.Unlock()
	l.st.LastPollAt = start
	if err != nil {
		outcome := OutcomeNetwork
		if pe, ok := errors.AsType[*PollError](err); ok {
			outcome = pe.Outcome
		}
		m.polls.WithLabelValues(name, outcome).Inc()
		m.up.WithLabelValues(name).Set(0)
		l.st.LastOutcome, l.st.LastError = outcome, err.Error()
		l.st.Failures++
		if msg := err.Error(); msg != l.lastErr {
			l.log.Warn("poll failed", "outcome", outcome, "error", msg, "consecutive_failures", l.st.Failures)
			l.lastErr = msg
		}
		return
	}
	m.polls.WithLabelValues(name, OutcomeSuccess).Inc()
	m.up.WithLabelValues(name).Set(1)
	m.lastSuccess.WithLabelValues(name).Set(float64(start.UnixNano()) / 1e9)
	m.tracked.WithLabelValues(name).Set(float64(res.Tracked))
	for _, t := range res.Transitions {
		m.transitions.WithLabelValues(name, t.Kind).Inc()
	}
	if l.lastErr != "" {
		l.log.Info("poll recovered", "after_failures", l.st.Failures)
		l.lastErr = ""
	}
	l.st.LastOutcome, l.st.LastError, l.st.LastSuccess = OutcomeSuccess, "", start
	l.st.Failures = 0
	l.st.ItemsTracked = res.Tracked
	switch {
	case res.Baseline:
		l.log.Info("baseline recorded", "items", res.Tracked, "events", len(res.Events))
	case len(res.Events) > 0 || res.HeldDeletes > 0:
		l.log.Info("transitions", "transitions", len(res.Transitions), "events", len(res.Events),
			"held_deletes", res.HeldDeletes, "items", res.Tracked)
	}
	if res.HeldDeletes > 0 {
		l.log.Warn("mass delete held back: listing would delete too many items", "deletes", res.HeldDeletes)
	}
	for _, e := range res.RuleErrors {
		l.log.Warn("event rule failed", "error", e.Error())
	}
	for _, e := range res.Events {
		l.log.Debug("event", "event_id", e.ID, "type", e.Type, "item", e.ItemID)
	}
}

func (l *loop) status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st
}

// sameSource reports whether a reload left a source's settings unchanged.
// Compiled expressions are compared by their text.
func sameSource(a, b *config.Source) bool {
	return reflect.DeepEqual(fingerprint(a), fingerprint(b))
}
