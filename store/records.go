package store

import (
	"errors"
	"fmt"

	"github.com/pollrelay/pollrelay/event"
)

// PruneResult counts what Prune removed.
type PruneResult struct {
	Events     int
	Deliveries int
	Attempts   int
}

// MaxKeyPart is the most bytes any one value that becomes part of a key
// may have: an item or watch id, a source or subscription name. A longer
// one is refused as a bad record (see ErrBadRecord) before it reaches
// the backend, whose own limit on a key (Badger's is 65,000 bytes) would
// otherwise fail the transaction that carries it and every retry of it.
// Every backend takes ids of this length with any bytes in them (names
// are [a-z0-9_-]+; see the package doc).
const MaxKeyPart = event.MaxKeyPart

// MaxResource is the most bytes a Delivery.Resource may have: a source
// name, a NUL and an item id (see event.Resource), each part at most
// MaxKeyPart. A delivery with a longer one is refused as a bad record.
const MaxResource = 2*MaxKeyPart + 1

// MaxValue is the largest value every backend stores: below Badger's
// limit on one value (its value-log file size, 64 MiB there).
const MaxValue = 60 << 20

// ErrBadRecord marks an error about one record rather than the store: a
// value that cannot be decoded, or a key or value over a limit. Retrying
// the same write fails the same way, so a caller sets the record aside
// (quarantines it) and goes on with the others.
var ErrBadRecord = errors.New("bad record")

// ErrTooBig marks a backend's refusal of a transaction over its size
// limit. Alone in its transaction, a record refused so is a bad record.
var ErrTooBig = errors.New("transaction too big")

// ErrConflict marks a transaction that lost to a concurrent writer of
// something it read, after the backend's own retries: redoing the work
// from a fresh read resolves it.
var ErrConflict = errors.New("transaction conflict")

// ErrFenced marks a transaction refused because the lease it was made
// under has passed to another holder: its work (a poll's comparison) is
// stale and is dropped, never retried.
var ErrFenced = errors.New("lease no longer held")

// IsFenced reports whether err is a fenced transaction; see ErrFenced.
func IsFenced(err error) bool { return errors.Is(err, ErrFenced) }

// IsConflict reports whether err is a transaction conflict; see
// ErrConflict.
func IsConflict(err error) bool { return errors.Is(err, ErrConflict) }

type badRecord struct{ err error }

func (b badRecord) Error() string        { return b.err.Error() }
func (b badRecord) Unwrap() error        { return b.err }
func (b badRecord) Is(target error) bool { return target == ErrBadRecord }

// Bad marks err as about one record; see ErrBadRecord.
func Bad(err error) error {
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
		return Bad(fmt.Errorf("%s is %d bytes, over the %d-byte limit", what, len(v), MaxKeyPart))
	}
	return nil
}
