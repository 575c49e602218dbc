package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/store"
)

var atomicityCases = []testCase{
	{"UpdateCommits", testUpdateCommits},
	{"UpdateErrorWritesNothing", testUpdateErrorWritesNothing},
	{"GroupFailureWritesNothing", testGroupFailureWritesNothing},
	{"OnCommit", testOnCommit},
}

var errBoom = errors.New("boom")

// writeEverything writes one record of every kind, as one poll and one
// delivery outcome would together.
func writeEverything(tx store.Txn, e *event.Event) error {
	_, seqErr := tx.NextSequence("ids")
	return errors.Join(
		seqErr,
		tx.PutItem("src", "1", fullItem()),
		tx.PutSourceState("src", store.SourceState{Baselined: true}),
		tx.AddEvent(e),
		tx.PutDelivery(ordered("app", e, t0), nil),
		tx.AddAttempt(e.ID, store.Attempt{N: 1, Subscription: "app", At: t0, Outcome: "failure"}),
		tx.PutWatch(&store.Watch{Source: "w", ID: "1", CreatedAt: t0, Origin: store.OriginAPI}),
		tx.MarkWatchEnded("w", "2", t0),
		tx.PutAPISubscription(&store.SubscriptionRecord{ID: "api-1", Spec: json.RawMessage(`{}`), CreatedAt: t0}),
		tx.PutSubState("app", &store.SubState{FailureCount: 1}),
		tx.Quarantine(store.Quarantined{Kind: store.QuarantineItem, Source: "src", ItemID: "x", Reason: "r"}, t0),
		tx.PutHistogram("src", "open", []byte{1}),
	)
}

// stored reports which of writeEverything's records are there.
func stored(t testing.TB, s store.Store, e *event.Event) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	view(t, s, func(tx store.Txn) error {
		it, err1 := tx.Item("src", "1")
		ss, err2 := tx.SourceState("src")
		ev, err3 := tx.Event(e.ID)
		ob, err4 := tx.Outbox(10)
		d, err5 := tx.Delivery("app", e.ID)
		refs, err6 := tx.Due("app", t0, 10)
		_, next, err7 := tx.NextDue()
		head, err8 := tx.ResourceHead("app", e.Resource())
		atts, err9 := tx.Attempts(e.ID)
		w, err10 := tx.Watch("w", "1")
		ended, err11 := tx.WatchEnded("w", "2")
		sub, err12 := tx.APISubscription("api-1")
		st, err13 := tx.SubState("app")
		quarantined := false
		err14 := tx.QuarantineRecords("", func(*store.Quarantined) bool { quarantined = true; return false })
		hist := false
		err15 := tx.Histograms("src", func(string, []byte) error { hist = true; return nil })
		seq := false
		err16 := tx.Sequences(func(name string, last uint64) error { seq = seq || name == "ids" && last == 1; return nil })
		got = map[string]bool{
			"item": it != nil, "source state": ss.Baselined, "event": ev != nil, "outbox": len(ob) > 0,
			"delivery": d != nil, "schedule": len(refs) > 0, "NextDue": next, "resource order": head != "",
			"attempt": len(atts) > 0, "watch": w != nil, "watch end": ended, "API subscription": sub != nil,
			"subscription state": st != nil, "quarantine": quarantined, "histogram": hist, "sequence": seq,
		}
		return errors.Join(err1, err2, err3, err4, err5, err6, err7, err8, err9, err10, err11, err12, err13, err14, err15, err16)
	})
	return got
}

func wantStored(t testing.TB, got map[string]bool, want bool) {
	t.Helper()
	var wrong []string
	for what, ok := range got {
		if ok != want {
			wrong = append(wrong, what)
		}
	}
	slices.Sort(wrong)
	if len(wrong) > 0 {
		t.Errorf("stored = %v for: %v", !want, wrong)
	}
}

// The control for the tests below: what writeEverything writes is all
// found once committed.
func testUpdateCommits(t *testing.T, b Backend) {
	s := b.Open(t)
	e := newEvent(t0, "src", "1")
	update(t, s, func(tx store.Txn) error { return writeEverything(tx, e) })
	wantStored(t, stored(t, s, e), true)
}

// An Update whose fn fails writes nothing, runs none of its OnCommit
// functions, and returns fn's error.
func testUpdateErrorWritesNothing(t *testing.T, b Backend) {
	s := b.Open(t)
	e := newEvent(t0, "src", "1")
	ran := false
	err := s.Update(func(tx store.Txn) error {
		tx.OnCommit(func() { ran = true })
		if err := writeEverything(tx, e); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Errorf("Update = %v, want fn's error", err)
	}
	if ran {
		t.Error("OnCommit ran for an Update that failed")
	}
	wantStored(t, stored(t, s, e), false)
}

// A poll's group holds an item's new state and the events it causes; one
// that fails midway leaves neither, and the batch's groups not yet
// committed are dropped with it.
func testGroupFailureWritesNothing(t *testing.T, b Backend) {
	s := b.Open(t)
	ea, eb := newEvent(t0, "src", "a"), newEvent(t0, "src", "b")
	ran := 0
	bt := s.NewBatch()
	defer bt.Discard()
	err := bt.Group(func(tx store.Txn) error {
		tx.OnCommit(func() { ran++ })
		return errors.Join(tx.PutItem("src", "a", headItem("a")), tx.AddEvent(ea))
	})
	if err != nil {
		t.Fatalf("Group: %v", err)
	}
	err = bt.Group(func(tx store.Txn) error {
		tx.OnCommit(func() { ran++ })
		if err := errors.Join(tx.PutItem("src", "b", headItem("b")), tx.AddEvent(eb)); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Errorf("Group = %v, want the group's error", err)
	}
	_ = bt.Commit() // what Commit returns after a failed group is not specified
	if ran != 0 {
		t.Errorf("%d OnCommit functions ran for a batch whose group failed", ran)
	}
	view(t, s, func(tx store.Txn) error {
		for _, c := range []struct {
			id string
			e  *event.Event
		}{{"a", ea}, {"b", eb}} {
			it, err1 := tx.Item("src", c.id)
			ev, err2 := tx.Event(c.e.ID)
			if it != nil || ev != nil {
				t.Errorf("item %s stored: %v, its event: %v; want neither", c.id, it != nil, ev != nil)
			}
			if err := errors.Join(err1, err2); err != nil {
				return err
			}
		}
		ob, err := tx.Outbox(10)
		if len(ob) != 0 {
			t.Errorf("outbox = %v, want empty", ob)
		}
		return err
	})
}

// OnCommit functions run once each, after the commit (its writes are
// visible to a new transaction) and before Update returns; a batch's run
// before Commit returns.
func testOnCommit(t *testing.T, b Backend) {
	s := b.Open(t)
	var seen []string
	check := func(name, id string) func() {
		return func() {
			it := getItem(t, s, "src", id)
			seen = append(seen, fmt.Sprintf("%s:%v", name, it != nil))
		}
	}
	update(t, s, func(tx store.Txn) error {
		tx.OnCommit(check("update", "u"))
		tx.OnCommit(check("update2", "u"))
		return tx.PutItem("src", "u", headItem("u"))
	})
	want := []string{"update:true", "update2:true"}
	if !slices.Equal(seen, want) {
		t.Errorf("after Update, OnCommit saw %v, want %v", seen, want)
	}
	seen = nil
	bt := s.NewBatch()
	for _, id := range []string{"g1", "g2", "g3"} {
		if err := bt.Group(func(tx store.Txn) error {
			tx.OnCommit(check(id, id))
			return tx.PutItem("src", id, headItem(id))
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := bt.Commit(); err != nil {
		t.Fatal(err)
	}
	want = []string{"g1:true", "g2:true", "g3:true"}
	if !slices.Equal(seen, want) {
		t.Errorf("after Batch.Commit, OnCommit saw %v, want %v", seen, want)
	}
}
