package notifier

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/pollrelay/pollrelay/store"
)

// SubscriptionStats is a subscription's delivery health and queue, as the
// management API shows it.
type SubscriptionStats struct {
	Disabled bool `json:"disabled"`
	// DisabledReason says why: a 410, disable_after, or the API.
	DisabledReason string    `json:"disabled_reason,omitempty"`
	DisabledAt     time.Time `json:"disabled_at,omitzero"`
	// FailureCount counts consecutive failed attempts; a 2xx resets it.
	FailureCount       int       `json:"failure_count"`
	FirstFailureAt     time.Time `json:"first_failure_at,omitzero"`
	LastTriggeredAt    time.Time `json:"last_triggered_at,omitzero"`
	LastResponseStatus int       `json:"last_response_status"`
	// QueueLength counts deliveries not yet attempted (pending, or waiting
	// behind an earlier event of the same resource).
	QueueLength int `json:"queue_length"`
	// RetryQueueLength counts deliveries that failed and wait for a retry.
	RetryQueueLength int `json:"retry_queue_length"`
	// DeadCount counts dead-lettered deliveries.
	DeadCount int `json:"dead_count"`
}

// Disable reasons recorded in SubscriptionStats.DisabledReason.
const (
	ReasonGone   = "endpoint answered 410 Gone"
	ReasonAPI    = "disabled through the API"
	reasonFailed = "nothing but failures for %s (disable_after)"
)

// Stats returns a configured subscription's health and queue lengths; false
// for an unknown subscription. It reads memory only, so the API can call it
// for every subscription it lists.
func (n *Notifier) Stats(subID string) (SubscriptionStats, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.subs[subID]; !ok {
		return SubscriptionStats{}, false
	}
	h, c := n.health[subID], n.counts[subID]
	return SubscriptionStats{
		Disabled:           h.Disabled,
		DisabledReason:     h.DisabledReason,
		DisabledAt:         h.DisabledAt,
		FailureCount:       h.FailureCount,
		FirstFailureAt:     h.FirstFailureAt,
		LastTriggeredAt:    h.LastTriggeredAt,
		LastResponseStatus: h.LastResponseStatus,
		QueueLength:        c["pending"],
		RetryQueueLength:   c["retrying"],
		DeadCount:          c["dead"],
	}, true
}

// SetDisabled disables or re-enables a subscription. A disabled
// subscription keeps queueing deliveries but is sent nothing. Re-enabling
// clears the failure run, so disable_after counts afresh, and sends
// whatever queued at once (retries whose time passed included).
func (n *Notifier) SetDisabled(ctx context.Context, subID string, disabled bool) error {
	return n.do(ctx, func(*state) error {
		if n.sub(subID) == nil {
			return fmt.Errorf("subscription %s: %w", subID, ErrNotFound)
		}
		h := n.healthOf(subID)
		if h.Disabled == disabled {
			return nil
		}
		now := n.now()
		if disabled {
			h.Disabled, h.DisabledAt, h.DisabledReason = true, now, ReasonAPI
		} else {
			h.Disabled, h.DisabledAt, h.DisabledReason = false, time.Time{}, ""
			h.FailureCount, h.FirstFailureAt = 0, time.Time{}
		}
		if err := n.st.Update(func(t store.Txn) error { return t.PutSubState(subID, &h) }); err != nil {
			return fmt.Errorf("set subscription %s disabled=%t: %w", subID, disabled, err)
		}
		n.mu.Lock()
		n.health[subID] = h
		n.mu.Unlock()
		if disabled {
			n.log.Warn("subscription disabled; deliveries queue until it is re-enabled", "subscription", subID, "reason", ReasonAPI)
		} else {
			n.log.Info("subscription enabled", "subscription", subID)
		}
		return nil
	})
}

// Forget drops the health of a deleted subscription, so a new one of the
// same name starts enabled and with no failures. The API deletes the
// stored state with the subscription; Forget runs on the loop, after every
// outcome recorded before it, and deletes the state such an outcome wrote
// again. A subscription still in the set keeps its health.
func (n *Notifier) Forget(ctx context.Context, subID string) error {
	return n.do(ctx, func(*state) error {
		if n.sub(subID) != nil {
			return nil
		}
		if err := n.st.Update(func(t store.Txn) error { return t.DeleteSubState(subID) }); err != nil {
			return fmt.Errorf("forget subscription %s: %w", subID, err)
		}
		n.mu.Lock()
		delete(n.health, subID)
		n.mu.Unlock()
		return nil
	})
}

// observe is what an attempt's outcome does to the endpoint's health. It
// returns the new health and, when the attempt disables the subscription,
// why. Payload errors never reach the endpoint and must not be passed in.
func observe(h store.SubState, r result, disableAfter time.Duration) (store.SubState, string) {
	h.LastTriggeredAt, h.LastResponseStatus = r.at, r.status
	if r.outcome == OutcomeSuccess {
		h.FailureCount, h.FirstFailureAt = 0, time.Time{}
		return h, ""
	}
	h.FailureCount++
	if h.FirstFailureAt.IsZero() {
		h.FirstFailureAt = r.at
	}
	if h.Disabled {
		return h, ""
	}
	var reason string
	switch {
	case r.status == http.StatusGone:
		reason = ReasonGone
	case disableAfter > 0 && r.at.Sub(h.FirstFailureAt) >= disableAfter:
		reason = fmt.Sprintf(reasonFailed, disableAfter)
	default:
		return h, ""
	}
	h.Disabled, h.DisabledAt, h.DisabledReason = true, r.at, reason
	return h, reason
}

// healthOf returns a copy of a subscription's health.
func (n *Notifier) healthOf(sub string) store.SubState {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.health[sub]
}

func (n *Notifier) disabled(sub string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.health[sub].Disabled
}

func (n *Notifier) disableAfter(sub string) time.Duration {
	if ss := n.sub(sub); ss != nil {
		return ss.sub.DisableAfter
	}
	return 0
}
