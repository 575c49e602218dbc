package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/store"
)

var pruneCases = []testCase{
	{"KeepsOpenAndOutbox", testPrune},
	{"Empty", testPruneEmpty},
}

// pruneCase is one old or new event and what Prune must do with it.
type pruneCase struct {
	name string
	old  bool
	// outbox leaves the event in the outbox; states are its deliveries'
	// (one subscription each, app then app-2), each with one attempt.
	outbox bool
	states []string
	pruned bool
}

var pruneFixtures = []pruneCase{
	{name: "delivered", old: true, states: []string{store.Delivered}, pruned: true},
	{name: "dead", old: true, states: []string{store.Dead, store.Delivered}, pruned: true},
	{name: "no deliveries", old: true, pruned: true},
	{name: "one still retrying", old: true, states: []string{store.Delivered, store.Retrying}},
	{name: "waiting", old: true, states: []string{store.Waiting}},
	{name: "pending", old: true, states: []string{store.Pending}},
	{name: "in the outbox", old: true, outbox: true},
	{name: "new", states: []string{store.Delivered}},
}

// Prune removes the events created before its cutoff with their finished
// deliveries and attempts, and keeps, whatever its age, an event that is
// still in the outbox or has an open delivery, with all its deliveries
// and attempts.
func testPrune(t *testing.T, b Backend) {
	s := b.Open(t)
	cutoff := t0.Add(-time.Hour)
	events := map[string]*event.Event{}
	var want store.PruneResult
	update(t, s, func(tx store.Txn) error {
		for i, c := range pruneFixtures {
			at := t0.Add(time.Duration(i) * time.Millisecond)
			if c.old {
				at = cutoff.Add(-time.Hour + time.Duration(i)*time.Millisecond)
			}
			e := newEvent(at, "src", c.name)
			events[c.name] = e
			if err := writePruneCase(tx, e, c); err != nil {
				return err
			}
			if c.pruned {
				want.Events++
				want.Deliveries += len(c.states)
				want.Attempts += len(c.states)
			}
		}
		return nil
	})
	got, err := s.Prune(cutoff)
	if err != nil {
		t.Fatalf("Prune: %v", err)
	}
	if got != want {
		t.Errorf("Prune = %+v, want %+v", got, want)
	}
	for _, c := range pruneFixtures {
		checkPruned(t, s, events[c.name], c)
	}
	if again, err := s.Prune(cutoff); err != nil || again != (store.PruneResult{}) {
		t.Errorf("Prune again = %+v, %v; want nothing removed", again, err)
	}
}

func writePruneCase(tx store.Txn, e *event.Event, c pruneCase) error {
	var err error
	if c.outbox {
		err = tx.AddEvent(e)
	} else {
		err = tx.LogEvent(e)
	}
	for i, st := range c.states {
		sub := []string{"app", "app-2"}[i]
		d := queued(sub, e, t0)
		d.State = st
		err = errors.Join(err, tx.PutDelivery(d, nil),
			tx.AddAttempt(e.ID, store.Attempt{N: 1, Subscription: sub, At: e.CreatedAt, Outcome: "failure"}))
	}
	return err
}

func checkPruned(t *testing.T, s store.Store, e *event.Event, c pruneCase) {
	t.Helper()
	view(t, s, func(tx store.Txn) error {
		got, err := tx.Event(e.ID)
		if (got == nil) != c.pruned {
			t.Errorf("%s: event kept = %v, want %v", c.name, got != nil, !c.pruned)
		}
		atts, aerr := tx.Attempts(e.ID)
		if want := len(c.states); c.pruned && len(atts) != 0 || !c.pruned && len(atts) != want {
			t.Errorf("%s: %d attempts left", c.name, len(atts))
		}
		errs := []error{err, aerr}
		for i := range c.states {
			d, err := tx.Delivery([]string{"app", "app-2"}[i], e.ID)
			if (d == nil) != c.pruned {
				t.Errorf("%s: delivery %d kept = %v, want %v", c.name, i, d != nil, !c.pruned)
			}
			errs = append(errs, err)
		}
		if c.outbox {
			ob, err := tx.Outbox(100)
			if len(ob) != 1 || ob[0] != e.ID {
				t.Errorf("%s: outbox = %v", c.name, ob)
			}
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
}

func testPruneEmpty(t *testing.T, b Backend) {
	s := b.Open(t)
	if got, err := s.Prune(t0); err != nil || got != (store.PruneResult{}) {
		t.Errorf("Prune of an empty store = %+v, %v", got, err)
	}
}
