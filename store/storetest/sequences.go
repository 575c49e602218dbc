package storetest

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pollrelay/pollrelay/store"
)

var sequenceCases = []testCase{
	{"FirstIsOneThenIncrements", testSequenceIncrements},
	{"NamesIndependent", testSequenceNames},
	{"NameOverLimit", testSequenceNameLimit},
	{"RolledBackIsGivenAgain", testSequenceRollback},
	{"SurviveReopen", testSequenceReopen},
	{"RacingUpdatesDistinct", testSequenceRace},
	{"ConcurrentTakersDistinct", testSequenceConcurrent},
	{"ViewRefuses", testSequenceView},
	{"ListAndPut", testSequenceListPut},
	{"Largest", testSequenceLargest},
	{"InBatch", testSequenceBatch},
	{"Copied", testSequenceCopy},
}

// nextOf takes one value of name in its own Update.
func nextOf(t testing.TB, s store.Store, name string) uint64 {
	t.Helper()
	var v uint64
	update(t, s, func(tx store.Txn) error {
		var err error
		v, err = tx.NextSequence(name)
		return err
	})
	return v
}

// sequences lists the counters and their last values, as "name=last".
func sequences(t testing.TB, s store.Store) []string {
	t.Helper()
	var out []string
	view(t, s, func(tx store.Txn) error {
		return tx.Sequences(func(name string, last uint64) error {
			out = append(out, fmt.Sprintf("%q=%d", name, last))
			return nil
		})
	})
	return out
}

// A counter's first value is 1, and each one after is one more, whether
// taken in one transaction or in several.
func testSequenceIncrements(t *testing.T, b Backend) {
	s := b.Open(t)
	var got []uint64
	update(t, s, func(tx store.Txn) error {
		for range 3 {
			v, err := tx.NextSequence("ids")
			if err != nil {
				return err
			}
			got = append(got, v)
		}
		return nil
	})
	got = append(got, nextOf(t, s, "ids"), nextOf(t, s, "ids"))
	same(t, "values taken", got, []uint64{1, 2, 3, 4, 5})
}

// Each name counts for itself, whatever bytes it holds: no name that is
// a prefix of another, or holds a NUL, shares its counter.
func testSequenceNames(t *testing.T, b Backend) {
	s := b.Open(t)
	names := []string{"a", "a\x00", "a\x00b", "ab", "", "\xff\xfe", "b"}
	for i, name := range names {
		for range i + 1 {
			nextOf(t, s, name)
		}
	}
	var want []string
	for i, name := range names {
		want = append(want, fmt.Sprintf("%q=%d", name, i+1))
	}
	slices.Sort(want)
	got := sequences(t, s)
	slices.Sort(got)
	same(t, "counters", got, want)
	for i, name := range names {
		if v := nextOf(t, s, name); v != uint64(i+2) {
			t.Errorf("next of %q = %d, want %d", name, v, i+2)
		}
	}
}

// A name of MaxKeyPart bytes is taken; one longer is refused as a bad
// record by NextSequence and PutSequence, leaving the transaction usable.
func testSequenceNameLimit(t *testing.T, b Backend) {
	s := b.Open(t)
	ok := strings.Repeat("n", store.MaxKeyPart)
	if v := nextOf(t, s, ok); v != 1 {
		t.Errorf("next of a name at the limit = %d, want 1", v)
	}
	long := ok + "n"
	update(t, s, func(tx store.Txn) error {
		if _, err := tx.NextSequence(long); !store.IsBadRecord(err) {
			t.Errorf("NextSequence of a name over the limit: %v, want a bad record", err)
		}
		if err := tx.PutSequence(long, 3); !store.IsBadRecord(err) {
			t.Errorf("PutSequence of a name over the limit: %v, want a bad record", err)
		}
		v, err := tx.NextSequence("after")
		if v != 1 {
			t.Errorf("next after the refusals = %d, want 1", v)
		}
		return err
	})
	if got := sequences(t, s); len(got) != 2 {
		t.Errorf("counters = %v, want the one at the limit and after", brief(got))
	}
}

// A value taken by an Update that fails is rolled back with it: the next
// Update is given it.
func testSequenceRollback(t *testing.T, b Backend) {
	s := b.Open(t)
	nextOf(t, s, "ids")
	err := s.Update(func(tx store.Txn) error {
		v, err := tx.NextSequence("ids")
		if err != nil {
			return err
		}
		if v != 2 {
			t.Errorf("value in the failing Update = %d, want 2", v)
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("Update = %v, want fn's error", err)
	}
	if v := nextOf(t, s, "ids"); v != 2 {
		t.Errorf("next after a failed Update = %d, want 2", v)
	}
}

// What a counter gave is kept across a restart: it goes on from there.
func testSequenceReopen(t *testing.T, b Backend) {
	needReopen(t, b)
	s := b.Open(t)
	nextOf(t, s, "ids")
	nextOf(t, s, "ids")
	nextOf(t, s, "other")
	s = b.Reopen(t, s)
	if v := nextOf(t, s, "ids"); v != 3 {
		t.Errorf("next of ids after a restart = %d, want 3", v)
	}
	if v := nextOf(t, s, "other"); v != 2 {
		t.Errorf("next of other after a restart = %d, want 2", v)
	}
}

// Two Updates that take the same counter while both are open get
// different values: the one that took first and commits last is redone
// (or, in a backend that locks, the other waits and is redone).
func testSequenceRace(t *testing.T, b Backend) {
	s := b.Open(t)
	nextOf(t, s, "ids") // the counter exists: a race on its row, not its creation
	for _, name := range []string{"ids", "new"} {
		took, other := make(chan struct{}), make(chan struct{})
		var otherGot uint64
		go func() {
			defer close(other)
			<-took
			if err := s.Update(func(tx store.Txn) error {
				var err error
				otherGot, err = tx.NextSequence(name)
				return err
			}); err != nil {
				t.Errorf("the other Update: %v", err)
			}
		}()
		runs := 0
		var got uint64
		err := s.Update(func(tx store.Txn) error {
			runs++
			v, err := tx.NextSequence(name)
			if err != nil {
				return err
			}
			if runs == 1 {
				close(took)
				waitOrBlocked(other)
			}
			got = v
			return nil
		})
		if err != nil {
			t.Fatalf("Update: %v", err)
		}
		<-other
		if got == otherGot {
			t.Errorf("%s: both Updates were given %d (fn ran %d times)", name, got, runs)
		}
		base := uint64(0)
		if name == "ids" {
			base = 1
		}
		if v := nextOf(t, s, name); v != base+3 {
			t.Errorf("%s: next after the race = %d, want %d", name, v, base+3)
		}
	}
}

// Many writers taking one counter are each given values no other is,
// and together every value in turn. A conflict the backend gives up on is
// returned as one, and the caller redoes the work, as the API does.
func testSequenceConcurrent(t *testing.T, b Backend) {
	s := b.Open(t)
	const writers, each = 4, 25
	var mu sync.Mutex
	var got []uint64
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range each {
				for {
					err := s.Update(func(tx store.Txn) error {
						v, err := tx.NextSequence("ids")
						tx.OnCommit(func() {
							mu.Lock()
							got = append(got, v)
							mu.Unlock()
						})
						return err
					})
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
	slices.Sort(got)
	want := make([]uint64, writers*each)
	for i := range want {
		want[i] = uint64(i + 1)
	}
	same(t, "values committed", got, want)
}

// A View refuses to take or set a counter, and leaves it as it was.
func testSequenceView(t *testing.T, b Backend) {
	s := b.Open(t)
	nextOf(t, s, "ids")
	err := s.View(func(tx store.Txn) error {
		if v, err := tx.NextSequence("ids"); err == nil {
			t.Errorf("NextSequence in a View = %d, want an error", v)
		}
		if err := tx.PutSequence("ids", 9); err == nil {
			t.Error("PutSequence in a View: no error")
		}
		return nil
	})
	if err != nil {
		t.Logf("View: %v", err)
	}
	same(t, "counters after the View", sequences(t, s), []string{`"ids"=1`})
	if v := nextOf(t, s, "ids"); v != 2 {
		t.Errorf("next after the View = %d, want 2", v)
	}
}

// Sequences lists each counter by name with the last value it gave;
// PutSequence sets one, and the counter goes on from there, in the same
// transaction too.
func testSequenceListPut(t *testing.T, b Backend) {
	s := b.Open(t)
	if got := sequences(t, s); len(got) != 0 {
		t.Errorf("counters of an empty store = %v", got)
	}
	nextOf(t, s, "b")
	nextOf(t, s, "b")
	update(t, s, func(tx store.Txn) error {
		if err := tx.PutSequence("a", 41); err != nil {
			return err
		}
		v, err := tx.NextSequence("a")
		if v != 42 {
			t.Errorf("next after PutSequence(a, 41) in the same Update = %d, want 42", v)
		}
		return err
	})
	update(t, s, func(tx store.Txn) error { return tx.PutSequence("c", 7) })
	same(t, "counters", sequences(t, s), []string{`"a"=42`, `"b"=2`, `"c"=7`})
	if v := nextOf(t, s, "c"); v != 8 {
		t.Errorf("next after PutSequence(c, 7) = %d, want 8", v)
	}
	update(t, s, func(tx store.Txn) error { return tx.PutSequence("b", 100) })
	if v := nextOf(t, s, "b"); v != 101 {
		t.Errorf("next after PutSequence(b, 100) = %d, want 101", v)
	}
}

// A counter goes up to math.MaxInt64: PutSequence refuses more as a bad
// record, and NextSequence at the largest fails, giving nothing.
func testSequenceLargest(t *testing.T, b Backend) {
	s := b.Open(t)
	update(t, s, func(tx store.Txn) error {
		if err := tx.PutSequence("big", math.MaxInt64+1); !store.IsBadRecord(err) {
			t.Errorf("PutSequence over math.MaxInt64: %v, want a bad record", err)
		}
		return tx.PutSequence("big", math.MaxInt64-1)
	})
	if v := nextOf(t, s, "big"); v != math.MaxInt64 {
		t.Errorf("next = %d, want math.MaxInt64", v)
	}
	var v uint64
	err := s.Update(func(tx store.Txn) error {
		var err error
		v, err = tx.NextSequence("big")
		return err
	})
	if err == nil {
		t.Errorf("next past math.MaxInt64 = %d, want an error", v)
	}
	same(t, "counters", sequences(t, s), []string{fmt.Sprintf(`"big"=%d`, uint64(math.MaxInt64))})
}

// The groups of a batch take a counter in turn, each after what the
// groups before it took.
func testSequenceBatch(t *testing.T, b Backend) {
	s := b.Open(t)
	bt := s.NewBatch()
	defer bt.Discard()
	var got []uint64
	for range 3 {
		if err := bt.Group(func(tx store.Txn) error {
			v, err := tx.NextSequence("ids")
			tx.OnCommit(func() { got = append(got, v) })
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := bt.Commit(); err != nil {
		t.Fatal(err)
	}
	same(t, "values taken in a batch", got, []uint64{1, 2, 3})
	if v := nextOf(t, s, "ids"); v != 4 {
		t.Errorf("next after the batch = %d, want 4", v)
	}
}

// Copy carries every counter at its last value: the copy goes on where
// the original was, so it gives no value the original gave.
func testSequenceCopy(t *testing.T, b Backend) {
	src, dst := b.Open(t), b.Open(t)
	for range 3 {
		nextOf(t, src, "ids")
	}
	nextOf(t, src, "a\x00b")
	update(t, src, func(tx store.Txn) error { return tx.PutSequence("moved", 1000) })
	n, err := store.Copy(dst, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n.Sequences != 3 {
		t.Errorf("Copy counted %d sequences, want 3", n.Sequences)
	}
	counted, err := store.Count(dst)
	if err != nil {
		t.Fatal(err)
	}
	if counted != n {
		t.Errorf("the copy holds %v\ncopied %v", counted, n)
	}
	same(t, "counters of the copy", sequences(t, dst), sequences(t, src))
	for name, want := range map[string]uint64{"ids": 4, "a\x00b": 2, "moved": 1001} {
		if v := nextOf(t, dst, name); v != want {
			t.Errorf("next of %q in the copy = %d, want %d", name, v, want)
		}
	}
}
