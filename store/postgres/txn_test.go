package postgres

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/store"
)

// Concurrent read-modify-writes of one record lose nothing: the loser of
// each collision is redone from a fresh read.
func TestUpdateRedoesLostUpdates(t *testing.T) {
	s := openTest(t)
	const workers, each = 4, 25
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				err := s.Update(func(tx store.Txn) error {
					st, err := tx.SourceState("a")
					if err != nil {
						return err
					}
					st.SuspectPolls++
					return tx.PutSourceState("a", st)
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	err := s.View(func(tx store.Txn) error {
		st, err := tx.SourceState("a")
		if st.SuspectPolls != workers*each {
			t.Errorf("count = %d, want %d", st.SuspectPolls, workers*each)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Two transactions that each read what the other writes cannot both
// commit (write skew): Badger refuses the second, and so does
// SERIALIZABLE, where REPEATABLE READ would let both through. Each here
// claims a slot only when neither is claimed.
func TestUpdateRefusesWriteSkew(t *testing.T) {
	s := openTest(t)
	bothRead := sync.WaitGroup{}
	bothRead.Add(2)
	var runs atomic.Int32
	claim := func(mine string) error {
		first := true
		return s.Update(func(tx store.Txn) error {
			runs.Add(1)
			a, err := tx.SubState("a")
			if err != nil {
				return err
			}
			b, err := tx.SubState("b")
			if err != nil {
				return err
			}
			if first {
				first = false
				bothRead.Done()
				bothRead.Wait()
			}
			if a != nil || b != nil {
				return nil
			}
			return tx.PutSubState(mine, &store.SubState{Disabled: true})
		})
	}
	errs := make(chan error, 2)
	go func() { errs <- claim("a") }()
	go func() { errs <- claim("b") }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	claimed := 0
	err := s.View(func(tx store.Txn) error {
		return tx.SubStates(func(string, *store.SubState, error) error { claimed++; return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	if claimed != 1 {
		t.Errorf("%d slots claimed, want 1", claimed)
	}
	if runs.Load() < 3 {
		t.Errorf("fn ran %d times: the loser was not redone", runs.Load())
	}
}

// A conflict that outlasts every retry is store.ErrConflict.
func TestPersistentConflictIsErrConflict(t *testing.T) {
	err := domainError(&pgconn.PgError{Code: "40001"})
	if !store.IsConflict(err) {
		t.Errorf("domainError(40001) = %v, want ErrConflict", err)
	}
	if store.IsConflict(domainError(errors.New("other"))) {
		t.Error("any error is a conflict")
	}
}

// OnCommit hooks and OnEvent run once, after the commit; a transaction
// that fails runs neither, and one without events does not wake OnEvent.
func TestHooksRunAfterCommit(t *testing.T) {
	s := openTest(t)
	var woke atomic.Int32
	s.OnEvent(func() { woke.Add(1) })
	var hooks int
	err := s.Update(func(tx store.Txn) error {
		tx.OnCommit(func() { hooks++ })
		return tx.AddEvent(&event.Event{ID: "evt_1", Source: "s"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if hooks != 1 || woke.Load() != 1 {
		t.Errorf("after a commit with an event: hooks %d, OnEvent %d; want 1, 1", hooks, woke.Load())
	}
	boom := errors.New("boom")
	err = s.Update(func(tx store.Txn) error {
		tx.OnCommit(func() { hooks++ })
		if err := tx.AddEvent(&event.Event{ID: "evt_2", Source: "s"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want boom", err)
	}
	if err := s.Update(func(tx store.Txn) error { return tx.PutSourceState("s", store.SourceState{}) }); err != nil {
		t.Fatal(err)
	}
	if hooks != 1 || woke.Load() != 1 {
		t.Errorf("after a failed and an event-less commit: hooks %d, OnEvent %d; want 1, 1", hooks, woke.Load())
	}
	err = s.View(func(tx store.Txn) error {
		e, err := tx.Event("evt_2")
		if e != nil {
			t.Error("the failed transaction's event was stored")
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A Batch group that fails takes the uncommitted groups before it along,
// as in Badger; groups of committed transactions stay. Hooks run once per
// group that committed, however often its transaction ran.
func TestBatchGroups(t *testing.T) {
	s := openTest(t)
	b := s.NewBatch()
	hooks := 0
	for i := range batchGroups + 10 {
		err := b.Group(func(tx store.Txn) error {
			tx.OnCommit(func() { hooks++ })
			return tx.AddEvent(&event.Event{ID: "evt_" + strconv.Itoa(i), Source: "s"})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	boom := errors.New("boom")
	err := b.Group(func(tx store.Txn) error {
		if err := tx.AddEvent(&event.Event{ID: "evt_bad", Source: "s"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Group = %v, want boom", err)
	}
	if err := b.Group(func(tx store.Txn) error { return tx.AddEvent(&event.Event{ID: "evt_after", Source: "s"}) }); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	var ids []string
	err = s.View(func(tx store.Txn) error {
		var err error
		ids, err = tx.Outbox(1 << 20)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != batchGroups+1 || ids[len(ids)-1] != "evt_after" {
		t.Errorf("outbox holds %d events ending %q; want the first transaction's %d and evt_after", len(ids), ids[len(ids)-1], batchGroups)
	}
	if hooks != batchGroups {
		t.Errorf("%d hooks ran, want %d", hooks, batchGroups)
	}
}

// A batch whose transaction loses to a concurrent writer redoes its
// groups on a fresh one: what it decided on old data is decided again.
func TestBatchRedoesItsGroups(t *testing.T) {
	s := openTest(t)
	if err := s.Update(func(tx store.Txn) error { return tx.PutSourceState("a", store.SourceState{}) }); err != nil {
		t.Fatal(err)
	}
	b := s.NewBatch()
	defer b.Discard()
	runs, hooks := 0, 0
	err := b.Group(func(tx store.Txn) error {
		runs++
		tx.OnCommit(func() { hooks++ })
		st, err := tx.SourceState("a")
		if err != nil {
			return err
		}
		st.SuspectPolls++
		return tx.PutSourceState("a", st)
	})
	if err != nil {
		t.Fatal(err)
	}
	// The batch's transaction has read and means to write a; this one
	// writes a first.
	err = s.Update(func(tx store.Txn) error { return tx.PutSourceState("a", store.SourceState{SuspectPolls: 10}) })
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if runs < 2 || hooks != 1 {
		t.Errorf("the group ran %d times with %d hooks; want it redone, its hook run once", runs, hooks)
	}
	err = s.View(func(tx store.Txn) error {
		st, err := tx.SourceState("a")
		if st.SuspectPolls != 11 {
			t.Errorf("SuspectPolls = %d, want 11", st.SuspectPolls)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A fenced view commits only while its lease holds its token, holds the
// token row while it writes, and a refusal is store.ErrFenced, not a
// conflict to retry.
func TestFenced(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	write := func(st store.Store) error {
		return st.Update(func(tx store.Txn) error { return tx.PutSourceState("a", store.SourceState{Baselined: true}) })
	}
	if err := write(s.Fenced("source:a", 1)); !store.IsFenced(err) {
		t.Fatalf("no lease row: Update = %v, want ErrFenced", err)
	}
	if _, err := s.pool.Exec(ctx, "INSERT INTO leases (name, token) VALUES ($1, 1)", []byte("source:a")); err != nil {
		t.Fatal(err)
	}
	if err := write(s.Fenced("source:a", 1)); err != nil {
		t.Fatalf("own token: %v", err)
	}
	stale := s.Fenced("source:a", 0)
	if err := write(stale); !store.IsFenced(err) || store.IsConflict(err) {
		t.Errorf("stale token: Update = %v, want ErrFenced", err)
	}
	b := stale.NewBatch()
	err := b.Group(func(tx store.Txn) error { return tx.PutSourceState("b", store.SourceState{}) })
	if err == nil {
		err = b.Commit()
	}
	if !store.IsFenced(err) {
		t.Errorf("stale token: Batch = %v, want ErrFenced", err)
	}

	// While a fenced transaction is open, the token cannot change.
	inside, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.Fenced("source:a", 1).Update(func(tx store.Txn) error {
			if _, err := tx.SourceState("a"); err != nil { // the check has run
				return err
			}
			close(inside)
			<-release
			return tx.PutSourceState("a", store.SourceState{})
		})
	}()
	<-inside
	_, err = s.pool.Exec(ctx, "UPDATE leases SET token = 2 WHERE name = $1 AND token = (SELECT token FROM leases WHERE name = $1 FOR UPDATE NOWAIT)", []byte("source:a"))
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "55P03" {
		t.Errorf("changing the token under a fenced transaction = %v, want lock_not_available", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, "UPDATE leases SET token = 2 WHERE name = $1", []byte("source:a")); err != nil {
		t.Fatal(err)
	}
	if err := write(s.Fenced("source:a", 1)); !store.IsFenced(err) {
		t.Errorf("after a handoff: Update = %v, want ErrFenced", err)
	}
	if err := s.Fenced("source:a", 1).Close(); err != nil {
		t.Fatal(err)
	}
	if err := write(s.Fenced("source:a", 2)); err != nil {
		t.Errorf("the new holder, after a view was closed: %v", err)
	}
}

// ScanItemHeads streams its rows to its callback, so a read through the
// transaction from inside it is refused, clearly; writes are queued, and
// the transaction goes on after the scan.
func TestScanItemHeadsStreams(t *testing.T) {
	s := openTest(t)
	fill(t, s, "src", 3)
	err := s.Update(func(tx store.Txn) error {
		n := 0
		err := tx.ScanItemHeads("src", func(id []byte, it *store.Item) error {
			n++
			if err := tx.PutSourceState("src", store.SourceState{ListingTracked: n}); err != nil {
				return err
			}
			_, err := tx.Item("src", string(id))
			return err
		}, nil)
		if !errors.Is(err, errReadInScan) || n != 1 {
			t.Errorf("a read inside the scan: %d calls, error %v; want 1 call and errReadInScan", n, err)
		}
		st, err := tx.SourceState("src")
		if err == nil && st.ListingTracked != 1 {
			t.Errorf("the write made inside the scan is not seen after it: %+v", st)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
