package postgres

import (
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"

	"github.com/pollrelay/pollrelay/store"
)

// NextSequence returns the counter's next value. The statement runs at
// once, after what is queued and in the same transaction, since its
// answer is needed now. Its row lock makes a concurrent transaction
// taking the same counter wait, and SERIALIZABLE then fails that one, to
// be redone on the value this one committed.
func (t *Txn) NextSequence(name string) (uint64, error) {
	if err := store.CheckKeyPart("counter name", name); err != nil {
		return 0, fmt.Errorf("next of counter: %w", err)
	}
	if err := t.writable(); err != nil {
		return 0, err
	}
	var last int64
	found := false
	err := t.query(fmt.Sprintf("next of counter %q", name), `INSERT INTO sequences (name, last) VALUES ($1, 1)
ON CONFLICT (name) DO UPDATE SET last = sequences.last + 1 RETURNING last`, []any{[]byte(name)}, func(rows pgx.Rows) error {
		for rows.Next() {
			if err := rows.Scan(&last); err != nil {
				return err
			}
			found = true
		}
		return rows.Err()
	})
	if err != nil {
		return 0, err
	}
	if !found || last <= 0 {
		return 0, fmt.Errorf("next of counter %q: the database returned no value", name)
	}
	t.size += int64(len(name) + 8)
	return uint64(last), nil
}

// Sequences calls fn for every counter with its last value, by name.
func (t *Txn) Sequences(fn func(name string, last uint64) error) error {
	type counter struct {
		name string
		last int64
	}
	var cs []counter
	err := t.query("read counters", "SELECT name, last FROM sequences ORDER BY name", nil, func(rows pgx.Rows) error {
		for rows.Next() {
			var name []byte
			var last int64
			if err := rows.Scan(&name, &last); err != nil {
				return err
			}
			cs = append(cs, counter{string(name), last})
		}
		return rows.Err()
	})
	if err != nil {
		return err
	}
	for _, c := range cs {
		if c.last < 0 {
			return store.Bad(fmt.Errorf("counter %q: a negative value, %d", c.name, c.last))
		}
		if err := fn(c.name, uint64(c.last)); err != nil {
			return err
		}
	}
	return nil
}

// PutSequence sets a counter's last value.
func (t *Txn) PutSequence(name string, last uint64) error {
	if err := store.CheckKeyPart("counter name", name); err != nil {
		return fmt.Errorf("write counter: %w", err)
	}
	if last > math.MaxInt64 {
		return fmt.Errorf("write counter %q: %w", name, store.Bad(fmt.Errorf("value %d is over the largest, %d", last, uint64(math.MaxInt64))))
	}
	return t.write(fmt.Sprintf("write counter %q", name), `INSERT INTO sequences (name, last) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET last = excluded.last`, len(name)+8, []byte(name), int64(last))
}
