package badger

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bdg "github.com/dgraph-io/badger/v4"

	"github.com/pollrelay/pollrelay/store"
)

func deliveryKey(sub, eventID string) []byte { return []byte("d/" + sub + "\x00" + eventID) }

// The schedule index is per subscription (q/<sub>\x00<due><event id>), not
// one global timeline: a subscription that is disabled, removed or at its
// max_in_flight would otherwise fill the head of a global scan with
// deliveries that can't go and starve every other subscription behind it.
var duePrefix = []byte("q/")

func dueSubPrefix(sub string) []byte {
	k := make([]byte, 0, len(duePrefix)+len(sub)+1+8+32)
	k = append(k, duePrefix...)
	k = append(k, sub...)
	return append(k, 0)
}

func dueKey(sub string, at time.Time, eventID string) []byte {
	k := binary.BigEndian.AppendUint64(dueSubPrefix(sub), dueNanos(at))
	return append(k, eventID...)
}

func parseDueKey(k []byte) (DueRef, bool) {
	rest := k[len(duePrefix):]
	i := bytes.IndexByte(rest, 0)
	if i < 0 || len(rest) < i+1+8+1 {
		return DueRef{}, false
	}
	at := binary.BigEndian.Uint64(rest[i+1 : i+9])
	return DueRef{
		Subscription: string(rest[:i]),
		EventID:      string(rest[i+9:]),
		At:           time.Unix(0, int64(at)),
	}, true
}

func resourceKey(sub, resource, eventID string) []byte {
	return append(resourcePrefix(sub, resource), eventID...)
}

// resourcePrefix encodes both parts (appendPart): a resource holds an item
// id, which may hold any bytes, NUL included, and must not run into the
// next resource's keys.
func resourcePrefix(sub, resource string) []byte {
	k := make([]byte, 0, 2+len(sub)+len(resource)+4+32)
	k = append(k, resourcePrefixAll...)
	return appendPart(appendPart(k, sub), resource)
}

var resourcePrefixAll = []byte("r/")

// maxResource bounds Delivery.Resource: a source name and an id.
const maxResource = store.MaxResource

// checkDelivery refuses, before anything of d is written, a delivery whose
// keys or record a store cannot hold, so a refusal leaves no half-written
// delivery behind.
func checkDelivery(d *Delivery, v []byte) error {
	errs := []error{CheckKeyPart("subscription name", d.Subscription), CheckKeyPart("event id", d.EventID), checkKV(nil, v)}
	if len(d.Resource) > maxResource {
		errs = append(errs, bad(fmt.Errorf("resource is %d bytes, over the %d-byte limit", len(d.Resource), maxResource)))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("write delivery %s/%s: %w", d.Subscription, d.EventID, err)
	}
	return nil
}

func attemptPrefix(eventID string) []byte { return []byte("a/" + eventID + "\x00") }

// Delivery returns a delivery, or nil.
func (t *Txn) Delivery(sub, eventID string) (*Delivery, error) {
	v, err := t.get(deliveryKey(sub, eventID))
	if err != nil || v == nil {
		return nil, wrap(err, "read delivery %s/%s", sub, eventID)
	}
	var d Delivery
	if err := json.Unmarshal(v, &d); err != nil {
		return nil, bad(fmt.Errorf("decode delivery %s/%s: %w", sub, eventID, err))
	}
	return &d, nil
}

// PutDelivery stores d and keeps the schedule and resource indexes in step.
// prev is the delivery as stored before (nil for a new one).
func (t *Txn) PutDelivery(d *Delivery, prev *Delivery) error {
	v, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode delivery %s/%s: %w", d.Subscription, d.EventID, err)
	}
	if err := checkDelivery(d, v); err != nil {
		return err
	}
	if err := t.set(deliveryKey(d.Subscription, d.EventID), v); err != nil {
		return fmt.Errorf("write delivery %s/%s: %w", d.Subscription, d.EventID, err)
	}
	if prev != nil && prev.Queued() && (!d.Queued() || !prev.NextAt.Equal(d.NextAt)) {
		if err := t.del(dueKey(d.Subscription, prev.NextAt, d.EventID)); err != nil {
			return fmt.Errorf("unschedule %s/%s: %w", d.Subscription, d.EventID, err)
		}
	}
	if d.Queued() && (prev == nil || !prev.Queued() || !prev.NextAt.Equal(d.NextAt)) {
		if err := t.set(dueKey(d.Subscription, d.NextAt, d.EventID), nil); err != nil {
			return fmt.Errorf("schedule %s/%s: %w", d.Subscription, d.EventID, err)
		}
	}
	// The resource index holds open deliveries only. A redelivery may also
	// change the resource (the subscription's ordering changed since).
	wasOrdered := prev != nil && prev.Resource != "" && prev.Open()
	isOrdered := d.Resource != "" && d.Open()
	if wasOrdered && (!isOrdered || prev.Resource != d.Resource) {
		if err := t.del(resourceKey(d.Subscription, prev.Resource, d.EventID)); err != nil {
			return fmt.Errorf("order %s/%s: %w", d.Subscription, d.EventID, err)
		}
	}
	if isOrdered && (!wasOrdered || prev.Resource != d.Resource) {
		if err := t.set(resourceKey(d.Subscription, d.Resource, d.EventID), nil); err != nil {
			return fmt.Errorf("order %s/%s: %w", d.Subscription, d.EventID, err)
		}
	}
	return nil
}

// DropDue removes a stale schedule key, one that no longer matches its
// delivery.
func (t *Txn) DropDue(r DueRef) error {
	return wrap(t.del(dueKey(r.Subscription, r.At, r.EventID)), "unschedule %s/%s", r.Subscription, r.EventID)
}

// DropResource removes a delivery from its resource's order, for an entry
// whose delivery is gone or finished (the entry would otherwise hold every
// later event of the resource back for good).
func (t *Txn) DropResource(sub, resource, eventID string) error {
	return wrap(t.del(resourceKey(sub, resource, eventID)), "unorder %s/%s", sub, eventID)
}

// Due returns up to limit of a subscription's queued deliveries due at or
// before now, earliest first.
func (t *Txn) Due(sub string, now time.Time, limit int) ([]DueRef, error) {
	var refs []DueRef
	cutoff := dueNanos(now)
	// Delivered entries leave tombstones at the front of the range;
	// scanFloor starts past them.
	err := t.scanFloor(dueSubPrefix(sub), func(k, _ []byte) (bool, error) {
		ref, ok := parseDueKey(k)
		if !ok {
			return true, nil
		}
		if dueNanos(ref.At) > cutoff {
			return false, nil
		}
		refs = append(refs, ref)
		return len(refs) < limit, nil
	})
	return refs, err
}

// NextDueAfter returns when a subscription's earliest delivery due after
// now falls due.
func (t *Txn) NextDueAfter(sub string, now time.Time) (time.Time, bool, error) {
	var next time.Time
	found := false
	p := dueSubPrefix(sub)
	start := binary.BigEndian.AppendUint64(append([]byte{}, p...), dueNanos(now)+1)
	err := t.scan(p, start, false, func(k, _ []byte) (bool, error) {
		ref, ok := parseDueKey(k)
		if ok {
			next, found = ref.At, true
		}
		return !ok, nil
	})
	return next, found, err
}

// NextDue returns when the earliest queued delivery of any subscription is
// due; found is false when nothing is queued.
func (t *Txn) NextDue() (next time.Time, found bool, err error) {
	opts := bdg.DefaultIteratorOptions
	opts.Prefix = duePrefix
	opts.PrefetchValues = false
	it := t.txn.NewIterator(opts)
	defer it.Close()
	// Skip-scan: the first key of each subscription is its earliest, so
	// seek past the rest of that subscription's keys.
	for it.Seek(duePrefix); it.ValidForPrefix(duePrefix); {
		ref, ok := parseDueKey(it.Item().Key())
		if !ok {
			it.Next()
			continue
		}
		if !found || ref.At.Before(next) {
			next, found = ref.At, true
		}
		skip := dueSubPrefix(ref.Subscription)
		skip[len(skip)-1] = 1
		it.Seek(skip)
	}
	return next, found, nil
}

// ResourceHead returns the oldest open delivery of a resource, or "".
func (t *Txn) ResourceHead(sub, resource string) (string, error) {
	return t.firstUnder(resourcePrefix(sub, resource), nil)
}

// NextInResource returns the open delivery of a resource that follows
// eventID, or "".
func (t *Txn) NextInResource(sub, resource, eventID string) (string, error) {
	p := resourcePrefix(sub, resource)
	return t.firstUnder(p, append(append(append([]byte{}, p...), eventID...), 0))
}

func (t *Txn) firstUnder(prefix, start []byte) (string, error) {
	id := ""
	err := t.scan(prefix, start, false, func(k, _ []byte) (bool, error) {
		id = string(k[len(prefix):])
		return false, nil
	})
	return id, err
}

// AddAttempt logs an attempt.
func (t *Txn) AddAttempt(eventID string, a Attempt) error {
	v, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode attempt: %w", err)
	}
	k := append(attemptPrefix(eventID), a.Subscription...)
	k = append(k, 0)
	k = binary.BigEndian.AppendUint32(k, uint32(a.N))
	return wrap(t.set(k, v), "write attempt %s/%s", a.Subscription, eventID)
}

// Attempts returns an event's attempts for every subscription, by
// subscription then attempt number.
func (t *Txn) Attempts(eventID string) ([]Attempt, error) {
	var out []Attempt
	err := t.scan(attemptPrefix(eventID), nil, false, func(_, v []byte) (bool, error) {
		var a Attempt
		if err := json.Unmarshal(v, &a); err != nil {
			return false, fmt.Errorf("decode attempt of %s: %w", eventID, err)
		}
		out = append(out, a)
		return true, nil
	})
	return out, err
}

// Deliveries calls fn for every delivery, for start-up counts.
func (t *Txn) Deliveries(fn func(*Delivery) error) error {
	return t.scan([]byte("d/"), nil, false, func(_, v []byte) (bool, error) {
		var d Delivery
		if err := json.Unmarshal(v, &d); err != nil {
			return false, fmt.Errorf("decode delivery: %w", err)
		}
		return true, fn(&d)
	})
}

// LoadDeliveries calls fn for every delivery and repairs the schedule index
// on the way: a queued delivery without its due key is scheduled again, and
// a key without a matching queued delivery is dropped. It runs once at
// start-up, in the pass the start-up counts make anyway, so an index left
// inconsistent (by an older key layout, or a bug) costs at worst a duplicate
// attempt, never a delivery that is silently not sent. A delivery record
// that cannot be decoded is quarantined rather than failing the start. It
// returns how many keys it fixed.
func (s *Store) LoadDeliveries(fn func(*Delivery) error) (int, error) {
	want := map[string]bool{}
	var extra [][]byte
	var poisoned []badDelivery
	err := s.view(func(t *Txn) error {
		err := t.scan([]byte("d/"), nil, false, func(k, v []byte) (bool, error) {
			var d Delivery
			if err := json.Unmarshal(v, &d); err != nil {
				poisoned = append(poisoned, badDelivery{bytes.Clone(k), err.Error()})
				return true, nil
			}
			if d.Queued() {
				want[string(dueKey(d.Subscription, d.NextAt, d.EventID))] = true
			}
			return true, fn(&d)
		})
		if err != nil {
			return err
		}
		return t.scan(duePrefix, nil, false, func(k, _ []byte) (bool, error) {
			if want[string(k)] {
				delete(want, string(k))
			} else {
				extra = append(extra, bytes.Clone(k))
			}
			return true, nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("load deliveries: %w", err)
	}
	fixes := make([]func(*Txn) error, 0, len(want)+len(extra)+len(poisoned))
	for k := range want {
		fixes = append(fixes, func(t *Txn) error { return t.set([]byte(k), nil) })
	}
	for _, k := range extra {
		fixes = append(fixes, func(t *Txn) error { return t.del(k) })
	}
	now := time.Now()
	for _, p := range poisoned {
		sub, eventID, _ := bytes.Cut(p.key[len("d/"):], []byte{0})
		fixes = append(fixes, func(t *Txn) error {
			// Its schedule key, if any, was counted extra above.
			return t.QuarantineDelivery(string(sub), string(eventID), time.Time{}, "decode delivery: "+p.reason, now)
		})
	}
	b := s.newBatch()
	for _, fix := range fixes {
		if err := b.group(fix); err != nil {
			return 0, fmt.Errorf("repair schedule: %w", err)
		}
	}
	if err := b.Commit(); err != nil {
		return 0, fmt.Errorf("repair schedule: %w", err)
	}
	if len(poisoned) > 0 {
		s.log.Warn("deliveries that cannot be decoded were quarantined", "count", len(poisoned))
	}
	return len(fixes), nil
}

type badDelivery struct {
	key    []byte
	reason string
}
