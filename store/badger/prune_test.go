package badger

import (
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/event"
)

func TestPruneKeepsWhatIsNotDelivered(t *testing.T) {
	s, err := Open(Options{Path: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	old := time.Now().Add(-10 * 24 * time.Hour)
	mk := func(at time.Time) *event.Event {
		return &event.Event{ID: event.NewID(at), Type: "t", Source: "s", ItemID: "i", CreatedAt: at}
	}
	delivered, open, outbox, recent := mk(old), mk(old), mk(old), mk(time.Now())
	err = s.update(func(tx *Txn) error {
		for _, e := range []*event.Event{delivered, open, outbox, recent} {
			if err := tx.AddEvent(e); err != nil {
				return err
			}
		}
		for _, e := range []*event.Event{delivered, open, recent} {
			if err := tx.RemoveFromOutbox(e.ID); err != nil {
				return err
			}
		}
		d := &Delivery{EventID: delivered.ID, Subscription: "app", State: Delivered}
		if err := tx.PutDelivery(d, nil); err != nil {
			return err
		}
		if err := tx.AddAttempt(delivered.ID, Attempt{N: 1, Subscription: "app", At: old, Status: 204}); err != nil {
			return err
		}
		return tx.PutDelivery(&Delivery{EventID: open.ID, Subscription: "app", State: Retrying, NextAt: time.Now()}, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Prune(time.Now().Add(-7 * 24 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != 1 || res.Deliveries != 1 || res.Attempts != 1 {
		t.Errorf("pruned %+v, want the one delivered event with its delivery and attempt", res)
	}
	s.view(func(tx *Txn) error {
		for _, c := range []struct {
			e    *event.Event
			kept bool
		}{{delivered, false}, {open, true}, {outbox, true}, {recent, true}} {
			got, err := tx.Event(c.e.ID)
			if err != nil {
				t.Fatal(err)
			}
			if (got != nil) != c.kept {
				t.Errorf("event %s kept=%v, want %v", c.e.ID, got != nil, c.kept)
			}
		}
		if d, _ := tx.Delivery("app", delivered.ID); d != nil {
			t.Error("the delivered delivery was kept")
		}
		if a, _ := tx.Attempts(delivered.ID); len(a) != 0 {
			t.Error("attempts were kept")
		}
		return nil
	})
}
