package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/store"
)

var tombstoneCases = []testCase{
	{"DueAfterThousandsFinished", testDueAfterFinished},
	{"DueAfterThousandsDropped", testDueAfterDropped},
	{"OutboxAfterThousandsRemoved", testOutboxAfterRemoved},
	{"OlderSnapshotHidesNothing", testOlderSnapshot},
	{"DeleteThenReadd", testDeleteThenReadd},
	{"ConcurrentFanOut", testConcurrentFanOut},
	{"ConcurrentDispatch", testConcurrentDispatch},
}

const thousands = 5000

// batchOf writes fn for each of n, a group each, in one batch.
func batchOf(t testing.TB, s store.Store, n int, fn func(tx store.Txn, i int) error) {
	t.Helper()
	bt := s.NewBatch()
	defer bt.Discard()
	for i := range n {
		if err := bt.Group(func(tx store.Txn) error { return fn(tx, i) }); err != nil {
			t.Fatalf("Group %d: %v", i, err)
		}
	}
	if err := bt.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// scheduled stores thousands of deliveries to app, due a millisecond
// apart from t0.
func scheduled(t testing.TB, s store.Store) []*event.Event {
	t.Helper()
	es := newEvents(thousands, t0.Add(-time.Hour), 0)
	batchOf(t, s, len(es), func(tx store.Txn, i int) error {
		return tx.PutDelivery(queued("app", es[i], t0.Add(time.Duration(i)*time.Millisecond)), nil)
	})
	return es
}

// Deliveries finished from the front of a schedule, as the notifier
// finishes them, never hide what is still queued: neither the next ones
// nor one scheduled again before all of them.
func testDueAfterFinished(t *testing.T, b Backend) {
	s := b.Open(t)
	es := scheduled(t, s)
	now := t0.Add(farFuture)
	for i := 0; i < len(es)-1; i += 100 {
		refs := due(t, s, "app", now, 100)
		if len(refs) == 0 || refs[0].EventID != es[i].ID {
			t.Fatalf("Due after %d delivered starts at %v, want %s", i, refs[:min(len(refs), 1)], es[i].ID)
		}
		update(t, s, func(tx store.Txn) error {
			for _, r := range refs[:min(len(refs), len(es)-1-i)] {
				prev, err := tx.Delivery("app", r.EventID)
				if err != nil {
					return err
				}
				d := *prev
				d.State = store.Delivered
				if err := tx.PutDelivery(&d, prev); err != nil {
					return err
				}
			}
			return nil
		})
	}
	last := es[len(es)-1]
	same(t, "Due with one left", dueIDs(t, s, "app", now, 100), []string{last.ID})
	// Redelivering the first, due before everything finished.
	move(t, s, "app", es[0].ID, func(d *store.Delivery) { d.State, d.NextAt = store.Pending, t0.Add(-time.Minute) })
	same(t, "Due after redelivering the first", dueIDs(t, s, "app", now, 100), []string{es[0].ID, last.ID})
	at, found := nextDue(t, s)
	wantTime(t, "NextDue", at, found, t0.Add(-time.Minute))
}

// Thousands of entries dropped with DropDue (stale ones, as dispatch
// tidies them) never hide the entries after them.
func testDueAfterDropped(t *testing.T, b Backend) {
	s := b.Open(t)
	es := scheduled(t, s)
	now := t0.Add(farFuture)
	for i := 0; i < len(es)-1; i += 500 {
		refs := due(t, s, "app", now, 500)
		if len(refs) == 0 || refs[0].EventID != es[i].ID {
			t.Fatalf("Due after %d dropped starts at %v, want %s", i, refs[:min(len(refs), 1)], es[i].ID)
		}
		update(t, s, func(tx store.Txn) error {
			for _, r := range refs[:min(len(refs), len(es)-1-i)] {
				if err := tx.DropDue(r); err != nil {
					return err
				}
			}
			return nil
		})
	}
	same(t, "Due with one left", dueIDs(t, s, "app", now, 100), []string{es[len(es)-1].ID})
	at, found := nextDueAfter(t, s, "app", t0.Add(-time.Hour))
	wantTime(t, "NextDueAfter", at, found, t0.Add(time.Duration(len(es)-1)*time.Millisecond))
}

// Thousands of events fanned out from the front of the outbox never hide
// the rest, nor one put back or added after.
func testOutboxAfterRemoved(t *testing.T, b Backend) {
	s := b.Open(t)
	es := newEvents(thousands, t0.Add(-time.Hour), 0)
	batchOf(t, s, len(es), func(tx store.Txn, i int) error { return tx.AddEvent(es[i]) })
	var seen []string
	for {
		var ids []string
		update(t, s, func(tx store.Txn) error {
			var err error
			if ids, err = tx.NextOutbox(256); err != nil {
				return err
			}
			for _, id := range ids {
				if err := tx.RemoveFromOutbox(id); err != nil {
					return err
				}
			}
			return nil
		})
		seen = append(seen, ids...)
		if len(ids) == 0 {
			break
		}
	}
	if !slices.Equal(seen, eventIDs(es)) {
		t.Fatalf("fan-out saw %d events, want all %d in order", len(seen), len(es))
	}
	late := newEvent(t0, "src", "late")
	update(t, s, func(tx store.Txn) error { return errors.Join(tx.ReturnToOutbox(es[0].ID), tx.AddEvent(late)) })
	var next []string
	view(t, s, func(tx store.Txn) error {
		var err error
		next, err = tx.NextOutbox(256)
		return err
	})
	same(t, "NextOutbox after returning the first and adding one", next, []string{es[0].ID, late.ID})
	same(t, "Outbox after returning the first and adding one", outbox(t, s, 256), []string{es[0].ID, late.ID})
}

// A queue read in a transaction that began before a commit, which
// therefore does not see what the commit wrote at the queue's front, does
// not hide it from later reads.
func testOlderSnapshot(t *testing.T, b Backend) {
	s := b.Open(t)
	es := newEvents(3, t0, time.Millisecond)
	update(t, s, func(tx store.Txn) error {
		return errors.Join(tx.AddEvent(es[2]), tx.PutDelivery(queued("app", es[2], t0.Add(time.Minute)), nil))
	})
	err := s.View(func(tx store.Txn) error {
		// Committed after the View began, before its reads.
		update(t, s, func(tx store.Txn) error {
			return errors.Join(tx.AddEvent(es[0]), tx.PutDelivery(queued("app", es[0], t0), nil))
		})
		ids, err := tx.NextOutbox(10)
		refs, derr := tx.Due("app", t0.Add(farFuture), 10)
		if len(ids) != 1 || len(refs) != 1 {
			t.Errorf("the older snapshot read outbox %v, schedule %v; want only what it began with", ids, refs)
		}
		return errors.Join(err, derr)
	})
	if err != nil {
		t.Fatal(err)
	}
	var next []string
	view(t, s, func(tx store.Txn) error {
		var err error
		next, err = tx.NextOutbox(10)
		return err
	})
	same(t, "NextOutbox after the older snapshot's read", next, []string{es[0].ID, es[2].ID})
	same(t, "Due after the older snapshot's read", dueIDs(t, s, "app", t0.Add(farFuture), 10), []string{es[0].ID, es[2].ID})
}

// Every kind of record deleted and written again is there again, fresh.
func testDeleteThenReadd(t *testing.T, b Backend) {
	s := b.Open(t)
	e := newEvent(t0, "src", "1")
	q := store.Quarantined{Kind: store.QuarantineItem, Source: "src", ItemID: "x", Reason: "r"}
	w := &store.Watch{Source: "w", ID: "1", CreatedAt: t0, Origin: store.OriginAPI}
	sub := &store.SubscriptionRecord{ID: "api-1", Spec: []byte(`{}`), CreatedAt: t0}
	write := func(at time.Time) {
		update(t, s, func(tx store.Txn) error {
			return errors.Join(tx.PutItem("src", "1", headItem("1")), tx.PutWatch(w), tx.MarkWatchEnded("w", "2", at),
				tx.PutAPISubscription(sub), tx.PutSubState("app", &store.SubState{FailureCount: 1}), tx.Quarantine(q, at))
		})
	}
	write(t0)
	update(t, s, func(tx store.Txn) error {
		return errors.Join(tx.DeleteItem("src", "1"), tx.DeleteWatch("w", "1"), tx.ClearWatchEnded("w", "2"),
			tx.DeleteAPISubscription("api-1"), tx.DeleteSubState("app"), tx.DeleteQuarantine(store.QuarantineID(&q)))
	})
	write(t0.Add(time.Hour))
	view(t, s, func(tx store.Txn) error {
		it, err1 := tx.Item("src", "1")
		gw, err2 := tx.Watch("w", "1")
		ended, err3 := tx.WatchEnded("w", "2")
		gs, err4 := tx.APISubscription("api-1")
		st, err5 := tx.SubState("app")
		gq, err6 := tx.QuarantineRecord(store.QuarantineID(&q))
		if it == nil || gw == nil || !ended || gs == nil || st == nil || gq == nil {
			t.Errorf("after delete and re-add: item %v watch %v ended %v subscription %v state %v quarantine %v",
				it != nil, gw != nil, ended, gs != nil, st != nil, gq != nil)
		}
		if gq != nil && (gq.Count != 1 || !gq.FirstAt.Equal(t0.Add(time.Hour))) {
			t.Errorf("quarantine record set aside again after its delete: count %d first %v, want a fresh one", gq.Count, gq.FirstAt)
		}
		return errors.Join(err1, err2, err3, err4, err5, err6)
	})
	update(t, s, func(tx store.Txn) error { return tx.PutDelivery(queued("app", e, t0), nil) })
	move(t, s, "app", e.ID, func(d *store.Delivery) { d.State = store.Delivered })
	move(t, s, "app", e.ID, func(d *store.Delivery) { d.State, d.NextAt = store.Pending, t0.Add(time.Second) })
	same(t, "Due after delivered then redelivered", dueIDs(t, s, "app", t0.Add(time.Second), 10), []string{e.ID})
}

// A producer adds events while a consumer fans the outbox out from the
// front, as poller and notifier do: every event is taken exactly once.
func testConcurrentFanOut(t *testing.T, b Backend) {
	s := b.Open(t)
	const rounds, each = 40, 25
	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		defer done.Store(true)
		for r := range rounds {
			es := newEvents(each, t0.Add(time.Duration(r)*time.Second), time.Millisecond)
			if err := s.Update(func(tx store.Txn) error {
				for _, e := range es {
					if err := tx.AddEvent(e); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				t.Errorf("add events: %v", err)
				return
			}
		}
	})
	seen := map[string]int{}
	for {
		finished := done.Load()
		var ids []string
		update(t, s, func(tx store.Txn) error {
			taken, err := tx.NextOutbox(64)
			if err != nil {
				return err
			}
			for _, id := range taken {
				if err := tx.RemoveFromOutbox(id); err != nil {
					return err
				}
			}
			tx.OnCommit(func() { ids = taken })
			return nil
		})
		for _, id := range ids {
			seen[id]++
		}
		if len(ids) == 0 && finished {
			break
		}
	}
	wg.Wait()
	twice := 0
	for _, n := range seen {
		if n > 1 {
			twice++
		}
	}
	if len(seen) != rounds*each || twice > 0 {
		t.Errorf("fan-out took %d distinct events (%d more than once), want %d once each", len(seen), twice, rounds*each)
	}
}

// A producer schedules deliveries, due now and earlier than what is
// queued, while a dispatcher finishes them from the front of the
// schedule: none is left behind.
func testConcurrentDispatch(t *testing.T, b Backend) {
	s := b.Open(t)
	const rounds, each = 40, 25
	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		defer done.Store(true)
		for r := range rounds {
			es := newEvents(each, t0, time.Millisecond)
			// Later rounds are due earlier, below entries already finished.
			at := t0.Add(time.Duration(rounds-r) * time.Second)
			if err := s.Update(func(tx store.Txn) error {
				for _, e := range es {
					if err := tx.PutDelivery(queued("app", e, at), nil); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				t.Errorf("schedule: %v", err)
				return
			}
		}
	})
	delivered := 0
	for {
		finished := done.Load()
		n := finishDue(t, s, t0.Add(farFuture))
		delivered += n
		if n == 0 && finished {
			break
		}
	}
	wg.Wait()
	if delivered != rounds*each {
		t.Errorf("dispatch finished %d deliveries, want %d", delivered, rounds*each)
	}
	if refs := due(t, s, "app", t0.Add(farFuture), 10); len(refs) != 0 {
		t.Errorf("entries left in the schedule: %v", refs)
	}
}

// finishDue delivers up to 64 due deliveries of app, reporting how many.
func finishDue(t testing.TB, s store.Store, now time.Time) int {
	t.Helper()
	n := 0
	update(t, s, func(tx store.Txn) error {
		refs, err := tx.Due("app", now, 64)
		if err != nil {
			return err
		}
		count := 0
		for _, r := range refs {
			prev, err := tx.Delivery("app", r.EventID)
			if err != nil {
				return err
			}
			if !r.Current(prev) {
				return fmt.Errorf("stale entry %v", r)
			}
			d := *prev
			d.State = store.Delivered
			if err := tx.PutDelivery(&d, prev); err != nil {
				return err
			}
			count++
		}
		tx.OnCommit(func() { n = count })
		return nil
	})
	return n
}
