package badger

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/event"
)

func addEvents(t *testing.T, s *Store, ids ...string) {
	t.Helper()
	mustUpdate(t, s, func(tx *Txn) error {
		for _, id := range ids {
			if err := tx.AddEvent(&event.Event{ID: id, Type: "x", CreatedAt: time.Now()}); err != nil {
				return err
			}
		}
		return nil
	})
}

func nextOutbox(t *testing.T, s *Store, limit int) []string {
	t.Helper()
	var ids []string
	mustView(t, s, func(tx *Txn) error {
		var err error
		ids, err = tx.NextOutbox(limit)
		return err
	})
	return ids
}

func removeOutbox(t *testing.T, s *Store, ids ...string) {
	t.Helper()
	mustUpdate(t, s, func(tx *Txn) error {
		for _, id := range ids {
			if err := tx.RemoveFromOutbox(id); err != nil {
				return err
			}
		}
		return nil
	})
}

// A key written below a raised floor is still found: the commit lowers it.
func TestFloorLoweredByLaterWrite(t *testing.T) {
	s := openStore(t)
	addEvents(t, s, "evt_B", "evt_C")
	if got := nextOutbox(t, s, 10); len(got) != 2 {
		t.Fatalf("NextOutbox = %v", got)
	}
	removeOutbox(t, s, "evt_B", "evt_C")
	if got := nextOutbox(t, s, 10); len(got) != 0 { // raises the floor past the range
		t.Fatalf("NextOutbox after removal = %v", got)
	}
	addEvents(t, s, "evt_A") // sorts before everything seen so far
	if got := nextOutbox(t, s, 10); len(got) != 1 || got[0] != "evt_A" {
		t.Fatalf("NextOutbox = %v, want evt_A", got)
	}

	// The same for a subscription's schedule.
	t0 := time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)
	late := &Delivery{Subscription: "app", EventID: "evt_2", State: Pending, NextAt: t0.Add(time.Hour)}
	mustUpdate(t, s, func(tx *Txn) error { return tx.PutDelivery(late, nil) })
	mustView(t, s, func(tx *Txn) error { _, err := tx.Due("app", t0.Add(2*time.Hour), 10); return err })
	early := &Delivery{Subscription: "app", EventID: "evt_1", State: Pending, NextAt: t0}
	mustUpdate(t, s, func(tx *Txn) error { return tx.PutDelivery(early, nil) })
	mustView(t, s, func(tx *Txn) error {
		refs, err := tx.Due("app", t0.Add(2*time.Hour), 10)
		if len(refs) != 2 || refs[0].EventID != "evt_1" {
			t.Errorf("Due = %v, want evt_1 (written below the floor) first", refs)
		}
		return err
	})
}

// Writers adding outbox entries out of id order while a consumer scans and
// removes them: nothing is ever skipped. Run with -race.
func TestFloorConcurrentWriters(t *testing.T) {
	s := openStore(t)
	const writers, perWriter = 4, 300
	var wg sync.WaitGroup
	base := time.Now()
	for range writers {
		wg.Go(func() {
			for i := range perWriter {
				// Ids up to a second older than the newest: commit order
				// differs from id order, as with concurrent polls.
				at := base.Add(time.Duration(i)*time.Millisecond - time.Duration(rand.IntN(1000))*time.Millisecond)
				id := event.NewID(at)
				err := s.update(func(tx *Txn) error {
					return tx.AddEvent(&event.Event{ID: id, Type: "x", CreatedAt: at})
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	seen := map[string]bool{}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	consume := func() int {
		ids := nextOutbox(t, s, 50)
		for _, id := range ids {
			if seen[id] {
				t.Errorf("%s consumed twice", id)
			}
			seen[id] = true
		}
		removeOutbox(t, s, ids...)
		return len(ids)
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			consume()
		}
	}
	for consume() > 0 {
	}
	if len(seen) != writers*perWriter {
		var left []string
		mustView(t, s, func(tx *Txn) error {
			var err error
			left, err = tx.Outbox(10)
			return err
		})
		t.Fatalf("consumed %d of %d; left in the outbox: %v", len(seen), writers*perWriter, left)
	}
}

// A commit landing between a scan's snapshot and its raise must not let
// the raise hide the committed key: the raise is refused.
func TestFloorRaiseAfterConcurrentCommit(t *testing.T) {
	s := openStore(t)
	addEvents(t, s, "evt_M")
	mustView(t, s, func(tx *Txn) error {
		addEvents(t, s, "evt_A") // committed after tx's snapshot
		ids, err := tx.NextOutbox(10)
		if len(ids) != 1 || ids[0] != "evt_M" {
			t.Fatalf("snapshot scan = %v", ids)
		}
		return err
	})
	if got := nextOutbox(t, s, 10); len(got) != 2 || got[0] != "evt_A" {
		t.Fatalf("NextOutbox = %v, want evt_A and evt_M", got)
	}
}
