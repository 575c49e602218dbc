package diff

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
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
	// WatchesAdded counts watches added by watch_from, by watch source.
	WatchesAdded map[string]int
	// Duplicates counts ids the listing repeated (the first occurrence of
	// each is used), and DuplicateID is the first repeated. It is -1 when
	// the poll was not compared: a replay, or the same listing as the last
	// settled one, which repeated as many.
	Duplicates  int
	DuplicateID string
}

// Validators are a response's ETag and Last-Modified, and the source
// configuration they were received under (see store.SourceState).
type Validators struct {
	ETag, LastModified, For string
}

// Poll is one successful poll of a list or single-object source.
type Poll struct {
	Observations []Observation
	// Complete is true when every page was fetched and parsed; false when
	// max_pages cut the listing short, which updates what was seen but
	// deletes nothing.
	Complete bool
	Now      time.Time
	// Validators are stored only when the result is fully stored: with a
	// state still settling or deletes held back, the next poll must see the
	// body again, so a 304 can't stand in for it.
	Validators Validators
	// Watchers are the watch sources whose watch_from names this source:
	// every item that enters a non-terminal state is watched by each, in
	// the same transaction as the item's change.
	Watchers []*config.Source
	// Replay re-observes the stored items instead of Observations: the
	// upstream answered 304 Not Modified, so only stalled rules can fire.
	Replay bool
	// Heads, when set, are the source's stored item heads read while the
	// listing was parsed (LoadHeads). Apply uses them instead of reading
	// the items itself, except on a replay or a retry after a conflict.
	Heads *Heads
}

// Apply compares a poll's observations with the stored items of src and
// writes the outcome. Each item's new record, the events it causes and the
// watches it starts are committed in one transaction, so a crash never
// separates a state change from its events; the source's state (baseline
// flag, validators) is written last, so a crash in the middle of a baseline
// repeats the baseline rather than inventing `created` events.
//
// A complete listing identical to the last one whose outcome was fully
// stored is not compared again (see listingDigest).
//
// A conflict with a concurrent writer (the API adding a watch that
// watch_from also adds) redoes the work from a fresh read: what committed
// before the conflict is then part of the stored state.
func Apply(ctx context.Context, st *store.Store, src *config.Source, p Poll) (Result, error) {
	if h := p.Heads; h != nil {
		// Heads left unused (an unchanged listing, a replay, an error)
		// must still not outlive the poll: the store may close next.
		defer h.Wait()
	}
	for attempt := 0; ; attempt++ {
		res, err := apply(ctx, st, src, p)
		if err == nil || !store.IsConflict(err) || attempt == 3 {
			return res, err
		}
		p.Heads = nil // read before the conflict: read again
	}
}

func apply(ctx context.Context, st *store.Store, src *config.Source, p Poll) (Result, error) {
	var res Result
	var ss store.SourceState
	err := st.View(func(t *store.Txn) error {
		var err error
		ss, err = t.SourceState(src.Name)
		return err
	})
	if err != nil {
		return res, fmt.Errorf("load %s: %w", src.Name, err)
	}
	digest := ""
	if p.Complete && !p.Replay {
		digest = listingDigest(src, p.Observations)
	}
	if ss.Baselined && digest != "" && digest == ss.ListingDigest {
		return unchanged(st, src, ss, p.Validators)
	}
	prev, order, err := loadItems(st, src.Name, p, ss.ListingTracked)
	if err != nil {
		return res, err
	}
	obs, complete, val := p.Observations, p.Complete, p.Validators
	if p.Replay {
		obs = make([]Observation, 0, len(order))
		for _, id := range order {
			obs = append(obs, Observation{ID: id, State: prev[id].State, Object: prev[id].Object})
		}
		complete = true
		val = Validators{ETag: ss.ETag, LastModified: ss.LastModified, For: ss.ValidatorsFor}
	}
	changes, dups := compare(prev, obs, Options{
		Baseline:     !ss.Baselined,
		EmitExisting: src.EmitExisting,
		Complete:     complete,
		Deletes:      src.DeletesEnabled(),
		Settle:       src.Settle,
		Stalls:       StallRules(src),
		Now:          p.Now,
	})
	res.Duplicates, res.DuplicateID = dups.n, dups.first
	if p.Replay {
		res.Duplicates = -1
	}
	newSS := ss
	changes, res.HeldDeletes = guardDeletes(changes, len(prev), src, &newSS)
	if !p.Replay {
		if err := fillObjects(st, src.Name, changes); err != nil {
			return res, fmt.Errorf("load %s: %w", src.Name, err)
		}
	}
	// The first successful poll is the baseline even when max_pages cut it
	// short: a listing that is always longer than max_pages (newest first,
	// say) must still report items that appear at its top.
	res.Baseline = !ss.Baselined
	newSS.Baselined = true
	// settled: this poll's outcome is fully stored, so what it saw can stand
	// for the next poll (as validators, or as the listing's digest).
	settled := complete && res.HeldDeletes == 0 && !settling(prev, changes)
	if settled {
		newSS.ETag, newSS.LastModified, newSS.ValidatorsFor = val.ETag, val.LastModified, val.For
	} else {
		newSS.ETag, newSS.LastModified, newSS.ValidatorsFor = "", "", ""
	}

	tracked := len(prev)
	b := st.NewBatch()
	defer b.Discard()
	for _, c := range changes {
		var evs []*event.Event
		for _, t := range c.Transitions {
			e, err := Events(ctx, src, t, nil, p.Now)
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
			return watchFrom(t, p.Watchers, c, prev[c.ID], p.Now, &res)
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
	newSS.ListingDigest, newSS.ListingTracked = "", 0
	if settled && digest != "" {
		newSS.ListingDigest, newSS.ListingTracked = digest, tracked
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

// loadItems returns src's stored items for a comparison and, on a replay,
// their ids in order. A replay re-observes the stored objects; otherwise
// only the items that change need theirs, read after the comparison
// (fillObjects). sizeHint, the last settled listing's size, spares growing
// a large map step by step.
func loadItems(st *store.Store, source string, p Poll, sizeHint int) (map[string]*store.Item, []string, error) {
	if p.Heads != nil && !p.Replay {
		prev, err := p.Heads.Wait()
		return prev, nil, err
	}
	prev := make(map[string]*store.Item, sizeHint)
	var order []string
	items := (*store.Txn).ItemHeads
	if p.Replay {
		items = (*store.Txn).Items
	}
	err := st.View(func(t *store.Txn) error {
		return items(t, source, func(id string, it *store.Item) error {
			prev[id] = it
			if p.Replay {
				order = append(order, id)
			}
			return nil
		})
	})
	if err != nil {
		return nil, nil, fmt.Errorf("load %s: %w", source, err)
	}
	return prev, order, nil
}

// fillObjects reads the stored object of each changed item that Compare
// left without one, having been given only the items' heads: a record
// rewritten in the same state keeps its object, and a deleted item's event
// carries its last object.
func fillObjects(st *store.Store, source string, changes []Change) error {
	return st.View(func(t *store.Txn) error {
		for i := range changes {
			c := &changes[i]
			needItem := c.Item != nil && c.Item.Object == nil
			needEvent := slices.ContainsFunc(c.Transitions, func(t Transition) bool { return t.Object == nil })
			if !needItem && !needEvent {
				continue
			}
			old, err := t.Item(source, c.ID)
			if err != nil || old == nil {
				return err
			}
			if needItem {
				c.Item.Object = old.Object
			}
			for j := range c.Transitions {
				if c.Transitions[j].Object == nil {
					c.Transitions[j].Object = old.Object
				}
			}
		}
		return nil
	})
}

// unchanged is Apply's outcome for a listing with the digest of the last
// settled one: nothing to compare or write but new validators, if any.
func unchanged(st *store.Store, src *config.Source, ss store.SourceState, val Validators) (Result, error) {
	newSS := ss
	newSS.ETag, newSS.LastModified, newSS.ValidatorsFor = val.ETag, val.LastModified, val.For
	newSS.SuspectPolls = 0
	if newSS != ss {
		if err := st.Update(func(t *store.Txn) error { return t.PutSourceState(src.Name, newSS) }); err != nil {
			return Result{}, fmt.Errorf("write %s: %w", src.Name, err)
		}
	}
	return Result{Tracked: ss.ListingTracked, Duplicates: -1}, nil
}

// settling reports whether any item still has an unsettled state after
// changes are applied to prev.
func settling(prev map[string]*store.Item, changes []Change) bool {
	touched := make(map[string]bool, len(changes))
	for _, c := range changes {
		touched[c.ID] = true
		if c.Item != nil && c.Item.Pending != nil {
			return true
		}
	}
	for id, it := range prev {
		if it.Pending != nil && !touched[id] {
			return true
		}
	}
	return false
}

// watchFrom starts a watch in each watcher for an item that entered a
// non-terminal state, and forgets a watch's end mark when its item left
// the listing, so the id can be watched again if it comes back.
func watchFrom(t *store.Txn, watchers []*config.Source, c Change, prev *store.Item, now time.Time, res *Result) error {
	for _, ws := range watchers {
		if c.Item == nil {
			if err := t.ClearWatchEnded(ws.Name, c.ID); err != nil {
				return err
			}
			continue
		}
		if prev != nil && bytes.Equal(prev.State, c.Item.State) || IsTerminal(ws, c.Item.State) {
			continue
		}
		added, err := addWatch(t, ws, c.ID, store.OriginWatchFrom, now)
		if err != nil {
			return err
		}
		if added {
			if res.WatchesAdded == nil {
				res.WatchesAdded = map[string]int{}
			}
			res.WatchesAdded[ws.Name]++
		}
	}
	return nil
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

// StallRules returns the source's stalled rules by their index in its rule
// list, or nil when it has none.
func StallRules(src *config.Source) map[int]config.Rule {
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

// IsTerminal reports whether state ends a watch of the watch source ws.
func IsTerminal(ws *config.Source, state json.RawMessage) bool {
	return slices.ContainsFunc(ws.TerminalStates, func(t json.RawMessage) bool { return bytes.Equal(t, state) })
}
