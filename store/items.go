package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// HistoryLen is how many past states an item keeps for the API.
const HistoryLen = 10

// Item is what pollrelay remembers of one upstream item.
type Item struct {
	State  json.RawMessage `json:"s"`
	Object json.RawMessage `json:"o,omitempty"`
	// Since is when the item entered State (its first poll in it).
	Since time.Time `json:"t"`
	// History holds past states, oldest first, ending with the current one.
	History []HistoryEntry `json:"h,omitempty"`
	// Pending is a state seen but not yet settled (settle > 1), with the
	// number of consecutive polls it was seen on.
	Pending      json.RawMessage `json:"p,omitempty"`
	PendingCount int             `json:"pc,omitempty"`
	// Stalled lists the stalled rules (by index) that fired during this stay.
	Stalled []int `json:"st,omitempty"`
}

// HistoryEntry is one past state.
type HistoryEntry struct {
	State json.RawMessage `json:"s"`
	At    time.Time       `json:"t"`
}

// SourceState is what a source remembers across polls and restarts.
type SourceState struct {
	// Baselined is set by the first successful poll, which records what
	// exists without emitting events.
	Baselined bool `json:"baselined"`
	// ETag and LastModified are the validators of the last response whose
	// result is fully stored (no pending settle, no held deletes), sent
	// back as If-None-Match / If-Modified-Since. ValidatorsFor names the
	// source configuration they belong to, so a reload that changes what is
	// fetched or extracted is never answered "not modified".
	ETag          string `json:"etag,omitempty"`
	LastModified  string `json:"last_modified,omitempty"`
	ValidatorsFor string `json:"validators_for,omitempty"`
	// SuspectPolls counts consecutive listings held back by the mass-delete
	// guard.
	SuspectPolls int `json:"suspect_polls,omitempty"`
	// ListingDigest identifies the last complete listing whose outcome is
	// fully stored, and ListingTracked is how many items it left tracked:
	// the same listing again is known to change nothing (see diff).
	ListingDigest  string `json:"listing_digest,omitempty"`
	ListingTracked int    `json:"listing_tracked,omitempty"`
}

func itemPrefix(source string) []byte { return []byte("i/" + source + "\x00") }
func itemKey(source, id string) []byte {
	return append(itemPrefix(source), id...)
}

// objectKey is where an item's object is stored, apart from the rest of
// its record (see itemV2).
func objectKey(source, id string) []byte { return []byte("b/" + source + "\x00" + id) }

// Item returns the stored item, or nil.
func (t *Txn) Item(source, id string) (*Item, error) {
	v, err := t.get(itemKey(source, id))
	if err != nil || v == nil {
		return nil, wrap(err, "read item %s/%s", source, id)
	}
	var it Item
	if err := decodeItem(v, &it, true); err != nil {
		return nil, bad(fmt.Errorf("decode item %s/%s: %w", source, id, err))
	}
	if separateObject(v) {
		if it.Object, err = t.get(objectKey(source, id)); err != nil {
			return nil, fmt.Errorf("read item %s/%s: %w", source, id, err)
		}
	}
	return &it, nil
}

// CheckItem reports, as a bad record, an item that could not be written
// with its events (an id over MaxKeyPart; an object and states too large
// for one value, as an event carries the object beside the previous and
// current state), so a poll can skip it before writing anything of it.
func CheckItem(source, id string, it *Item) error {
	errs := []error{CheckKeyPart("source name", source), CheckKeyPart("id", id)}
	head := len(it.State) + len(it.Pending)
	for _, h := range it.History {
		head += len(h.State)
	}
	if n := len(it.Object) + 2*head + 4096; n > maxValue {
		errs = append(errs, bad(fmt.Errorf("object and states are %d bytes, over the %d-byte limit", n, maxValue)))
	}
	return errors.Join(errs...)
}

// PutItem stores an item: its record and, apart, its object.
func (t *Txn) PutItem(source, id string, it *Item) error {
	if err := errors.Join(CheckKeyPart("source name", source), CheckKeyPart("id", id)); err != nil {
		return fmt.Errorf("write item %s: %w", source, err)
	}
	if err := t.set(itemKey(source, id), encodeHead(nil, it)); err != nil {
		return fmt.Errorf("write item %s/%s: %w", source, id, err)
	}
	var err error
	if it.Object != nil {
		err = t.set(objectKey(source, id), it.Object)
	} else {
		err = t.del(objectKey(source, id))
	}
	return wrap(err, "write item %s/%s", source, id)
}

// DeleteItem forgets an item.
func (t *Txn) DeleteItem(source, id string) error {
	if err := t.del(itemKey(source, id)); err != nil {
		return fmt.Errorf("delete item %s/%s: %w", source, id, err)
	}
	return wrap(t.del(objectKey(source, id)), "delete item %s/%s", source, id)
}

// Items calls fn for every item of source in id order, with its object.
func (t *Txn) Items(source string, fn func(id string, it *Item) error) error {
	p := itemPrefix(source)
	return t.scan(p, nil, false, func(k, v []byte) (bool, error) {
		id := string(k[len(p):])
		it := new(Item)
		if err := decodeItem(v, it, true); err != nil {
			return false, fmt.Errorf("decode item %s/%s: %w", source, id, err)
		}
		if separateObject(v) {
			var err error
			if it.Object, err = t.get(objectKey(source, id)); err != nil {
				return false, fmt.Errorf("read item %s/%s: %w", source, id, err)
			}
		}
		return true, fn(id, it)
	})
}

// ItemHeads is Items without each item's Object: a diff reads every item
// but needs the object only of the few that change (see Item), and the
// object is most of a record.
func (t *Txn) ItemHeads(source string, fn func(id string, it *Item) error) error {
	p := itemPrefix(source)
	// Items come from a slab: one allocation per 256 of them instead of
	// one each.
	var slab []Item
	return t.scan(p, nil, false, func(k, v []byte) (bool, error) {
		if len(slab) == 0 {
			slab = make([]Item, 256)
		}
		it := &slab[0]
		slab = slab[1:]
		if err := decodeItem(v, it, false); err != nil {
			return false, fmt.Errorf("decode item %s: %w", bytes.TrimPrefix(k, p), err)
		}
		return true, fn(string(k[len(p):]), it)
	})
}

// ScanItemHeads calls fn for every item of source in id order, without
// its object and without copying: id and every field of it alias Badger's
// buffers and it is reused, so both are valid only during fn. It is for a
// reader that keeps a compact digest of each item (diff's Index), where a
// copy of each of a million records would be most of the memory it uses.
//
// A record that cannot be decoded goes to broken (its error marked
// ErrBadRecord) instead of ending the scan, when broken is set.
func (t *Txn) ScanItemHeads(source string, fn func(id []byte, it *Item) error, broken func(id []byte, err error) error) error {
	p := itemPrefix(source)
	var it Item
	return t.scan(p, nil, false, func(k, v []byte) (bool, error) {
		if err := decodeItemInto(v, &it); err != nil {
			err = bad(fmt.Errorf("decode item %s: %w", bytes.TrimPrefix(k, p), err))
			if broken == nil {
				return false, err
			}
			return true, broken(k[len(p):], err)
		}
		return true, fn(k[len(p):], &it)
	})
}

// CountItems returns how many items source tracks.
func (t *Txn) CountItems(source string) (int, error) {
	n := 0
	err := t.scan(itemPrefix(source), nil, false, func(_, _ []byte) (bool, error) {
		n++
		return true, nil
	})
	return n, err
}

func sourceKey(name string) []byte { return []byte("s/" + name) }

// SourceState returns a source's state (zero if never polled).
func (t *Txn) SourceState(name string) (SourceState, error) {
	var st SourceState
	v, err := t.get(sourceKey(name))
	if err != nil || v == nil {
		return st, wrap(err, "read source %s", name)
	}
	if err := json.Unmarshal(v, &st); err != nil {
		return st, fmt.Errorf("decode source %s: %w", name, err)
	}
	return st, nil
}

// PutSourceState stores a source's state.
func (t *Txn) PutSourceState(name string, st SourceState) error {
	v, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode source %s: %w", name, err)
	}
	return wrap(t.set(sourceKey(name), v), "write source %s", name)
}

func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
