package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"
)

// The compact binary fields both backends encode an item's head with:
// a byte string is a uvarint length and the bytes (an empty one reads as
// nil), a time a varint of Unix seconds and a uvarint of nanoseconds, in
// UTC. A diff reads every item of a listing on every poll, and decoding
// JSON (time parsing, reflection) took longer than the rest of the poll.

// ErrShortRecord is a record that ends before its fields do.
var ErrShortRecord = errors.New("truncated item record")

// AppendBytes appends v as a length and its bytes.
func AppendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// AppendTime appends t as seconds and nanoseconds.
func AppendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// Decoder reads fields in order, remembering the first error so the
// caller checks once at the end.
type Decoder struct {
	B   []byte // what is left to read
	Err error
}

// Uvarint reads an unsigned varint.
func (d *Decoder) Uvarint() uint64 {
	if d.Err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.B)
	if n <= 0 {
		d.Err = ErrShortRecord
		return 0
	}
	d.B = d.B[n:]
	return v
}

// Varint reads a signed varint.
func (d *Decoder) Varint() int64 {
	if d.Err != nil {
		return 0
	}
	v, n := binary.Varint(d.B)
	if n <= 0 {
		d.Err = ErrShortRecord
		return 0
	}
	d.B = d.B[n:]
	return v
}

// Bytes reads a byte string, which aliases the record.
func (d *Decoder) Bytes() []byte {
	n := d.Uvarint()
	if d.Err != nil || n == 0 {
		return nil
	}
	if n > uint64(len(d.B)) {
		d.Err = ErrShortRecord
		return nil
	}
	v := d.B[:n:n]
	d.B = d.B[n:]
	return v
}

// Time reads a time, in UTC.
func (d *Decoder) Time() time.Time {
	sec, nsec := d.Varint(), d.Uvarint()
	if d.Err != nil {
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

// AppendItemHead appends what an item record holds besides its state and
// object: since, history, pending state and count, stalled rules.
func AppendItemHead(b []byte, it *Item) []byte {
	b = AppendTime(b, it.Since)
	b = binary.AppendUvarint(b, uint64(len(it.History)))
	for _, h := range it.History {
		b = AppendBytes(b, h.State)
		b = AppendTime(b, h.At)
	}
	b = AppendBytes(b, it.Pending)
	b = binary.AppendUvarint(b, uint64(max(it.PendingCount, 0)))
	b = binary.AppendUvarint(b, uint64(len(it.Stalled)))
	for _, s := range it.Stalled {
		b = binary.AppendUvarint(b, uint64(max(s, 0)))
	}
	return b
}

// ItemHead reads what AppendItemHead wrote into it, reusing its slices;
// the byte fields alias the record. It checks that nothing follows.
func (d *Decoder) ItemHead(it *Item) error {
	it.Since = d.Time()
	it.History = it.History[:0]
	if n := d.Uvarint(); n > 0 && d.Err == nil {
		if n > uint64(len(d.B)) {
			return ErrShortRecord
		}
		it.History = slices.Grow(it.History, int(n))[:n]
		for i := range it.History {
			it.History[i] = HistoryEntry{State: d.Bytes(), At: d.Time()}
		}
	}
	it.Pending = d.Bytes()
	it.PendingCount = int(d.Uvarint())
	it.Stalled = it.Stalled[:0]
	if n := d.Uvarint(); n > 0 && d.Err == nil {
		if n > uint64(len(d.B)) {
			return ErrShortRecord
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
