package store_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/store"
	"github.com/pollrelay/pollrelay/store/badger"
)

func openBadger(t *testing.T) store.Store {
	t.Helper()
	st, err := badger.Open(badger.Options{Path: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// fill writes one of every kind of record Copy moves, ids with NUL and
// invalid UTF-8 among them, and returns the ids of its events.
func fill(t *testing.T, st store.Store, now time.Time) []string {
	t.Helper()
	ids := []string{"a", "b\x00c", "\xff\xfe", "d/e"}
	var evs []string
	err := st.Update(func(tx store.Txn) error {
		rec := &store.SubscriptionRecord{ID: "api-1", Spec: json.RawMessage(`{"url":"http://127.0.0.1:1/"}`),
			Secrets: []store.StoredSecret{{Value: "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ="}}, CreatedAt: now, UpdatedAt: now, Version: 3}
		if err := tx.PutAPISubscription(rec); err != nil {
			return err
		}
		if err := tx.PutSubState("api-1", &store.SubState{FailureCount: 2, LastResponseStatus: 500}); err != nil {
			return err
		}
		if err := tx.PutSourceState("jobs", store.SourceState{Baselined: true, ETag: `"v1"`}); err != nil {
			return err
		}
		for _, id := range ids {
			it := &store.Item{State: json.RawMessage(`"ready"`), Object: json.RawMessage(`{"id":1}`), Since: now,
				History: []store.HistoryEntry{{State: json.RawMessage(`"ready"`), At: now}}}
			if err := tx.PutItem("jobs", id, it); err != nil {
				return err
			}
		}
		if err := tx.PutHistogram("tasks", `"running"`, []byte{1, 2, 3}); err != nil {
			return err
		}
		if err := tx.PutWatch(&store.Watch{Source: "tasks", ID: "t\x001", CreatedAt: now, Origin: store.OriginAPI}); err != nil {
			return err
		}
		if err := tx.MarkWatchEnded("tasks", "t2", now); err != nil {
			return err
		}
		for range 3 {
			if _, err := tx.NextSequence("subscriptions"); err != nil {
				return err
			}
		}
		if err := tx.PutSequence("a\x00b", 7); err != nil {
			return err
		}
		return tx.PutQuarantined(&store.Quarantined{ID: "qr_1", Kind: store.QuarantineItem, Reason: "too long", Source: "jobs", Count: 4, FirstAt: now, LastAt: now})
	})
	if err != nil {
		t.Fatal(err)
	}
	// Three events of one item: the first delivered, the second retrying,
	// the third waiting behind it; a fourth still in the outbox.
	for i := range 4 {
		e := &event.Event{ID: event.NewID(now), Type: "jobs.changed", Source: "jobs", ItemID: "b\x00c",
			Previous: json.RawMessage(`"queued"`), Current: json.RawMessage(`"ready"`), CreatedAt: now}
		evs = append(evs, e.ID)
		err := st.Update(func(tx store.Txn) error {
			if i == 3 {
				return tx.AddEvent(e)
			}
			if err := tx.LogEvent(e); err != nil {
				return err
			}
			d := &store.Delivery{EventID: e.ID, Subscription: "api-1", Resource: e.Resource(), CreatedAt: now, UpdatedAt: now, EventAt: now}
			switch i {
			case 0:
				d.State, d.Attempts = store.Delivered, 1
			case 1:
				d.State, d.Attempts, d.NextAt = store.Retrying, 2, now.Add(time.Minute)
			case 2:
				d.State = store.Waiting
			}
			if err := tx.PutDelivery(d, nil); err != nil {
				return err
			}
			for n := range d.Attempts {
				if err := tx.AddAttempt(e.ID, store.Attempt{N: n + 1, Subscription: "api-1", At: now, Status: 500, Outcome: "http_error"}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return evs
}

func TestCopyMovesEverything(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	src, dst := openBadger(t), openBadger(t)
	evs := fill(t, src, now)
	var progress int
	got, err := store.Copy(dst, src, func(store.Counts) { progress++ })
	if err != nil {
		t.Fatal(err)
	}
	want := store.Counts{Subscriptions: 1, SubStates: 1, Sources: 2, Items: 4, Histograms: 1, Watches: 1, EndedWatches: 1,
		Events: 4, Outbox: 1, Deliveries: 3, Attempts: 3, Quarantined: 1, Sequences: 2}
	if got != want {
		t.Fatalf("copied %v\nwant   %v", got, want)
	}
	if progress == 0 {
		t.Error("no progress was reported")
	}
	counted, err := store.Count(dst)
	if err != nil {
		t.Fatal(err)
	}
	if counted != want {
		t.Fatalf("target holds %v\nwant         %v", counted, want)
	}
	// What the pipeline reads next is the same in both.
	for _, st := range []store.Store{src, dst} {
		err := st.View(func(tx store.Txn) error {
			due, err := tx.Due("api-1", now.Add(2*time.Minute), 10)
			if err != nil {
				return err
			}
			if len(due) != 1 || due[0].EventID != evs[1] || !due[0].At.Equal(now.Add(time.Minute)) {
				t.Errorf("due = %+v, want the retry of %s at %v", due, evs[1], now.Add(time.Minute))
			}
			head, err := tx.ResourceHead("api-1", "jobs\x00b\x00c")
			if err != nil {
				return err
			}
			next, err := tx.NextInResource("api-1", "jobs\x00b\x00c", head)
			if err != nil {
				return err
			}
			if head != evs[1] || next != evs[2] {
				t.Errorf("resource order = %s, %s; want %s, %s", head, next, evs[1], evs[2])
			}
			it, err := tx.Item("jobs", "\xff\xfe")
			if err != nil || it == nil || string(it.State) != `"ready"` || len(it.History) != 1 {
				t.Errorf("item \\xff\\xfe = %+v, %v", it, err)
			}
			rec, err := tx.APISubscription("api-1")
			if err != nil || rec == nil || rec.Version != 3 || len(rec.Active(now)) != 1 {
				t.Errorf("subscription = %+v, %v", rec, err)
			}
			q, err := tx.QuarantineRecord("qr_1")
			if err != nil || q == nil || q.Count != 4 {
				t.Errorf("quarantine record = %+v, %v", q, err)
			}
			ended, err := tx.WatchEnded("tasks", "t2")
			if err != nil || !ended {
				t.Errorf("watch end of t2 = %v, %v", ended, err)
			}
			out, err := tx.Outbox(10)
			if err != nil || !reflect.DeepEqual(out, evs[3:]) {
				t.Errorf("outbox = %v, %v; want %v", out, err, evs[3:])
			}
			seqs := map[string]uint64{}
			if err := tx.Sequences(func(name string, last uint64) error { seqs[name] = last; return nil }); err != nil {
				return err
			}
			if want := map[string]uint64{"subscriptions": 3, "a\x00b": 7}; !reflect.DeepEqual(seqs, want) {
				t.Errorf("sequences = %v, want %v", seqs, want)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// The copy goes on where the original was.
	err = dst.Update(func(tx store.Txn) error {
		v, err := tx.NextSequence("subscriptions")
		if err == nil && v != 4 {
			t.Errorf("next of subscriptions in the copy = %d, want 4", v)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
