package badger

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/pollrelay/pollrelay/store"
)

var quarantinePrefix = []byte("x/")

func quarantineKey(id string) []byte { return append(bytes.Clone(quarantinePrefix), id...) }

// Quarantine sets q aside at now: a new record, or one more sighting of
// an existing one. The item id is identified whole and kept cut (see
// CutID). Counted in pollrelay_quarantined_total once committed.
func (t *Txn) Quarantine(q Quarantined, now time.Time) error { return store.SetAside(t, q, now) }

// NoteQuarantined counts n more records of kind set aside without a
// record of their own (past a poll's first few over-limit items).
func (t *Txn) NoteQuarantined(kind string, n int) {
	if n <= 0 {
		return
	}
	if t.quarantined == nil {
		t.quarantined = map[string]int{}
	}
	t.quarantined[kind] += n
}

// PutQuarantined stores q as it is, under q.ID: a record moved from
// another store.
func (t *Txn) PutQuarantined(q *Quarantined) error {
	v, err := json.Marshal(q)
	if err != nil {
		return fmt.Errorf("encode quarantine %s: %w", q.ID, err)
	}
	return wrap(t.set(quarantineKey(q.ID), v), "write quarantine %s", q.ID)
}

// QuarantineRecord returns a quarantine record, or nil.
func (t *Txn) QuarantineRecord(id string) (*Quarantined, error) {
	v, err := t.get(quarantineKey(id))
	if err != nil || v == nil {
		return nil, wrap(err, "read quarantine %s", id)
	}
	var q Quarantined
	if err := json.Unmarshal(v, &q); err != nil {
		return nil, bad(fmt.Errorf("decode quarantine %s: %w", id, err))
	}
	return &q, nil
}

// QuarantineRecords calls fn for the quarantine records after the id
// `after` (empty = from the first), in id order, until fn returns false.
// A record that cannot be decoded is skipped.
func (t *Txn) QuarantineRecords(after string, fn func(*Quarantined) bool) error {
	var start []byte
	if after != "" {
		start = append(quarantineKey(after), 0)
	}
	return t.scan(quarantinePrefix, start, false, func(_, v []byte) (bool, error) {
		var q Quarantined
		if json.Unmarshal(v, &q) != nil {
			return true, nil
		}
		return fn(&q), nil
	})
}

// DeleteQuarantine forgets a quarantine record.
func (t *Txn) DeleteQuarantine(id string) error {
	return wrap(t.del(quarantineKey(id)), "delete quarantine %s", id)
}

// QuarantineDelivery sets a stored delivery aside: its record moves into
// the quarantine record, which a retry puts back, its schedule key (due at
// `at`, when known) and its place in its resource's order go, and the
// delivery of the resource that waited behind it is queued now, as when a
// delivery finishes. A later one that cannot be read either is set aside
// in turn.
func (t *Txn) QuarantineDelivery(sub, eventID string, at time.Time, reason string, now time.Time) error {
	for eventID != "" {
		next, err := t.quarantineDelivery(sub, eventID, at, reason, now)
		if err != nil {
			return fmt.Errorf("quarantine delivery %s/%s: %w", sub, eventID, err)
		}
		eventID, at = next, time.Time{}
	}
	return nil
}

// quarantineDelivery sets one delivery aside and releases the next of its
// resource; it returns that next one's id when it cannot be read.
func (t *Txn) quarantineDelivery(sub, eventID string, at time.Time, reason string, now time.Time) (string, error) {
	raw, err := t.get(deliveryKey(sub, eventID))
	if err != nil || raw == nil {
		return "", err // gone, or set aside already
	}
	q := Quarantined{Kind: QuarantineDelivery, Reason: reason, EventID: eventID, Subscription: sub}
	if json.Valid(raw) {
		q.Raw = raw
	}
	if err := t.Quarantine(q, now); err != nil {
		return "", err
	}
	if !at.IsZero() {
		if err := t.del(dueKey(sub, at, eventID)); err != nil {
			return "", err
		}
	}
	if err := t.del(deliveryKey(sub, eventID)); err != nil {
		return "", err
	}
	resource, found, err := t.resourceOf(sub, eventID)
	if err != nil || !found {
		return "", err
	}
	if err := t.DropResource(sub, resource, eventID); err != nil {
		return "", err
	}
	next, err := t.NextInResource(sub, resource, eventID)
	if err != nil || next == "" {
		return "", err
	}
	d, err := t.Delivery(sub, next)
	if store.IsBadRecord(err) {
		return next, nil
	}
	if err != nil || d == nil || d.State != Waiting {
		return "", err
	}
	nd := *d
	nd.State, nd.NextAt, nd.UpdatedAt = Pending, now, now
	return "", t.PutDelivery(&nd, d)
}

// resourceOf finds the resource whose order holds a delivery, from the
// index alone (the delivery's record may be unreadable). It scans the
// subscription's open ordered deliveries: only quarantining needs it.
func (t *Txn) resourceOf(sub, eventID string) (resource string, found bool, err error) {
	p := appendPart(bytes.Clone(resourcePrefixAll), sub)
	err = t.scan(p, nil, false, func(k, _ []byte) (bool, error) {
		res, rest, ok := cutPart(k[len(p):])
		if ok && string(rest) == eventID {
			resource, found = res, true
			return false, nil
		}
		return true, nil
	})
	return resource, found, err
}
