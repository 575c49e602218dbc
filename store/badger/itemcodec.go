package badger

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// itemV1 marks an item record in the compact binary encoding. JSON records
// written by earlier versions start with '{' and are still read, so a
// database upgrades record by record as items are rewritten.
//
// The binary form exists because every poll of a list source reads all of
// its items: decoding 100,000 JSON records (time.Time parsing, reflection)
// took longer than the rest of the poll together.
const itemV1 = 0x01

// itemV2 marks a record in the v1 layout whose object is stored apart,
// under objectKey. A poll reads every item's record but only the objects of
// the few that change: with the objects inline, reading a million records
// mapped the whole database into memory.
const itemV2 = 0x02

var errShortItem = errors.New("truncated item record")

// encodeItem appends it's compact encoding to b:
//
//	0x01 state object since history(n, {state at}…) pending pendingCount stalled(n, i…)
//
// Byte strings are a uvarint length and the bytes; an empty one is nil.
// Times are a varint of Unix seconds and a uvarint of nanoseconds, in UTC.
func encodeItem(b []byte, it *Item) []byte {
	return encodeRecord(b, it, itemV1, it.Object)
}

// encodeHead appends it's record without its object (itemV2).
func encodeHead(b []byte, it *Item) []byte {
	return encodeRecord(b, it, itemV2, nil)
}

func encodeRecord(b []byte, it *Item, version byte, object []byte) []byte {
	b = append(b, version)
	b = appendBytes(b, it.State)
	b = appendBytes(b, object)
	b = appendTime(b, it.Since)
	b = binary.AppendUvarint(b, uint64(len(it.History)))
	for _, h := range it.History {
		b = appendBytes(b, h.State)
		b = appendTime(b, h.At)
	}
	b = appendBytes(b, it.Pending)
	b = binary.AppendUvarint(b, uint64(max(it.PendingCount, 0)))
	b = binary.AppendUvarint(b, uint64(len(it.Stalled)))
	for _, s := range it.Stalled {
		b = binary.AppendUvarint(b, uint64(max(s, 0)))
	}
	return b
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// decodeItem decodes a record in either encoding into it, whose byte
// fields then alias one copy of v. Without withObject the object is left
// out, and so is its copy.
func decodeItem(v []byte, it *Item, withObject bool) error {
	if !binaryRecord(v) {
		err := json.Unmarshal(v, it)
		if !withObject {
			it.Object = nil
		}
		return err
	}
	if withObject {
		// One allocation for every byte field of the record instead of
		// one per field; Badger's value is only valid during the read.
		v = append([]byte(nil), v...)
	}
	if err := parseItem(v[1:], it); err != nil {
		return err
	}
	if !withObject {
		it.Object = nil
		ownFields(it)
	}
	return nil
}

func binaryRecord(v []byte) bool { return len(v) > 0 && (v[0] == itemV1 || v[0] == itemV2) }

// separateObject reports whether a record's object is stored apart.
func separateObject(v []byte) bool { return len(v) > 0 && v[0] == itemV2 }

// decodeItemInto decodes a record into it, reusing its slices; the byte
// fields alias v and the object is left out.
func decodeItemInto(v []byte, it *Item) error {
	if !binaryRecord(v) {
		*it = Item{}
		err := json.Unmarshal(v, it)
		it.Object = nil
		return err
	}
	err := parseItem(v[1:], it)
	it.Object = nil
	return err
}

// ownFields copies the byte fields of it, except the object, into one new
// buffer, so they no longer alias Badger's value.
func ownFields(it *Item) {
	n := len(it.State) + len(it.Pending)
	for _, h := range it.History {
		n += len(h.State)
	}
	buf := make([]byte, 0, n)
	own := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		buf = append(buf, b...)
		return buf[len(buf)-len(b) : len(buf) : len(buf)]
	}
	it.State = own(it.State)
	it.Pending = own(it.Pending)
	for i := range it.History {
		it.History[i].State = own(it.History[i].State)
	}
}

// parseItem decodes the fields of a binary record after its version byte;
// the byte fields alias b.
func parseItem(b []byte, it *Item) error {
	d := itemDecoder{b: b}
	it.State = d.bytes()
	it.Object = d.bytes()
	it.Since = d.time()
	it.History = it.History[:0]
	if n := d.uvarint(); n > 0 && d.err == nil {
		if n > uint64(len(d.b)) {
			return errShortItem
		}
		it.History = slices.Grow(it.History[:0], int(n))[:n]
		for i := range it.History {
			it.History[i] = HistoryEntry{State: d.bytes(), At: d.time()}
		}
	}
	it.Pending = d.bytes()
	it.PendingCount = int(d.uvarint())
	it.Stalled = it.Stalled[:0]
	if n := d.uvarint(); n > 0 && d.err == nil {
		if n > uint64(len(d.b)) {
			return errShortItem
		}
		it.Stalled = slices.Grow(it.Stalled, int(n))[:n]
		for i := range it.Stalled {
			it.Stalled[i] = int(d.uvarint())
		}
	}
	if d.err == nil && len(d.b) != 0 {
		return fmt.Errorf("%d bytes after the item record", len(d.b))
	}
	return d.err
}

// itemDecoder reads fields in order, remembering the first error so the
// caller checks once at the end.
type itemDecoder struct {
	b   []byte
	err error
}

func (d *itemDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShortItem
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *itemDecoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errShortItem
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *itemDecoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil || n == 0 {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errShortItem
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *itemDecoder) time() time.Time {
	sec, nsec := d.varint(), d.uvarint()
	if d.err != nil {
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}
