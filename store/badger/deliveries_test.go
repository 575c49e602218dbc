package badger

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/store"
)

func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(Options{Path: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustUpdate(t *testing.T, s *Store, fn func(*Txn) error) {
	t.Helper()
	if err := s.update(fn); err != nil {
		t.Fatal(err)
	}
}

func mustView(t *testing.T, s *Store, fn func(*Txn) error) {
	t.Helper()
	if err := s.view(fn); err != nil {
		t.Fatal(err)
	}
}

func ids(refs []DueRef) string {
	out := ""
	for _, r := range refs {
		out += r.Subscription + "/" + r.EventID + " "
	}
	return out
}

// The schedule is per subscription: one subscription's due deliveries never
// show in another's scan, and every state change keeps the index right.
func TestScheduleIndex(t *testing.T) {
	s := openStore(t)
	t0 := time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)
	put := func(sub, id string, at time.Time, state string, prev *Delivery) *Delivery {
		d := &Delivery{Subscription: sub, EventID: id, State: state, NextAt: at}
		mustUpdate(t, s, func(tx *Txn) error { return tx.PutDelivery(d, prev) })
		return d
	}
	a1 := put("a", "evt_1", t0.Add(2*time.Second), Pending, nil)
	put("a", "evt_2", t0.Add(time.Second), Retrying, nil)
	put("a", "evt_3", t0.Add(time.Hour), Retrying, nil)
	put("b", "evt_4", t0, Pending, nil)
	put("ab", "evt_5", t0.Add(-time.Hour), Pending, nil) // a prefix of no other id

	mustView(t, s, func(tx *Txn) error {
		refs, err := tx.Due("a", t0.Add(time.Minute), 10)
		if err != nil {
			return err
		}
		if got := ids(refs); got != "a/evt_2 a/evt_1 " {
			t.Errorf("Due(a) = %s, want evt_2 then evt_1", got)
		}
		if refs, _ := tx.Due("a", t0.Add(time.Minute), 1); len(refs) != 1 {
			t.Errorf("Due with limit 1 returned %d", len(refs))
		}
		next, ok, err := tx.NextDueAfter("a", t0.Add(time.Minute))
		if err != nil || !ok || !next.Equal(t0.Add(time.Hour)) {
			t.Errorf("NextDueAfter(a) = %s, %t, %v", next, ok, err)
		}
		if _, ok, _ := tx.NextDueAfter("b", t0); ok {
			t.Error("NextDueAfter(b) found a delivery due later")
		}
		next, ok, err = tx.NextDue()
		if err != nil || !ok || !next.Equal(t0.Add(-time.Hour)) {
			t.Errorf("NextDue() = %s, %t, %v; want the earliest of all subscriptions", next, ok, err)
		}
		return nil
	})

	// Rescheduling moves the key; finishing removes it.
	a1b := put("a", "evt_1", t0.Add(3*time.Hour), Retrying, a1)
	mustView(t, s, func(tx *Txn) error {
		refs, _ := tx.Due("a", t0.Add(2*time.Hour), 10)
		if got := ids(refs); got != "a/evt_2 a/evt_3 " {
			t.Errorf("after rescheduling evt_1: %s", got)
		}
		if !(DueRef{At: t0.Add(3 * time.Hour)}).Current(a1b) || (DueRef{At: t0.Add(2 * time.Second)}).Current(a1b) {
			t.Error("DueRef.Current does not tell the current key from the stale one")
		}
		return nil
	})
	put("a", "evt_1", t0.Add(3*time.Hour), Delivered, a1b)
	mustView(t, s, func(tx *Txn) error {
		refs, _ := tx.Due("a", t0.Add(24*time.Hour), 10)
		if got := ids(refs); got != "a/evt_2 a/evt_3 " {
			t.Errorf("after delivering evt_1: %s", got)
		}
		return nil
	})
}

// The resource index holds open deliveries in event order, and follows a
// delivery whose resource changes.
func TestResourceIndex(t *testing.T) {
	s := openStore(t)
	now := time.Now()
	mk := func(id, res, state string) *Delivery {
		return &Delivery{Subscription: "app", EventID: id, Resource: res, State: state, NextAt: now}
	}
	e1, e2, e3 := mk("evt_1", "r", Pending), mk("evt_2", "r", Waiting), mk("evt_3", "r", Waiting)
	mustUpdate(t, s, func(tx *Txn) error {
		for _, d := range []*Delivery{e1, e2, e3} {
			if err := tx.PutDelivery(d, nil); err != nil {
				return err
			}
		}
		return nil
	})
	check := func(wantHead, after, wantNext string) {
		t.Helper()
		mustView(t, s, func(tx *Txn) error {
			head, err := tx.ResourceHead("app", "r")
			if err != nil {
				return err
			}
			next, err := tx.NextInResource("app", "r", after)
			if head != wantHead || next != wantNext {
				t.Errorf("head %q (want %q), next after %s %q (want %q)", head, wantHead, after, next, wantNext)
			}
			return err
		})
	}
	check("evt_1", "evt_1", "evt_2")
	done := *e1
	done.State = Delivered
	mustUpdate(t, s, func(tx *Txn) error { return tx.PutDelivery(&done, e1) })
	check("evt_2", "evt_1", "evt_2")
	// evt_2 now unordered (its subscription switched to ordering: none).
	moved := *e2
	moved.Resource, moved.State = "", Pending
	mustUpdate(t, s, func(tx *Txn) error { return tx.PutDelivery(&moved, e2) })
	check("evt_3", "evt_1", "evt_3")
	// A redelivered evt_1 re-enters the order ahead of evt_3.
	again := done
	again.State = Pending
	mustUpdate(t, s, func(tx *Txn) error { return tx.PutDelivery(&again, &done) })
	check("evt_1", "evt_1", "evt_3")
}

// LoadDeliveries repairs a schedule index that disagrees with the
// deliveries: a missing key comes back, a stray one (here in the layout
// used before the index was per subscription) goes.
func TestLoadDeliveriesRepairsSchedule(t *testing.T) {
	s := openStore(t)
	at := time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)
	d := &Delivery{Subscription: "app", EventID: "evt_1", State: Retrying, NextAt: at}
	mustUpdate(t, s, func(tx *Txn) error {
		if err := tx.PutDelivery(d, nil); err != nil {
			return err
		}
		if err := tx.PutDelivery(&Delivery{Subscription: "app", EventID: "evt_0", State: Delivered}, nil); err != nil {
			return err
		}
		if err := tx.del(dueKey("app", at, "evt_1")); err != nil {
			return err
		}
		old := binary.BigEndian.AppendUint64([]byte("q/"), uint64(at.UnixNano()))
		return tx.set(append(old, "app\x00evt_1"...), nil)
	})
	seen := 0
	fixed, err := s.LoadDeliveries(func(*Delivery) error { seen++; return nil })
	if err != nil || fixed != 2 || seen != 2 {
		t.Fatalf("LoadDeliveries = %d fixed, %d seen, %v; want 2, 2", fixed, seen, err)
	}
	mustView(t, s, func(tx *Txn) error {
		refs, err := tx.Due("app", at, 10)
		if err != nil || len(refs) != 1 || refs[0].EventID != "evt_1" {
			t.Errorf("after repair, Due = %v, %v", refs, err)
		}
		n := 0
		err = tx.scan(duePrefix, nil, false, func([]byte, []byte) (bool, error) { n++; return true, nil })
		if n != 1 {
			t.Errorf("%d schedule keys after repair, want 1", n)
		}
		return err
	})
	if fixed, err := s.LoadDeliveries(func(*Delivery) error { return nil }); err != nil || fixed != 0 {
		t.Errorf("second LoadDeliveries fixed %d, %v; want 0", fixed, err)
	}
}

func TestEventsBetween(t *testing.T) {
	s := openStore(t)
	t0 := time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)
	var all []string
	mustUpdate(t, s, func(tx *Txn) error {
		for i := range 5 {
			at := t0.Add(time.Duration(i) * time.Minute)
			e := &event.Event{ID: event.NewID(at), Type: fmt.Sprintf("t%d", i), CreatedAt: at}
			all = append(all, e.ID)
			if err := tx.AddEvent(e); err != nil {
				return err
			}
		}
		return nil
	})
	between := func(since, until time.Time) []string {
		var got []string
		mustView(t, s, func(tx *Txn) error {
			return tx.EventsBetween(since, until, func(e *event.Event) (bool, error) {
				got = append(got, e.ID)
				return true, nil
			})
		})
		return got
	}
	cases := []struct {
		name         string
		since, until time.Time
		want         []string
	}{
		{"everything", time.Time{}, time.Time{}, all},
		{"since is inclusive, until exclusive", t0.Add(time.Minute), t0.Add(3 * time.Minute), all[1:3]},
		{"open end", t0.Add(150 * time.Second), time.Time{}, all[3:]},
		{"open start", time.Time{}, t0.Add(time.Second), all[:1]},
		{"empty", t0.Add(time.Hour), time.Time{}, nil},
	}
	for _, c := range cases {
		if got := between(c.since, c.until); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestLogEventSkipsOutbox(t *testing.T) {
	s := openStore(t)
	e := &event.Event{ID: event.NewID(time.Now()), Type: "pollrelay.ping", CreatedAt: time.Now()}
	mustUpdate(t, s, func(tx *Txn) error { return tx.LogEvent(e) })
	mustView(t, s, func(tx *Txn) error {
		got, err := tx.Event(e.ID)
		if err != nil || got == nil {
			t.Fatalf("logged event not found: %v", err)
		}
		out, err := tx.Outbox(10)
		if len(out) != 0 {
			t.Errorf("LogEvent put the event in the outbox: %v", out)
		}
		return err
	})
}

func TestSubStateRoundTrip(t *testing.T) {
	s := openStore(t)
	at := time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)
	want := SubState{Disabled: true, DisabledAt: at, DisabledReason: "gone", FailureCount: 3, FirstFailureAt: at, LastTriggeredAt: at, LastResponseStatus: 410}
	mustUpdate(t, s, func(tx *Txn) error {
		if err := tx.PutSubState("app", &want); err != nil {
			return err
		}
		return tx.PutSubState("other", &SubState{})
	})
	mustView(t, s, func(tx *Txn) error {
		got, err := tx.SubState("app")
		if err != nil || got == nil || !got.DisabledAt.Equal(at) || got.FailureCount != 3 || !got.Disabled || got.LastResponseStatus != 410 {
			t.Errorf("SubState(app) = %+v, %v", got, err)
		}
		if got, _ := tx.SubState("nope"); got != nil {
			t.Errorf("SubState(nope) = %+v", got)
		}
		n := 0
		err = tx.SubStates(func(string, *SubState, error) error { n++; return nil })
		if n != 2 {
			t.Errorf("SubStates saw %d", n)
		}
		return err
	})
	// A broken record is reported alone; the others are still read.
	mustUpdate(t, s, func(tx *Txn) error { return tx.txn.Set(subStateKey("broken"), []byte("{")) })
	mustView(t, s, func(tx *Txn) error {
		good, broken := 0, 0
		err := tx.SubStates(func(sub string, st *SubState, err error) error {
			switch {
			case sub == "broken" && st == nil && store.IsBadRecord(err):
				broken++
			case err == nil && st != nil:
				good++
			}
			return nil
		})
		if good != 2 || broken != 1 {
			t.Errorf("SubStates with a broken record: %d good, %d broken; want 2, 1", good, broken)
		}
		return err
	})
	mustUpdate(t, s, func(tx *Txn) error { return tx.txn.Delete(subStateKey("broken")) })
	mustUpdate(t, s, func(tx *Txn) error { return tx.DeleteSubState("app") })
	mustView(t, s, func(tx *Txn) error {
		if got, _ := tx.SubState("app"); got != nil {
			t.Errorf("deleted state still there: %+v", got)
		}
		return nil
	})
}
