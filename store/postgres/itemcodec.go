package postgres

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/pollrelay/pollrelay/store"
)

// An item's head column holds what a diff reads of it besides its state:
//
//	0x01 since history(n, {state at}…) pending pendingCount stalled(n, i…)
//
// Byte strings are a uvarint length and the bytes, an empty one nil;
// times a varint of Unix seconds and a uvarint of nanoseconds, in UTC.
// Columns of their own (history as arrays, times as timestamptz) would
// cost a decode per field of every row of every poll, which reads them
// all, and timestamptz keeps microseconds where Go keeps nanoseconds.
const headV1 = 0x01

func encodeHead(it *store.Item) []byte {
	n := 16 + len(it.Pending) + 2*len(it.Stalled)
	for _, h := range it.History {
		n += len(h.State) + 16
	}
	b := make([]byte, 0, n)
	b = append(b, headV1)
	b = store.AppendTime(b, it.Since)
	b = binary.AppendUvarint(b, uint64(len(it.History)))
	for _, h := range it.History {
		b = store.AppendBytes(b, h.State)
		b = store.AppendTime(b, h.At)
	}
	b = store.AppendBytes(b, it.Pending)
	b = binary.AppendUvarint(b, uint64(max(it.PendingCount, 0)))
	b = binary.AppendUvarint(b, uint64(len(it.Stalled)))
	for _, s := range it.Stalled {
		b = binary.AppendUvarint(b, uint64(max(s, 0)))
	}
	return b
}

// decodeHead fills it from a head column, reusing its slices; the byte
// fields alias b.
func decodeHead(b []byte, it *store.Item) error {
	if len(b) == 0 || b[0] != headV1 {
		return fmt.Errorf("item record of unknown version")
	}
	d := store.Decoder{B: b[1:]}
	it.Since = d.Time()
	it.History = it.History[:0]
	if n := d.Uvarint(); n > 0 && d.Err == nil {
		if n > uint64(len(d.B)) {
			return store.ErrShortRecord
		}
		it.History = slices.Grow(it.History, int(n))[:n]
		for i := range it.History {
			it.History[i] = store.HistoryEntry{State: d.Bytes(), At: d.Time()}
		}
	}
	it.Pending = d.Bytes()
	it.PendingCount = int(d.Uvarint())
	it.Stalled = it.Stalled[:0]
	if n := d.Uvarint(); n > 0 && d.Err == nil {
		if n > uint64(len(d.B)) {
			return store.ErrShortRecord
		}
		it.Stalled = slices.Grow(it.Stalled, int(n))[:n]
		for i := range it.Stalled {
			it.Stalled[i] = int(d.Uvarint())
		}
	}
	if d.Err == nil && len(d.B) != 0 {
		return fmt.Errorf("%d bytes after the item record", len(d.B))
	}
	return d.Err
}
