package postgres

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pollrelay/pollrelay/store"
)

// Sources calls fn for every source name the store holds anything of, in
// bytewise order.
func (t *Txn) Sources(fn func(name string) error) error {
	var names []string
	err := t.query("list sources", `SELECT source FROM source_state
UNION SELECT DISTINCT source FROM items
UNION SELECT DISTINCT source FROM watches
UNION SELECT DISTINCT source FROM watch_ended
UNION SELECT DISTINCT source FROM histograms
ORDER BY 1`, nil, func(rows pgx.Rows) error {
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				return err
			}
			names = append(names, string(b))
		}
		return rows.Err()
	})
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := fn(n); err != nil {
			return err
		}
	}
	return nil
}

// EndedWatches calls fn for every ended mark of source, in id order.
func (t *Txn) EndedWatches(source string, fn func(id string, at time.Time) error) error {
	type mark struct {
		id string
		at time.Time
	}
	var marks []mark
	err := t.query("list watch ends of "+source, "SELECT id, ended_at FROM watch_ended WHERE source = $1 ORDER BY id",
		[]any{[]byte(source)}, func(rows pgx.Rows) error {
			for rows.Next() {
				var id []byte
				var at time.Time
				if err := rows.Scan(&id, &at); err != nil {
					return err
				}
				marks = append(marks, mark{string(id), at})
			}
			return rows.Err()
		})
	if err != nil {
		return err
	}
	for _, m := range marks {
		if err := fn(m.id, m.at); err != nil {
			return err
		}
	}
	return nil
}

// PutQuarantined stores q as it is, under q.ID.
func (t *Txn) PutQuarantined(q *store.Quarantined) error {
	v, err := json.Marshal(q)
	if err != nil {
		return fmt.Errorf("encode quarantine %s: %w", q.ID, err)
	}
	if len(v) > store.MaxValue {
		return fmt.Errorf("write quarantine %s: %w", q.ID, store.Bad(fmt.Errorf("record of %d bytes is over the %d-byte limit", len(v), store.MaxValue)))
	}
	return t.write("write quarantine "+q.ID, `INSERT INTO quarantine (id, kind, body) VALUES ($1, $2, $3)
ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, body = excluded.body`, len(v), []byte(q.ID), q.Kind, v)
}
