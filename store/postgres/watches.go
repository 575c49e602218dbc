package postgres

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pollrelay/pollrelay/store"
)

// Watch returns a watch, or nil when the id is not watched.
func (t *Txn) Watch(source, id string) (*store.Watch, error) {
	v, err := t.body("read watch "+source+"/"+id, "SELECT body FROM watches WHERE source = $1 AND id = $2", []byte(source), []byte(id))
	if err != nil || v == nil {
		return nil, err
	}
	var w store.Watch
	if err := json.Unmarshal(v, &w); err != nil {
		return nil, store.Bad(fmt.Errorf("decode watch %s/%s: %w", source, id, err))
	}
	w.Source, w.ID = source, id
	return &w, nil
}

// PutWatch stores a watch under its Source and ID.
func (t *Txn) PutWatch(w *store.Watch) error {
	if err := errors.Join(store.CheckKeyPart("source name", w.Source), store.CheckKeyPart("id", w.ID)); err != nil {
		return fmt.Errorf("write watch %s: %w", w.Source, err)
	}
	v, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("encode watch %s/%s: %w", w.Source, w.ID, err)
	}
	return t.write("write watch "+w.Source+"/"+w.ID, `INSERT INTO watches (source, id, body) VALUES ($1, $2, $3)
ON CONFLICT (source, id) DO UPDATE SET body = excluded.body`, len(v), []byte(w.Source), []byte(w.ID), v)
}

// DeleteWatch removes a watch; removing an absent one is not an error.
func (t *Txn) DeleteWatch(source, id string) error {
	return t.write("delete watch "+source+"/"+id, "DELETE FROM watches WHERE source = $1 AND id = $2", 0, []byte(source), []byte(id))
}

// Watches calls fn for the watches of source (every source when empty) in
// (source, id) order, after the watch (afterSource, afterID) when
// afterSource is set, until fn returns false.
func (t *Txn) Watches(source, afterSource, afterID string, fn func(*store.Watch) bool) error {
	where := ""
	args := []any{rowPage}
	if source != "" {
		where = "source = $2"
		args = append(args, []byte(source))
	}
	cursor := afterSource != ""
	cs, ci := []byte(afterSource), []byte(afterID)
	var p page
	for {
		w, a := where, args
		if cursor {
			n := len(a)
			w = and(w, fmt.Sprintf("(source, id) > ($%d, $%d)", n+1, n+2))
			a = append(a[:n:n], cs, ci)
		}
		sql := "SELECT body, source, id FROM watches" + whereClause(w) + " ORDER BY source, id LIMIT $1"
		if err := t.query("read watches", sql, a, func(rows pgx.Rows) error { return p.fill(rows, false) }); err != nil {
			return err
		}
		n := p.len()
		for row := range n {
			var w store.Watch
			if err := json.Unmarshal(p.at(row, 0), &w); err != nil {
				return fmt.Errorf("decode watch %q/%q: %w", p.at(row, 1), p.at(row, 2), err)
			}
			w.Source, w.ID = string(p.at(row, 1)), string(p.at(row, 2))
			if !fn(&w) {
				return nil
			}
		}
		if n < rowPage {
			return nil
		}
		cursor, cs, ci = true, own(p.at(n-1, 1)), own(p.at(n-1, 2))
	}
}

func and(a, b string) string {
	if a == "" {
		return b
	}
	return a + " AND " + b
}

func whereClause(w string) string {
	if w == "" {
		return ""
	}
	return " WHERE " + w
}

// CountWatches returns how many ids source watches.
func (t *Txn) CountWatches(source string) (int, error) {
	return t.count("count watches of "+source, "SELECT count(*) FROM watches WHERE source = $1", []byte(source))
}

// WatchEnded reports whether the watch of (source, id) ended.
func (t *Txn) WatchEnded(source, id string) (bool, error) {
	v, err := t.body("read watch end "+source+"/"+id,
		"SELECT ''::bytea FROM watch_ended WHERE source = $1 AND id = $2", []byte(source), []byte(id))
	return v != nil, err
}

// MarkWatchEnded records that the watch of (source, id) ended at at.
func (t *Txn) MarkWatchEnded(source, id string, at time.Time) error {
	if err := errors.Join(store.CheckKeyPart("source name", source), store.CheckKeyPart("id", id)); err != nil {
		return fmt.Errorf("mark watch end %s: %w", source, err)
	}
	return t.write("mark watch end "+source+"/"+id, `INSERT INTO watch_ended (source, id, ended_at) VALUES ($1, $2, $3)
ON CONFLICT (source, id) DO UPDATE SET ended_at = excluded.ended_at`, len(id), []byte(source), []byte(id), at)
}

// ClearWatchEnded forgets that a watch ended, so it may be added again.
func (t *Txn) ClearWatchEnded(source, id string) error {
	return t.write("clear watch end "+source+"/"+id, "DELETE FROM watch_ended WHERE source = $1 AND id = $2", 0, []byte(source), []byte(id))
}
