package postgres

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pollrelay/pollrelay/store"
)

// Item returns the stored item with its object, or nil.
func (t *Txn) Item(source, id string) (*store.Item, error) {
	var state, head, object []byte
	found := false
	err := t.query("read item "+source+"/"+id,
		"SELECT state, head, object FROM items WHERE source = $1 AND id = $2",
		[]any{[]byte(source), []byte(id)}, func(rows pgx.Rows) error {
			for rows.Next() {
				found = true
				if err := rows.Scan(&state, &head, &object); err != nil {
					return err
				}
			}
			return nil
		})
	if err != nil || !found {
		return nil, err
	}
	it := &store.Item{State: nilIfEmpty(state), Object: nilIfEmpty(object)}
	if err := decodeHead(head, it); err != nil {
		return nil, store.Bad(fmt.Errorf("decode item %s/%s: %w", source, id, err))
	}
	return it, nil
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// PutItem stores an item: its state, head and object.
func (t *Txn) PutItem(source, id string, it *store.Item) error {
	if err := errors.Join(store.CheckKeyPart("source name", source), store.CheckKeyPart("id", id)); err != nil {
		return fmt.Errorf("write item %s: %w", source, err)
	}
	if err := t.writable(); err != nil {
		return err
	}
	head := encodeHead(it)
	if n := len(it.State) + len(head); n > store.MaxValue {
		return fmt.Errorf("write item %s/%s: %w", source, id, store.Bad(fmt.Errorf("record of %d bytes is over the %d-byte limit", n, store.MaxValue)))
	}
	if n := len(it.Object); n > store.MaxValue {
		return fmt.Errorf("write item %s/%s: %w", source, id, store.Bad(fmt.Errorf("object of %d bytes is over the %d-byte limit", n, store.MaxValue)))
	}
	// The state is copied (the caller may reuse its buffer); the object,
	// as in Badger until the commit, is not.
	buf := make([]byte, 0, len(it.State)+len(head))
	buf = append(append(buf, it.State...), head...)
	var object []byte
	if it.Object != nil {
		object = it.Object
	}
	return t.items.add(t, itemOp{source: source, id: id,
		state: buf[:len(it.State):len(it.State)], head: buf[len(it.State):], object: object})
}

// DeleteItem forgets an item.
func (t *Txn) DeleteItem(source, id string) error {
	if err := t.writable(); err != nil {
		return err
	}
	if len(source) > store.MaxKeyPart || len(id) > store.MaxKeyPart {
		return nil // never stored
	}
	return t.items.add(t, itemOp{source: source, id: id, del: true})
}

// scanItems reads the items of source in id order, a page at a time,
// calling fn for each row of each page once the page is read, so fn may
// use the transaction. The columns are id, state, head, then object when
// withObject. Each page has a buffer of its own, which what fn decodes
// from it may keep.
func (t *Txn) scanItems(source string, withObject bool, fn func(p *page, row int) error) error {
	cols, size := "id, state, head", headPage
	if withObject {
		cols, size = "id, state, head, object", itemPage
	}
	first := "SELECT " + cols + " FROM items WHERE source = $1 ORDER BY id LIMIT $2"
	next := "SELECT " + cols + " FROM items WHERE source = $1 AND id > $3 ORDER BY id LIMIT $2"
	var p page
	var after []byte
	for {
		sql, args := first, []any{[]byte(source), size}
		if after != nil {
			sql, args = next, append(args, after)
		}
		err := t.query("read items of "+source, sql, args, func(rows pgx.Rows) error { return p.fill(rows, true) })
		if err != nil {
			return err
		}
		n := p.len()
		for row := range n {
			if err := fn(&p, row); err != nil {
				return err
			}
		}
		if n < size {
			return nil
		}
		after = own(p.at(n-1, 0))
	}
}

// Items calls fn for every item of source in bytewise id order, with its
// object. The items' fields alias their page's buffer, one allocation per
// page.
func (t *Txn) Items(source string, fn func(id string, it *store.Item) error) error {
	return t.scanItems(source, true, func(p *page, row int) error {
		id := string(p.at(row, 0))
		it := &store.Item{State: p.at(row, 1), Object: p.at(row, 3)}
		if err := decodeHead(p.at(row, 2), it); err != nil {
			return fmt.Errorf("decode item %s/%s: %w", source, id, err)
		}
		return fn(id, it)
	})
}

// ItemHeads is Items without the objects, which are most of a record and
// which a diff needs only of the items that change.
func (t *Txn) ItemHeads(source string, fn func(id string, it *store.Item) error) error {
	var slab []store.Item
	return t.scanItems(source, false, func(p *page, row int) error {
		if len(slab) == 0 {
			slab = make([]store.Item, 256)
		}
		it := &slab[0]
		slab = slab[1:]
		id := string(p.at(row, 0))
		it.State = p.at(row, 1)
		if err := decodeHead(p.at(row, 2), it); err != nil {
			return fmt.Errorf("decode item %s/%s: %w", source, id, err)
		}
		return fn(id, it)
	})
}

// ScanItemHeads calls fn for every item of source in id order, without
// its object and without copying: id and it alias the connection's
// buffer, and it is reused, so both are valid only during fn. The rows
// come in one query, fn handling each as it arrives while the server
// sends the next (pages, as the other scans read, took twice as long:
// each waited for the one before to be handled); so fn must not read
// through the transaction, which the diff's index, its reader, never
// does. A record that cannot be decoded goes to broken (marked
// ErrBadRecord) instead of ending the scan, when broken is set.
func (t *Txn) ScanItemHeads(source string, fn func(id []byte, it *store.Item) error, broken func(id []byte, err error) error) error {
	var it store.Item
	return t.stream("read items of "+source, "SELECT id, state, head FROM items WHERE source = $1 ORDER BY id",
		[]any{[]byte(source)}, func(vals [][]byte) error {
			id := vals[0]
			it.State = nilIfEmpty(vals[1])
			if err := decodeHead(vals[2], &it); err != nil {
				err = store.Bad(fmt.Errorf("decode item %s/%s: %w", source, id, err))
				if broken == nil {
					return err
				}
				return broken(id, err)
			}
			return fn(id, &it)
		})
}

// CountItems returns how many items source tracks.
func (t *Txn) CountItems(source string) (int, error) {
	return t.count("count items of "+source, "SELECT count(*) FROM items WHERE source = $1", []byte(source))
}

func (t *Txn) count(what, sql string, args ...any) (int, error) {
	var n int64
	err := t.query(what, sql, args, func(rows pgx.Rows) error {
		for rows.Next() {
			if err := rows.Scan(&n); err != nil {
				return err
			}
		}
		return nil
	})
	return int(n), err
}

// SourceState returns a source's state (zero if never polled).
func (t *Txn) SourceState(name string) (store.SourceState, error) {
	var st store.SourceState
	v, err := t.body("read source "+name, "SELECT body FROM source_state WHERE source = $1", []byte(name))
	if err != nil || v == nil {
		return st, err
	}
	if err := json.Unmarshal(v, &st); err != nil {
		return st, fmt.Errorf("decode source %s: %w", name, err)
	}
	return st, nil
}

// PutSourceState stores a source's state.
func (t *Txn) PutSourceState(name string, st store.SourceState) error {
	if err := store.CheckKeyPart("source name", name); err != nil {
		return fmt.Errorf("write source %s: %w", name, err)
	}
	v, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode source %s: %w", name, err)
	}
	return t.write("write source "+name, `INSERT INTO source_state (source, body) VALUES ($1, $2)
ON CONFLICT (source) DO UPDATE SET body = excluded.body`, len(v), []byte(name), v)
}

// body reads the one bytea column of at most one row: nil when there is
// none.
func (t *Txn) body(what, sql string, args ...any) ([]byte, error) {
	var v []byte
	err := t.query(what, sql, args, func(rows pgx.Rows) error {
		for rows.Next() {
			if err := rows.Scan(&v); err != nil {
				return err
			}
			if v == nil {
				v = []byte{}
			}
		}
		return nil
	})
	return v, err
}
