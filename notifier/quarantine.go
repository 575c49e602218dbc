package notifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pollrelay/pollrelay/store"
)

// A record the notifier cannot process (an event it cannot read, a
// delivery whose keys or record the store refuses or cannot decode) is
// quarantined: set aside with the reason, counted in
// pollrelay_quarantined_total{kind}, listed by GET /v1/quarantine, and
// everything else goes on. Left in place it would fail the transaction
// that carries it, and every retry of that transaction, for good: one
// event with an over-long id stopped every delivery of every subscription.

// ErrStillBad is returned by RetryQuarantined when the record still
// cannot be processed; it stays in quarantine.
var ErrStillBad = errors.New("the record still cannot be processed")

// poisoned reports whether err is about one record, which is to be
// quarantined, rather than about the store.
func poisoned(err error) bool {
	return store.IsBadRecord(err) || errors.Is(err, store.ErrTooBig)
}

// quarantineEvent sets an outbox event aside: it leaves the outbox, and a
// retry puts it back.
func quarantineEvent(t store.Txn, id string, cause error, now time.Time) error {
	q := store.Quarantined{Kind: store.QuarantineEvent, EventID: id, Reason: "fan out: " + cause.Error()}
	if err := t.Quarantine(q, now); err != nil {
		return err
	}
	return t.RemoveFromOutbox(id)
}

// quarantineNewDelivery sets aside a delivery fan-out built but the store
// refused; the event's other deliveries are written.
func quarantineNewDelivery(t store.Txn, d *store.Delivery, cause error, now time.Time) error {
	raw, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode delivery %s/%s: %w", d.Subscription, d.EventID, err)
	}
	q := store.Quarantined{Kind: store.QuarantineDelivery, EventID: d.EventID, Subscription: d.Subscription,
		Reason: "fan out: " + cause.Error(), Raw: raw}
	return t.Quarantine(q, now)
}

// fanoutOneByOne fans out the next outbox events one transaction each,
// after a batch failed: an event whose own transaction fails with a bad
// record is quarantined, so the rest of the batch goes on.
func (n *Notifier) fanoutOneByOne(subs []*subState) (bool, error) {
	var ids []string
	if err := n.st.View(func(t store.Txn) error {
		var err error
		ids, err = t.NextOutbox(fanoutBatch)
		return err
	}); err != nil {
		return false, fmt.Errorf("fan out: %w", err)
	}
	added := map[string]int{}
	for _, id := range ids {
		now := n.now()
		err := n.st.Update(func(t store.Txn) error {
			clear(added)
			return n.fanoutEvent(t, id, subs, now, added)
		})
		if poisoned(err) {
			clear(added)
			cause := err
			err = n.st.Update(func(t store.Txn) error { return quarantineEvent(t, id, cause, now) })
			n.log.Warn("event quarantined: it cannot be fanned out; the others go on", "event_id", id, "error", cause.Error())
		}
		if err != nil {
			return false, fmt.Errorf("fan out %s: %w", id, err)
		}
		n.addPending(added)
	}
	return len(ids) == fanoutBatch, nil
}

// quarantineDue sets aside queued deliveries dispatch could not read.
func (n *Notifier) quarantineDue(bad []poisonedRef) error {
	now := n.now()
	for _, p := range bad {
		err := n.st.Update(func(t store.Txn) error {
			return t.QuarantineDelivery(p.ref.Subscription, p.ref.EventID, p.ref.At, "dispatch: "+p.err.Error(), now)
		})
		if err != nil {
			return fmt.Errorf("quarantine delivery %s/%s: %w", p.ref.Subscription, p.ref.EventID, err)
		}
		n.log.Warn("delivery quarantined: it cannot be read; the others go on",
			"subscription", p.ref.Subscription, "event_id", p.ref.EventID, "error", p.err.Error())
	}
	if len(bad) > 0 {
		n.Wake() // what waited behind them is due now
	}
	return nil
}

type poisonedRef struct {
	ref store.DueRef // At is zero when not known
	err error
}

// commitApart records a batch whose commit failed because of a bad
// record: halves are committed separately, down to single outcomes, and
// an outcome that fails alone has its delivery quarantined. It reports
// whether it dealt with the batch; false means the failure was not one
// record's (the store refuses writes) and the caller keeps the batch.
func (n *Notifier) commitApart(s *state, batch []result, cause error) bool {
	if !poisoned(cause) {
		return false
	}
	if len(batch) > 1 {
		mid := len(batch) / 2
		for _, half := range [][]result{batch[:mid], batch[mid:]} {
			if err := n.commitBatch(s, half, false); err != nil && !n.commitApart(s, half, err) {
				s.unrecorded = append(s.unrecorded, half...)
			}
		}
		return true
	}
	r := batch[0]
	now := n.now()
	var prev *store.Delivery
	err := n.st.Update(func(t store.Txn) error {
		prev, _ = t.Delivery(r.sub, r.eventID) // for the gauge; nil when unreadable
		return t.QuarantineDelivery(r.sub, r.eventID, prev.NextAtOrZero(), "record outcome: "+cause.Error(), now)
	})
	if err != nil {
		return false
	}
	if prev != nil {
		n.count(prev, &store.Delivery{Subscription: prev.Subscription}) // out of the queue
	}
	n.log.Warn("delivery quarantined: its outcome cannot be recorded; the others go on",
		"subscription", r.sub, "event_id", r.eventID, "error", cause.Error())
	n.release(s, batch)
	return true
}

// RetryQuarantined takes a record out of quarantine and processes it
// again: an event goes back to the outbox, a delivery back into its
// subscription's schedule, due now; an item record is forgotten, and the
// next poll skips the item again if its id is still over the limit. It
// returns ErrNotFound for an unknown id and ErrStillBad, leaving the record
// in quarantine, when the record still cannot be stored.
func (n *Notifier) RetryQuarantined(ctx context.Context, id string) error {
	return n.do(ctx, func(*state) error {
		now := n.now()
		var restored *store.Delivery
		err := n.st.Update(func(t store.Txn) error {
			restored = nil
			q, err := t.QuarantineRecord(id)
			if err != nil {
				return err
			}
			if q == nil {
				return ErrNotFound
			}
			switch q.Kind {
			case store.QuarantineEvent:
				if err := t.ReturnToOutbox(q.EventID); err != nil {
					return err
				}
			case store.QuarantineDelivery:
				if restored, err = n.restore(t, q, now); err != nil {
					return err
				}
			}
			return t.DeleteQuarantine(id)
		})
		if poisoned(err) {
			return fmt.Errorf("%w: %v", ErrStillBad, err)
		}
		if err != nil {
			return err
		}
		if restored != nil {
			n.count(nil, restored)
		}
		n.Wake()
		return nil
	})
}

// restore puts a quarantined delivery back, due now, unless the delivery
// exists again (a redelivery recreated it); it returns what it wrote. It
// follows the subscription's ordering as it is now: one switched to
// ordering: none takes a delivery whose resource was too long to order.
func (n *Notifier) restore(t store.Txn, q *store.Quarantined, now time.Time) (*store.Delivery, error) {
	if len(q.Raw) == 0 {
		return nil, fmt.Errorf("delivery %s/%s: its record could not be kept: %w", q.Subscription, q.EventID, store.ErrBadRecord)
	}
	var d store.Delivery
	if err := json.Unmarshal(q.Raw, &d); err != nil {
		return nil, fmt.Errorf("decode delivery %s/%s: %v: %w", q.Subscription, q.EventID, err, store.ErrBadRecord)
	}
	if prev, err := t.Delivery(d.Subscription, d.EventID); err != nil || prev != nil {
		return nil, err
	}
	d.State, d.NextAt, d.UpdatedAt, d.Round = store.Pending, now, now, 0
	if ss := n.sub(d.Subscription); ss != nil && !ss.sub.Ordered {
		d.Resource = ""
	}
	if err := t.PutDelivery(&d, nil); err != nil {
		return nil, err
	}
	return &d, nil
}
