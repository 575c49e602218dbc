package diff

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/jqexpr"
	"github.com/pollrelay/pollrelay/store"
)

// Result summarises what Apply wrote.
type Result struct {
	Tracked int // items tracked after the poll
	Changes int // item records written or removed
	// Transitions and Events are what the poll wrote. Of those written
	// ahead of the listing's end (Index.ApplyAhead) only the kind and id
	// of each transition, and each event without its states and object,
	// are kept: their records are in the store.
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
	// Quarantined counts items skipped because their id is over
	// store.MaxKeyPart or their stored record cannot be decoded;
	// QuarantinedID is the first, cut to 256 bytes, QuarantinedIDBytes its
	// length and QuarantinedReason why. The rest of the listing is applied.
	Quarantined        int
	QuarantinedID      string
	QuarantinedIDBytes int
	QuarantinedReason  string
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
	// Now is when the listing was seen. A listing part of which was
	// written ahead (Index.ApplyAhead) is judged when that was written
	// instead.
	Now time.Time
	// Validators are stored only when the result is fully stored: with a
	// state still settling or deletes held back, the next poll must see the
	// body again, so a 304 can't stand in for it.
	Validators Validators
	// Watchers are the watch sources whose watch_from names this source:
	// every item that enters a non-terminal state is watched by each, in
	// the same transaction as the item's change.
	Watchers []*Source
	// Replay re-observes the stored items instead of Observations: the
	// upstream answered 304 Not Modified, so only stalled rules can fire.
	Replay bool
	// Index, when set, is the source's stored items read while the listing
	// was fetched (LoadIndex). When the listing was already passed through
	// its Filter page by page, Observations are what Filter returned.
	// Without it Apply reads the index itself.
	Index *Index
	// Changes: the listing names only the items that changed (an
	// incremental poll). An item it leaves out is as last seen: still
	// settling into its pending state, or stalled; and it decides no
	// deletes, nor counts as a poll for the mass-delete guard.
	Changes bool
	// Mark, for an incremental source, is stored with the source's state
	// in the poll's last transaction: a crash before it repeats the poll
	// from the old watermark, never skips what it covered.
	Mark *Mark
}

// Mark is what an incremental poll leaves for the next one.
type Mark struct {
	// Watermark is the JSON text of the value the next poll asks from;
	// "" keeps the stored one (nothing seen, or a listing cut short).
	Watermark string
	// For names the source configuration it belongs to.
	For string
	// Full: the listing was complete, so it may have decided deletes.
	Full bool
}

// marked is ss with m applied at now.
func marked(ss store.SourceState, m *Mark, now time.Time) store.SourceState {
	if m == nil {
		return ss
	}
	if m.Watermark != "" {
		ss.Watermark, ss.WatermarkFor = m.Watermark, m.For
	}
	if m.Full {
		ss.FullAt = now
	}
	return ss
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
func Apply(ctx context.Context, st store.Store, src *Source, p Poll) (Result, error) {
	return apply(ctx, st, src, p, false)
}

// Preview is Apply without its writes: the same reads, comparison,
// mass-delete guard and events, so `probe` says what a poll of `run` would
// fire and what it would hold back. st may be opened read-only; what
// watch_from would start is not counted.
func Preview(ctx context.Context, st store.Store, src *Source, p Poll) (Result, error) {
	return apply(ctx, st, src, p, true)
}

// apply is Apply, or Preview when dry.
func apply(ctx context.Context, st store.Store, src *Source, p Poll, dry bool) (Result, error) {
	if x := p.Index; x != nil {
		// An index left unused (an unchanged listing, a replay, an error)
		// must still not outlive the poll: the store may close next.
		defer x.Wait()
	}
	var ss store.SourceState
	err := st.View(func(t store.Txn) error {
		var err error
		ss, err = t.SourceState(src.Name)
		return err
	})
	if err != nil {
		return Result{}, fmt.Errorf("load %s: %w", src.Name, err)
	}
	if p.Replay {
		x := p.Index
		if x == nil {
			x = LoadIndex(st, src, ss.ListingTracked)
		}
		res, err := replay(ctx, st, src, ss, x, p, dry)
		x.over.report(&res)
		return res, err
	}
	digest := ""
	if p.Complete && (p.Index == nil || !p.Index.filtered) {
		digest = listingDigest(src, p.Observations)
	}
	if ss.Baselined && digest != "" && digest == ss.ListingDigest {
		over := skippedOf(p.Observations)
		return unchanged(st, src, ss, p, &over, dry)
	}
	x := p.Index
	if x == nil {
		x = LoadIndex(st, src, ss.ListingTracked)
	}
	cands := p.Observations
	if !x.filtered {
		cands, err = x.Filter(p.Observations, p.Now)
	} else {
		err = x.Wait()
	}
	if err != nil {
		return Result{}, err
	}
	if x.aheadAt != nil {
		// Part of the listing was judged and written at that time: the
		// rest is judged with it, or an item written ahead would be seen
		// again in the state the index still holds for it.
		p.Now = *x.aheadAt
	}
	l := listingPoll{src: src, p: p, ss: ss, x: x, cands: cands, digest: digest, late: x.dueSince(cands, p.Now), dry: dry}
	if p.Changes {
		l.absent = x.dueUnseen(p.Now)
	}
	silent := !ss.Baselined && !src.EmitExisting
	if p.Complete && (src.DeletesEnabled() && ss.Baselined || silent) {
		l.gone = x.unseen() // a baseline's are left by one that failed
	}
	l.newSS = ss
	if !silent && !p.Changes && holdDeletes(len(l.gone), x.Len(), src, &l.newSS) {
		l.held, l.gone = len(l.gone), nil
	}
	res, err := l.apply(ctx, st)
	x.over.report(&res)
	if res.Duplicates = x.dups.n; res.Duplicates > 0 {
		res.DuplicateID = x.dups.first
	}
	return res, err
}

// listingPoll is a listing filtered through the stored items' index: the
// observations that may change something and the stored items it no
// longer names.
type listingPoll struct {
	src       *Source
	p         Poll
	ss, newSS store.SourceState
	x         *Index
	cands     []Observation
	gone      []string
	held      int
	digest    string
	// late are items Filter dropped that a stalled rule fell due for
	// between the filtering and p.Now: re-observed in their stored state,
	// as a poll judged at p.Now sees them.
	late []string
	// absent are items a listing of changes left out that are settling or
	// due for a stalled rule: re-observed as last seen (a settling one in
	// its pending state, which it still has upstream).
	absent []string
	dry    bool // Preview: write nothing
}

func (l *listingPoll) apply(ctx context.Context, st store.Store) (Result, error) {
	// Only the records of items that may change are read whole. An item
	// the index doesn't hold is new: only this source's loop writes them.
	prev := make(map[string]*store.Item, len(l.cands)+len(l.gone))
	cands := l.cands
	err := st.View(func(t store.Txn) error {
		for _, id := range l.late {
			it, err := t.Item(l.src.Name, id)
			if err != nil {
				return err
			}
			if it != nil {
				prev[id] = it
				cands = append(cands, Observation{ID: id, State: it.State, Object: it.Object})
			}
		}
		for _, id := range l.absent {
			it, err := t.Item(l.src.Name, id)
			if err != nil {
				return err
			}
			if it != nil {
				prev[id] = it
				state := it.State
				if it.Pending != nil {
					state = it.Pending
				}
				cands = append(cands, Observation{ID: id, State: state, Object: it.Object})
			}
		}
		read := func(id string) error {
			it, err := t.Item(l.src.Name, id)
			if it != nil {
				prev[id] = it
			}
			return err
		}
		for _, ob := range l.cands {
			if l.x.find(ob.ID) < 0 {
				continue // new
			}
			if err := read(ob.ID); err != nil {
				return err
			}
		}
		for _, id := range l.gone {
			if err := read(id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Result{}, fmt.Errorf("load %s: %w", l.src.Name, err)
	}
	changes, _ := compare(prev, cands, Options{
		Baseline:     !l.ss.Baselined,
		EmitExisting: l.src.EmitExisting,
		Complete:     true,
		Deletes:      len(l.gone) > 0, // prev holds no other unnamed item
		Settle:       l.src.Settle,
		Stalls:       l.src.Stalls(),
		Now:          l.p.Now,
	})
	settled := l.p.Complete && l.held == 0 && !pendingChange(changes) && !l.x.aheadPending && !(l.gone == nil && l.x.pendingUnseen())
	// write adds the new items it stores: one too large to store is not.
	tracked := l.x.Len() + l.x.early - len(l.gone)
	// What was written ahead comes first, as it was written first.
	ahead := &l.x.ahead
	res := Result{HeldDeletes: l.held, Changes: ahead.Changes,
		Transitions: ahead.Transitions, Events: ahead.Events, RuleErrors: ahead.RuleErrors}
	for ws, n := range ahead.WatchesAdded {
		if res.WatchesAdded == nil {
			res.WatchesAdded = map[string]int{}
		}
		res.WatchesAdded[ws] += n
	}
	return res, write(ctx, st, l.src, l.p, &res, changes, prev, writeState{
		old: l.ss, new: l.newSS, settled: settled, val: l.p.Validators, digest: l.digest, tracked: tracked, held: l.held,
		over: &l.x.over, dry: l.dry,
	})
}

// replay re-observes the stored items, as a 304 asks: only stalled rules
// can fire and unsettled states are dropped as flickers, so only items
// settling or due for a stalled rule are read whole.
func replay(ctx context.Context, st store.Store, src *Source, ss store.SourceState, x *Index, p Poll, dry bool) (Result, error) {
	if err := x.Wait(); err != nil {
		return Result{}, err
	}
	prev := map[string]*store.Item{}
	var obs []Observation
	err := st.View(func(t store.Txn) error {
		for _, id := range x.due(p.Now) {
			it, err := t.Item(src.Name, id)
			if err != nil {
				return err
			}
			if it != nil {
				prev[id] = it
				obs = append(obs, Observation{ID: id, State: it.State, Object: it.Object})
			}
		}
		return nil
	})
	if err != nil {
		return Result{}, fmt.Errorf("load %s: %w", src.Name, err)
	}
	changes, _ := compare(prev, obs, Options{
		Baseline: !ss.Baselined, EmitExisting: src.EmitExisting,
		Settle: src.Settle, Stalls: src.Stalls(), Now: p.Now,
	})
	newSS := ss
	holdDeletes(0, x.Len(), src, &newSS)
	res := Result{Duplicates: -1}
	return res, write(ctx, st, src, p, &res, changes, prev, writeState{
		old: ss, new: newSS, settled: !pendingChange(changes),
		val:     Validators{ETag: ss.ETag, LastModified: ss.LastModified, For: ss.ValidatorsFor},
		tracked: x.Len(), over: &x.over, dry: dry,
	})
}

// writeState is what a poll writes to its source's state after its items.
type writeState struct {
	old, new store.SourceState
	// settled: the poll's outcome is fully stored, so what it saw can
	// stand for the next poll (as validators, or as the listing's digest).
	settled bool
	val     Validators
	digest  string
	// tracked is how many items are stored after the poll, but for the
	// new ones write stores.
	tracked int
	// held counts the deletes the mass-delete guard held back: a full
	// listing that held some does not count as one, so the next poll
	// lists everything again and the guard can confirm them.
	held int
	// over are the listing's items skipped as too long to store, recorded
	// in the quarantine with the source's state.
	over *skipped
	// dry makes write fill the result and write nothing (Preview).
	dry bool
}

// write commits changes, their events and watches, then the source's
// state, filling res.
func write(ctx context.Context, st store.Store, src *Source, p Poll, res *Result, changes []Change, prev map[string]*store.Item, ws writeState) error {
	// The first successful poll is the baseline even when max_pages cut it
	// short: a listing that is always longer than max_pages (newest first,
	// say) must still report items that appear at its top.
	res.Baseline = !ws.old.Baselined
	mark := p.Mark
	if mark != nil && mark.Full && ws.held > 0 {
		m := *mark
		m.Full = false
		mark = &m
	}
	newSS := marked(ws.new, mark, p.Now)
	newSS.Baselined = true
	if ws.settled {
		newSS.ETag, newSS.LastModified, newSS.ValidatorsFor = ws.val.ETag, ws.val.LastModified, ws.val.For
	} else {
		newSS.ETag, newSS.LastModified, newSS.ValidatorsFor = "", "", ""
	}
	// ws.over gets what this write adds once it is committed.
	over := ws.over.clone()
	var b store.Batch
	if !ws.dry {
		b = st.NewBatch()
		defer b.Discard()
	}
	group := func(fn func(store.Txn) error) error {
		if b == nil {
			return nil
		}
		return b.Group(fn)
	}
	created, err := writeChanges(ctx, group, src, p.Now, p.Watchers, res, changes, prev, &over)
	if err != nil {
		return err
	}
	ws.tracked += created
	newSS.ListingDigest, newSS.ListingTracked = "", 0
	if ws.settled && ws.digest != "" {
		newSS.ListingDigest, newSS.ListingTracked = ws.digest, ws.tracked
	}
	if newSS != ws.old {
		err := group(func(t store.Txn) error { return t.PutSourceState(src.Name, newSS) })
		if err != nil {
			return fmt.Errorf("write %s: %w", src.Name, err)
		}
	}
	if over.n > 0 {
		err := group(func(t store.Txn) error { return over.record(t, src.Name, p.Now) })
		if err != nil {
			return fmt.Errorf("write %s: %w", src.Name, err)
		}
	}
	if b != nil {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := b.Commit(); err != nil {
			return fmt.Errorf("write %s: %w", src.Name, err)
		}
	}
	*ws.over = over
	res.Tracked = ws.tracked
	return nil
}

// writeChanges writes each change, its events and the watches it starts
// as one group, appending what it wrote to res; an item too large to
// store is noted in over instead. It returns how many of the items it
// wrote were not in prev.
func writeChanges(ctx context.Context, group func(func(store.Txn) error) error, src *Source, now time.Time, watchers []*Source, res *Result, changes []Change, prev map[string]*store.Item, over *skipped) (int, error) {
	created := 0
	for _, c := range changes {
		if c.Item != nil {
			if err := store.CheckItem(src.Name, c.ID, c.Item); err != nil {
				// Written, it would fail this batch and every later poll's.
				over.note(c.ID, err.Error()+": every poll skips the item")
				continue
			}
			if prev[c.ID] == nil {
				created++
			}
		}
		var evs []*event.Event
		for _, t := range c.Transitions {
			e, err := Events(ctx, src, t, nil, now)
			if errors.Is(err, jqexpr.ErrLimit) || ctx.Err() != nil {
				// A rule that runs away would fail again on every item,
				// and one stopped by the poll's end failed for want of
				// time: the poll fails and decides nothing more, rather
				// than recording states whose events were never made.
				return 0, fmt.Errorf("events: %w", errors.Join(err, ctx.Err()))
			}
			if err != nil {
				res.RuleErrors = append(res.RuleErrors, err)
			}
			evs = append(evs, e...)
		}
		err := group(func(t store.Txn) error {
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
			return watchFrom(t, watchers, c, prev[c.ID], now, res)
		})
		if err != nil {
			return 0, fmt.Errorf("write %s: %w", src.Name, err)
		}
		res.Changes++
		res.Transitions = append(res.Transitions, c.Transitions...)
		res.Events = append(res.Events, evs...)
	}
	return created, nil
}

// unchanged is Apply's outcome for a listing with the digest of the last
// settled one: nothing to compare or write but new validators, if any.
func unchanged(st store.Store, src *Source, ss store.SourceState, p Poll, over *skipped, dry bool) (Result, error) {
	now, val := p.Now, p.Validators
	newSS := marked(ss, p.Mark, now)
	newSS.ETag, newSS.LastModified, newSS.ValidatorsFor = val.ETag, val.LastModified, val.For
	newSS.SuspectPolls = 0
	if !dry && (newSS != ss || over.n > 0) {
		err := st.Update(func(t store.Txn) error {
			if newSS != ss {
				if err := t.PutSourceState(src.Name, newSS); err != nil {
					return err
				}
			}
			return over.record(t, src.Name, now)
		})
		if err != nil {
			return Result{}, fmt.Errorf("write %s: %w", src.Name, err)
		}
	}
	res := Result{Tracked: ss.ListingTracked, Duplicates: -1}
	over.report(&res)
	return res, nil
}

// pendingChange reports whether a change leaves an item settling.
func pendingChange(changes []Change) bool {
	return slices.ContainsFunc(changes, func(c Change) bool { return c.Item != nil && c.Item.Pending != nil })
}

// watchFrom starts a watch in each watcher for an item that entered a
// non-terminal state, and forgets a watch's end mark when its item left
// the listing, so the id can be watched again if it comes back.
func watchFrom(t store.Txn, watchers []*Source, c Change, prev *store.Item, now time.Time, res *Result) error {
	for _, ws := range watchers {
		if c.Item == nil {
			if err := t.ClearWatchEnded(ws.Name, c.ID); err != nil {
				return err
			}
			continue
		}
		if prev != nil && bytes.Equal(prev.State, c.Item.State) || ws.IsTerminal(c.Item.State) {
			continue
		}
		added, err := addWatch(t, ws, c.ID, store.OriginWatchFrom, now)
		if err != nil {
			return err
		}
		if added {
			t.OnCommit(func() {
				if res.WatchesAdded == nil {
					res.WatchesAdded = map[string]int{}
				}
				res.WatchesAdded[ws.Name]++
			})
		}
	}
	return nil
}

// holdDeletes reports whether a listing's deletes are held back: one that
// would delete more than max_delete_ratio of the tracked items waits until
// it has been seen on confirm_polls consecutive polls, so an upstream that
// briefly answers `{"data": []}` does not fire thousands of deleted events.
func holdDeletes(deletes, tracked int, src *Source, ss *store.SourceState) bool {
	ratio := src.MaxDeleteRatio
	if deletes == 0 || tracked == 0 || ratio <= 0 || float64(deletes) <= ratio*float64(tracked) {
		ss.SuspectPolls = 0
		return false
	}
	ss.SuspectPolls++
	if ss.SuspectPolls >= max(src.ConfirmPolls, 1) {
		ss.SuspectPolls = 0
		return false
	}
	return true
}
