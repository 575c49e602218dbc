package notifier

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/pollrelay/pollrelay/store"
)

// ErrNotFound is returned for an unknown event or delivery.
var ErrNotFound = errors.New("not found")

// commit records a batch of attempt outcomes in one transaction and
// schedules what comes next for each delivery.
func (n *Notifier) commit(s *state, batch []result) {
	now := n.now()
	type change struct {
		prev, next *store.Delivery
	}
	var changes []change
	var recorded []result
	err := n.st.Update(func(t *store.Txn) error {
		changes, recorded = changes[:0], recorded[:0]
		for _, r := range batch {
			if r.canceled {
				continue
			}
			prev, err := t.Delivery(r.sub, r.eventID)
			if err != nil {
				return err
			}
			if prev == nil {
				continue
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
				return err
			}
			n.decide(&d, r, now)
			if err := t.PutDelivery(&d, prev); err != nil {
				return err
			}
			if !d.Open() && d.Resource != "" {
				if err := n.promote(t, &d, now); err != nil {
					return err
				}
			}
			changes = append(changes, change{prev, &d})
			recorded = append(recorded, r)
		}
		return nil
	})
	for _, r := range batch {
		k := key(r.sub, r.eventID)
		if s.inflight[k] {
			delete(s.inflight, k)
			n.mu.Lock()
			if ss := n.subs[r.sub]; ss != nil {
				ss.inflight--
			}
			n.mu.Unlock()
		}
	}
	if err != nil {
		// The deliveries stay due as they were and are attempted again:
		// a duplicate at worst, never a loss.
		n.log.Error("recording delivery outcomes failed", "error", err.Error(), "count", len(batch))
		return
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
}

// decide sets what follows an attempt: delivered, dead, or the next retry.
func (n *Notifier) decide(d *store.Delivery, r result, now time.Time) {
	if r.outcome == OutcomeSuccess {
		d.State = store.Delivered
		return
	}
	ss := n.sub(d.Subscription)
	var schedule []time.Duration
	if ss != nil {
		schedule = ss.sub.Schedule
	}
	if r.permanent || d.Round > len(schedule) {
		d.State = store.Dead
		return
	}
	d.State = store.Retrying
	d.NextAt = now.Add(RetryDelay(schedule[d.Round-1], r.retryAfter))
}

// RetryDelay is the wait before a retry: the scheduled delay ±20%, so
// deliveries that failed together don't return as one wave; a receiver's
// Retry-After is honoured but kept between the scheduled delay and twice it.
func RetryDelay(scheduled, retryAfter time.Duration) time.Duration {
	d := time.Duration(float64(scheduled) * (0.8 + 0.4*rand.Float64()))
	if retryAfter > 0 {
		d = min(max(retryAfter, scheduled), 2*scheduled)
	}
	return d
}

// promote requeues the delivery of the same resource that waited behind d.
func (n *Notifier) promote(t *store.Txn, d *store.Delivery, now time.Time) error {
	nextID, err := t.NextInResource(d.Subscription, d.Resource, d.EventID)
	if err != nil || nextID == "" {
		return err
	}
	prev, err := t.Delivery(d.Subscription, nextID)
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
	case store.Delivered:
		log.Debug("delivered", "attempts", d.Attempts)
	case store.Dead:
		log.Warn("delivery dead-lettered", "attempts", d.Attempts, "last_status", d.LastStatus, "last_error", d.LastError)
	case store.Retrying:
		log.Info("delivery failed, will retry", "attempt", d.Attempts, "status", d.LastStatus,
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

func (n *Notifier) count(prev, next *store.Delivery) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ss := n.subs[next.Subscription]
	if ss == nil {
		return
	}
	if prev != nil {
		if g := gaugeState(prev.State); g != "" {
			ss.counts[g]--
		}
	}
	if g := gaugeState(next.State); g != "" {
		ss.counts[g]++
	}
}

// loadCounts sets the queue gauges from the store at startup.
func (n *Notifier) loadCounts() error {
	counts := map[string]map[string]int{}
	err := n.st.View(func(t *store.Txn) error {
		return t.Deliveries(func(d *store.Delivery) error {
			if g := gaugeState(d.State); g != "" {
				if counts[d.Subscription] == nil {
					counts[d.Subscription] = map[string]int{}
				}
				counts[d.Subscription][g]++
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("count deliveries: %w", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for id, ss := range n.subs {
		if c, ok := counts[id]; ok {
			ss.counts = c
		}
	}
	return nil
}

func (n *Notifier) updateGauges() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, ss := range n.subs {
		for _, st := range queueStates {
			n.metrics.queue.WithLabelValues(ss.sub.ID, st).Set(float64(ss.counts[st]))
		}
	}
}
