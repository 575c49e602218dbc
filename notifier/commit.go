package notifier

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/pollrelay/pollrelay/store"
	"github.com/pollrelay/pollrelay/subscription"
)

// ErrNotFound is returned for an unknown event or subscription.
var ErrNotFound = errors.New("not found")

// change is one delivery written, for the queue gauge.
type change struct {
	prev, next *store.Delivery
}

// recordRetry is how often outcomes the store refused are offered again.
// A refused commit costs one statfs and no I/O, and no request is sent
// meanwhile, so retrying often costs nothing and resumes within a second
// of the disk having room again.
const recordRetry = time.Second

// commit records a batch of attempt outcomes in one transaction: each
// attempt, what comes next for its delivery, and the endpoint's health.
// New outbox events are fanned out in the same transaction: under load the
// fsync per commit is the pipeline's cost, and this halves the count.
// Outcomes an earlier commit could not record go first; batch may be nil
// to retry just those.
func (n *Notifier) commit(s *state, batch []result) {
	if len(s.unrecorded) > 0 {
		batch = append(s.unrecorded, batch...)
		s.unrecorded = nil
	}
	if len(batch) == 0 {
		return
	}
	err := n.commitBatch(s, batch, true)
	if err != nil && n.commitApart(s, batch, err) {
		err = nil // recorded in parts, a bad one quarantined
	}
	if err != nil {
		s.unrecorded = batch
	}
	if len(s.unrecorded) > 0 {
		// Most likely the disk is full and the store refuses writes.
		// Forgetting the outcomes would send every delivery again at once
		// and fail to record it again: a loop hammering receivers with
		// duplicates. Instead they are kept, their deliveries stay in
		// flight (so nothing is sent twice, and a subscription whose
		// max_in_flight is taken up sends nothing more), and Run offers
		// them again every recordRetry. Should pollrelay stop first, the
		// deliveries are still due in the store and are sent again after
		// the restart, with the same webhook-id.
		if !s.recordFailing {
			msg := "store refused the write"
			if err != nil {
				msg = err.Error()
			}
			n.log.Error("recording delivery outcomes failed; they are kept and recorded when the store takes writes again, and nothing more is sent meanwhile",
				"error", msg, "count", len(s.unrecorded))
			s.recordFailing = true
		}
		s.retryAt = n.now().Add(recordRetry)
		return
	}
	if s.recordFailing {
		n.log.Info("delivery outcomes recorded again", "count", len(batch))
		s.recordFailing = false
	}
}

// commitBatch records batch in one transaction, with a fan-out batch
// riding along when withFanout, and on success applies it to the
// in-memory state, gauges and metrics.
func (n *Notifier) commitBatch(s *state, batch []result, withFanout bool) error {
	now := n.now()
	subs := n.subList()
	var changes []change
	var recorded []result
	health := map[string]store.SubState{}
	disabledNow := map[string]string{}
	added := map[string]int{}
	err := n.st.Update(func(t store.Txn) error {
		// Update may run this again after a conflict: start clean.
		changes, recorded = changes[:0], recorded[:0]
		clear(health)
		clear(disabledNow)
		clear(added)
		for _, r := range batch {
			c, err := n.record(t, r, now, health, disabledNow)
			if err != nil {
				return err
			}
			if c != nil {
				changes = append(changes, *c)
				recorded = append(recorded, r)
			}
		}
		for sub, h := range health {
			if err := t.PutSubState(sub, &h); err != nil {
				return err
			}
		}
		if !withFanout {
			return nil
		}
		_, err := n.fanoutTxn(t, subs, now, added)
		return err
	})
	if err != nil {
		return err
	}
	n.release(s, batch)
	n.addPending(added)
	n.mu.Lock()
	for sub, h := range health {
		n.health[sub] = h
	}
	n.mu.Unlock()
	for sub, reason := range disabledNow {
		n.log.Warn("subscription disabled; deliveries queue until it is re-enabled", "subscription", sub, "reason", reason)
	}
	for _, r := range recorded {
		n.metrics.deliveries.WithLabelValues(r.sub, r.outcome).Inc()
		if r.outcome != OutcomePayload {
			n.metrics.duration.WithLabelValues(r.sub).Observe(r.latency.Seconds())
		}
	}
	for _, c := range changes {
		n.count(c.prev, c.next)
		n.logOutcome(c.next)
		// Lag is measured for the first round only: a redelivery asked for
		// later says nothing about how fast events reach receivers.
		if c.next.State == store.Delivered && c.next.Attempts == c.next.Round {
			n.metrics.lag.Observe(now.Sub(c.next.EventAt).Seconds())
		}
	}
	return nil
}

// record writes one attempt's outcome within t: the attempt, what comes
// next for its delivery, and its endpoint's health (in health). It returns
// nil for an outcome not to record (cancelled, or its delivery gone).
func (n *Notifier) record(t store.Txn, r result, now time.Time, health map[string]store.SubState, disabledNow map[string]string) (*change, error) {
	if r.canceled {
		return nil, nil
	}
	prev, err := t.Delivery(r.sub, r.eventID)
	if err != nil || prev == nil {
		return nil, err
	}
	d := *prev
	d.Attempts++
	d.Round++
	d.UpdatedAt = now
	d.LastStatus = r.status
	d.LastError = r.err
	if err := t.AddAttempt(r.eventID, store.Attempt{
		N: d.Attempts, Subscription: r.sub, At: r.at, Status: r.status,
		LatencyMS: float64(r.latency.Microseconds()) / 1000, Outcome: r.outcome,
		Error: r.err, Body: r.body,
	}); err != nil {
		return nil, err
	}
	n.decide(&d, r, now)
	if err := t.PutDelivery(&d, prev); err != nil {
		return nil, err
	}
	if !d.Open() && d.Resource != "" {
		if err := n.promote(t, &d, now); err != nil {
			return nil, err
		}
	}
	if r.outcome != OutcomePayload {
		h, ok := health[r.sub]
		if !ok {
			h = n.healthOf(r.sub)
		}
		var reason string
		h, reason = observe(h, r, n.disableAfter(r.sub))
		health[r.sub] = h
		if reason != "" {
			disabledNow[r.sub] = reason
		}
	}
	return &change{prev, &d}, nil
}

// answered frees the request slots (max_in_flight) of attempts that have
// their answer. Their deliveries stay in flight, and their resources busy,
// until the outcome is recorded (release): Run sends the next requests
// before it commits these outcomes, so the receiver works while the
// commit waits for its fsync, instead of one after the other.
func (n *Notifier) answered(s *state, batch []result) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, r := range batch {
		if _, ok := s.inflight[key(r.sub, r.eventID)]; !ok {
			continue
		}
		if ss := n.subs[r.sub]; ss != nil && ss.inflight > 0 {
			ss.inflight--
		}
	}
}

// release forgets the deliveries of a batch whose outcomes are recorded,
// so they and the next events of their resources may be sent.
func (n *Notifier) release(s *state, batch []result) {
	for _, r := range batch {
		k := key(r.sub, r.eventID)
		rk, ok := s.inflight[k]
		if !ok {
			continue
		}
		delete(s.inflight, k)
		if rk != "" {
			if s.busyResources[rk]--; s.busyResources[rk] <= 0 {
				delete(s.busyResources, rk)
			}
		}
	}
}

// decide sets what follows an attempt: delivered, dead, or the next retry.
// d.Round already counts this attempt, so after the immediate try (round
// 1) the wait is schedule[0], and the delivery is dead once every entry of
// the schedule has been used.
func (n *Notifier) decide(d *store.Delivery, r result, now time.Time) {
	if r.outcome == OutcomeSuccess {
		d.State = store.Delivered
		return
	}
	// A subscription removed while its attempt was out keeps the default
	// schedule, so its deliveries wait for it to come back rather than die.
	schedule, jitter := subscription.DefaultRetrySchedule, subscription.DefaultRetryJitter
	if ss := n.sub(d.Subscription); ss != nil {
		schedule, jitter = ss.sub.Schedule, ss.sub.Jitter
	}
	if r.permanent || d.Round > len(schedule) {
		d.State = store.Dead
		return
	}
	d.State = store.Retrying
	d.NextAt = now.Add(RetryDelay(schedule[d.Round-1], jitter, r.retryAfter))
}

// RetryDelay is the wait before a retry: the scheduled delay ±jitter (a
// fraction; 0.2 by default), so deliveries that failed together don't
// return as one synchronized wave, or exact with jitter 0 for recipes that
// reproduce a vendor's documented delays. A
// receiver's Retry-After can lengthen the wait but never beyond twice the
// scheduled delay, so it can slow retries down but neither hurry them (a
// shorter Retry-After leaves the jittered schedule alone) nor stall them.
func RetryDelay(scheduled time.Duration, jitter float64, retryAfter time.Duration) time.Duration {
	d := scheduled
	if jitter > 0 {
		d = time.Duration(float64(scheduled) * (1 - jitter + 2*jitter*rand.Float64()))
	}
	if retryAfter > d {
		d = min(retryAfter, 2*scheduled)
	}
	return d
}

// promote requeues the delivery of the same resource that waited behind d.
// One that cannot be read is quarantined, which requeues the one after
// it, so an unreadable record never holds its resource's later events
// back.
func (n *Notifier) promote(t store.Txn, d *store.Delivery, now time.Time) error {
	nextID, err := t.NextInResource(d.Subscription, d.Resource, d.EventID)
	if err != nil || nextID == "" {
		return err
	}
	prev, err := t.Delivery(d.Subscription, nextID)
	if store.IsBadRecord(err) {
		n.log.Warn("delivery quarantined: it cannot be read; the others go on",
			"subscription", d.Subscription, "event_id", nextID, "error", err.Error())
		return t.QuarantineDelivery(d.Subscription, nextID, time.Time{}, "promote: "+err.Error(), now)
	}
	if err != nil || prev == nil || prev.State != store.Waiting {
		return err
	}
	nd := *prev
	nd.State, nd.NextAt, nd.UpdatedAt = store.Pending, now, now
	return t.PutDelivery(&nd, prev)
}

func (n *Notifier) logOutcome(d *store.Delivery) {
	log := n.log.With("subscription", d.Subscription, "event_id", d.EventID)
	switch d.State {
	// Levels an alert can rely on: a failed attempt is a warning, a dead
	// letter (nothing more will be tried) an error, and a delivery that
	// got through after failing is the recovery.
	case store.Delivered:
		if d.Attempts > 1 {
			log.Info("delivered after failed attempts", "attempts", d.Attempts)
			return
		}
		log.Debug("delivered", "attempts", d.Attempts)
	case store.Dead:
		log.Error("delivery dead-lettered", "attempts", d.Attempts, "last_status", d.LastStatus, "last_error", d.LastError)
	case store.Retrying:
		log.Warn("delivery failed, will retry", "attempt", d.Attempts, "status", d.LastStatus,
			"error", d.LastError, "next_attempt_at", d.NextAt.UTC().Format(time.RFC3339))
	}
}

// gaugeState maps a delivery state to its pollrelay_delivery_queue label.
func gaugeState(state string) string {
	switch state {
	case store.Pending, store.Waiting:
		return "pending"
	case store.Retrying:
		return "retrying"
	case store.Dead:
		return "dead"
	}
	return ""
}

// countsOf returns a subscription's gauge counts; n.mu must be held.
func (n *Notifier) countsOf(sub string) map[string]int {
	c := n.counts[sub]
	if c == nil {
		c = map[string]int{}
		n.counts[sub] = c
	}
	return c
}

// count moves a delivery between queue gauge states; prev is nil for a new
// delivery.
func (n *Notifier) count(prev, next *store.Delivery) {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := n.countsOf(next.Subscription)
	if prev != nil {
		if g := gaugeState(prev.State); g != "" {
			c[g]--
		}
	}
	if g := gaugeState(next.State); g != "" {
		c[g]++
	}
}

// load reads the queue counts and subscription health from the store at
// start-up, repairing the schedule index on the way.
func (n *Notifier) load() error {
	counts := map[string]map[string]int{}
	repaired, err := n.st.LoadDeliveries(func(d *store.Delivery) error {
		c := counts[d.Subscription]
		if c == nil {
			c = map[string]int{}
			counts[d.Subscription] = c
		}
		if g := gaugeState(d.State); g != "" {
			c[g]++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("count deliveries: %w", err)
	}
	if repaired > 0 {
		n.log.Warn("repaired the delivery schedule index", "keys", repaired)
	}
	health := map[string]store.SubState{}
	err = n.st.View(func(t store.Txn) error {
		return t.SubStates(func(sub string, s *store.SubState, err error) error {
			if err != nil {
				// Health is rebuilt by the next attempts; a disabled flag
				// lost with it must be set again, which is said here.
				n.log.Error("subscription state cannot be read; starting from a clean state (re-disable it if it was disabled)",
					"subscription", sub, "error", err.Error())
				return nil
			}
			health[sub] = *s
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("read subscription states: %w", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.counts, n.health = counts, health
	return nil
}

func (n *Notifier) updateGauges() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for id := range n.subs {
		c := n.counts[id]
		for _, st := range queueStates {
			n.metrics.queue.WithLabelValues(id, st).Set(float64(c[st]))
		}
	}
}
