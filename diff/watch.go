package diff

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/jqexpr"
	"github.com/pollrelay/pollrelay/store"
)

// WatchOptions steer CompareWatch.
type WatchOptions struct {
	// First is true until the watch has observed its item once.
	First bool
	// Terminal states end the watch (canonical JSON).
	Terminal []json.RawMessage
	Settle   int
	Stalls   map[int]*Rule
	Now      time.Time
}

// CompareWatch returns the change one observation of a watched id makes to
// its stored item (prev, nil when never seen), and whether it ends the
// watch. ok is false when the stored record stays as it is.
//
// A watch's first observation records the item silently unless its state
// is already terminal: then it fires a `changed` transition from the stored
// state (null when unknown), so every watch ends with exactly one terminal
// event whenever it started. After that the usual rules apply (settle,
// stalled), and the transition into a terminal state ends the watch.
func CompareWatch(prev *store.Item, ob Observation, o WatchOptions) (c Change, ok, ended bool) {
	terminal := slices.ContainsFunc(o.Terminal, func(t json.RawMessage) bool { return bytes.Equal(t, ob.State) })
	if o.First || prev == nil {
		c = Change{ID: ob.ID}
		switch {
		case prev == nil:
			c.Item = &store.Item{State: ob.State, Object: ob.object(), Since: o.Now,
				History: []store.HistoryEntry{{State: ob.State, At: o.Now}}}
		case !bytes.Equal(prev.State, ob.State):
			c.Item = enter(prev, ob, o.Now)
		case prev.Pending != nil:
			it := *prev
			it.Pending, it.PendingCount = nil, 0
			c.Item = &it
		}
		if terminal {
			previous := event.Null
			if prev != nil {
				previous = prev.State
			}
			if c.Item == nil {
				it := *prev
				c.Item = &it
			}
			c.Transitions = []Transition{{
				Kind: event.Changed, ID: ob.ID, Previous: previous, Current: ob.State, Object: ob.object(),
			}}
			return c, true, true
		}
		return c, c.Item != nil, false
	}
	c, ok = observed(ob, prev, Options{Settle: max(o.Settle, 1), Stalls: o.Stalls, Now: o.Now})
	if !ok {
		return c, false, false
	}
	for _, t := range c.Transitions {
		if t.Kind == event.Changed && terminal {
			ended = true
		}
	}
	return c, true, ended
}

// WatchObservation is the outcome of one request of a watch source.
type WatchObservation struct {
	// ID is the watched id; Observation.ID is set to it.
	ID          string
	Observation Observation
	// NotModified is a 304 answer: the item is as stored.
	NotModified bool
	// Expired means the watch's TTL ran out; nothing was fetched.
	Expired    bool
	Validators Validators
}

// WatchResult summarises ApplyWatches.
type WatchResult struct {
	Transitions []Transition
	Events      []*event.Event
	// Ended counts watches ended by a terminal event, Expired those ended
	// by their TTL.
	Ended, Expired int
	// NewItems counts items stored for the first time.
	NewItems   int
	RuleErrors []error
}

func (r *WatchResult) add(o WatchResult) {
	r.Transitions = append(r.Transitions, o.Transitions...)
	r.Events = append(r.Events, o.Events...)
	r.Ended += o.Ended
	r.Expired += o.Expired
	r.NewItems += o.NewItems
	r.RuleErrors = append(r.RuleErrors, o.RuleErrors...)
}

// ApplyWatches writes the outcome of a batch of watch requests. Each
// watch's item, the events it causes and the watch's own update or removal
// are one atomic group; groups share transactions, so a busy watch source
// costs a few commits a second rather than one per request.
//
// The watch is read inside the writing transaction: a watch deleted or
// renewed through the API meanwhile is seen (or the commit conflicts and
// the store redoes the group), never silently recreated. A group counts
// what it did once its transaction commits.
func ApplyWatches(ctx context.Context, st store.Store, src *Source, obs []WatchObservation, now time.Time) (WatchResult, error) {
	var res WatchResult
	stalls := src.Stalls()
	b := st.NewBatch()
	defer b.Discard()
	for i := range obs {
		ob := &obs[i]
		err := b.Group(func(t store.Txn) error {
			var r WatchResult
			if err := applyWatch(ctx, t, src, ob, stalls, now, &r); err != nil {
				return err
			}
			t.OnCommit(func() { res.add(r) })
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("write %s/%s: %w", src.Name, ob.ID, err)
		}
	}
	if err := b.Commit(); err != nil {
		return res, fmt.Errorf("write %s: %w", src.Name, err)
	}
	return res, nil
}

func applyWatch(ctx context.Context, t store.Txn, src *Source, ob *WatchObservation, stalls map[int]*Rule, now time.Time, res *WatchResult) error {
	w, err := t.Watch(src.Name, ob.ID)
	if err != nil || w == nil {
		return err // unwatched meanwhile: the result is of no interest
	}
	prev, err := t.Item(src.Name, ob.ID)
	if err != nil {
		return err
	}
	ew := EventWatch(w)
	if ob.Expired {
		if !w.Expired(now) {
			return nil // renewed through the API meanwhile
		}
		e := expiredEvent(src, ob.ID, prev, ew, now)
		if err := t.AddEvent(e); err != nil {
			return err
		}
		res.Expired++
		res.Transitions = append(res.Transitions, Transition{Kind: event.WatchExpired, ID: ob.ID, Previous: e.Previous, Current: e.Current})
		res.Events = append(res.Events, e)
		return endWatch(t, src.Name, ob.ID, now)
	}

	o := WatchOptionsFor(src, w, stalls, now)
	cur := ob.Observation
	if ob.NotModified {
		if prev == nil || stalls == nil || o.First {
			return nil // nothing a 304 can change
		}
		cur = Observation{ID: ob.ID, State: prev.State, Object: prev.Object}
	}
	cur.ID = ob.ID
	c, ok, ended := CompareWatch(prev, cur, o)
	// The events are made before anything is written: a rule that runs
	// over a jq limit leaves this watch as it was (it is polled again and
	// decides nothing now) instead of storing a state without its events.
	evs := make([][]*event.Event, len(c.Transitions))
	for i, tr := range c.Transitions {
		var err error
		evs[i], err = Events(ctx, src, tr, ew, now)
		if ctx.Err() != nil {
			// Stopped (shutdown, a lapsed lease): a rule cut short is no
			// rule error, and the watch is polled again.
			return nil
		}
		if errors.Is(err, jqexpr.ErrLimit) {
			res.RuleErrors = append(res.RuleErrors, fmt.Errorf("%s/%s: nothing stored: %w", src.Name, ob.ID, err))
			return nil
		}
		if err != nil {
			res.RuleErrors = append(res.RuleErrors, err)
		}
	}
	if ok {
		if prev == nil {
			res.NewItems++
		}
		if err := t.PutItem(src.Name, ob.ID, c.Item); err != nil {
			return err
		}
	}
	for i, tr := range c.Transitions {
		for _, e := range evs[i] {
			if err := t.AddEvent(e); err != nil {
				return err
			}
		}
		res.Transitions = append(res.Transitions, tr)
		res.Events = append(res.Events, evs[i]...)
	}
	if ended {
		res.Ended++
		return endWatch(t, src.Name, ob.ID, now)
	}
	if ob.NotModified {
		return nil
	}
	nw := *w
	if o.First {
		nw.ObservedAt = now
	}
	item := prev
	if ok {
		item = c.Item
	}
	// A state still settling must be seen again in a body: no validators.
	if item != nil && item.Pending != nil {
		nw.ETag, nw.LastModified, nw.ValidatorsFor = "", "", ""
	} else {
		nw.ETag, nw.LastModified, nw.ValidatorsFor = ob.Validators.ETag, ob.Validators.LastModified, ob.Validators.For
	}
	if nw.ObservedAt.Equal(w.ObservedAt) && nw.ETag == w.ETag && nw.LastModified == w.LastModified && nw.ValidatorsFor == w.ValidatorsFor {
		return nil
	}
	return t.PutWatch(&nw)
}

// WatchOptionsFor are the options an observation of src's watch w is
// compared under; w is nil for an id not watched yet (an id probe polls
// from ids:), whose observation is a first one.
func WatchOptionsFor(src *Source, w *store.Watch, stalls map[int]*Rule, now time.Time) WatchOptions {
	return WatchOptions{First: w == nil || w.ObservedAt.IsZero(), Terminal: src.terminal, Settle: src.Settle, Stalls: stalls, Now: now}
}

// EventWatch is what events of the watch w carry of it: its metadata, {}
// when it has none or w is nil.
func EventWatch(w *store.Watch) *event.Watch {
	ew := &event.Watch{Metadata: json.RawMessage("{}")}
	if w != nil && len(w.Metadata) > 0 {
		ew.Metadata = w.Metadata
	}
	return ew
}

// expiredEvent is `{source}.watch_expired` for a watch whose TTL ran out;
// previous and current are the last state seen (null when never seen).
func expiredEvent(src *Source, id string, it *store.Item, w *event.Watch, now time.Time) *event.Event {
	state, obj := event.Null, json.RawMessage(nil)
	if it != nil {
		state, obj = it.State, it.Object
	}
	return &event.Event{
		ID: event.NewID(now), Type: src.Name + "." + event.WatchExpired, Kind: event.WatchExpired,
		Source: src.Name, ItemID: id, Previous: state, Current: state, Object: obj, Watch: w, CreatedAt: now,
	}
}

// endWatch removes a watch and marks it ended, in the transaction of the
// event that ended it.
func endWatch(t store.Txn, source, id string, now time.Time) error {
	if err := t.DeleteWatch(source, id); err != nil {
		return err
	}
	return t.MarkWatchEnded(source, id, now)
}

// addWatch starts watching id in ws unless it is watched already or its
// watch ended before (only an explicit PUT starts an ended watch again).
func addWatch(t store.Txn, ws *Source, id, origin string, now time.Time) (bool, error) {
	if w, err := t.Watch(ws.Name, id); err != nil || w != nil {
		return false, err
	}
	if ended, err := t.WatchEnded(ws.Name, id); err != nil || ended {
		return false, err
	}
	w := &store.Watch{Source: ws.Name, ID: id, CreatedAt: now, Origin: origin}
	if ws.WatchTTL > 0 {
		w.ExpiresAt = now.Add(ws.WatchTTL)
	}
	return true, t.PutWatch(w)
}

// SyncConfigWatches makes the watches that came from a watch source's
// `ids:` match the list: a new id is watched (unless its watch ended
// before), and a config watch whose id left the list stops, without an
// end mark, so putting the id back watches it again.
func SyncConfigWatches(st store.Store, ws *Source, now time.Time) (added, removed int, err error) {
	want := make(map[string]bool, len(ws.IDs))
	for _, id := range ws.IDs {
		want[id] = true
	}
	var stale []string
	err = st.View(func(t store.Txn) error {
		return t.Watches(ws.Name, "", "", func(w *store.Watch) bool {
			if w.Origin == store.OriginConfig && !want[w.ID] {
				stale = append(stale, w.ID)
			}
			return true
		})
	})
	if err != nil {
		return 0, 0, fmt.Errorf("sync watches of %s: %w", ws.Name, err)
	}
	err = batch(st, func(group func(func(store.Txn) error) error) error {
		for _, id := range ws.IDs {
			if err := group(func(t store.Txn) error {
				ok, err := addWatch(t, ws, id, store.OriginConfig, now)
				if ok {
					t.OnCommit(func() { added++ })
				}
				return err
			}); err != nil {
				return err
			}
		}
		for _, id := range stale {
			if err := group(func(t store.Txn) error {
				// Re-read: a PUT may have taken the watch over meanwhile.
				w, err := t.Watch(ws.Name, id)
				if err != nil || w == nil || w.Origin != store.OriginConfig {
					return err
				}
				t.OnCommit(func() { removed++ })
				return t.DeleteWatch(ws.Name, id)
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return added, removed, fmt.Errorf("sync watches of %s: %w", ws.Name, err)
	}
	return added, removed, nil
}

// WatchListed watches every non-terminal item the list source named by
// ws.WatchFrom tracks. Apply does this as items change; this catches up on
// items that were already tracked when watch_from was configured.
func WatchListed(st store.Store, ws *Source, now time.Time) (int, error) {
	var ids []string
	err := st.View(func(t store.Txn) error {
		return t.ItemHeads(ws.WatchFrom, func(id string, it *store.Item) error {
			if !ws.IsTerminal(it.State) {
				ids = append(ids, id)
			}
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("watch items of %s: %w", ws.WatchFrom, err)
	}
	added := 0
	err = batch(st, func(group func(func(store.Txn) error) error) error {
		for _, id := range ids {
			if err := group(func(t store.Txn) error {
				ok, err := addWatch(t, ws, id, store.OriginWatchFrom, now)
				if ok {
					t.OnCommit(func() { added++ })
				}
				return err
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return added, fmt.Errorf("watch items of %s: %w", ws.WatchFrom, err)
	}
	return added, nil
}

// batch runs fill with a function adding groups to one store batch, then
// commits it.
func batch(st store.Store, fill func(group func(func(store.Txn) error) error) error) error {
	b := st.NewBatch()
	defer b.Discard()
	if err := fill(b.Group); err != nil {
		return err
	}
	return b.Commit()
}
