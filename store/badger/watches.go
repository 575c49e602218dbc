package badger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Keys: w/<source>\x00<id> holds a Watch; wx/<source>\x00<id> marks a watch
// that ended (terminal event, expiry or DELETE), so neither `ids:` at the
// next start nor watch_from adds it again and fires its terminal event a
// second time. An explicit PUT clears the mark.
func watchPrefix(source string) []byte { return []byte("w/" + source + "\x00") }
func watchKey(source, id string) []byte {
	return append(watchPrefix(source), id...)
}
func endedKey(source, id string) []byte { return []byte("wx/" + source + "\x00" + id) }

var allWatchesPrefix = []byte("w/")

// Watch returns a watch, or nil when the id is not watched.
func (t *Txn) Watch(source, id string) (*Watch, error) {
	v, err := t.get(watchKey(source, id))
	if err != nil || v == nil {
		return nil, wrap(err, "read watch %s/%s", source, id)
	}
	w, err := decodeWatch(source, id, v)
	if err != nil {
		return nil, bad(fmt.Errorf("decode watch %s/%s: %w", source, id, err))
	}
	return w, nil
}

// decodeWatch decodes a watch record stored under (source, id). The
// record's JSON holds the id as text, with invalid UTF-8 replaced, so the
// key's bytes are the id: the watch loop polls, updates and deletes the
// watch by the id it is given back.
func decodeWatch(source, id string, v []byte) (*Watch, error) {
	var w Watch
	if err := json.Unmarshal(v, &w); err != nil {
		return nil, err
	}
	w.Source, w.ID = source, id
	return &w, nil
}

// PutWatch stores a watch under its Source and ID.
func (t *Txn) PutWatch(w *Watch) error {
	if err := errors.Join(CheckKeyPart("source name", w.Source), CheckKeyPart("id", w.ID)); err != nil {
		return fmt.Errorf("write watch %s: %w", w.Source, err)
	}
	v, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("encode watch %s/%s: %w", w.Source, w.ID, err)
	}
	return wrap(t.set(watchKey(w.Source, w.ID), v), "write watch %s/%s", w.Source, w.ID)
}

// DeleteWatch removes a watch; removing an absent one is not an error.
func (t *Txn) DeleteWatch(source, id string) error {
	return wrap(t.del(watchKey(source, id)), "delete watch %s/%s", source, id)
}

// Watches calls fn for the watches of source (every source when source is
// empty) in key order, starting after the watch (afterSource, afterID)
// when afterSource is set, until fn returns false.
func (t *Txn) Watches(source, afterSource, afterID string, fn func(*Watch) bool) error {
	prefix := allWatchesPrefix
	if source != "" {
		prefix = watchPrefix(source)
	}
	var start []byte
	if afterSource != "" {
		// The smallest key after the cursor: the cursor's key plus a zero byte.
		start = append(watchKey(afterSource, afterID), 0)
	}
	return t.scan(prefix, start, false, func(k, v []byte) (bool, error) {
		source, id, ok := bytes.Cut(k[len(allWatchesPrefix):], []byte{0})
		if !ok {
			return true, nil // not a watch key
		}
		w, err := decodeWatch(string(source), string(id), v)
		if err != nil {
			return false, fmt.Errorf("decode watch %q: %w", k, err)
		}
		return fn(w), nil
	})
}

// CountWatches returns how many ids source watches.
func (t *Txn) CountWatches(source string) (int, error) {
	n := 0
	err := t.scan(watchPrefix(source), nil, false, func(_, _ []byte) (bool, error) {
		n++
		return true, nil
	})
	return n, wrap(err, "count watches of %s", source)
}

// WatchEnded reports whether a watch of (source, id) ended and must not be
// added again automatically.
func (t *Txn) WatchEnded(source, id string) (bool, error) {
	v, err := t.get(endedKey(source, id))
	if err != nil {
		return false, wrap(err, "read watch end %s/%s", source, id)
	}
	return v != nil, nil
}

// MarkWatchEnded records that the watch of (source, id) ended at at.
func (t *Txn) MarkWatchEnded(source, id string, at time.Time) error {
	if err := errors.Join(CheckKeyPart("source name", source), CheckKeyPart("id", id)); err != nil {
		return fmt.Errorf("mark watch end %s: %w", source, err)
	}
	v, _ := at.UTC().MarshalText()
	return wrap(t.set(endedKey(source, id), v), "mark watch end %s/%s", source, id)
}

// ClearWatchEnded forgets that a watch ended, so it may be added again.
func (t *Txn) ClearWatchEnded(source, id string) error {
	return wrap(t.del(endedKey(source, id)), "clear watch end %s/%s", source, id)
}
