package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/store"
)

var deliveryCases = []testCase{
	{"RoundTrip", testDeliveryRoundTrip},
	{"Attempts", testAttempts},
	{"DeadLetterAndRedeliver", testDeadLetterRedeliver},
	{"LoadDeliveriesRepairs", testLoadDeliveries},
}

func fullDelivery(sub string, e *event.Event) *store.Delivery {
	return &store.Delivery{
		EventID: e.ID, Subscription: sub, Resource: e.Resource(), State: store.Retrying,
		Attempts: 3, Round: 2, NextAt: time.Unix(t0.Unix(), 987654321), CreatedAt: t0.Add(-time.Hour),
		UpdatedAt: t0, LastStatus: 503, LastError: "503 Service Unavailable", EventAt: e.CreatedAt,
	}
}

// A delivery comes back as it was put; Deliveries lists every delivery of
// every subscription.
func testDeliveryRoundTrip(t *testing.T, b Backend) {
	s := b.Open(t)
	es := newEvents(3, t0, time.Millisecond)
	es[1].ItemID = "a\x00b/é"
	var all []*store.Delivery
	update(t, s, func(tx store.Txn) error {
		for _, e := range es {
			for _, sub := range []string{"app", "app-2"} {
				d := fullDelivery(sub, e)
				all = append(all, d)
				if err := tx.PutDelivery(d, nil); err != nil {
					return err
				}
			}
		}
		return nil
	})
	view(t, s, func(tx store.Txn) error {
		for _, d := range all {
			got, err := tx.Delivery(d.Subscription, d.EventID)
			if err != nil {
				return err
			}
			same(t, "Delivery", got, d)
		}
		missing, err := tx.Delivery("app-3", es[0].ID)
		if missing != nil {
			t.Errorf("Delivery of another subscription = %s, want nil", show(missing))
		}
		var listed []*store.Delivery
		lerr := tx.Deliveries(func(d *store.Delivery) error {
			listed = append(listed, d)
			return nil
		})
		sortDeliveries(listed)
		sortDeliveries(all)
		same(t, "Deliveries", listed, all)
		return errors.Join(err, lerr)
	})
}

func sortDeliveries(ds []*store.Delivery) {
	slices.SortFunc(ds, func(a, b *store.Delivery) int {
		if c := compare(a.Subscription, b.Subscription); c != 0 {
			return c
		}
		return compare(a.EventID, b.EventID)
	})
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Attempts lists an event's attempts by subscription, then attempt
// number (numerically: 10 after 9), every field kept.
func testAttempts(t *testing.T, b Backend) {
	s := b.Open(t)
	es := newEvents(2, t0, time.Millisecond)
	attempt := func(sub string, n int) store.Attempt {
		return store.Attempt{
			N: n, Subscription: sub, At: t0.Add(time.Duration(n)*time.Minute + 123), Status: 500 + n,
			LatencyMS: 12.5 + float64(n), Outcome: "failure", Error: fmt.Sprintf("error %d", n), Body: `{"error":"x"}`,
		}
	}
	// Past 255 an attempt number takes a second byte.
	order := []int{12, 3, 1, 256, 10, 2, 11, 9, 4, 1000, 5, 8, 6, 255, 7}
	var want []store.Attempt
	for _, sub := range []string{"app", "app-2"} {
		for _, n := range slices.Sorted(slices.Values(order)) {
			want = append(want, attempt(sub, n))
		}
	}
	update(t, s, func(tx store.Txn) error {
		for _, sub := range []string{"app-2", "app"} {
			for _, n := range order {
				if err := tx.AddAttempt(es[0].ID, attempt(sub, n)); err != nil {
					return err
				}
			}
		}
		return tx.AddAttempt(es[1].ID, attempt("app", 1))
	})
	view(t, s, func(tx store.Txn) error {
		got, err := tx.Attempts(es[0].ID)
		same(t, "Attempts", got, want)
		other, oerr := tx.Attempts(es[1].ID)
		same(t, "Attempts of the other event", other, []store.Attempt{attempt("app", 1)})
		none, nerr := tx.Attempts(event.NewID(t0))
		if len(none) != 0 {
			t.Errorf("Attempts of an event without any = %v", none)
		}
		return errors.Join(err, oerr, nerr)
	})
}

// record is the notifier recording an attempt: the attempt, the
// delivery's next state, and on a finish the promotion of the delivery
// waiting behind it.
func record(t testing.TB, s store.Store, sub, id string, now time.Time, next func(d *store.Delivery)) {
	t.Helper()
	update(t, s, func(tx store.Txn) error {
		prev, err := tx.Delivery(sub, id)
		if err != nil || prev == nil {
			return errors.Join(err, fmt.Errorf("no delivery %s", id))
		}
		d := *prev
		d.Attempts++
		d.Round++
		d.UpdatedAt = now
		if err := tx.AddAttempt(id, store.Attempt{N: d.Attempts, Subscription: sub, At: now, Outcome: "failure"}); err != nil {
			return err
		}
		next(&d)
		if err := tx.PutDelivery(&d, prev); err != nil {
			return err
		}
		if d.Open() || d.Resource == "" {
			return nil
		}
		waiting, err := tx.NextInResource(sub, d.Resource, id)
		if err != nil || waiting == "" {
			return err
		}
		w, err := tx.Delivery(sub, waiting)
		if err != nil || w == nil || w.State != store.Waiting {
			return err
		}
		nw := *w
		nw.State, nw.NextAt, nw.UpdatedAt = store.Pending, now, now
		return tx.PutDelivery(&nw, w)
	})
}

// The life of two ordered events of one item, as the notifier moves them:
// fan-out, dispatch parking the second behind the first, retries, a dead
// letter releasing the second, and redelivery putting the first back in
// front.
func testDeadLetterRedeliver(t *testing.T, b Backend) {
	s := b.Open(t)
	e1, e2 := newEvent(t0, "src", "1"), newEvent(t0.Add(time.Millisecond), "src", "1")
	res := e1.Resource()
	update(t, s, func(tx store.Txn) error { return errors.Join(tx.AddEvent(e1), tx.AddEvent(e2)) })
	fanOut(t, s, "app", t0)
	if got := dueIDs(t, s, "app", t0, 64); len(got) != 2 {
		t.Fatalf("Due after fan-out = %v, want both", got)
	}
	// Dispatch: e2 is not the head of its resource, so it waits.
	if head := resourceHead(t, s, "app", res); head != e1.ID {
		t.Fatalf("ResourceHead = %q, want %q", head, e1.ID)
	}
	move(t, s, "app", e2.ID, func(d *store.Delivery) { d.State = store.Waiting })
	record(t, s, "app", e1.ID, t0, func(d *store.Delivery) { d.State, d.NextAt = store.Retrying, t0.Add(time.Minute) })
	same(t, "Due while e1 retries later", dueIDs(t, s, "app", t0, 64), []string(nil))
	at, found := nextDueAfter(t, s, "app", t0)
	wantTime(t, "NextDueAfter while e1 retries", at, found, t0.Add(time.Minute))

	t1 := t0.Add(time.Minute)
	record(t, s, "app", e1.ID, t1, func(d *store.Delivery) { d.State = store.Dead })
	same(t, "Due after e1 died", dueIDs(t, s, "app", t1, 64), []string{e2.ID})
	wantChain(t, "order after e1 died", s, "app", res, e2)
	if d := getDelivery(t, s, "app", e1.ID); d == nil || d.State != store.Dead || d.Attempts != 2 {
		t.Errorf("e1 after its last attempt = %s, want dead after 2 attempts", show(d))
	}
	record(t, s, "app", e2.ID, t1, func(d *store.Delivery) { d.State = store.Delivered })
	at, found = nextDue(t, s)
	wantTime(t, "NextDue with everything finished", at, found, time.Time{})

	// Redeliver e1 then e2: pending now, round 0, attempts kept.
	t2 := t1.Add(time.Hour)
	for _, e := range []*event.Event{e1, e2} {
		move(t, s, "app", e.ID, func(d *store.Delivery) { d.State, d.NextAt, d.UpdatedAt, d.Round = store.Pending, t2, t2, 0 })
	}
	same(t, "Due after redelivery", sortedIDs(dueIDs(t, s, "app", t2, 64)), []string{e1.ID, e2.ID})
	wantChain(t, "order after redelivery", s, "app", res, e1, e2)
	var atts []store.Attempt
	view(t, s, func(tx store.Txn) error {
		var err error
		atts, err = tx.Attempts(e1.ID)
		return err
	})
	if len(atts) != 2 || atts[0].N != 1 || atts[1].N != 2 {
		t.Errorf("e1's attempts after redelivery = %s, want its two", show(atts))
	}
}

func sortedIDs(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

// fanOut is the notifier's fan-out of every outbox event to one ordered
// subscription: one transaction that creates the deliveries and empties
// the outbox.
func fanOut(t testing.TB, s store.Store, sub string, now time.Time) {
	t.Helper()
	update(t, s, func(tx store.Txn) error {
		ids, err := tx.NextOutbox(256)
		if err != nil {
			return err
		}
		for _, id := range ids {
			e, err := tx.EventMeta(id)
			if err != nil || e == nil {
				return errors.Join(err, fmt.Errorf("event %s not found", id))
			}
			prev, err := tx.Delivery(sub, id)
			if err != nil {
				return err
			}
			if prev == nil {
				if err := tx.PutDelivery(ordered(sub, e, now), nil); err != nil {
					return err
				}
			}
			if err := tx.RemoveFromOutbox(id); err != nil {
				return err
			}
		}
		return nil
	})
}

// LoadDeliveries passes every delivery and repairs the schedule: an entry
// without its queued delivery goes, a queued delivery without its entry
// gets one, and it says how many it fixed.
func testLoadDeliveries(t *testing.T, b Backend) {
	s := b.Open(t)
	es := newEvents(4, t0, time.Millisecond)
	update(t, s, func(tx store.Txn) error {
		delivered := queued("app", es[3], t0)
		delivered.State = store.Delivered
		return errors.Join(
			tx.PutDelivery(queued("app", es[0], t0), nil),
			tx.PutDelivery(queued("app", es[1], t0), nil),
			tx.PutDelivery(queued("app", es[2], t0.Add(10*time.Second)), nil),
			tx.PutDelivery(delivered, nil),
		)
	})
	// es[1] moved without its prev: its old entry stays, stale.
	update(t, s, func(tx store.Txn) error { return tx.PutDelivery(queued("app", es[1], t0.Add(time.Minute)), nil) })
	// es[2] loses its entry.
	update(t, s, func(tx store.Txn) error {
		return tx.DropDue(store.DueRef{Subscription: "app", EventID: es[2].ID, At: t0.Add(10 * time.Second)})
	})
	var seen []string
	fixed, err := s.LoadDeliveries(func(d *store.Delivery) error {
		seen = append(seen, d.EventID)
		return nil
	})
	if err != nil {
		t.Fatalf("LoadDeliveries: %v", err)
	}
	same(t, "LoadDeliveries passed", sortedIDs(seen), eventIDs(es))
	if fixed != 2 {
		t.Errorf("LoadDeliveries fixed %d entries, want 2", fixed)
	}
	same(t, "Due after the repair", dueIDs(t, s, "app", t0.Add(farFuture), 10), []string{es[0].ID, es[2].ID, es[1].ID})
	if fixed, err := s.LoadDeliveries(func(*store.Delivery) error { return nil }); fixed != 0 || err != nil {
		t.Errorf("LoadDeliveries again fixed %d (error %v), want 0", fixed, err)
	}
	if _, err := s.LoadDeliveries(func(*store.Delivery) error { return errBoom }); !errors.Is(err, errBoom) {
		t.Errorf("LoadDeliveries with a failing fn = %v, want its error", err)
	}
}
