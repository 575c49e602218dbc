package notifier

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/store"
)

// busy reports whether a subscription has max_in_flight requests out.
func (n *Notifier) busy(ss *subState) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return ss.inflight >= ss.sub.MaxInFlight
}

func (n *Notifier) inflightOf(ss *subState) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return ss.inflight
}

func key(sub, eventID string) string { return sub + "\x00" + eventID }

// resourceKey names a resource of a subscription in state.busyResources.
func resourceKey(d *store.Delivery) string {
	if d.Resource == "" {
		return ""
	}
	return d.Subscription + "\x00" + d.Resource
}

// dispatch starts every due delivery that may go now and returns when the
// next one falls due (zero if none is queued). Disabled subscriptions are
// skipped whole: their deliveries stay queued until re-enabled. Nothing
// is sent while outcomes wait to be recorded (see commit): sending more
// would only pile up outcomes the store refuses.
func (n *Notifier) dispatch(s *state) (time.Time, error) {
	if len(s.unrecorded) > 0 {
		return time.Time{}, nil
	}
	now := n.now()
	var next time.Time
	var errs []error
	for _, ss := range n.subList() {
		if n.disabled(ss.sub.ID) {
			continue
		}
		// One subscription's failure must not hold back the others.
		at, err := n.dispatchSub(s, ss, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !at.IsZero() && (next.IsZero() || at.Before(next)) {
			next = at
		}
	}
	return next, errors.Join(errs...)
}

// dispatchSub starts one subscription's due deliveries, up to its
// max_in_flight, and returns when its next one falls due.
func (n *Notifier) dispatchSub(s *state, ss *subState, now time.Time) (time.Time, error) {
	id := ss.sub.ID
	for !n.busy(ss) {
		// In-flight deliveries stay in the schedule until their outcome is
		// committed, so look past them.
		limit := n.inflightOf(ss) + 64
		// One snapshot for the schedule and the deliveries it names: a
		// backend may read them together.
		var refs []store.DueRef
		var moved int
		var td tidy
		var readErr error
		err := n.st.View(func(t store.Txn) error {
			refs, readErr = t.Due(id, now, limit)
			if readErr != nil {
				return readErr
			}
			var err error
			moved, td, err = n.start(t, s, ss, refs)
			return err
		})
		if readErr != nil {
			return time.Time{}, fmt.Errorf("read schedule of %s: %w", id, readErr)
		}
		if err == nil && !td.empty() {
			moved += td.len()
			err = n.tidy(td)
		}
		if err != nil {
			return time.Time{}, err
		}
		if len(refs) < limit || moved == 0 {
			break
		}
	}
	var next time.Time
	err := n.st.View(func(t store.Txn) error {
		at, ok, err := t.NextDueAfter(id, now)
		if ok {
			next = at
		}
		return err
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("read schedule of %s: %w", id, err)
	}
	return next, nil
}

// start sends the due deliveries that may go: not already in flight, below
// max_in_flight, and first of their resource with nothing of the resource in
// flight, reading them in t. What can't go is returned to be tidied (see
// tidy). It returns how many refs it started, so dispatchSub knows, with
// the tidied, whether a rescan can find more.
func (n *Notifier) start(t store.Txn, s *state, ss *subState, refs []store.DueRef) (int, tidy, error) {
	moved := 0
	var td tidy
	for _, ref := range refs {
		k := key(ref.Subscription, ref.EventID)
		if _, ok := s.inflight[k]; ok {
			continue
		}
		if n.busy(ss) {
			return moved, td, nil
		}
		d, err := t.Delivery(ref.Subscription, ref.EventID)
		if store.IsBadRecord(err) {
			td.poisoned = append(td.poisoned, poisonedRef{ref, err})
			continue
		}
		if err != nil {
			return moved, td, err
		}
		if !ref.Current(d) {
			td.stale = append(td.stale, ref)
			continue
		}
		rk := resourceKey(d)
		if rk != "" {
			head, err := t.ResourceHead(d.Subscription, d.Resource)
			if err != nil {
				return moved, td, err
			}
			if head != "" && head != d.EventID {
				hd, err := t.Delivery(d.Subscription, head)
				if store.IsBadRecord(err) {
					// The head is unreadable: set it aside, and d
					// goes on the next pass.
					td.poisoned = append(td.poisoned, poisonedRef{store.DueRef{Subscription: d.Subscription, EventID: head}, err})
					continue
				}
				if err != nil {
					return moved, td, err
				}
				if hd != nil && hd.Open() {
					td.waiting = append(td.waiting, d)
				} else {
					// The head's delivery is gone (pruned) or
					// finished: its entry is stale and would block
					// the resource for good. Drop it; d is looked at
					// again on the next pass.
					td.orphans = append(td.orphans, orphan{d.Subscription, d.Resource, head})
				}
				continue
			}
			if s.busyResources[rk] > 0 {
				continue // sent once the resource's attempt is recorded
			}
		}
		s.inflight[k] = rk
		if rk != "" {
			s.busyResources[rk]++
		}
		n.mu.Lock()
		ss.inflight++
		n.mu.Unlock()
		moved++
		n.workers.Add(1)
		go func(sub *Subscription, client *http.Client, eventID string, build context.Context) {
			defer n.workers.Done()
			n.results <- n.attempt(client, sub, eventID, build)
		}(ss.sub, ss.client, d.EventID, ss.build)
	}
	return moved, td, nil
}

// attempt reads the event and sends it, on a worker goroutine: decoding
// the event off the Run goroutine keeps Run, the pipeline's one serial
// stage, to scheduling and commits.
// build is the context of the payload's evaluation: it ends at shutdown
// and when the subscription is removed or its payload changes.
func (n *Notifier) attempt(client *http.Client, sub *Subscription, eventID string, build context.Context) result {
	var e *event.Event
	err := n.st.View(func(t store.Txn) error {
		var err error
		e, err = t.Event(eventID)
		return err
	})
	if err == nil && e == nil {
		// Pruned from the log while queued: it can never be built again.
		err = errors.New("event is no longer in the log")
	}
	if err != nil {
		return result{sub: sub.ID, eventID: eventID, at: n.now(), outcome: OutcomePayload, err: err.Error(), permanent: true}
	}
	return send(n.sendCtx, build, client, sub, e, n.now)
}

// tidy is what start found that can't be sent now.
type tidy struct {
	// waiting deliveries have an open earlier delivery of their resource.
	waiting []*store.Delivery
	// stale schedule keys no longer match their delivery.
	stale []store.DueRef
	// orphans are resource-order entries whose delivery is gone or done.
	orphans []orphan
	// poisoned are deliveries that cannot be read, to be quarantined.
	poisoned []poisonedRef
}

type orphan struct{ sub, resource, eventID string }

func (td *tidy) len() int {
	return len(td.waiting) + len(td.stale) + len(td.orphans) + len(td.poisoned)
}

func (td *tidy) empty() bool { return td.len() == 0 }

// tidy parks waiting deliveries out of the schedule (finishing the earlier
// one requeues them) and drops stale schedule and order entries.
func (n *Notifier) tidy(td tidy) error {
	if err := n.quarantineDue(td.poisoned); err != nil {
		return err
	}
	now := n.now()
	err := n.st.Update(func(t store.Txn) error {
		for _, prev := range td.waiting {
			d := *prev
			d.State, d.UpdatedAt = store.Waiting, now
			if err := t.PutDelivery(&d, prev); err != nil {
				return err
			}
		}
		for _, ref := range td.stale {
			if err := t.DropDue(ref); err != nil {
				return err
			}
		}
		for _, o := range td.orphans {
			if err := t.DropResource(o.sub, o.resource, o.eventID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("tidy schedule: %w", err)
	}
	if len(td.stale)+len(td.orphans) > 0 {
		n.log.Warn("dropped stale schedule entries", "schedule", len(td.stale), "order", len(td.orphans))
	}
	return nil
}

// fanoutBatch is how many outbox events one transaction fans out.
const fanoutBatch = 256

// fanoutDeliveries is about how many deliveries one fan-out transaction
// creates: with many subscriptions a batch of events stops early, well
// inside what any backend takes in one transaction. A transaction refused
// as too big anyway is redone an event at a time (fanoutOneByOne).
const fanoutDeliveries = 2048

// fanout turns one batch of outbox events into one delivery per matching
// subscription, disabled ones included (they queue until re-enabled), and
// reports whether more may wait. One batch at a time, so that under a burst
// Run dispatches between batches instead of fanning out the whole backlog
// first. commit fans out in its own transaction too.
func (n *Notifier) fanout() (bool, error) {
	added := map[string]int{}
	var more bool
	subs := n.subList()
	err := n.st.Update(func(t store.Txn) error {
		clear(added)
		var err error
		more, err = n.fanoutTxn(t, subs, n.now(), added)
		return err
	})
	if poisoned(err) {
		// One event the batch carried is bad in a way fanoutEvent could
		// not catch alone (together too big for one transaction, say).
		return n.fanoutOneByOne(subs)
	}
	if err != nil {
		return false, fmt.Errorf("fan out: %w", err)
	}
	n.addPending(added)
	return more, nil
}

// fanoutAll empties the outbox, for operations that must see every
// delivery there will be.
func (n *Notifier) fanoutAll() error {
	for {
		more, err := n.fanout()
		if err != nil || !more {
			return err
		}
	}
}

// fanoutTxn fans out up to fanoutBatch outbox events within t, counting
// the deliveries it creates in added, and reports whether more may wait.
func (n *Notifier) fanoutTxn(t store.Txn, subs []*subState, now time.Time, added map[string]int) (bool, error) {
	ids, err := t.NextOutbox(fanoutBatch)
	if err != nil {
		return false, err
	}
	made := 0
	for _, id := range ids {
		if made >= fanoutDeliveries {
			return true, nil
		}
		before := sum(added)
		if err := n.fanoutEvent(t, id, subs, now, added); err != nil {
			return false, err
		}
		made += sum(added) - before
	}
	return len(ids) == fanoutBatch, nil
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// fanoutEvent turns one outbox event into its deliveries within t. An
// event that cannot be read, and a delivery the store refuses (a key over
// its limit), are quarantined, and the rest goes on: neither is written
// in part, so t stays good for the next event.
func (n *Notifier) fanoutEvent(t store.Txn, id string, subs []*subState, now time.Time, added map[string]int) error {
	e, err := t.EventMeta(id)
	if store.IsBadRecord(err) {
		n.log.Warn("event quarantined: it cannot be read; the others go on", "event_id", id, "error", err.Error())
		return quarantineEvent(t, id, err, now)
	}
	if err != nil {
		return err
	}
	if e != nil {
		for _, ss := range subs {
			if !ss.sub.Wants(e.Type) {
				continue
			}
			// A replay or redelivery may have created it already;
			// writing it again would leave a second schedule key.
			prev, err := t.Delivery(ss.sub.ID, e.ID)
			if err != nil && !store.IsBadRecord(err) {
				return err
			}
			if prev != nil || err != nil {
				continue // an unreadable one is quarantined by dispatch
			}
			d := newDelivery(ss.sub, e, now)
			err = t.PutDelivery(d, nil)
			if store.IsBadRecord(err) {
				n.log.Warn("delivery quarantined: the store cannot hold it; the others go on",
					"subscription", ss.sub.ID, "event_id", e.ID, "error", err.Error())
				err = quarantineNewDelivery(t, d, err, now)
			} else if err == nil {
				added[ss.sub.ID]++
			}
			if err != nil {
				return err
			}
		}
	}
	return t.RemoveFromOutbox(id)
}

// addPending counts new deliveries in the queue gauge.
func (n *Notifier) addPending(added map[string]int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for id, c := range added {
		n.countsOf(id)["pending"] += c
	}
}

func newDelivery(s *Subscription, e *event.Event, now time.Time) *store.Delivery {
	d := &store.Delivery{
		EventID:      e.ID,
		Subscription: s.ID,
		State:        store.Pending,
		NextAt:       now,
		CreatedAt:    now,
		UpdatedAt:    now,
		EventAt:      e.CreatedAt,
	}
	if s.Ordered {
		d.Resource = e.Resource()
	}
	return d
}
