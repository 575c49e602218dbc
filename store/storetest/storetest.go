// Package storetest is the conformance suite of store's interfaces: every
// behaviour the rest of pollrelay relies on from a backend, asserted
// through the interfaces alone. A backend's tests call Run with a
// function that opens a new, empty store, or RunBackend to add the
// subtests about durability across a restart:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return openEmpty(t) })
//	}
//
// Every subtest opens its own store, so they share nothing and each can
// be run alone (go test -run 'Conformance/Outbox/Order').
package storetest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/store"
)

// Backend says how the suite gets stores of the backend under test.
type Backend struct {
	// Open returns a new, empty store; the backend's test closes it in a
	// t.Cleanup.
	Open func(t *testing.T) store.Store
	// Reopen closes s and opens the database it used again, as a restart
	// of pollrelay would, returning the new store (closed by a t.Cleanup
	// like Open's). Nil skips the subtests that need it.
	Reopen func(t *testing.T, s store.Store) store.Store
}

// Run runs the suite against the stores open returns, without the
// subtests that need a restart.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	RunBackend(t, Backend{Open: open})
}

// RunBackend runs the whole suite against b.
func RunBackend(t *testing.T, b Backend) {
	for _, a := range areas {
		t.Run(a.name, func(t *testing.T) {
			for _, c := range a.cases {
				t.Run(c.name, func(t *testing.T) { c.run(t, b) })
			}
		})
	}
}

type area struct {
	name  string
	cases []testCase
}

type testCase struct {
	name string
	run  func(t *testing.T, b Backend)
}

// areas are the subtests, by what consumers use.
var areas = []area{
	{"Items", itemCases},
	{"IDs", idCases},
	{"Atomicity", atomicityCases},
	{"Batch", batchCases},
	{"Concurrency", concurrencyCases},
	{"Events", eventCases},
	{"Outbox", outboxCases},
	{"Schedule", scheduleCases},
	{"ResourceOrder", resourceCases},
	{"Deliveries", deliveryCases},
	{"Tombstones", tombstoneCases},
	{"Prune", pruneCases},
	{"Watches", watchCases},
	{"Subscriptions", subscriptionCases},
	{"Sequences", sequenceCases},
	{"Quarantine", quarantineCases},
	{"Histograms", histogramCases},
	{"Durability", durabilityCases},
}

// t0 is the suite's "now": a fixed instant, so due times and event ids
// are the same on every run.
var t0 = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

func update(t testing.TB, s store.Store, fn func(store.Txn) error) {
	t.Helper()
	if err := s.Update(fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func view(t testing.TB, s store.Store, fn func(store.Txn) error) {
	t.Helper()
	if err := s.View(fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

// newEvent is an event as the diff makes them: its id from its creation
// time, so ids sort as the events were created.
func newEvent(at time.Time, source, itemID string) *event.Event {
	return &event.Event{
		ID: event.NewID(at), Type: source + ".changed", Kind: event.Changed,
		Source: source, ItemID: itemID,
		Previous:  json.RawMessage(`{"status":"open"}`),
		Current:   json.RawMessage(`{"status":"closed"}`),
		CreatedAt: at,
	}
}

// newEvents makes n events of one item, step apart from at.
func newEvents(n int, at time.Time, step time.Duration) []*event.Event {
	out := make([]*event.Event, n)
	for i := range out {
		out[i] = newEvent(at.Add(time.Duration(i)*step), "src", fmt.Sprint(i))
	}
	return out
}

func eventIDs(es []*event.Event) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

// queued is a new pending delivery of e to sub, due at, as fan-out makes
// it for a subscription with ordering: none.
func queued(sub string, e *event.Event, at time.Time) *store.Delivery {
	return &store.Delivery{
		EventID: e.ID, Subscription: sub, State: store.Pending,
		NextAt: at, CreatedAt: at, UpdatedAt: at, EventAt: e.CreatedAt,
	}
}

// ordered is queued with the event's resource, as fan-out makes it for a
// subscription with ordering: resource.
func ordered(sub string, e *event.Event, at time.Time) *store.Delivery {
	d := queued(sub, e, at)
	d.Resource = e.Resource()
	return d
}

// getDelivery reads a delivery in its own transaction.
func getDelivery(t testing.TB, s store.Store, sub, id string) *store.Delivery {
	t.Helper()
	var d *store.Delivery
	view(t, s, func(tx store.Txn) error {
		var err error
		d, err = tx.Delivery(sub, id)
		return err
	})
	return d
}

// move rewrites the stored delivery of (sub, id) as the notifier does: it
// reads it, changes a copy with fn, and writes the copy with what it read
// as prev. It returns the copy.
func move(t testing.TB, s store.Store, sub, id string, fn func(d *store.Delivery)) *store.Delivery {
	t.Helper()
	var out *store.Delivery
	update(t, s, func(tx store.Txn) error {
		prev, err := tx.Delivery(sub, id)
		if err != nil {
			return err
		}
		if prev == nil {
			return fmt.Errorf("no delivery %s/%s", sub, id)
		}
		d := *prev
		fn(&d)
		out = &d
		return tx.PutDelivery(&d, prev)
	})
	return out
}

func due(t testing.TB, s store.Store, sub string, now time.Time, limit int) []store.DueRef {
	t.Helper()
	var refs []store.DueRef
	view(t, s, func(tx store.Txn) error {
		var err error
		refs, err = tx.Due(sub, now, limit)
		return err
	})
	return refs
}

// dueIDs is the event ids of Due's refs, in its order.
func dueIDs(t testing.TB, s store.Store, sub string, now time.Time, limit int) []string {
	t.Helper()
	var out []string
	for _, r := range due(t, s, sub, now, limit) {
		if r.Subscription != sub {
			t.Errorf("Due(%q) returned a ref of subscription %q", sub, r.Subscription)
		}
		out = append(out, r.EventID)
	}
	return out
}

func outbox(t testing.TB, s store.Store, limit int) []string {
	t.Helper()
	var ids []string
	view(t, s, func(tx store.Txn) error {
		var err error
		ids, err = tx.Outbox(limit)
		return err
	})
	return ids
}

// same reports a difference between got and want, compared as values:
// times by instant (whatever their location), empty and nil slices alike.
func same(t testing.TB, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(canon(got), canon(want)) {
		t.Errorf("%s:\n got %s\nwant %s", what, show(got), show(want))
	}
}

var timeType = reflect.TypeFor[time.Time]()

// canon returns v with its times in UTC and its empty slices nil. It
// rewrites what v points to.
func canon(v any) any {
	if v == nil {
		return nil
	}
	rv := reflect.New(reflect.TypeOf(v)).Elem()
	rv.Set(reflect.ValueOf(v))
	normalize(rv)
	return rv.Interface()
}

func normalize(v reflect.Value) {
	if v.Type() == timeType {
		if v.CanSet() {
			v.Set(reflect.ValueOf(v.Interface().(time.Time).UTC().Round(0)))
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			normalize(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Field(i); f.CanSet() {
				normalize(f)
			}
		}
	case reflect.Slice:
		if v.Len() == 0 {
			if !v.IsNil() && v.CanSet() {
				v.Set(reflect.Zero(v.Type()))
			}
			return
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return
		}
		for i := range v.Len() {
			normalize(v.Index(i))
		}
	}
}

// brief quotes ids, each cut to its first bytes, as a failure shows them.
func brief(ids []string) string {
	var sb strings.Builder
	sb.WriteByte('[')
	for i, id := range ids {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(briefID(id))
	}
	sb.WriteByte(']')
	return sb.String()
}

func briefID(id string) string {
	if len(id) <= 24 {
		return strconv.Quote(id)
	}
	return fmt.Sprintf("%q…(%d bytes)", id[:16], len(id))
}

func show(v any) string {
	if b, err := json.Marshal(v); err == nil {
		return string(b)
	}
	return fmt.Sprintf("%+v", v)
}

// waitOrBlocked waits for done, or for a while when a backend that locks
// what a transaction wrote keeps the other transaction waiting: either
// way the test goes on. It is a bound against a deadlock, not a timing.
func waitOrBlocked(done <-chan struct{}) {
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
}

// waitFor fails t when ch does not receive within a generous bound, for
// what a backend may do asynchronously.
func waitFor(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not happen", what)
	}
}
