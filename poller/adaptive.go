package poller

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"time"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/diff"
	"github.com/pollrelay/pollrelay/poller/adaptive"
	"github.com/pollrelay/pollrelay/store"
)

// sched is the per-watch schedule of an `interval: adaptive` watch source.
// Its rounds run every min_interval and poll only the watches that are
// due; each watch's next due time comes from the source's learned state
// durations (adaptive.Model). Only the run goroutine touches it.
type sched struct {
	model *adaptive.Model
	items map[string]*watchTimes
	// dirty holds states whose histogram changed since it was last saved.
	dirty map[string]bool
	// loaded is set once the histograms were read from the store.
	loaded bool
	// p is the round's scheduling parameters, fixed at its start.
	p adaptive.Params
}

// watchTimes is what the schedule knows about one watch.
type watchTimes struct {
	state string // canonical JSON of the state last seen; "" = not yet seen
	// entered is the estimated start of the stay in state: the midpoint
	// between the last poll that saw the previous state and the first that
	// saw this one (or, after a restart, the item's stored Since).
	entered time.Time
	// last is the last poll that saw state; zero after a restart, when the
	// poll before a transition is unknown.
	last time.Time
	due  time.Time
	// prog is the progress reported in state.
	prog adaptive.Progress
}

func newSched() *sched {
	return &sched{model: adaptive.NewModel(), items: map[string]*watchTimes{}, dirty: map[string]bool{}}
}

// adaptiveParams is the scheduling for a round starting now: never more
// often than min_interval (or X-Poll-Interval, if longer), the fixed
// interval while a state lacks history, and a threshold at which the
// schedule costs what the fixed interval would. The source's `rate` caps
// the requests on top, in the fetcher.
func (l *watchLoop) adaptiveParams() adaptive.Params {
	l.mu.Lock()
	asked := l.asked
	l.mu.Unlock()
	fixed := max(l.src.Interval, asked)
	return adaptive.Params{
		Min:       max(l.src.MinInterval, asked),
		Max:       max(l.src.MaxInterval, asked),
		Fixed:     fixed,
		Threshold: l.sched.model.ThresholdFor(fixed),
	}
}

// dueWatches returns the watches of all that are due at now (or expired),
// forgetting watches that ended. Watches new to the schedule are spread
// over the fixed interval; a new watch's stored item, if any, tells how
// long it has been in its state.
func (l *watchLoop) dueWatches(all []store.Watch, now time.Time) ([]store.Watch, error) {
	s := l.sched
	if !s.loaded {
		if err := l.loadHistograms(); err != nil {
			return nil, err
		}
		s.loaded = true
	}
	s.p = l.adaptiveParams()
	live := make(map[string]bool, len(all))
	var due, fresh []store.Watch
	for _, w := range all {
		live[w.ID] = true
		wt, ok := s.items[w.ID]
		switch {
		case !ok:
			fresh = append(fresh, w)
		case !wt.due.After(now), w.Expired(now):
			// An expired watch ends in this round, not at its next poll.
			due = append(due, w)
		}
	}
	for id := range s.items {
		if !live[id] {
			delete(s.items, id)
		}
	}
	if len(fresh) == 0 {
		return due, nil
	}
	err := l.store().View(func(t store.Txn) error {
		for i, w := range fresh {
			it, err := t.Item(l.src.Name, w.ID)
			if err != nil {
				return err
			}
			// New watches are spread over the fixed interval, as a fixed
			// round would: after a restart all of them are new, and polling
			// them at once would be a burst. A lone new watch is due now.
			wt := &watchTimes{due: now.Add(s.p.Fixed * time.Duration(i) / time.Duration(len(fresh)))}
			if it != nil {
				wt.state, wt.entered = string(it.State), it.Since
			}
			s.items[w.ID] = wt
			if !wt.due.After(now) {
				due = append(due, w)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read watched items: %w", err)
	}
	return due, nil
}

// observed schedules a watch's next poll after a successful one at now
// and learns from a change of state.
func (l *watchLoop) observed(ob diff.WatchObservation, hint adaptive.Hint, now time.Time) {
	s := l.sched
	wt := s.items[ob.ID]
	if wt == nil {
		wt = &watchTimes{}
		s.items[ob.ID] = wt
	}
	state := wt.state
	if !ob.NotModified {
		state = string(ob.Observation.State)
	}
	switch {
	case wt.state == "":
		wt.state, wt.entered = state, now
	case state != wt.state:
		if !wt.last.IsZero() {
			// The change happened somewhere between the two polls: the
			// midpoint is the unbiased guess, and half the gap the
			// expected detection delay.
			mid := wt.last.Add(now.Sub(wt.last) / 2)
			s.model.Observe(wt.state, mid.Sub(wt.entered))
			s.dirty[wt.state] = true
			l.m.metrics.detectionDelay.WithLabelValues(l.src.Name).Observe(now.Sub(wt.last).Seconds() / 2)
			wt.entered = mid
		} else {
			wt.entered = now
		}
		wt.state = state
		wt.prog.Reset()
	}
	wt.last = now
	age := now.Sub(wt.entered)
	switch {
	case hint.HasLeft:
		wt.due = now.Add(adaptive.NextFromLeft(hint.Left, s.p))
		return
	case hint.HasProgress:
		wt.prog.Observe(age, hint.Progress)
	}
	if gap, ok := wt.prog.Next(age, s.p); ok {
		wt.due = now.Add(gap)
		return
	}
	wt.due = now.Add(s.model.NextPoll(wt.state, age, s.p))
}

// hintOf reads what a response says of its item's progress: progress as
// 0..1, or 0..100 when over 1; eta as a time, or seconds from now. A
// value of another kind is no hint: it never fails the poll.
func hintOf(ctx context.Context, src *compiled, doc any, now time.Time) adaptive.Hint {
	var h adaptive.Hint
	if src.eta != nil {
		if v, err := src.eta.First(ctx, doc); err == nil {
			switch x := v.(type) {
			case string:
				if t, err := time.Parse(time.RFC3339Nano, x); err == nil {
					h.Left, h.HasLeft = max(t.Sub(now), 0), true
				}
			default:
				if f, ok := number(x); ok && f >= 0 {
					h.Left, h.HasLeft = time.Duration(min(f, 1e9)*float64(time.Second)), true
				}
			}
		}
	}
	if src.progress != nil {
		if v, err := src.progress.First(ctx, doc); err == nil {
			if f, ok := number(v); ok && f >= 0 {
				if f > 1 {
					f /= 100
				}
				h.Progress, h.HasProgress = min(f, 1), true
			}
		}
	}
	return h
}

// number is a jq number as a float64; NaN and infinities are not one.
func number(v any) (float64, bool) {
	var f float64
	switch x := v.(type) {
	case int:
		f = float64(x)
	case float64:
		f = x
	case *big.Int:
		f, _ = new(big.Float).SetInt(x).Float64()
	default:
		return 0, false
	}
	return f, !math.IsNaN(f) && !math.IsInf(f, 0)
}

// failedWatch retries a watch whose poll failed after the fixed interval:
// the source-wide backoff handles an upstream that is down.
func (l *watchLoop) failedWatch(id string, now time.Time) {
	if wt := l.sched.items[id]; wt != nil {
		wt.due = now.Add(max(l.sched.p.Fixed, l.sched.p.Min))
	}
}

// loadHistograms restores the source's learned durations.
func (l *watchLoop) loadHistograms() error {
	err := l.store().View(func(t store.Txn) error {
		return t.Histograms(l.src.Name, func(state string, v []byte) error {
			var h adaptive.Histogram
			if err := h.UnmarshalBinary(v); err != nil {
				// A histogram is only an optimisation: relearn it.
				l.log.Warn("dropping stored histogram", "state", state, "error", err.Error())
				return nil
			}
			l.sched.model.Load(state, h)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("load histograms: %w", err)
	}
	return nil
}

// saveHistograms writes the histograms that changed, in one transaction
// per round rather than one per transition.
func (l *watchLoop) saveHistograms() error {
	s := l.sched
	if len(s.dirty) == 0 {
		return nil
	}
	err := l.store().Update(func(t store.Txn) error {
		for state := range s.dirty {
			if len(state) > store.MaxKeyPart {
				continue // a state that long can't be a key: not learned across restarts
			}
			h, ok := s.model.Histogram(state)
			if !ok {
				continue // past adaptive.MaxStates: not learned
			}
			v, err := h.MarshalBinary()
			if err != nil {
				return err
			}
			if err := t.PutHistogram(l.src.Name, state, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save histograms: %w", err)
	}
	clear(s.dirty)
	return nil
}

// statusInterval is the interval GET /v1/sources shows.
func statusInterval(src *config.Source) string {
	if src.Adaptive() && src.IsWatch() {
		return fmt.Sprintf("adaptive (%s–%s)", src.MinInterval, src.MaxInterval)
	}
	return src.Interval.String()
}
