package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/store"
)

var scheduleCases = []testCase{
	{"DueOrderNowLimit", testDueOrder},
	{"NextDueAfter", testNextDueAfter},
	{"NextDue", testNextDue},
	{"PutDeliveryReplacesEntry", testPutDeliveryReplaces},
	{"DueRefCurrent", testDueRefCurrent},
	{"StaleEntryDropDue", testStaleEntry},
	{"ReadsAfterDueInOneView", testReadsAfterDue},
	{"ReadsAfterOutboxInOneTxn", testReadsAfterOutbox},
}

// In one view, each delivery Due names and its resource's head read as
// they do on their own: a backend that reads them with the schedule
// returns the same records.
func testReadsAfterDue(t *testing.T, b Backend) {
	s := b.Open(t)
	es := newEvents(3, t0.Add(-time.Hour), time.Millisecond)
	update(t, s, func(tx store.Txn) error {
		for i, e := range es {
			d := ordered("app", e, t0.Add(time.Duration(i)*time.Second))
			if i == 2 {
				d = queued("app", e, t0.Add(time.Duration(i)*time.Second))
			}
			if err := tx.LogEvent(e); err != nil {
				return err
			}
			if err := tx.PutDelivery(d, nil); err != nil {
				return err
			}
		}
		return nil
	})
	alone, heads := map[string]*store.Delivery{}, map[string]string{}
	for _, e := range es {
		d := getDelivery(t, s, "app", e.ID)
		alone[e.ID] = d
		view(t, s, func(tx store.Txn) error {
			var err error
			heads[d.Resource], err = tx.ResourceHead("app", d.Resource)
			return err
		})
	}
	if heads[es[0].Resource()] != es[0].ID {
		t.Fatalf("fixture: head of %q is %s", es[0].Resource(), briefID(heads[es[0].Resource()]))
	}
	view(t, s, func(tx store.Txn) error {
		refs, err := tx.Due("app", t0.Add(time.Minute), 10)
		if err != nil {
			return err
		}
		if len(refs) != 3 {
			t.Fatalf("Due found %d, want 3", len(refs))
		}
		for _, r := range refs {
			d, err := tx.Delivery(r.Subscription, r.EventID)
			if err != nil {
				return err
			}
			same(t, "delivery "+briefID(r.EventID), d, alone[r.EventID])
			if d.Resource == "" {
				continue
			}
			head, err := tx.ResourceHead("app", d.Resource)
			if err != nil {
				return err
			}
			if head != heads[d.Resource] {
				t.Errorf("head of %q = %s, want %s", d.Resource, briefID(head), briefID(heads[d.Resource]))
			}
		}
		return nil
	})
}

// In one transaction after an outbox read, EventMeta returns what was
// logged, including an event logged after the read, and nil for an
// outbox entry whose event is not in the log.
func testReadsAfterOutbox(t *testing.T, b Backend) {
	s := b.Open(t)
	es := newEvents(3, t0.Add(-time.Hour), time.Millisecond)
	update(t, s, func(tx store.Txn) error { return tx.AddEvent(es[0]) })
	update(t, s, func(tx store.Txn) error {
		ids, err := tx.NextOutbox(10)
		if err != nil {
			return err
		}
		if len(ids) != 1 || ids[0] != es[0].ID {
			t.Fatalf("outbox = %s", brief(ids))
		}
		e, err := tx.EventMeta(es[0].ID)
		if err != nil || e == nil || e.Type != es[0].Type || e.ItemID != es[0].ItemID || !e.CreatedAt.Equal(es[0].CreatedAt) {
			t.Errorf("EventMeta after the outbox read = %+v, %v", e, err)
		}
		if err := tx.AddEvent(es[1]); err != nil {
			return err
		}
		e, err = tx.EventMeta(es[1].ID)
		if err != nil || e == nil || e.ID != es[1].ID {
			t.Errorf("EventMeta of an event logged after the outbox read = %+v, %v", e, err)
		}
		e, err = tx.EventMeta(es[2].ID)
		if err != nil || e != nil {
			t.Errorf("EventMeta of an event never logged = %+v, %v", e, err)
		}
		return nil
	})
}

// farFuture is past every due time the suite writes.
const farFuture = 1000 * time.Hour

// neighbours are subscription names that share a prefix with "app",
// whose schedules must stay apart from its.
var neighbours = []string{"ap", "app-2", "app2"}

// scheduleFixture stores app's deliveries e0..e6 in every state, due in
// an order unlike their ids', and e0 for each neighbour, due before all
// of app's.
func scheduleFixture(t testing.TB, s store.Store) []*event.Event {
	t.Helper()
	es := newEvents(7, t0.Add(-time.Hour), time.Millisecond)
	type spec struct {
		state string
		at    time.Duration
	}
	specs := []spec{
		{store.Pending, 3 * time.Minute}, {store.Pending, time.Minute}, {store.Pending, 2 * time.Minute},
		{store.Retrying, 30 * time.Second}, {store.Waiting, 0}, {store.Delivered, 0}, {store.Dead, 0},
	}
	update(t, s, func(tx store.Txn) error {
		for i, sp := range specs {
			d := queued("app", es[i], t0.Add(sp.at))
			d.State = sp.state
			if err := tx.PutDelivery(d, nil); err != nil {
				return err
			}
		}
		for _, sub := range neighbours {
			if err := tx.PutDelivery(queued(sub, es[0], t0.Add(-time.Minute)), nil); err != nil {
				return err
			}
		}
		return nil
	})
	return es
}

// Due lists a subscription's queued deliveries due at now (inclusive), by
// due time, at most limit, each with its due time: no waiting or finished
// one, and none of another subscription.
func testDueOrder(t *testing.T, b Backend) {
	s := b.Open(t)
	es := scheduleFixture(t, s)
	for _, c := range []struct {
		name  string
		now   time.Time
		limit int
		want  []int
	}{
		{"all due", t0.Add(5 * time.Minute), 100, []int{3, 1, 2, 0}},
		{"due exactly now", t0.Add(2 * time.Minute), 100, []int{3, 1, 2}},
		{"a nanosecond early", t0.Add(2*time.Minute - 1), 100, []int{3, 1}},
		{"limit", t0.Add(5 * time.Minute), 2, []int{3, 1}},
		{"none due", t0, 100, nil},
	} {
		var want []string
		for _, i := range c.want {
			want = append(want, es[i].ID)
		}
		if got := dueIDs(t, s, "app", c.now, c.limit); !slices.Equal(got, want) {
			t.Errorf("%s: Due = %v, want %v", c.name, got, want)
		}
	}
	for _, r := range due(t, s, "app", t0.Add(farFuture), 100) {
		d := getDelivery(t, s, "app", r.EventID)
		if d == nil || !r.At.Equal(d.NextAt) {
			t.Errorf("ref %s due %v, its delivery %s", r.EventID, r.At, show(d))
		}
	}
	if got := dueIDs(t, s, "nobody", t0.Add(farFuture), 100); len(got) != 0 {
		t.Errorf("Due of a subscription without deliveries = %v", got)
	}
}

func nextDueAfter(t testing.TB, s store.Store, sub string, now time.Time) (time.Time, bool) {
	t.Helper()
	var at time.Time
	var found bool
	view(t, s, func(tx store.Txn) error {
		var err error
		at, found, err = tx.NextDueAfter(sub, now)
		return err
	})
	return at, found
}

func nextDue(t testing.TB, s store.Store) (time.Time, bool) {
	t.Helper()
	var at time.Time
	var found bool
	view(t, s, func(tx store.Txn) error {
		var err error
		at, found, err = tx.NextDue()
		return err
	})
	return at, found
}

func wantTime(t testing.TB, what string, got time.Time, found bool, want time.Time) {
	t.Helper()
	switch {
	case want.IsZero() && found:
		t.Errorf("%s = %v, want none", what, got)
	case !want.IsZero() && (!found || !got.Equal(want)):
		t.Errorf("%s = %v (found %v), want %v", what, got, found, want)
	}
}

// NextDueAfter is when the subscription's first delivery due strictly
// after now falls due: the notifier sleeps until then.
func testNextDueAfter(t *testing.T, b Backend) {
	s := b.Open(t)
	scheduleFixture(t, s)
	for _, c := range []struct {
		now, want time.Time
	}{
		{t0.Add(-2 * time.Minute), t0.Add(30 * time.Second)}, // the neighbours' earlier ones are theirs
		{t0, t0.Add(30 * time.Second)},
		{t0.Add(30 * time.Second), t0.Add(time.Minute)},
		{t0.Add(2*time.Minute + 1), t0.Add(3 * time.Minute)},
		{t0.Add(3 * time.Minute), time.Time{}},
	} {
		at, found := nextDueAfter(t, s, "app", c.now)
		wantTime(t, "NextDueAfter(app, "+c.now.Format(time.RFC3339Nano)+")", at, found, c.want)
	}
	at, found := nextDueAfter(t, s, "nobody", t0)
	wantTime(t, "NextDueAfter of a subscription without deliveries", at, found, time.Time{})
}

// NextDue is the earliest due time of any subscription's queued delivery.
func testNextDue(t *testing.T, b Backend) {
	s := b.Open(t)
	at, found := nextDue(t, s)
	wantTime(t, "NextDue of an empty store", at, found, time.Time{})
	es := scheduleFixture(t, s)
	// The first subscription by name is due last.
	update(t, s, func(tx store.Txn) error { return tx.PutDelivery(queued("aa", es[0], t0.Add(time.Hour)), nil) })
	at, found = nextDue(t, s)
	wantTime(t, "NextDue", at, found, t0.Add(-time.Minute))
	for _, sub := range neighbours {
		move(t, s, sub, es[0].ID, func(d *store.Delivery) { d.State = store.Delivered })
	}
	at, found = nextDue(t, s)
	wantTime(t, "NextDue after the earliest were delivered", at, found, t0.Add(30*time.Second))
	for _, i := range []int{0, 1, 2, 3} {
		move(t, s, "app", es[i].ID, func(d *store.Delivery) { d.State = store.Dead })
	}
	at, found = nextDue(t, s)
	wantTime(t, "NextDue with one subscription's left", at, found, t0.Add(time.Hour))
	move(t, s, "aa", es[0].ID, func(d *store.Delivery) { d.State = store.Delivered })
	at, found = nextDue(t, s)
	wantTime(t, "NextDue with nothing queued", at, found, time.Time{})
}

// Writing a delivery with prev, the delivery as it was stored, leaves
// exactly one schedule entry for it while it is queued, at its NextAt,
// and none once it is waiting or finished.
func testPutDeliveryReplaces(t *testing.T, b Backend) {
	s := b.Open(t)
	e := newEvent(t0, "src", "1")
	update(t, s, func(tx store.Txn) error { return tx.PutDelivery(queued("app", e, t0), nil) })
	steps := []struct {
		name   string
		change func(d *store.Delivery)
	}{
		{"retrying", func(d *store.Delivery) { d.State, d.NextAt = store.Retrying, t0.Add(time.Minute) }},
		{"retrying later", func(d *store.Delivery) { d.NextAt = t0.Add(5 * time.Minute) }},
		{"same due time", func(d *store.Delivery) { d.Attempts++ }},
		{"waiting", func(d *store.Delivery) { d.State = store.Waiting }},
		{"pending again", func(d *store.Delivery) { d.State, d.NextAt = store.Pending, t0.Add(6*time.Minute) }},
		{"delivered", func(d *store.Delivery) { d.State = store.Delivered }},
		{"redelivered", func(d *store.Delivery) { d.State, d.NextAt, d.Round = store.Pending, t0.Add(7*time.Minute), 0 }},
		{"dead", func(d *store.Delivery) { d.State = store.Dead }},
	}
	for _, st := range steps {
		d := move(t, s, "app", e.ID, st.change)
		refs := due(t, s, "app", t0.Add(farFuture), 10)
		at, found := nextDue(t, s)
		if !d.Queued() {
			if len(refs) != 0 || found {
				t.Errorf("%s: Due = %v, NextDue found %v; want no entry", st.name, refs, found)
			}
			continue
		}
		if len(refs) != 1 || !refs[0].At.Equal(d.NextAt) || !refs[0].Current(d) {
			t.Errorf("%s: Due = %v, want one current entry at %v", st.name, refs, d.NextAt)
		}
		wantTime(t, st.name+": NextDue", at, found, d.NextAt)
	}
}

// A schedule entry carries its due time to the nanosecond, whatever the
// location of NextAt, so DueRef.Current holds for the delivery as stored;
// an entry from before a reschedule does not. A due time before the
// epoch (a zero NextAt) is due at once.
func testDueRefCurrent(t *testing.T, b Backend) {
	s := b.Open(t)
	es := newEvents(2, t0, time.Millisecond)
	at := time.Unix(t0.Unix(), 123456789).In(time.FixedZone("UTC+1", 3600))
	update(t, s, func(tx store.Txn) error {
		return errors.Join(tx.PutDelivery(queued("app", es[0], at), nil), tx.PutDelivery(queued("app", es[1], time.Time{}), nil))
	})
	refs := due(t, s, "app", at, 10)
	if len(refs) != 2 || refs[0].EventID != es[1].ID || refs[1].EventID != es[0].ID {
		t.Fatalf("Due = %v, want the zero-time delivery then the other", refs)
	}
	for _, r := range refs {
		if d := getDelivery(t, s, "app", r.EventID); !r.Current(d) {
			t.Errorf("ref %v is not current for its delivery as stored, due %v", r, d.NextAt)
		}
	}
	if !refs[1].At.Equal(at) {
		t.Errorf("ref due %v, want %v to the nanosecond", refs[1].At, at)
	}
	old := refs[1]
	d := move(t, s, "app", es[0].ID, func(d *store.Delivery) { d.State, d.NextAt = store.Retrying, at.Add(1) })
	if old.Current(d) {
		t.Error("a ref from before the reschedule is current")
	}
	refs = due(t, s, "app", at.Add(1), 10)
	if len(refs) != 2 || !refs[1].At.Equal(at.Add(1)) || !refs[1].Current(d) {
		t.Errorf("Due after rescheduling a nanosecond later = %v", refs)
	}
}

// A delivery written again without its prev (as a fan-out that did not
// find it would) leaves a stale entry beside the current one: Due lists
// both, Current tells them apart, and DropDue removes the stale one.
func testStaleEntry(t *testing.T, b Backend) {
	s := b.Open(t)
	e := newEvent(t0, "src", "1")
	update(t, s, func(tx store.Txn) error { return tx.PutDelivery(queued("app", e, t0), nil) })
	// Written again without its prev: a backend whose schedule is an
	// index apart may keep the old entry; it must never pass as current.
	update(t, s, func(tx store.Txn) error { return tx.PutDelivery(queued("app", e, t0.Add(time.Minute)), nil) })
	d := getDelivery(t, s, "app", e.ID)
	refs := due(t, s, "app", t0.Add(farFuture), 10)
	var current int
	for _, r := range refs {
		if r.Current(d) {
			current++
			continue
		}
		update(t, s, func(tx store.Txn) error { return errors.Join(tx.DropDue(r), tx.DropDue(r)) })
	}
	if current != 1 {
		t.Fatalf("Due = %v: %d current entries, want 1 (at %v)", refs, current, d.NextAt)
	}
	// Dropping the entry of the old due time leaves the current one.
	old := store.DueRef{Subscription: "app", EventID: e.ID, At: t0}
	update(t, s, func(tx store.Txn) error { return tx.DropDue(old) })
	refs = due(t, s, "app", t0.Add(farFuture), 10)
	if len(refs) != 1 || !refs[0].Current(d) {
		t.Errorf("Due after dropping stale entries = %v, want the current one", refs)
	}
}
