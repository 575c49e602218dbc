package badger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

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
