package badger

import (
	"encoding/json"
	"slices"
	"testing"
	"time"
)

func openWatchTestStore(t *testing.T) *Store {
	t.Helper()
	st, err := Open(Options{Path: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestWatches(t *testing.T) {
	st := openWatchTestStore(t)
	now := time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)
	put := func(source, id string) {
		t.Helper()
		err := st.update(func(tx *Txn) error {
			return tx.PutWatch(&Watch{Source: source, ID: id, Origin: OriginAPI, CreatedAt: now,
				Metadata: json.RawMessage(`{"k":"` + id + `"}`), ExpiresAt: now.Add(time.Hour)})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// "a" is a prefix of "ab": its watches must not include ab's.
	for _, w := range [][2]string{{"a", "2"}, {"a", "1"}, {"ab", "1"}, {"b", "x"}} {
		put(w[0], w[1])
	}
	list := func(source, afterSource, afterID string, limit int) []string {
		t.Helper()
		var out []string
		err := st.view(func(tx *Txn) error {
			return tx.Watches(source, afterSource, afterID, func(w *Watch) bool {
				out = append(out, w.Source+"/"+w.ID)
				return len(out) < limit
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := list("a", "", "", 10); !slices.Equal(got, []string{"a/1", "a/2"}) {
		t.Errorf("watches of a = %v", got)
	}
	if got := list("", "", "", 10); !slices.Equal(got, []string{"a/1", "a/2", "ab/1", "b/x"}) {
		t.Errorf("all watches = %v", got)
	}
	if got := list("", "a", "2", 2); !slices.Equal(got, []string{"ab/1", "b/x"}) {
		t.Errorf("watches after a/2 = %v", got)
	}
	err := st.view(func(tx *Txn) error {
		n, err := tx.CountWatches("a")
		if err != nil || n != 2 {
			t.Errorf("count = %d, %v", n, err)
		}
		w, err := tx.Watch("a", "1")
		if err != nil || w == nil || string(w.Metadata) != `{"k":"1"}` || !w.ExpiresAt.Equal(now.Add(time.Hour)) {
			t.Errorf("watch = %+v, %v", w, err)
		}
		if w.Expired(now) || !w.Expired(now.Add(time.Hour)) || (&Watch{}).Expired(now.Add(1e6*time.Hour)) {
			t.Error("Expired is wrong")
		}
		if w, err := tx.Watch("a", "nope"); w != nil || err != nil {
			t.Errorf("missing watch = %+v, %v", w, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Ending a watch marks it; the mark lives beside, not among, watches.
	err = st.update(func(tx *Txn) error {
		if err := tx.DeleteWatch("a", "1"); err != nil {
			return err
		}
		return tx.MarkWatchEnded("a", "1", now)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := list("", "", "", 10); !slices.Equal(got, []string{"a/2", "ab/1", "b/x"}) {
		t.Errorf("after delete = %v", got)
	}
	ended := func() bool {
		var e bool
		if err := st.view(func(tx *Txn) error {
			var err error
			e, err = tx.WatchEnded("a", "1")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return e
	}
	if !ended() {
		t.Error("end mark missing")
	}
	if err := st.update(func(tx *Txn) error { return tx.ClearWatchEnded("a", "1") }); err != nil || ended() {
		t.Errorf("end mark not cleared (%v)", err)
	}
}
