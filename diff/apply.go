package diff

import (
	"context"
	"fmt"
	"time"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/store"
)

// Result summarises what Apply wrote.
type Result struct {
	Tracked     int // items tracked after the poll
	Changes     int // item records written or removed
	Transitions []Transition
	Events      []*event.Event
	// Baseline is true when this poll recorded the source's baseline.
	Baseline bool
	// HeldDeletes counts deletions held back by the mass-delete guard.
	HeldDeletes int
	// RuleErrors are `when` evaluation failures; the poll still succeeded.
	RuleErrors []error
}

// Apply compares a poll's observations with the stored items of src and
// writes the outcome. Each item's new record and the events it causes are
// committed in one transaction, so a crash never separates a state change
// from its events; the source's baseline flag is written last, so a crash
// in the middle of a baseline repeats the baseline rather than inventing
// `created` events.
func Apply(ctx context.Context, st *store.Store, src *config.Source, obs []Observation, complete bool, now time.Time) (Result, error) {
	var res Result
	var ss store.SourceState
	prev := map[string]*store.Item{}
	err := st.View(func(t *store.Txn) error {
		var err error
		if ss, err = t.SourceState(src.Name); err != nil {
			return err
		}
		return t.Items(src.Name, func(id string, it *store.Item) error {
			prev[id] = it
			return nil
		})
	})
	if err != nil {
		return res, fmt.Errorf("load %s: %w", src.Name, err)
	}
	changes := Compare(prev, obs, Options{
		Baseline:     !ss.Baselined,
		EmitExisting: src.EmitExisting,
		Complete:     complete,
		Deletes:      src.DeletesEnabled(),
		Settle:       src.Settle,
		Stalls:       stalls(src),
		Now:          now,
	})
	newSS := ss
	changes, res.HeldDeletes = guardDeletes(changes, len(prev), src, &newSS)
	res.Baseline = !ss.Baselined && complete
	if complete {
		newSS.Baselined = true
	}

	tracked := len(prev)
	b := st.NewBatch()
	defer b.Discard()
	for _, c := range changes {
		var evs []*event.Event
		for _, t := range c.Transitions {
			e, err := Events(ctx, src, t, nil, now)
			if err != nil {
				res.RuleErrors = append(res.RuleErrors, err)
			}
			evs = append(evs, e...)
		}
		err := b.Group(func(t *store.Txn) error {
			if c.Item == nil {
				if err := t.DeleteItem(src.Name, c.ID); err != nil {
					return err
				}
			} else if err := t.PutItem(src.Name, c.ID, c.Item); err != nil {
				return err
			}
			for _, e := range evs {
				if err := t.AddEvent(e); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("write %s: %w", src.Name, err)
		}
		switch {
		case c.Item == nil:
			tracked--
		case prev[c.ID] == nil:
			tracked++
		}
		res.Changes++
		res.Transitions = append(res.Transitions, c.Transitions...)
		res.Events = append(res.Events, evs...)
	}
	if newSS != ss {
		err := b.Group(func(t *store.Txn) error { return t.PutSourceState(src.Name, newSS) })
		if err != nil {
			return res, fmt.Errorf("write %s: %w", src.Name, err)
		}
	}
	if err := b.Commit(); err != nil {
		return res, fmt.Errorf("write %s: %w", src.Name, err)
	}
	res.Tracked = tracked
	return res, nil
}

// guardDeletes holds back a listing that would delete more than
// max_delete_ratio of the tracked items until it has been seen on
// confirm_polls consecutive polls: an upstream that briefly answers
// `{"data": []}` must not fire thousands of deleted events.
func guardDeletes(changes []Change, tracked int, src *config.Source, ss *store.SourceState) ([]Change, int) {
	deletes := 0
	for _, c := range changes {
		if c.Item == nil {
			deletes++
		}
	}
	ratio := src.MaxDeleteRatio
	if deletes == 0 || tracked == 0 || ratio <= 0 || float64(deletes) <= ratio*float64(tracked) {
		ss.SuspectPolls = 0
		return changes, 0
	}
	ss.SuspectPolls++
	if ss.SuspectPolls >= max(src.ConfirmPolls, 1) {
		ss.SuspectPolls = 0
		return changes, 0
	}
	kept := changes[:0:0]
	for _, c := range changes {
		if c.Item != nil {
			kept = append(kept, c)
		}
	}
	return kept, deletes
}

func stalls(src *config.Source) map[int]config.Rule {
	var m map[int]config.Rule
	for i, r := range src.Events {
		if r.On == event.Stalled {
			if m == nil {
				m = map[int]config.Rule{}
			}
			m[i] = r
		}
	}
	return m
}
