package badger

import (
	"encoding/json"
	"fmt"

	"github.com/pollrelay/pollrelay/event"
)

func eventKey(id string) []byte  { return []byte("e/" + id) }
func outboxKey(id string) []byte { return []byte("o/" + id) }

var outboxPrefix = []byte("o/")

// AddEvent writes an event to the log and the outbox. Callers put it in the
// same transaction as the state change that caused it.
func (t *Txn) AddEvent(e *event.Event) error {
	v, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode event %s: %w", e.ID, err)
	}
	if err := t.set(eventKey(e.ID), v); err != nil {
		return fmt.Errorf("write event %s: %w", e.ID, err)
	}
	if err := t.set(outboxKey(e.ID), nil); err != nil {
		return fmt.Errorf("write outbox %s: %w", e.ID, err)
	}
	t.events++
	return nil
}

// Event returns a logged event, or nil.
func (t *Txn) Event(id string) (*event.Event, error) {
	v, err := t.get(eventKey(id))
	if err != nil || v == nil {
		return nil, wrap(err, "read event %s", id)
	}
	var e event.Event
	if err := json.Unmarshal(v, &e); err != nil {
		return nil, bad(fmt.Errorf("decode event %s: %w", id, err))
	}
	return &e, nil
}

// Events calls fn for logged events, newest first, starting after the id
// `before` (empty = newest), until fn returns false.
func (t *Txn) Events(before string, fn func(*event.Event) bool) error {
	prefix := []byte("e/")
	var start []byte
	if before != "" {
		// The greatest key below before: before itself minus nothing; the
		// iterator starts at it, so skip it when found.
		start = eventKey(before)
	}
	return t.scan(prefix, start, true, func(k, v []byte) (bool, error) {
		if before != "" && string(k) == string(start) {
			return true, nil
		}
		var e event.Event
		if err := json.Unmarshal(v, &e); err != nil {
			return false, fmt.Errorf("decode event %s: %w", k, err)
		}
		return fn(&e), nil
	})
}

// Outbox returns up to limit event ids waiting for fan-out, oldest first.
func (t *Txn) Outbox(limit int) ([]string, error) {
	var ids []string
	err := t.scan(outboxPrefix, nil, false, func(k, _ []byte) (bool, error) {
		ids = append(ids, string(k[len(outboxPrefix):]))
		return len(ids) < limit, nil
	})
	return ids, err
}

// ReturnToOutbox puts a logged event back in the outbox, to be fanned out
// again.
func (t *Txn) ReturnToOutbox(id string) error {
	if err := t.set(outboxKey(id), nil); err != nil {
		return fmt.Errorf("write outbox %s: %w", id, err)
	}
	t.events++
	return nil
}

// RemoveFromOutbox marks an event as fanned out.
func (t *Txn) RemoveFromOutbox(id string) error {
	return wrap(t.del(outboxKey(id)), "delete outbox %s", id)
}
