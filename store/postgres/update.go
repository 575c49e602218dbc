package postgres

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/pollrelay/pollrelay/store"
)

// maxConflicts is how many times a transaction that lost to a concurrent
// one is redone before the conflict is returned. With the backoff of
// conflict, the last of them starts about a second after the first.
const maxConflicts = 20

// Update runs fn in a SERIALIZABLE transaction and commits it, redoing it
// on a serialization failure.
func (s *Store) Update(fn func(store.Txn) error) error {
	return s.update(func(t *Txn) error { return fn(t) })
}

func (s *Store) update(fn func(*Txn) error) error {
	for attempt := 0; ; attempt++ {
		t := s.newTxn(false)
		err := outcome(t, fn(t))
		if err == nil {
			err = t.commit()
		}
		t.end()
		if retryable(err) && attempt < maxConflicts {
			s.conflict(attempt)
			continue
		}
		if err != nil {
			return domainError(err)
		}
		s.committed(t)
		return nil
	}
}

// outcome is what a run of fn on t amounts to: a conflict the database
// reported wins over what fn made of it (fn may have wrapped, or even
// swallowed, the error of the read that met it), so the work is redone.
func outcome(t *Txn, err error) error {
	if t.err != nil && (err == nil || retryable(t.err)) {
		return t.err
	}
	return err
}

// conflict counts a redone transaction and waits before the redo: at
// random up to a bound that doubles with each attempt (1 ms, 2 ms, … at
// most 64 ms), so writers that collided spread out instead of colliding
// again in step, as several would on one hot row.
func (s *Store) conflict(attempt int) {
	s.metrics.conflicts.Inc()
	bound := time.Millisecond << min(attempt, 6)
	time.Sleep(time.Duration(rand.Int64N(int64(bound))) + 100*time.Microsecond)
}

// domainError marks a conflict that persisted with store.ErrConflict.
func domainError(err error) error {
	if retryable(err) {
		return fmt.Errorf("%w: %w", store.ErrConflict, err)
	}
	return err
}

// View runs fn in a read-only snapshot.
func (s *Store) View(fn func(store.Txn) error) error {
	return s.view(func(t *Txn) error { return fn(t) })
}

func (s *Store) view(fn func(*Txn) error) error {
	if s.ctx.Err() != nil {
		return errors.New("store closed")
	}
	t := s.newTxn(true)
	defer t.end()
	return outcome(t, fn(t))
}

// committed runs what waited for t's commit.
func (s *Store) committed(t *Txn) {
	for kind, n := range t.quarantined {
		s.metrics.quarantined.WithLabelValues(kind).Add(float64(n))
	}
	for _, fn := range t.onCommit {
		fn()
	}
	if t.added > 0 {
		s.notifyEvent()
	}
}

// Batch writes groups in shared transactions, committing one every
// batchGroups groups or batchBytes bytes. Each group is atomic: when one
// fails, the transaction it was in is rolled back with the groups before
// it that were not yet committed, as Badger's Batch does.
type Batch struct {
	s *Store
	t *Txn
	// groups are those in t, run again on a fresh transaction after a
	// serialization failure.
	groups []func(*Txn) error
}

// Where a batch commits and starts its next transaction. Larger ones
// save little (a commit is one round trip and one WAL flush) and cost
// more when a conflict makes them run again.
const (
	batchGroups = 2000
	batchBytes  = 16 << 20
)

// NewBatch starts a batch.
func (s *Store) NewBatch() store.Batch { return s.newBatch() }

func (s *Store) newBatch() *Batch { return &Batch{s: s} }

// Group adds one atomic group of writes.
func (b *Batch) Group(fn func(store.Txn) error) error {
	return b.group(func(t *Txn) error { return fn(t) })
}

func (b *Batch) group(fn func(*Txn) error) error {
	if b.t != nil && (len(b.groups) >= batchGroups || b.t.size >= batchBytes) {
		if err := b.commit(); err != nil {
			return err
		}
	}
	if b.t == nil {
		b.t = b.s.newTxn(false)
	}
	for attempt := 0; ; attempt++ {
		err := outcome(b.t, fn(b.t))
		if err == nil {
			b.groups = append(b.groups, fn)
			return nil
		}
		if !retryable(err) || attempt >= maxConflicts {
			b.Discard()
			return domainError(err)
		}
		b.s.conflict(attempt)
		if err := b.redo(); err != nil {
			return err
		}
	}
}

// Commit commits the groups not yet committed.
func (b *Batch) Commit() error { return b.commit() }

func (b *Batch) commit() error {
	for attempt := 0; b.t != nil; attempt++ {
		err := b.t.commit()
		if err == nil {
			t := b.t
			t.end()
			b.t, b.groups = nil, nil
			b.s.committed(t)
			return nil
		}
		if !retryable(err) || attempt >= maxConflicts {
			b.Discard()
			return fmt.Errorf("commit: %w", domainError(err))
		}
		b.s.conflict(attempt)
		if err := b.redo(); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
	}
	return nil
}

// redo rolls back the open transaction and runs its groups again on a
// fresh one, each re-reading what it checks; a group that meets another
// conflict starts the round again.
func (b *Batch) redo() error {
	for attempt := 0; ; attempt++ {
		b.t.end()
		b.t = b.s.newTxn(false)
		var err error
		for _, g := range b.groups {
			if err = outcome(b.t, g(b.t)); err != nil {
				break
			}
		}
		if err == nil {
			return nil
		}
		if !retryable(err) || attempt >= maxConflicts {
			b.Discard()
			return domainError(err)
		}
		b.s.conflict(attempt)
	}
}

// Discard drops the groups not yet committed.
func (b *Batch) Discard() {
	b.groups = nil
	if b.t != nil {
		b.t.end()
		b.t = nil
	}
}
