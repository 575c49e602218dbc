package postgres

import (
	"fmt"

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
	return store.AppendItemHead(b, it)
}

// decodeHead fills it from a head column, reusing its slices; the byte
// fields alias b.
func decodeHead(b []byte, it *store.Item) error {
	if len(b) == 0 || b[0] != headV1 {
		return fmt.Errorf("item record of unknown version")
	}
	d := store.Decoder{B: b[1:]}
	return d.ItemHead(it)
}
