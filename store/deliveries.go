package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"
)

// Delivery states.
const (
	Pending   = "pending"   // due at NextAt, never tried or tried again by request
	Retrying  = "retrying"  // failed at least once, due at NextAt
	Waiting   = "waiting"   // an earlier delivery of the same resource is still open
	Delivered = "delivered" // a 2xx was received
	Dead      = "dead"      // every scheduled attempt failed
)

// Delivery is one event on its way to one subscription.
type Delivery struct {
	EventID      string `json:"event_id"`
	Subscription string `json:"subscription"`
	// Resource orders deliveries: empty with `ordering: none`.
	Resource string `json:"resource,omitempty"`
	State    string `json:"state"`
	Attempts int    `json:"attempts"`
	// Round counts attempts since the delivery was (re)queued; it indexes
	// the retry schedule, which a redelivery starts again.
	Round      int       `json:"round"`
	NextAt     time.Time `json:"next_at"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	LastStatus int       `json:"last_status,omitempty"`
	LastError  string    `json:"last_error,omitempty"`
	// EventAt is when the event was written, for the delivery-lag metric.
	EventAt time.Time `json:"event_at"`
}

// Queued reports whether the delivery sits in the schedule index.
func (d *Delivery) Queued() bool { return d.State == Pending || d.State == Retrying }

// Open reports whether the delivery still blocks later ones of its resource.
func (d *Delivery) Open() bool { return d.State != Delivered && d.State != Dead }

// Attempt is one try at a delivery.
type Attempt struct {
	N            int       `json:"n"`
	Subscription string    `json:"subscription"`
	At           time.Time `json:"at"`
	Status       int       `json:"status,omitempty"`
	LatencyMS    float64   `json:"latency_ms"`
	Outcome      string    `json:"outcome"`
	Error        string    `json:"error,omitempty"`
	Body         string    `json:"response_body,omitempty"`
}

// DueRef names a queued delivery.
type DueRef struct {
	Subscription string
	EventID      string
	At           time.Time
}

func deliveryKey(sub, eventID string) []byte { return []byte("d/" + sub + "\x00" + eventID) }

var duePrefix = []byte("q/")

func dueKey(at time.Time, sub, eventID string) []byte {
	k := make([]byte, 0, 2+8+len(sub)+1+len(eventID))
	k = append(k, duePrefix...)
	k = binary.BigEndian.AppendUint64(k, uint64(max(at.UnixNano(), 0)))
	k = append(k, sub...)
	k = append(k, 0)
	return append(k, eventID...)
}

func resourcePrefix(sub, resource string) []byte {
	return []byte("r/" + sub + "\x00" + resource + "\x00")
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
		return nil, fmt.Errorf("decode delivery %s/%s: %w", sub, eventID, err)
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
	if err := t.set(deliveryKey(d.Subscription, d.EventID), v); err != nil {
		return fmt.Errorf("write delivery %s/%s: %w", d.Subscription, d.EventID, err)
	}
	if prev != nil && prev.Queued() && (!d.Queued() || !prev.NextAt.Equal(d.NextAt)) {
		if err := t.del(dueKey(prev.NextAt, d.Subscription, d.EventID)); err != nil {
			return fmt.Errorf("unschedule %s/%s: %w", d.Subscription, d.EventID, err)
		}
	}
	if d.Queued() && (prev == nil || !prev.Queued() || !prev.NextAt.Equal(d.NextAt)) {
		if err := t.set(dueKey(d.NextAt, d.Subscription, d.EventID), nil); err != nil {
			return fmt.Errorf("schedule %s/%s: %w", d.Subscription, d.EventID, err)
		}
	}
	if d.Resource != "" {
		rk := append(resourcePrefix(d.Subscription, d.Resource), d.EventID...)
		wasOpen := prev != nil && prev.Open()
		switch {
		case d.Open() && !wasOpen:
			err = t.set(rk, nil)
		case !d.Open() && wasOpen:
			err = t.del(rk)
		}
		if err != nil {
			return fmt.Errorf("order %s/%s: %w", d.Subscription, d.EventID, err)
		}
	}
	return nil
}

// Due returns up to limit queued deliveries due at or before now, earliest
// first.
func (t *Txn) Due(now time.Time, limit int) ([]DueRef, error) {
	var refs []DueRef
	cutoff := uint64(max(now.UnixNano(), 0))
	err := t.scan(duePrefix, nil, false, func(k, _ []byte) (bool, error) {
		ref, at, ok := parseDueKey(k)
		if !ok {
			return true, nil
		}
		if at > cutoff {
			return false, nil
		}
		refs = append(refs, ref)
		return len(refs) < limit, nil
	})
	return refs, err
}

// NextDue returns when the earliest queued delivery is due.
func (t *Txn) NextDue() (time.Time, bool, error) {
	var next time.Time
	found := false
	err := t.scan(duePrefix, nil, false, func(k, _ []byte) (bool, error) {
		ref, _, ok := parseDueKey(k)
		if ok {
			next, found = ref.At, true
		}
		return !ok, nil
	})
	return next, found, err
}

func parseDueKey(k []byte) (DueRef, uint64, bool) {
	rest := k[len(duePrefix):]
	if len(rest) < 10 {
		return DueRef{}, 0, false
	}
	at := binary.BigEndian.Uint64(rest[:8])
	rest = rest[8:]
	for i, c := range rest {
		if c == 0 {
			return DueRef{
				Subscription: string(rest[:i]),
				EventID:      string(rest[i+1:]),
				At:           time.Unix(0, int64(at)),
			}, at, true
		}
	}
	return DueRef{}, 0, false
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

// NextDueAfter returns the earliest queued delivery due after now.
func (t *Txn) NextDueAfter(now time.Time) (time.Time, bool, error) {
	var next time.Time
	found := false
	start := binary.BigEndian.AppendUint64(append([]byte{}, duePrefix...), uint64(max(now.UnixNano()+1, 0)))
	err := t.scan(duePrefix, start, false, func(k, _ []byte) (bool, error) {
		ref, _, ok := parseDueKey(k)
		if ok {
			next, found = ref.At, true
		}
		return !ok, nil
	})
	return next, found, err
}
