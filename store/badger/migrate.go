package badger

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// formatKey holds the version of the key layout a database was written in.
// A database without it was written before versions were recorded (1).
var formatKey = []byte("m/format")

// keyFormat is the layout this version writes. 2: resource-order keys
// (r/) encode their parts (appendPart) instead of joining them with NUL.
const keyFormat = 2

// migrate brings an older database's keys to keyFormat, once, on open.
// Only the resource-order index changed, and it is derived data: every
// open delivery records its resource, so the index is dropped and rebuilt
// from the deliveries rather than converted (old keys cannot be split
// reliably: an id with a NUL is the very case they got wrong). The steps
// are idempotent and the version is written last, so a crash part way
// repeats the migration at the next open. A read-only open (OpenReadOnly)
// does not migrate; nothing it reads uses the resource index.
func (s *Store) migrate() error {
	var version int
	err := s.view(func(t *Txn) error {
		v, err := t.get(formatKey)
		if err != nil || v == nil {
			version = 1
			return err
		}
		version, err = strconv.Atoi(string(v))
		return err
	})
	if err != nil {
		return fmt.Errorf("open store: read key format: %w", err)
	}
	switch {
	case version > keyFormat:
		return fmt.Errorf("open store: its key format %d is newer than this version knows (%d)", version, keyFormat)
	case version == keyFormat:
		return nil
	}
	rebuilt, skipped, err := s.rebuildResourceIndex()
	if err != nil {
		return fmt.Errorf("open store: migrate key format %d to %d: %w", version, keyFormat, err)
	}
	err = s.update(func(t *Txn) error { return t.set(formatKey, []byte(strconv.Itoa(keyFormat))) })
	if err != nil {
		return fmt.Errorf("open store: write key format: %w", err)
	}
	if rebuilt+skipped > 0 {
		s.log.Info("store keys migrated", "from_format", version, "to_format", keyFormat,
			"resource_entries", rebuilt, "skipped_over_limit", skipped)
	}
	return nil
}

// rebuildResourceIndex replaces every r/ key by those the open deliveries
// call for. A delivery whose resource is over the limit (an id stored by a
// version without one) keeps no order entry: it is still sent, unordered.
func (s *Store) rebuildResourceIndex() (rebuilt, skipped int, err error) {
	var old, want [][]byte
	err = s.view(func(t *Txn) error {
		if err := t.scan(resourcePrefixAll, nil, false, func(k, _ []byte) (bool, error) {
			old = append(old, bytes.Clone(k))
			return true, nil
		}); err != nil {
			return err
		}
		return t.scan([]byte("d/"), nil, false, func(_, v []byte) (bool, error) {
			var d Delivery
			if json.Unmarshal(v, &d) != nil || d.Resource == "" || !d.Open() {
				return true, nil // an undecodable one is quarantined by LoadDeliveries
			}
			k := resourceKey(d.Subscription, d.Resource, d.EventID)
			if len(d.Resource) > maxResource || checkKV(k, nil) != nil {
				skipped++
				return true, nil
			}
			want = append(want, k)
			return true, nil
		})
	})
	if err != nil {
		return 0, 0, err
	}
	b := s.newBatch()
	defer b.Discard()
	for _, k := range old {
		if err := b.group(func(t *Txn) error { return t.del(k) }); err != nil {
			return 0, 0, err
		}
	}
	for _, k := range want {
		if err := b.group(func(t *Txn) error { return t.set(k, nil) }); err != nil {
			return 0, 0, err
		}
	}
	return len(want), skipped, b.Commit()
}
