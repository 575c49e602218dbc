package storetest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/store"
)

var resourceCases = []testCase{
	{"HeadAndNext", testResourceHeadNext},
	{"FinishedLeaveOrder", testResourceFinished},
	{"ResourceChanges", testResourceChanges},
	{"DropResource", testDropResource},
	{"ResourcesApart", testResourcesApart},
}

func resourceHead(t testing.TB, s store.Store, sub, res string) string {
	t.Helper()
	var id string
	view(t, s, func(tx store.Txn) error {
		var err error
		id, err = tx.ResourceHead(sub, res)
		return err
	})
	return id
}

func nextInResource(t testing.TB, s store.Store, sub, res, after string) string {
	t.Helper()
	var id string
	view(t, s, func(tx store.Txn) error {
		var err error
		id, err = tx.NextInResource(sub, res, after)
		return err
	})
	return id
}

// chain walks a resource's order from its head.
func chain(t testing.TB, s store.Store, sub, res string) []string {
	t.Helper()
	var ids []string
	for id := resourceHead(t, s, sub, res); id != ""; id = nextInResource(t, s, sub, res, id) {
		ids = append(ids, id)
		if len(ids) > 100 {
			t.Fatalf("resource %s of %s does not end: %v", briefID(res), sub, ids[:5])
		}
	}
	return ids
}

func wantChain(t testing.TB, what string, s store.Store, sub, res string, want ...*event.Event) {
	t.Helper()
	same(t, what, chain(t, s, sub, res), eventIDs(want))
}

// putOrdered stores an ordered delivery of each event to sub, in state.
func putOrdered(t testing.TB, s store.Store, sub, state string, es ...*event.Event) {
	t.Helper()
	update(t, s, func(tx store.Txn) error {
		for _, e := range es {
			d := ordered(sub, e, t0)
			d.State = state
			if err := tx.PutDelivery(d, nil); err != nil {
				return err
			}
		}
		return nil
	})
}

// A resource's open deliveries, pending, retrying or waiting, are in
// event order: ResourceHead is the oldest, NextInResource the one after
// an id, which need not be in the order itself (promote asks after the
// delivery it just finished).
func testResourceHeadNext(t *testing.T, b Backend) {
	s := b.Open(t)
	es := newEvents(4, t0, 2*time.Millisecond)
	for _, e := range es {
		e.ItemID = "1"
	}
	res := es[0].Resource()
	putOrdered(t, s, "app", store.Waiting, es[2])
	putOrdered(t, s, "app", store.Pending, es[3], es[0])
	putOrdered(t, s, "app", store.Retrying, es[1])
	wantChain(t, "order", s, "app", res, es...)
	if got := resourceHead(t, s, "app", "src\x002"); got != "" {
		t.Errorf("ResourceHead of a resource without deliveries = %q", got)
	}
	putOrdered(t, s, "app", store.Delivered, newEvent(t0.Add(time.Second), "src", "1"))
	wantChain(t, "order after a delivered delivery was written", s, "app", res, es...)
	before := event.NewID(t0.Add(-time.Second))
	between := event.NewID(es[1].CreatedAt.Add(time.Millisecond))
	for _, c := range []struct{ after, want string }{
		{before, es[0].ID}, {between, es[2].ID}, {es[3].ID, ""},
	} {
		if got := nextInResource(t, s, "app", res, c.after); got != c.want {
			t.Errorf("NextInResource after %s = %q, want %q", c.after, got, c.want)
		}
	}
}

// A delivery leaves its resource's order once delivered or dead, and a
// redelivery takes its place in it again.
func testResourceFinished(t *testing.T, b Backend) {
	s := b.Open(t)
	es := newEvents(3, t0, time.Millisecond)
	for _, e := range es {
		e.ItemID = "1"
	}
	res := es[0].Resource()
	putOrdered(t, s, "app", store.Pending, es...)
	move(t, s, "app", es[0].ID, func(d *store.Delivery) { d.State = store.Delivered })
	wantChain(t, "after the head was delivered", s, "app", res, es[1], es[2])
	if got := nextInResource(t, s, "app", res, es[0].ID); got != es[1].ID {
		t.Errorf("NextInResource after the delivered one = %q, want %q", got, es[1].ID)
	}
	move(t, s, "app", es[1].ID, func(d *store.Delivery) { d.State = store.Dead })
	wantChain(t, "after the next one died", s, "app", res, es[2])
	move(t, s, "app", es[1].ID, func(d *store.Delivery) { d.State, d.NextAt, d.Round = store.Pending, t0, 0 })
	wantChain(t, "after redelivering the dead one", s, "app", res, es[1], es[2])
	move(t, s, "app", es[0].ID, func(d *store.Delivery) { d.State, d.NextAt = store.Pending, t0 })
	wantChain(t, "after redelivering the delivered one", s, "app", res, es...)
}

// A redelivery follows the subscription's ordering as it is now: the
// delivery moves to its new resource, or out of any order.
func testResourceChanges(t *testing.T, b Backend) {
	s := b.Open(t)
	es := newEvents(3, t0, time.Millisecond)
	for _, e := range es {
		e.ItemID = "1"
	}
	res, other := es[0].Resource(), "src\x00other"
	putOrdered(t, s, "app", store.Pending, es...)
	move(t, s, "app", es[1].ID, func(d *store.Delivery) { d.Resource = other })
	wantChain(t, "old resource", s, "app", res, es[0], es[2])
	wantChain(t, "new resource", s, "app", other, es[1])
	move(t, s, "app", es[1].ID, func(d *store.Delivery) { d.Resource = "" })
	wantChain(t, "after ordering: none", s, "app", other)
	wantChain(t, "old resource after ordering: none", s, "app", res, es[0], es[2])
}

// DropResource removes one entry of an order whatever its delivery is:
// dispatch drops an entry whose delivery is gone.
func testDropResource(t *testing.T, b Backend) {
	s := b.Open(t)
	es := newEvents(3, t0, time.Millisecond)
	for _, e := range es {
		e.ItemID = "1"
	}
	res := es[0].Resource()
	putOrdered(t, s, "app", store.Pending, es...)
	update(t, s, func(tx store.Txn) error {
		return errors.Join(tx.DropResource("app", res, es[0].ID), tx.DropResource("app", res, "evt_never"))
	})
	wantChain(t, "after DropResource of the head", s, "app", res, es[1], es[2])
	if getDelivery(t, s, "app", es[0].ID) == nil {
		t.Error("DropResource removed the delivery")
	}
}

// Resources whose names are prefixes of one another, hold NULs and
// separators, or belong to another subscription keep their own orders.
func testResourcesApart(t *testing.T, b Backend) {
	s := b.Open(t)
	items := []string{"a", "a\x00", "a\x00b", "ab", "", "\x00", "a/b", "é", strings.Repeat("\x00", store.MaxKeyPart)}
	want := map[string][]*event.Event{}
	at := t0
	for range 2 {
		for _, id := range items {
			for _, src := range []string{"src", "src-2"} {
				e := newEvent(at, src, id)
				at = at.Add(time.Millisecond)
				for _, sub := range neighbours {
					putOrdered(t, s, sub, store.Pending, e)
				}
				want[e.Resource()] = append(want[e.Resource()], e)
			}
		}
	}
	for res, es := range want {
		for _, sub := range neighbours {
			wantChain(t, "resource "+hexID(res)+" of "+sub, s, sub, res, es...)
		}
	}
	if got := chain(t, s, "app", "src\x00a"); len(got) != 0 {
		t.Errorf("a subscription without deliveries has an order: %v", got)
	}
}
