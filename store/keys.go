package store

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/pollrelay/pollrelay/event"
)

// MaxKeyPart is the most bytes any one value that becomes part of a key
// may have: an item or watch id, a source or subscription name. A longer
// one is refused as a bad record (see ErrBadRecord) before it reaches
// Badger, whose own limit on a whole key (65,000 bytes) would otherwise
// fail the transaction that carries it and every retry of it.
const MaxKeyPart = event.MaxKeyPart

// maxKey bounds a whole key: a few parts, each at most MaxKeyPart and at
// most doubled by escaping, well inside Badger's limit.
const maxKey = 8 * MaxKeyPart

// badgerMaxKey is Badger's own limit on a key.
const badgerMaxKey = 65000

// maxValue is below Badger's limit on one value (the value-log file size,
// 64 MiB here).
const maxValue = 60 << 20

// ErrBadRecord marks an error about one record rather than the store: a
// value that cannot be decoded, or a key or value over a limit. Retrying
// the same write fails the same way, so a caller sets the record aside
// (quarantines it) and goes on with the others.
var ErrBadRecord = errors.New("bad record")

// ErrTxnTooBig is Badger's refusal of a transaction over its size limit.
// Alone in its transaction, a record refused so is a bad record.
var ErrTxnTooBig = badger.ErrTxnTooBig

type badRecord struct{ err error }

func (b badRecord) Error() string        { return b.err.Error() }
func (b badRecord) Unwrap() error        { return b.err }
func (b badRecord) Is(target error) bool { return target == ErrBadRecord }

// bad marks err as about one record.
func bad(err error) error {
	if err == nil {
		return nil
	}
	return badRecord{err}
}

// IsBadRecord reports whether err is about one record; see ErrBadRecord.
func IsBadRecord(err error) bool { return errors.Is(err, ErrBadRecord) }

// CheckKeyPart returns a bad-record error when v is too long to be part
// of a key; what names it (e.g. "id") starts the message.
func CheckKeyPart(what, v string) error {
	if len(v) > MaxKeyPart {
		return bad(fmt.Errorf("%s is %d bytes, over the %d-byte limit", what, len(v), MaxKeyPart))
	}
	return nil
}

// checkKV refuses a key or value Badger would refuse, as a bad record.
func checkKV(key, val []byte) error {
	if len(key) > maxKey {
		return bad(fmt.Errorf("key of %d bytes is over the %d-byte limit", len(key), maxKey))
	}
	if len(val) > maxValue {
		return bad(fmt.Errorf("value of %d bytes is over the %d-byte limit", len(val), maxValue))
	}
	return nil
}

// appendPart appends p to a key so that it ends unambiguously whatever
// bytes it holds: each 0x00 becomes 0x00 0xFF and the part ends with
// 0x00 0x01. No encoded part is then a prefix of another, and encoded
// parts sort bytewise as the parts themselves do (the terminator sorts
// below both an escaped 0x00 and any other byte), so scans in key order
// stay in id order.
func appendPart(b []byte, p string) []byte {
	for i := 0; i < len(p); i++ {
		if p[i] == 0 {
			b = append(b, 0, 0xff)
			continue
		}
		b = append(b, p[i])
	}
	return append(b, 0, 1)
}

// cutPart decodes the part at the start of b, returning it and the rest.
func cutPart(b []byte) (part string, rest []byte, ok bool) {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != 0 {
			out = append(out, b[i])
			continue
		}
		if i+1 >= len(b) {
			return "", nil, false
		}
		switch b[i+1] {
		case 0xff:
			out = append(out, 0)
			i++
		case 1:
			return string(out), b[i+2:], true
		default:
			return "", nil, false
		}
	}
	return "", nil, false
}
