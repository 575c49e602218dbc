package storetest

import (
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/store"
)

var durabilityCases = []testCase{
	{"Reopen", testReopen},
	{"QueuesAfterReopen", testQueuesAfterReopen},
}

func needReopen(t *testing.T, b Backend) {
	t.Helper()
	if b.Reopen == nil {
		t.Skip("the backend gives no Reopen")
	}
}

// What was committed is there after a restart, every kind of record.
func testReopen(t *testing.T, b Backend) {
	needReopen(t, b)
	s := b.Open(t)
	e := newEvent(t0, "src", "1")
	update(t, s, func(tx store.Txn) error { return writeEverything(tx, e) })
	s = b.Reopen(t, s)
	wantStored(t, stored(t, s, e), true)
}

// The outbox and a schedule taken from the front before a restart go on
// where they were after it, and take entries written before their front.
func testQueuesAfterReopen(t *testing.T, b Backend) {
	needReopen(t, b)
	s := b.Open(t)
	es := newEvents(200, t0.Add(-time.Hour), time.Millisecond)
	update(t, s, func(tx store.Txn) error {
		for i, e := range es {
			if err := tx.AddEvent(e); err != nil {
				return err
			}
			if err := tx.PutDelivery(queued("app", e, t0.Add(time.Duration(i)*time.Second)), nil); err != nil {
				return err
			}
		}
		return nil
	})
	update(t, s, func(tx store.Txn) error {
		ids, err := tx.NextOutbox(150)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := tx.RemoveFromOutbox(id); err != nil {
				return err
			}
		}
		return nil
	})
	for range 3 {
		finishDue(t, s, t0.Add(farFuture))
	}
	s = b.Reopen(t, s)
	same(t, "outbox after a restart", outbox(t, s, 1000), eventIDs(es[150:]))
	same(t, "Due after a restart", dueIDs(t, s, "app", t0.Add(farFuture), 1000), eventIDs(es[192:]))
	update(t, s, func(tx store.Txn) error { return tx.ReturnToOutbox(es[0].ID) })
	move(t, s, "app", es[0].ID, func(d *store.Delivery) { d.State, d.NextAt = store.Pending, t0 })
	var next []string
	view(t, s, func(tx store.Txn) error {
		var err error
		next, err = tx.NextOutbox(1)
		return err
	})
	same(t, "NextOutbox after returning the first", next, []string{es[0].ID})
	same(t, "Due after redelivering the first", dueIDs(t, s, "app", t0, 10), []string{es[0].ID})
}
