package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"
)

// PruneResult counts what Prune removed.
type PruneResult struct {
	Events     int
	Deliveries int
	Attempts   int
}

// Prune removes events created before cutoff together with their finished
// deliveries and attempts. An event that still has an open delivery, or is
// still in the outbox, is kept whatever its age: retention must never drop
// something not yet delivered. It works in batches so polls and deliveries
// are never blocked for long.
func (s *Store) Prune(cutoff time.Time) (PruneResult, error) {
	var res PruneResult
	// Event ids are ULIDs: every key below this one is older than cutoff.
	end := eventKey("evt_" + ulid.MustNew(ulid.Timestamp(cutoff), zeroReader{}).String())
	open := map[string]bool{}
	closed := map[string][]string{} // event id → subscriptions with finished deliveries
	err := s.View(func(t *Txn) error {
		return t.scan([]byte("d/"), nil, false, func(k, v []byte) (bool, error) {
			var d Delivery
			if err := json.Unmarshal(v, &d); err != nil {
				return false, fmt.Errorf("decode delivery %q: %w", k, err)
			}
			if d.Open() {
				open[d.EventID] = true
			} else {
				closed[d.EventID] = append(closed[d.EventID], d.Subscription)
			}
			return true, nil
		})
	})
	if err != nil {
		return res, fmt.Errorf("prune: %w", err)
	}
	var old []string
	err = s.View(func(t *Txn) error {
		return t.scan([]byte("e/"), nil, false, func(k, _ []byte) (bool, error) {
			if bytes.Compare(k, end) >= 0 {
				return false, nil
			}
			id := string(k[2:])
			if !open[id] {
				old = append(old, id)
			}
			return true, nil
		})
	})
	if err != nil {
		return res, fmt.Errorf("prune: %w", err)
	}
	b := s.NewBatch()
	defer b.Discard()
	for _, id := range old {
		var attempts [][]byte
		inOutbox := false
		err := s.View(func(t *Txn) error {
			v, err := t.txn.Get(outboxKey(id))
			if err == nil && v != nil {
				inOutbox = true
				return nil
			}
			return t.scan(attemptPrefix(id), nil, false, func(k, _ []byte) (bool, error) {
				attempts = append(attempts, bytes.Clone(k))
				return true, nil
			})
		})
		if err != nil {
			return res, fmt.Errorf("prune %s: %w", id, err)
		}
		if inOutbox {
			continue
		}
		err = b.Group(func(t *Txn) error {
			for _, k := range attempts {
				if err := t.del(k); err != nil {
					return err
				}
			}
			for _, sub := range closed[id] {
				if err := t.del(deliveryKey(sub, id)); err != nil {
					return err
				}
			}
			return t.del(eventKey(id))
		})
		if err != nil {
			return res, fmt.Errorf("prune %s: %w", id, err)
		}
		res.Events++
		res.Deliveries += len(closed[id])
		res.Attempts += len(attempts)
	}
	if err := b.Commit(); err != nil {
		return res, fmt.Errorf("prune: %w", err)
	}
	return res, nil
}

// zeroReader makes the ULID of a cutoff the smallest id of its millisecond.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
