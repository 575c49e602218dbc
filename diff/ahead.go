package diff

import (
	"context"
	"fmt"
	"time"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/store"
)

// StoreNew stores, ahead of the rest of the listing, the items of obs
// (what Filter returned) that are not stored yet, when the poll records
// the source's baseline without events; it returns the observations left
// for Apply. A baseline keeps every item it sees, with its object, until
// it is written: a first poll of a million items held over a GiB. Writing
// them page by page decides nothing early, because a baseline emits
// nothing: if the poll fails later, the items are there, unchanged, for
// the next baseline to find; watch_from watches start for items that
// exist. The baseline flag is still written last, by Apply.
func (x *Index) StoreNew(ctx context.Context, st store.Store, obs []Observation, now time.Time, watchers []*Source) ([]Observation, error) {
	if !x.baseline {
		return obs, nil
	}
	var rest []Observation
	var changes []Change
	for _, ob := range obs {
		if x.find(ob.ID) >= 0 {
			rest = append(rest, ob)
			continue
		}
		c := created(ob, Options{Baseline: true, Now: now})
		if err := store.CheckItem(x.src.Name, c.ID, c.Item); err != nil {
			x.over.note(c.ID, err.Error()+": every poll skips the item")
			continue
		}
		changes = append(changes, c)
	}
	if len(changes) == 0 {
		return rest, nil
	}
	var res Result
	b := st.NewBatch()
	defer b.Discard()
	for _, c := range changes {
		err := b.Group(func(t store.Txn) error {
			if err := t.PutItem(x.src.Name, c.ID, c.Item); err != nil {
				return err
			}
			return watchFrom(t, watchers, c, nil, now, &res)
		})
		if err != nil {
			return nil, fmt.Errorf("write %s: %w", x.src.Name, err)
		}
	}
	if err := b.Commit(); err != nil {
		return nil, fmt.Errorf("write %s: %w", x.src.Name, err)
	}
	x.early += len(changes)
	x.ahead.Changes += len(changes)
	x.addWatches(res.WatchesAdded)
	return rest, ctx.Err()
}

// ApplyAhead compares obs (what Filter returned) with the stored items and
// writes what they change, their events and the watches they start, ahead
// of the rest of the listing, so a poll in which many items change holds
// at most a batch of them, their records and their events at once; the
// events' bodies are left in the store for the notifier. It returns the
// observations left for Apply: all of them for a baseline without events
// (StoreNew stores those).
//
// Each item's change and its events are one group, as in Apply, and the
// source's state is still written last by Apply. A poll that fails later
// keeps what was written ahead: each was a real observation, and the next
// poll finds those items in their new states and fires nothing for them
// again. Deletes, the mass-delete guard, validators and watermarks wait
// for the whole listing. The whole poll is judged at the time of its first
// batch: Apply judges the rest then too, since the index still holds the
// old state of what was written.
func (x *Index) ApplyAhead(ctx context.Context, st store.Store, obs []Observation, now time.Time, watchers []*Source) ([]Observation, error) {
	if x.baseline || len(obs) == 0 {
		return obs, nil
	}
	if x.aheadAt == nil {
		x.aheadAt = &now
	} else {
		now = *x.aheadAt // one time for the whole poll
	}
	prev := make(map[string]*store.Item, len(obs))
	err := st.View(func(t store.Txn) error {
		for _, ob := range obs {
			if x.find(ob.ID) < 0 {
				continue
			}
			it, err := t.Item(x.src.Name, ob.ID)
			if err != nil {
				return err
			}
			if it != nil {
				prev[ob.ID] = it
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", x.src.Name, err)
	}
	changes, _ := compare(prev, obs, Options{
		Baseline: !x.baselined, EmitExisting: x.src.EmitExisting, Complete: true,
		Settle: x.src.Settle, Stalls: x.src.Stalls(), Now: now,
	})
	var res Result
	over := x.over.clone()
	b := st.NewBatch()
	defer b.Discard()
	created, err := writeChanges(ctx, b.Group, x.src, now, watchers, &res, changes, prev, &over)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := b.Commit(); err != nil {
		return nil, fmt.Errorf("write %s: %w", x.src.Name, err)
	}
	x.over = over
	x.early += created
	x.aheadPending = x.aheadPending || pendingChange(changes)
	x.ahead.Changes += res.Changes
	x.ahead.RuleErrors = append(x.ahead.RuleErrors, res.RuleErrors...)
	x.addWatches(res.WatchesAdded)
	for _, t := range res.Transitions {
		// Previous would hold the whole stored record it was read
		// from alive: kept are what the poll counts and logs.
		x.ahead.Transitions = append(x.ahead.Transitions, Transition{Kind: t.Kind, ID: t.ID, Rule: t.Rule})
	}
	for _, e := range res.Events {
		x.ahead.Events = append(x.ahead.Events, &event.Event{ID: e.ID, Type: e.Type, Kind: e.Kind, Source: e.Source, ItemID: e.ItemID, CreatedAt: e.CreatedAt})
	}
	return nil, ctx.Err()
}

func (x *Index) addWatches(added map[string]int) {
	for ws, n := range added {
		if x.ahead.WatchesAdded == nil {
			x.ahead.WatchesAdded = map[string]int{}
		}
		x.ahead.WatchesAdded[ws] += n
	}
}

// Ahead is what was written ahead so far: for a poll that fails after it,
// what to count and log of what stays written.
func (x *Index) Ahead() Result { return x.ahead }
