package badger

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/oklog/ulid/v2"
)

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
	subs := map[string]bool{}
	err := s.view(func(t *Txn) error {
		return t.scan([]byte("d/"), nil, false, func(k, v []byte) (bool, error) {
			var d Delivery
			if json.Unmarshal(v, &d) != nil {
				// Quarantined at the next start; until then its event is
				// kept, as if the delivery were open.
				if _, id, ok := bytes.Cut(k[len("d/"):], []byte{0}); ok {
					open[string(id)] = true
				}
				return true, nil
			}
			subs[d.Subscription] = true
			if d.Open() {
				open[d.EventID] = true
			}
			return true, nil
		})
	})
	if err != nil {
		return res, fmt.Errorf("prune: %w", err)
	}
	var old []string
	err = s.view(func(t *Txn) error {
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
	// Chunks of events per transaction: pruning never holds a long write,
	// and each event's removal is checked and done atomically.
	subList := slices.Sorted(maps.Keys(subs))
	for len(old) > 0 {
		n := min(len(old), 100)
		chunk := old[:n]
		old = old[n:]
		var part PruneResult
		err := s.update(func(t *Txn) error {
			part = PruneResult{}
			for _, id := range chunk {
				if err := t.pruneEvent(id, subList, &part); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("prune: %w", err)
		}
		res.Events += part.Events
		res.Deliveries += part.Deliveries
		res.Attempts += part.Attempts
	}
	return res, nil
}

// zeroReader makes the ULID of a cutoff the smallest id of its millisecond.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// pruneEvent removes one event with its finished deliveries and attempts,
// unless it is still in the outbox or a delivery was reopened (by a
// redelivery) since Prune looked.
func (t *Txn) pruneEvent(id string, subs []string, res *PruneResult) error {
	if v, err := t.get(outboxKey(id)); err != nil || v != nil {
		return err
	}
	// Deliveries are read again here: one may have been reopened (by a
	// redelivery or a replay) since Prune looked.
	var done []string
	for _, sub := range subs {
		d, err := t.Delivery(sub, id)
		if err != nil {
			return err
		}
		if d != nil && d.Open() {
			return nil
		}
		if d != nil {
			done = append(done, sub)
		}
	}
	var attempts [][]byte
	err := t.scan(attemptPrefix(id), nil, false, func(k, _ []byte) (bool, error) {
		attempts = append(attempts, bytes.Clone(k))
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, k := range attempts {
		if err := t.del(k); err != nil {
			return err
		}
	}
	for _, sub := range done {
		if err := t.del(deliveryKey(sub, id)); err != nil {
			return err
		}
	}
	res.Events++
	res.Deliveries += len(done)
	res.Attempts += len(attempts)
	return t.del(eventKey(id))
}
