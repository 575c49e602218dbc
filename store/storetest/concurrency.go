package storetest

import (
	"encoding/json"
	"errors"
	"sync"
	"testing"

	"github.com/pollrelay/pollrelay/store"
)

var concurrencyCases = []testCase{
	{"UpdateConflictRedone", testUpdateConflict},
	{"BatchConflictRedone", testBatchConflict},
	{"ConcurrentIncrements", testConcurrentIncrements},
	{"ViewIsSnapshot", testViewSnapshot},
}

// increment adds one to the counter kept in the source state of "n".
func increment(tx store.Txn) error {
	st, err := tx.SourceState("n")
	if err != nil {
		return err
	}
	st.ListingTracked++
	return tx.PutSourceState("n", st)
}

func counter(t testing.TB, s store.Store) int {
	t.Helper()
	var n int
	view(t, s, func(tx store.Txn) error {
		st, err := tx.SourceState("n")
		n = st.ListingTracked
		return err
	})
	return n
}

// Two Updates that read and increment the same record both land: the one
// that read before the other committed is redone on a fresh read (or, in
// a backend that locks, waits), and its first run's OnCommit is dropped.
func testUpdateConflict(t *testing.T, b Backend) {
	s := b.Open(t)
	read, other := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(other)
		<-read
		if err := s.Update(increment); err != nil {
			t.Errorf("the other Update: %v", err)
		}
	}()
	runs, commits := 0, 0
	err := s.Update(func(tx store.Txn) error {
		runs++
		tx.OnCommit(func() { commits++ })
		st, err := tx.SourceState("n")
		if err != nil {
			return err
		}
		if runs == 1 {
			close(read)
			waitOrBlocked(other)
		}
		st.ListingTracked++
		return tx.PutSourceState("n", st)
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	<-other
	if n := counter(t, s); n != 2 {
		t.Errorf("counter = %d after two increments, want 2 (fn ran %d times)", n, runs)
	}
	if commits != 1 {
		t.Errorf("OnCommit ran %d times, want once", commits)
	}
}

// A batch's groups whose transaction loses to a concurrent writer are
// redone, with their OnCommit functions once.
func testBatchConflict(t *testing.T, b Backend) {
	s := b.Open(t)
	commits := 0
	bt := s.NewBatch()
	defer bt.Discard()
	err := bt.Group(func(tx store.Txn) error {
		tx.OnCommit(func() { commits++ })
		return increment(tx)
	})
	if err != nil {
		t.Fatal(err)
	}
	other := make(chan struct{})
	go func() {
		defer close(other)
		if err := s.Update(increment); err != nil {
			t.Errorf("the other Update: %v", err)
		}
	}()
	waitOrBlocked(other)
	if err := bt.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	<-other
	if n := counter(t, s); n != 2 {
		t.Errorf("counter = %d after two increments, want 2", n)
	}
	if commits != 1 {
		t.Errorf("the group's OnCommit ran %d times, want once", commits)
	}
}

// Many writers incrementing one record lose no increment. A conflict the
// backend gives up on is returned as one, and the caller redoes the work,
// as the API does.
func testConcurrentIncrements(t *testing.T, b Backend) {
	s := b.Open(t)
	const writers, each = 4, 25
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range each {
				for {
					err := s.Update(increment)
					if store.IsConflict(err) {
						continue
					}
					if err != nil {
						t.Errorf("Update: %v", err)
					}
					break
				}
			}
		})
	}
	wg.Wait()
	if n := counter(t, s); n != writers*each {
		t.Errorf("counter = %d, want %d", n, writers*each)
	}
}

// A View reads one snapshot: a commit made while it runs shows in none of
// its reads, scans included, and does not wait for it.
func testViewSnapshot(t *testing.T, b Backend) {
	s := b.Open(t)
	state := func(v string) *store.Item { return &store.Item{State: json.RawMessage(`"` + v + `"`), Since: t0} }
	update(t, s, func(tx store.Txn) error {
		return errors.Join(tx.PutItem("src", "a", state("old")), tx.PutItem("src", "b", state("old")))
	})
	err := s.View(func(tx store.Txn) error {
		if it, err := tx.Item("src", "a"); err != nil || it == nil {
			return errors.Join(err, errors.New("item a missing"))
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := s.Update(func(tx store.Txn) error {
				return errors.Join(tx.PutItem("src", "a", state("new")), tx.PutItem("src", "b", state("new")),
					tx.PutItem("src", "c", state("new")), tx.DeleteItem("src", "a"))
			}); err != nil {
				t.Errorf("Update during a View: %v", err)
			}
		}()
		waitFor(t, done, "an Update while a View is open")
		for _, id := range []string{"a", "b"} {
			it, err := tx.Item("src", id)
			if err != nil {
				return err
			}
			if it == nil || string(it.State) != `"old"` {
				t.Errorf("item %s in the View after another commit = %s, want the old state", id, show(it))
			}
		}
		var ids []string
		err := tx.ItemHeads("src", func(id string, it *store.Item) error {
			ids = append(ids, id+"="+string(it.State))
			return nil
		})
		if len(ids) != 2 || ids[0] != `a="old"` || ids[1] != `b="old"` {
			t.Errorf("ItemHeads in the View after another commit = %v, want a and b old", ids)
		}
		return err
	})
	if err != nil {
		t.Fatalf("View: %v", err)
	}
	if it := getItem(t, s, "src", "b"); it == nil || string(it.State) != `"new"` {
		t.Errorf("item b after the View = %s, want the new state", show(it))
	}
}
