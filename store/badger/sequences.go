package badger

import (
	"encoding/binary"
	"fmt"
	"math"
)

// seqPrefix keys the named counters: n/<name>, the name the whole rest of
// the key, and the counter's last value as 8 bytes big-endian.
var seqPrefix = []byte("n/")

func seqKey(name string) []byte { return append(append([]byte{}, seqPrefix...), name...) }

// maxSequence is where a counter stops, as in PostgreSQL, whose bigint
// holds it: a store's counters move to the other backend whole.
const maxSequence = math.MaxInt64

func decodeSeq(name string, v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, bad(fmt.Errorf("counter %q: a value of %d bytes, not 8", name, len(v)))
	}
	return binary.BigEndian.Uint64(v), nil
}

// NextSequence returns the counter's next value. It reads the counter in
// the transaction, so of two transactions racing for it the one that
// commits second conflicts and is redone (Update) on the value the first
// wrote.
func (t *Txn) NextSequence(name string) (uint64, error) {
	if err := CheckKeyPart("counter name", name); err != nil {
		return 0, fmt.Errorf("next of counter: %w", err)
	}
	k := seqKey(name)
	v, err := t.get(k)
	if err != nil {
		return 0, wrap(err, "read counter %q", name)
	}
	var last uint64
	if v != nil {
		if last, err = decodeSeq(name, v); err != nil {
			return 0, err
		}
	}
	if last >= maxSequence {
		return 0, fmt.Errorf("counter %q is at its last value, %d", name, last)
	}
	next := last + 1
	if err := t.set(k, binary.BigEndian.AppendUint64(nil, next)); err != nil {
		return 0, wrap(err, "write counter %q", name)
	}
	return next, nil
}

// Sequences calls fn for every counter with its last value, by name.
func (t *Txn) Sequences(fn func(name string, last uint64) error) error {
	return t.scan(seqPrefix, nil, false, func(k, v []byte) (bool, error) {
		name := string(k[len(seqPrefix):])
		last, err := decodeSeq(name, v)
		if err != nil {
			return false, err
		}
		return true, fn(name, last)
	})
}

// PutSequence sets a counter's last value.
func (t *Txn) PutSequence(name string, last uint64) error {
	if err := CheckKeyPart("counter name", name); err != nil {
		return fmt.Errorf("write counter: %w", err)
	}
	if last > maxSequence {
		return fmt.Errorf("write counter %q: %w", name, bad(fmt.Errorf("value %d is over the largest, %d", last, uint64(maxSequence))))
	}
	return wrap(t.set(seqKey(name), binary.BigEndian.AppendUint64(nil, last)), "write counter %q", name)
}
