package postgres

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

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

var errShortHead = errors.New("truncated item record")

func encodeHead(it *store.Item) []byte {
	n := 16 + len(it.Pending) + 2*len(it.Stalled)
	for _, h := range it.History {
		n += len(h.State) + 16
	}
	b := make([]byte, 0, n)
	b = append(b, headV1)
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

// decodeHead fills it from a head column, reusing its slices; the byte
// fields alias b.
func decodeHead(b []byte, it *store.Item) error {
	if len(b) == 0 || b[0] != headV1 {
		return fmt.Errorf("item record of unknown version")
	}
	d := headDecoder{b: b[1:]}
	it.Since = d.time()
	it.History = it.History[:0]
	if n := d.uvarint(); n > 0 && d.err == nil {
		if n > uint64(len(d.b)) {
			return errShortHead
		}
		it.History = slices.Grow(it.History, int(n))[:n]
		for i := range it.History {
			it.History[i] = store.HistoryEntry{State: d.bytes(), At: d.time()}
		}
	}
	it.Pending = d.bytes()
	it.PendingCount = int(d.uvarint())
	it.Stalled = it.Stalled[:0]
	if n := d.uvarint(); n > 0 && d.err == nil {
		if n > uint64(len(d.b)) {
			return errShortHead
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

// headDecoder reads fields in order, remembering the first error so the
// caller checks once at the end.
type headDecoder struct {
	b   []byte
	err error
}

func (d *headDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShortHead
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *headDecoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errShortHead
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *headDecoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil || n == 0 {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errShortHead
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *headDecoder) time() time.Time {
	sec, nsec := d.varint(), d.uvarint()
	if d.err != nil {
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}
