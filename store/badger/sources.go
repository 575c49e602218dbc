package badger

import (
	"bytes"
	"fmt"
	"slices"
	"time"
)

// sourcePrefixes are the kinds of record keyed by source name first.
var sourcePrefixes = []string{"s/", "i/", "w/", "wx/", "h/"}

// Sources calls fn for every source name the store holds anything of, in
// order. Each kind of record is searched by seeking past a name once it is
// found, so a source with a million items costs one seek, not a million
// steps.
func (t *Txn) Sources(fn func(name string) error) error {
	names := map[string]bool{}
	for _, p := range sourcePrefixes {
		if err := t.sourceNames([]byte(p), names); err != nil {
			return fmt.Errorf("list sources: %w", err)
		}
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	slices.Sort(sorted)
	for _, n := range sorted {
		if err := fn(n); err != nil {
			return err
		}
	}
	return nil
}

// sourceNames adds the names found under prefix. Names are [a-z0-9_-]+,
// ended by a NUL, except in s/ keys, where the name is the whole rest.
func (t *Txn) sourceNames(prefix []byte, names map[string]bool) error {
	start := prefix
	for {
		var name []byte
		err := t.scan(prefix, start, false, func(k, _ []byte) (bool, error) {
			rest := k[len(prefix):]
			if i := bytes.IndexByte(rest, 0); i >= 0 {
				rest = rest[:i]
			}
			name = append([]byte(nil), rest...)
			return false, nil
		})
		if err != nil || name == nil {
			return err
		}
		names[string(name)] = true
		start = append(append(append([]byte(nil), prefix...), name...), 1)
	}
}

// EndedWatches calls fn for every ended-watch mark of source, in id order.
func (t *Txn) EndedWatches(source string, fn func(id string, at time.Time) error) error {
	p := []byte("wx/" + source + "\x00")
	err := t.scan(p, nil, false, func(k, v []byte) (bool, error) {
		// The time is for people; a mark without a readable one still
		// ends the watch.
		var at time.Time
		_ = at.UnmarshalText(v)
		return true, fn(string(k[len(p):]), at)
	})
	return wrap(err, "list watch ends of %s", source)
}
