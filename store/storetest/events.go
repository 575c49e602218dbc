package storetest

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/store"
)

var eventCases = []testCase{
	{"RoundTrip", testEventRoundTrip},
	{"NewestFirstPaging", testEventsPaging},
	{"Between", testEventsBetween},
	{"BetweenStops", testEventsBetweenStops},
	{"OnEvent", testOnEvent},
}

var outboxCases = []testCase{
	{"AddEventNotLogEvent", testOutboxAdd},
	{"Order", testOutboxOrder},
	{"RemoveAndReturn", testOutboxRemoveReturn},
}

func fullEvent(at time.Time, itemID string) *event.Event {
	return &event.Event{
		ID: event.NewID(at), Type: "orders.shipped", Kind: event.Changed, Source: "orders", ItemID: itemID,
		Previous: json.RawMessage(`{"status":"open"}`), Current: json.RawMessage(`{"status":"shipped"}`),
		Object:    json.RawMessage(`{"id":"1","status":"shipped","lines":[1,2]}`),
		Watch:     &event.Watch{Metadata: json.RawMessage(`{"customer":"c1"}`)},
		Member:    json.RawMessage(`"m1"`),
		CreatedAt: at,
	}
}

// An event comes back whole from Event, and with at least its routing
// fields from EventMeta; item ids keep their NULs and separators.
func testEventRoundTrip(t *testing.T, b Backend) {
	s := b.Open(t)
	at := time.Unix(t0.Unix(), 123456789).UTC()
	var es []*event.Event
	for _, id := range []string{"1", "a\x00b", "a/b", "\x00", "é\u2028"} {
		es = append(es, fullEvent(at, id))
	}
	update(t, s, func(tx store.Txn) error {
		for _, e := range es {
			if err := tx.AddEvent(e); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(tx store.Txn) error {
		for _, e := range es {
			got, err := tx.Event(e.ID)
			if err != nil {
				return err
			}
			same(t, "Event", got, e)
			meta, err := tx.EventMeta(e.ID)
			if err != nil {
				return err
			}
			if meta == nil {
				t.Errorf("EventMeta(%s) = nil", e.ID)
				continue
			}
			route := func(e *event.Event) *event.Event {
				return &event.Event{ID: e.ID, Type: e.Type, Kind: e.Kind, Source: e.Source, ItemID: e.ItemID, CreatedAt: e.CreatedAt}
			}
			same(t, "EventMeta", route(meta), route(e))
		}
		unknown := event.NewID(t0)
		e, err1 := tx.Event(unknown)
		m, err2 := tx.EventMeta(unknown)
		if e != nil || m != nil {
			t.Errorf("Event, EventMeta of an unknown id = %v, %v; want nil", e, m)
		}
		return errors.Join(err1, err2)
	})
}

// logged writes es to the log, the odd ones with LogEvent (as a ping),
// so that what reads the log is seen to read both.
func logged(t testing.TB, s store.Store, es []*event.Event) {
	t.Helper()
	update(t, s, func(tx store.Txn) error {
		for i, e := range es {
			var err error
			if i%2 == 1 {
				err = tx.LogEvent(e)
			} else {
				err = tx.AddEvent(e)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// Events lists the log newest first, strictly before the id given, which
// need not be in the log; paging by the last id seen lists each event
// once.
func testEventsPaging(t *testing.T, b Backend) {
	s := b.Open(t)
	es := newEvents(25, t0, 2*time.Millisecond)
	logged(t, s, es)
	want := eventIDs(es)
	slices.Reverse(want)
	page := func(before string, n int) []string {
		var ids []string
		view(t, s, func(tx store.Txn) error {
			return tx.Events(before, func(e *event.Event) bool {
				ids = append(ids, e.ID)
				return len(ids) < n
			})
		})
		return ids
	}
	if got := page("", 100); !slices.Equal(got, want) {
		t.Errorf("Events(\"\") = %v\nwant %v", got, want)
	}
	var paged []string
	for before := ""; ; {
		p := page(before, 10)
		paged = append(paged, p...)
		if len(p) < 10 {
			break
		}
		before = p[len(p)-1]
	}
	if !slices.Equal(paged, want) {
		t.Errorf("Events in pages of 10 = %v\nwant %v", paged, want)
	}
	// An id between the 11th and 12th events, never logged.
	between := event.NewID(es[10].CreatedAt.Add(time.Millisecond))
	if got := page(between, 3); !slices.Equal(got, want[14:17]) {
		t.Errorf("Events(before an id not in the log) = %v, want %v", got, want[14:17])
	}
}

// betweenIDs is the ids EventsBetween passes for [since, until).
func betweenIDs(t testing.TB, s store.Store, since, until time.Time) []string {
	t.Helper()
	var ids []string
	view(t, s, func(tx store.Txn) error {
		return tx.EventsBetween(since, until, func(e *event.Event) (bool, error) {
			ids = append(ids, e.ID)
			return true, nil
		})
	})
	return ids
}

// EventsBetween passes the events created in [since, until), oldest first,
// to the nanosecond; a zero end is open. A replay relies on it.
func testEventsBetween(t *testing.T, b Backend) {
	s := b.Open(t)
	es := newEvents(6, t0.Add(500*time.Microsecond+7), time.Second)
	logged(t, s, es)
	ids := eventIDs(es)
	at := func(i int) time.Time { return es[i].CreatedAt }
	for _, c := range []struct {
		name         string
		since, until time.Time
		want         []string
	}{
		{"all", time.Time{}, time.Time{}, ids},
		{"exact ends", at(1), at(4), ids[1:4]},
		{"a nanosecond after since", at(1).Add(1), at(4), ids[2:4]},
		{"a nanosecond after until", at(1), at(4).Add(1), ids[1:5]},
		{"open start", time.Time{}, at(2), ids[:2]},
		{"open end", at(3), time.Time{}, ids[3:]},
		{"empty", at(2).Add(1), at(3), nil},
		{"before the log", t0.Add(-time.Hour), t0, nil},
	} {
		if got := betweenIDs(t, s, c.since, c.until); !slices.Equal(got, c.want) {
			t.Errorf("%s: EventsBetween = %v, want %v", c.name, got, c.want)
		}
	}
}

// EventsBetween stops when fn says so or fails, returning its error.
func testEventsBetweenStops(t *testing.T, b Backend) {
	s := b.Open(t)
	logged(t, s, newEvents(5, t0, time.Second))
	calls := 0
	view(t, s, func(tx store.Txn) error {
		return tx.EventsBetween(time.Time{}, time.Time{}, func(*event.Event) (bool, error) {
			calls++
			return calls < 2, nil
		})
	})
	if calls != 2 {
		t.Errorf("EventsBetween went on after fn returned false: %d calls, want 2", calls)
	}
	err := s.View(func(tx store.Txn) error {
		return tx.EventsBetween(time.Time{}, time.Time{}, func(*event.Event) (bool, error) { return true, errBoom })
	})
	if !errors.Is(err, errBoom) {
		t.Errorf("EventsBetween with a failing fn = %v, want its error", err)
	}
}

// OnEvent's functions run after every commit that puts events in the
// outbox, through Update or a Batch, or by ReturnToOutbox: the notifier
// wakes on them instead of polling.
func testOnEvent(t *testing.T, b Backend) {
	s := b.Open(t)
	fired := make(chan struct{}, 1)
	s.OnEvent(func() {
		select {
		case fired <- struct{}{}:
		default:
		}
	})
	e := newEvent(t0, "src", "1")
	update(t, s, func(tx store.Txn) error { return tx.AddEvent(e) })
	waitFor(t, fired, "OnEvent after an Update that added an event")

	update(t, s, func(tx store.Txn) error { return tx.RemoveFromOutbox(e.ID) })
	drain(fired)
	update(t, s, func(tx store.Txn) error { return tx.ReturnToOutbox(e.ID) })
	waitFor(t, fired, "OnEvent after ReturnToOutbox")

	drain(fired)
	bt := s.NewBatch()
	if err := bt.Group(func(tx store.Txn) error { return tx.AddEvent(newEvent(t0, "src", "2")) }); err != nil {
		t.Fatal(err)
	}
	if err := bt.Commit(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, fired, "OnEvent after a Batch that added an event")
}

func drain(ch chan struct{}) {
	select {
	case <-ch:
	default:
	}
}

// AddEvent logs an event and puts it in the outbox; LogEvent only logs it.
func testOutboxAdd(t *testing.T, b Backend) {
	s := b.Open(t)
	es := newEvents(4, t0, time.Millisecond)
	logged(t, s, es)
	if got, want := outbox(t, s, 10), []string{es[0].ID, es[2].ID}; !slices.Equal(got, want) {
		t.Errorf("outbox = %v, want the AddEvent ones %v", got, want)
	}
	view(t, s, func(tx store.Txn) error {
		for _, e := range es {
			got, err := tx.Event(e.ID)
			if err != nil {
				return err
			}
			if got == nil {
				t.Errorf("event %s not in the log", e.ID)
			}
		}
		return nil
	})
}

// The outbox is in event id order (creation order) whatever order the
// events were added in; Outbox and NextOutbox agree and respect limit.
func testOutboxOrder(t *testing.T, b Backend) {
	s := b.Open(t)
	es := newEvents(6, t0, time.Millisecond)
	update(t, s, func(tx store.Txn) error {
		for _, i := range []int{3, 0, 5, 1, 4, 2} {
			if err := tx.AddEvent(es[i]); err != nil {
				return err
			}
		}
		return nil
	})
	want := eventIDs(es)
	view(t, s, func(tx store.Txn) error {
		all, err1 := tx.Outbox(100)
		next, err2 := tx.NextOutbox(100)
		first, err3 := tx.Outbox(2)
		nextFirst, err4 := tx.NextOutbox(2)
		same(t, "Outbox(100)", all, want)
		same(t, "NextOutbox(100)", next, want)
		same(t, "Outbox(2)", first, want[:2])
		same(t, "NextOutbox(2)", nextFirst, want[:2])
		return errors.Join(err1, err2, err3, err4)
	})
}

// RemoveFromOutbox takes an event out (the log keeps it); ReturnToOutbox
// puts one back in its place, a logged-only one included (a quarantined
// event's retry).
func testOutboxRemoveReturn(t *testing.T, b Backend) {
	s := b.Open(t)
	es := newEvents(6, t0, time.Millisecond)
	logged(t, s, es) // 0, 2, 4 in the outbox
	ids := eventIDs(es)
	update(t, s, func(tx store.Txn) error {
		return errors.Join(tx.RemoveFromOutbox(ids[0]), tx.RemoveFromOutbox(ids[4]), tx.RemoveFromOutbox(ids[1]))
	})
	check := func(what string, want []string) {
		t.Helper()
		var next []string
		view(t, s, func(tx store.Txn) error {
			var err error
			next, err = tx.NextOutbox(100)
			return err
		})
		same(t, what+": Outbox", outbox(t, s, 100), want)
		same(t, what+": NextOutbox", next, want)
	}
	check("after removing", []string{ids[2]})
	update(t, s, func(tx store.Txn) error { return errors.Join(tx.ReturnToOutbox(ids[3]), tx.ReturnToOutbox(ids[0])) })
	check("after returning", []string{ids[0], ids[2], ids[3]})
	if getEvent(t, s, ids[4]) == nil {
		t.Error("RemoveFromOutbox removed the event from the log")
	}
}

func getEvent(t testing.TB, s store.Store, id string) *event.Event {
	t.Helper()
	var e *event.Event
	view(t, s, func(tx store.Txn) error {
		var err error
		e, err = tx.Event(id)
		return err
	})
	return e
}
