package postgres

import (
	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/store"
)

// prefetched holds rows a transaction read ahead, in the same round trip
// as the read that named them: the deliveries a schedule read found due
// with their resources' heads, and the events an outbox read found. The
// notifier reads each of them next, one by one; served from here, a
// delivery costs no round trip per read, which on a network (or a
// loopback) is most of what it costs.
//
// A transaction sees one snapshot, so what it read ahead stays what a read
// would return, except for what it writes itself: deliveries and heads are
// kept only in read-only transactions, and events, which a transaction
// never changes once logged, are forgotten when it logs one.
type prefetched struct {
	deliveries map[deliveryKey]*store.Delivery
	heads      map[deliveryKey]string // (sub, resource) → head event id, "" for none
	events     map[string]*event.Event
}

type deliveryKey struct{ sub, id string }

func (t *Txn) prefetchedDelivery(sub, id string) (*store.Delivery, bool) {
	d, ok := t.ahead.deliveries[deliveryKey{sub, id}]
	if !ok {
		return nil, false
	}
	c := *d
	return &c, true
}

func (t *Txn) prefetchedHead(sub, resource string) (string, bool) {
	h, ok := t.ahead.heads[deliveryKey{sub, resource}]
	return h, ok
}

func (t *Txn) prefetchedEvent(id string) (*event.Event, bool) {
	e, ok := t.ahead.events[id]
	if !ok {
		return nil, false
	}
	if e == nil {
		return nil, true
	}
	c := *e
	return &c, true
}

func (t *Txn) keepDelivery(d *store.Delivery) {
	if t.ahead.deliveries == nil {
		t.ahead.deliveries = map[deliveryKey]*store.Delivery{}
	}
	t.ahead.deliveries[deliveryKey{d.Subscription, d.EventID}] = d
}

func (t *Txn) keepHead(sub, resource, head string) {
	if t.ahead.heads == nil {
		t.ahead.heads = map[deliveryKey]string{}
	}
	t.ahead.heads[deliveryKey{sub, resource}] = head
}

// keepEvent records the outbox event id as read ahead: e, or nil when the
// event is not in the log.
func (t *Txn) keepEvent(id string, e *event.Event) {
	if t.ahead.events == nil {
		t.ahead.events = map[string]*event.Event{}
	}
	t.ahead.events[id] = e
}
