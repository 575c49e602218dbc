// Package diff decides which transitions a poll reveals and writes them.
// Compare is pure: it takes what was stored and what was observed and returns
// the new records and transitions. Apply reads, compares and writes each
// item's new state together with the events it causes in one transaction.
package diff

import (
	"bytes"
	"encoding/json"
	"slices"
	"time"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/jqexpr"
	"github.com/pollrelay/pollrelay/store"
)

// Observation is one item as the latest poll saw it. State is canonical JSON.
type Observation struct {
	ID     string
	State  json.RawMessage
	Object json.RawMessage
	// ObjectFunc, when set and Object is nil, computes Object. Encoding
	// each item's object as canonical JSON was most of the cost of a poll
	// in which nothing changed, and only changed items need it.
	ObjectFunc func() json.RawMessage
	// ObjectRaw, when Object and ObjectFunc are unset, is the object as
	// valid JSON text in any form; Object is its canonical form. It defers
	// the encoding like ObjectFunc without a closure per item.
	ObjectRaw string
}

// object returns the item's object, computing it if it was deferred.
func (ob *Observation) object() json.RawMessage {
	switch {
	case ob.Object != nil:
	case ob.ObjectFunc != nil:
		ob.Object = ob.ObjectFunc()
	case ob.ObjectRaw != "":
		ob.Object = CanonicalText(ob.ObjectRaw)
	}
	return ob.Object
}

// CanonicalText is the canonical form of valid JSON text, decoded as the
// poller decodes a response so both paths store the same bytes. Text that
// fails to decode (which the poller never passes) yields null.
func CanonicalText(raw string) json.RawMessage {
	v, err := jqexpr.Decode([]byte(raw))
	if err == nil {
		var c json.RawMessage
		if c, err = event.Canonical(v); err == nil {
			return c
		}
	}
	return event.Null
}

// Transition is one detected change of an item.
type Transition struct {
	Kind     string // event.Created, Changed, Deleted or Stalled
	ID       string
	Previous json.RawMessage
	Current  json.RawMessage
	Object   json.RawMessage
	// Rule is the index of the stalled rule that fired (Stalled only).
	Rule int
}

// Change is the outcome for one item: its record to store (nil = forget
// it) and the transitions to emit with it.
type Change struct {
	ID          string
	Item        *store.Item
	Transitions []Transition
}

// Options steer Compare.
type Options struct {
	// Baseline is true until a source's first complete poll has been
	// recorded; a baseline records items without transitions unless
	// EmitExisting.
	Baseline     bool
	EmitExisting bool
	// Complete is true when every page of the listing was fetched and
	// parsed; only then can an absent item be deleted.
	Complete bool
	Deletes  bool
	// Settle is how many consecutive polls a new state must be seen on.
	Settle int
	// Stalls are the source's stalled rules, by index in its rule list
	// (Source.Stalls).
	Stalls map[int]*Rule
	Now    time.Time
}

// Compare returns the changes that obs makes to prev. Items whose record
// stays the same are absent from the result, so an unchanged poll writes
// nothing.
func Compare(prev map[string]*store.Item, obs []Observation, o Options) []Change {
	out, _ := compare(prev, obs, o)
	return out
}

// duplicates counts the ids a listing repeats, with the first repeated.
type duplicates struct {
	n     int
	first string
}

// compare is Compare, also counting repeated ids: the set of ids seen is
// built anyway, and building it again to warn about repeats cost as much
// as the comparison.
func compare(prev map[string]*store.Item, obs []Observation, o Options) ([]Change, duplicates) {
	if o.Settle < 1 {
		o.Settle = 1
	}
	var out []Change
	var dups duplicates
	seen := make(map[string]struct{}, len(obs))
	for _, ob := range obs {
		if _, dup := seen[ob.ID]; dup {
			if dups.n == 0 {
				dups.first = ob.ID
			}
			dups.n++
			continue // the first occurrence in a listing wins
		}
		seen[ob.ID] = struct{}{}
		old := prev[ob.ID]
		if old == nil {
			out = append(out, created(ob, o))
			continue
		}
		if c, ok := observed(ob, old, o); ok {
			out = append(out, c)
		}
	}
	silent := o.Baseline && !o.EmitExisting
	if o.Complete && o.Deletes && (!o.Baseline || silent) {
		var gone []string
		for id := range prev {
			if _, ok := seen[id]; !ok {
				gone = append(gone, id)
			}
		}
		slices.Sort(gone) // map order must not leak into event order
		for _, id := range gone {
			old := prev[id]
			if silent {
				out = append(out, Change{ID: id}) // see silentBaseline
				continue
			}
			out = append(out, Change{ID: id, Transitions: []Transition{{
				Kind: event.Deleted, ID: id, Previous: old.State, Current: event.Null, Object: old.Object,
			}}})
		}
	}
	return out, dups
}

func created(ob Observation, o Options) Change {
	it := &store.Item{
		State:   ob.State,
		Object:  ob.object(),
		Since:   o.Now,
		History: []store.HistoryEntry{{State: ob.State, At: o.Now}},
	}
	c := Change{ID: ob.ID, Item: it}
	if !o.Baseline || o.EmitExisting {
		c.Transitions = []Transition{{
			Kind: event.Created, ID: ob.ID, Previous: event.Null, Current: ob.State, Object: ob.object(),
		}}
	}
	return c
}

// observed handles an item seen again. It reports false when nothing about
// the stored record changes.
func observed(ob Observation, old *store.Item, o Options) (Change, bool) {
	if o.Baseline && !o.EmitExisting {
		return silentBaseline(ob, old, o)
	}
	if bytes.Equal(ob.State, old.State) {
		// Nothing changes for almost every item of a large listing: copy
		// the record only when it does, so the copy doesn't escape to the
		// heap for every one.
		if old.Pending == nil && len(o.Stalls) == 0 {
			return Change{}, false
		}
		it := *old
		dirty := false
		if old.Pending != nil {
			it.Pending, it.PendingCount = nil, 0 // a flicker that did not settle
			dirty = true
		}
		var ts []Transition
		for _, i := range sortedKeys(o.Stalls) {
			r := o.Stalls[i]
			if slices.Contains(old.Stalled, i) || !r.state.Match(old.State) || o.Now.Sub(old.Since) < r.After {
				continue
			}
			it.Stalled = append(slices.Clone(it.Stalled), i)
			ts = append(ts, Transition{
				Kind: event.Stalled, ID: ob.ID, Previous: old.State, Current: old.State, Object: ob.object(), Rule: i,
			})
			dirty = true
		}
		if !dirty {
			return Change{}, false
		}
		return Change{ID: ob.ID, Item: &it, Transitions: ts}, true
	}
	if o.Settle > 1 {
		n := 1
		if bytes.Equal(old.Pending, ob.State) {
			n = old.PendingCount + 1
		}
		if n < o.Settle {
			it := *old
			it.Pending, it.PendingCount = ob.State, n
			return Change{ID: ob.ID, Item: &it}, true
		}
	}
	ob.object() // once, for both the record and the transition
	return Change{ID: ob.ID, Item: enter(old, ob, o.Now), Transitions: []Transition{{
		Kind: event.Changed, ID: ob.ID, Previous: old.State, Current: ob.State, Object: ob.object(),
	}}}, true
}

// silentBaseline handles an item already stored when a baseline that
// emits nothing sees it. Only an earlier baseline that did not finish (a
// crash, or a failed page after pages were stored ahead) leaves items
// before the baseline is recorded, so what it stored is brought up to what
// this listing shows without a transition: a state taken at once, no
// stalled rule fired; and items a complete listing no longer names are
// forgotten without a `deleted` (see compare; Apply asks for that whatever
// the source's deletes setting, since nothing about them was announced).
func silentBaseline(ob Observation, old *store.Item, o Options) (Change, bool) {
	if bytes.Equal(ob.State, old.State) {
		if old.Pending == nil {
			return Change{}, false
		}
		it := *old
		it.Pending, it.PendingCount = nil, 0
		return Change{ID: ob.ID, Item: &it}, true
	}
	return Change{ID: ob.ID, Item: enter(old, ob, o.Now)}, true
}

// enter is old's record once the item entered the observed state: a new
// stay (Since, no stalled rule fired yet) with the state added to history.
func enter(old *store.Item, ob Observation, now time.Time) *store.Item {
	hist := append(slices.Clone(old.History), store.HistoryEntry{State: ob.State, At: now})
	if len(hist) > store.HistoryLen {
		hist = hist[len(hist)-store.HistoryLen:]
	}
	return &store.Item{State: ob.State, Object: ob.object(), Since: now, History: hist}
}

func sortedKeys(m map[int]*Rule) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
