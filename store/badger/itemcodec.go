package badger

import (
	"encoding/json"

	"github.com/pollrelay/pollrelay/store"
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
	b = store.AppendBytes(b, it.State)
	b = store.AppendBytes(b, object)
	return store.AppendItemHead(b, it)
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
	d := store.Decoder{B: b}
	it.State = d.Bytes()
	it.Object = d.Bytes()
	return d.ItemHead(it)
}
