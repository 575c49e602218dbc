package notifier

import (
	"context"
	"fmt"
	"path"
	"slices"
	"time"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/glob"
	"github.com/pollrelay/pollrelay/store"
)

// PingType is the event type of the test event Ping sends.
const PingType = "pollrelay.ping"

// PingSource is the source named in a ping's envelope.
const PingSource = "pollrelay"

// replayChunk is how many events a replay writes per transaction: enough to
// amortise the fsync, few enough for a backend's transaction size limit.
const replayChunk = 512

// Redeliver sends every delivery of an event again, whatever its state
// (dead, delivered, retrying): each is queued as pending now with a fresh
// retry schedule, and keeps its attempt count so the attempt log goes on
// where it was. An event with no delivery (fanned out before any
// subscription wanted it) is fanned out to the subscriptions that match it
// now. With ordering: resource a redelivery takes the event's place in its
// resource's order, so later open events of the same item wait for it. It
// returns how many deliveries it queued; ErrNotFound for an unknown event.
func (n *Notifier) Redeliver(ctx context.Context, eventID string) (int, error) {
	var queued int
	err := n.do(ctx, func(*state) error {
		// The event may still be in the outbox; fan it out first so the
		// deliveries found below are all there will be.
		if err := n.fanoutAll(); err != nil {
			return err
		}
		subs := n.knownSubs()
		now := n.now()
		var changes []change
		err := n.st.Update(func(t store.Txn) error {
			changes = changes[:0]
			e, err := t.Event(eventID)
			if err != nil {
				return err
			}
			if e == nil {
				return ErrNotFound
			}
			for _, sub := range subs {
				prev, err := t.Delivery(sub, eventID)
				if err != nil {
					return err
				}
				if prev == nil {
					continue
				}
				d := n.requeue(prev, e, now)
				if err := t.PutDelivery(d, prev); err != nil {
					return err
				}
				changes = append(changes, change{prev, d})
			}
			if len(changes) > 0 {
				return nil
			}
			for _, ss := range n.subList() {
				if !ss.sub.Wants(e.Type) {
					continue
				}
				d := newDelivery(ss.sub, e, now)
				if err := t.PutDelivery(d, nil); err != nil {
					return err
				}
				changes = append(changes, change{nil, d})
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("redeliver %s: %w", eventID, err)
		}
		n.counted(changes)
		queued = len(changes)
		n.log.Info("redelivery queued", "event_id", eventID, "deliveries", queued)
		return nil
	})
	return queued, err
}

// requeue returns prev queued again now, as the first attempt of a new
// round. A delivery in flight keeps its place in flight: its outcome is
// recorded as the new round's first attempt.
func (n *Notifier) requeue(prev *store.Delivery, e *event.Event, now time.Time) *store.Delivery {
	d := *prev
	d.State, d.NextAt, d.UpdatedAt = store.Pending, now, now
	d.Round = 0
	if ss := n.sub(d.Subscription); ss != nil {
		// Follow the subscription's ordering as it is now.
		d.Resource = ""
		if ss.sub.Ordered && e.Kind != event.Ping {
			d.Resource = e.Resource()
		}
	}
	return &d
}

// counted applies written deliveries to the queue gauge.
func (n *Notifier) counted(changes []change) {
	for _, c := range changes {
		n.count(c.prev, c.next)
	}
}

// Ping sends a test event to one subscription through the normal pipeline
// (signature, retries; a disabled subscription queues it): a
// pollrelay.ping in pollrelay's envelope, or the subscription's
// test_event reshaped by its payload program. The event is logged like any other, so its
// attempts show in the API; it returns its id. Pings are unordered: a
// failing earlier ping never holds a new one back.
func (n *Notifier) Ping(ctx context.Context, subID string) (string, error) {
	var id string
	err := n.do(ctx, func(*state) error {
		ss := n.sub(subID)
		if ss == nil {
			return fmt.Errorf("ping %s: %w", subID, ErrNotFound)
		}
		now := n.now()
		typ := PingType
		if ss.sub.TestEvent != "" {
			typ = ss.sub.TestEvent
		}
		e := &event.Event{
			ID:        event.NewID(now),
			Type:      typ,
			Kind:      event.Ping,
			Source:    PingSource,
			ItemID:    subID,
			Previous:  event.Null,
			Current:   event.Null,
			CreatedAt: now,
		}
		d := newDelivery(ss.sub, e, now)
		d.Resource = ""
		err := n.st.Update(func(t store.Txn) error {
			if err := t.LogEvent(e); err != nil {
				return err
			}
			return t.PutDelivery(d, nil)
		})
		if err != nil {
			return fmt.Errorf("ping %s: %w", subID, err)
		}
		n.count(nil, d)
		id = e.ID
		return nil
	})
	return id, err
}

// Replay sends a subscription every logged event created in [since, until)
// whose type matches one of types (globs; empty = all) and that the
// subscription wants. Each goes out with its original event id, so
// receivers that already have it can recognise the webhook-id. An event the
// subscription already has a delivery for is requeued as Redeliver does;
// otherwise a delivery is created. Pings are not replayed. A zero since or
// until leaves that end open. It returns how many deliveries it queued.
func (n *Notifier) Replay(ctx context.Context, subID string, since, until time.Time, types []string) (int, error) {
	for _, g := range types {
		if !glob.Valid(g) {
			return 0, fmt.Errorf("replay %s: type %q: %w", subID, g, path.ErrBadPattern)
		}
	}
	if !until.IsZero() && !until.After(since) {
		return 0, fmt.Errorf("replay %s: until (%s) must be after since (%s)", subID,
			until.UTC().Format(time.RFC3339), since.UTC().Format(time.RFC3339))
	}
	var queued int
	err := n.do(ctx, func(*state) error {
		ss := n.sub(subID)
		if ss == nil {
			return fmt.Errorf("replay %s: %w", subID, ErrNotFound)
		}
		if err := n.fanoutAll(); err != nil {
			return err
		}
		var events []*event.Event
		err := n.st.View(func(t store.Txn) error {
			return t.EventsBetween(since, until, func(e *event.Event) (bool, error) {
				if e.Kind != event.Ping && ss.sub.Wants(e.Type) && glob.MatchAny(types, e.Type) {
					// Keep what a delivery needs, not the object.
					events = append(events, &event.Event{
						ID: e.ID, Type: e.Type, Kind: e.Kind, Source: e.Source,
						ItemID: e.ItemID, CreatedAt: e.CreatedAt,
					})
				}
				return true, nil
			})
		})
		if err != nil {
			return fmt.Errorf("replay %s: read events: %w", subID, err)
		}
		for chunk := range slices.Chunk(events, replayChunk) {
			c, err := n.replayChunk(ss.sub, chunk)
			queued += c
			if err != nil {
				return fmt.Errorf("replay %s: %w", subID, err)
			}
		}
		n.log.Info("replay queued", "subscription", subID, "deliveries", queued)
		return nil
	})
	return queued, err
}

// replayChunk writes one transaction of a replay.
func (n *Notifier) replayChunk(sub *Subscription, events []*event.Event) (int, error) {
	now := n.now()
	var changes []change
	err := n.st.Update(func(t store.Txn) error {
		changes = changes[:0]
		for _, e := range events {
			prev, err := t.Delivery(sub.ID, e.ID)
			if err != nil {
				return err
			}
			d := newDelivery(sub, e, now)
			if prev != nil {
				d = n.requeue(prev, e, now)
			}
			if err := t.PutDelivery(d, prev); err != nil {
				return err
			}
			changes = append(changes, change{prev, d})
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	n.counted(changes)
	return len(changes), nil
}
