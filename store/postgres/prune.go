package postgres

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/oklog/ulid/v2"

	"github.com/pollrelay/pollrelay/store"
)

// pruneSQL removes up to $2 events with ids below $1 and above $3 that
// are out of the outbox and have no open delivery, with their deliveries
// and attempts, and says what it removed and the last id it looked at.
const pruneSQL = `WITH old AS (
	SELECT e.id FROM events e
	WHERE e.id < $1 AND e.id > $3
		AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.event_id = e.id)
		AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.state NOT IN ('delivered', 'dead'))
	ORDER BY e.id LIMIT $2
),
da AS (DELETE FROM attempts a USING old WHERE a.event_id = old.id RETURNING 1),
dd AS (DELETE FROM deliveries d USING old WHERE d.event_id = old.id RETURNING 1),
de AS (DELETE FROM events e USING old WHERE e.id = old.id RETURNING 1)
SELECT (SELECT count(*) FROM de), (SELECT count(*) FROM dd), (SELECT count(*) FROM da), (SELECT id FROM old ORDER BY id DESC LIMIT 1)`

// pruneChunk is how many events one transaction removes: pruning never
// holds a long write.
const pruneChunk = 500

// Prune removes events created before cutoff with their finished
// deliveries and attempts; an event still in the outbox or with an open
// delivery is kept whatever its age. Event ids are "evt_" and a ULID, so
// every id below the cutoff's is older, as in Badger.
func (s *Store) Prune(cutoff time.Time) (store.PruneResult, error) {
	var res store.PruneResult
	end := []byte("evt_" + ulid.MustNew(ulid.Timestamp(cutoff), zeroReader{}).String())
	after := []byte{}
	for {
		var part store.PruneResult
		var last []byte
		err := s.update(func(t *Txn) error {
			return t.query("prune", pruneSQL, []any{end, pruneChunk, after}, func(rows pgx.Rows) error {
				for rows.Next() {
					var ev, dv, at int64
					if err := rows.Scan(&ev, &dv, &at, &last); err != nil {
						return err
					}
					part = store.PruneResult{Events: int(ev), Deliveries: int(dv), Attempts: int(at)}
				}
				return nil
			})
		})
		if err != nil {
			return res, fmt.Errorf("prune: %w", err)
		}
		res.Events += part.Events
		res.Deliveries += part.Deliveries
		res.Attempts += part.Attempts
		if part.Events < pruneChunk || last == nil {
			return res, nil
		}
		after = last
	}
}

// zeroReader makes the ULID of a cutoff the smallest id of its millisecond.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// LoadDeliveries calls fn for every delivery and repairs what it finds
// inconsistent: a schedule column that does not match its delivery's
// state and due time is set again (only a write from outside pollrelay,
// or a bug, leaves one so), and a record that cannot be decoded is
// quarantined rather than failing the start. It returns how many it
// repaired.
func (s *Store) LoadDeliveries(fn func(*store.Delivery) error) (int, error) {
	type fix struct {
		sub, id []byte
		due     *int64
		reason  string
	}
	var fixes []fix
	err := s.view(func(t *Txn) error {
		return t.scanDeliveries(deliveryCols+", due", func(p *page, row int) error {
			d, err := readDelivery(p, row)
			if err != nil {
				fixes = append(fixes, fix{sub: own(p.at(row, 1)), id: own(p.at(row, 2)), reason: "decode delivery: " + err.Error()})
				return nil
			}
			var want *int64
			if d.Queued() {
				n := int64(store.DueNanos(d.NextAt))
				want = &n
			}
			if have := p.at(row, 4); !sameDue(have, want) {
				fixes = append(fixes, fix{sub: own(p.at(row, 1)), id: own(p.at(row, 2)), due: want})
			}
			return fn(d)
		})
	})
	if err != nil {
		return 0, fmt.Errorf("load deliveries: %w", err)
	}
	now := time.Now()
	b := s.newBatch()
	poisoned := 0
	for _, f := range fixes {
		err := b.group(func(t *Txn) error {
			if f.reason != "" {
				return t.QuarantineDelivery(string(f.sub), string(f.id), time.Time{}, f.reason, now)
			}
			return t.write("reschedule "+string(f.sub)+"/"+string(f.id),
				"UPDATE deliveries SET due = $3 WHERE sub = $1 AND event_id = $2", 0, f.sub, f.id, f.due)
		})
		if err != nil {
			return 0, fmt.Errorf("repair schedule: %w", err)
		}
		if f.reason != "" {
			poisoned++
		}
	}
	if err := b.Commit(); err != nil {
		return 0, fmt.Errorf("repair schedule: %w", err)
	}
	if poisoned > 0 {
		s.log.Warn("deliveries that cannot be decoded were quarantined", "count", poisoned)
	}
	return len(fixes), nil
}

// sameDue compares a due column (bigint, binary) with what it should be.
func sameDue(have []byte, want *int64) bool {
	if have == nil || want == nil {
		return have == nil && want == nil
	}
	return len(have) == 8 && int64(binary.BigEndian.Uint64(have)) == *want
}
