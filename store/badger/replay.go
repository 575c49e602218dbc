package badger

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/tidwall/gjson"

	"github.com/pollrelay/pollrelay/event"
)

// LogEvent writes e to the event log but not to the outbox: for an event
// addressed to one subscription (a ping), which fan-out must not send to
// every other subscription that matches its type. The caller writes its
// delivery in the same transaction.
func (t *Txn) LogEvent(e *event.Event) error {
	v, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode event %s: %w", e.ID, err)
	}
	return wrap(t.set(eventKey(e.ID), v), "write event %s", e.ID)
}

// EventMeta returns a logged event without its states and object, or nil:
// what fan-out needs (type, item, time). It picks the fields out of the
// record without decoding the rest, which fan-out did for every event and
// which was a fifth of the notifier loop's time; the record was encoded
// by AddEvent, so it is known to be valid.
func (t *Txn) EventMeta(id string) (*event.Event, error) {
	v, err := t.get(eventKey(id))
	if err != nil || v == nil {
		return nil, wrap(err, "read event %s", id)
	}
	f := gjson.GetManyBytes(v, "id", "type", "kind", "source", "item_id", "created_at")
	for _, r := range f[:5] {
		if r.Exists() && r.Type != gjson.String {
			return nil, bad(fmt.Errorf("decode event %s: %s is not a string", id, r.Raw))
		}
	}
	var at time.Time
	if f[5].Exists() {
		if at, err = time.Parse(time.RFC3339Nano, f[5].String()); err != nil {
			return nil, bad(fmt.Errorf("decode event %s: created_at: %w", id, err))
		}
	}
	return &event.Event{ID: f[0].String(), Type: f[1].String(), Kind: f[2].String(), Source: f[3].String(), ItemID: f[4].String(), CreatedAt: at}, nil
}

// EventsBetween calls fn for logged events created in [since, until),
// oldest first, until fn returns false. A zero since means from the first
// event, a zero until means up to the newest.
//
// Event ids are "evt_" + ULID, whose first 48 bits are the creation time in
// milliseconds, so the scan seeks straight to since and stops once ids pass
// until instead of reading the whole log.
func (t *Txn) EventsBetween(since, until time.Time, fn func(*event.Event) (bool, error)) error {
	prefix := []byte("e/")
	var start []byte
	if !since.IsZero() && since.UnixMilli() > 0 {
		var lo ulid.ULID
		if err := lo.SetTime(ulid.Timestamp(since)); err == nil {
			start = eventKey("evt_" + lo.String())
		}
	}
	return t.scan(prefix, start, false, func(k, v []byte) (bool, error) {
		if !until.IsZero() {
			id := strings.TrimPrefix(string(k[len(prefix):]), "evt_")
			if u, err := ulid.ParseStrict(id); err == nil && int64(u.Time()) > until.UnixMilli() {
				return false, nil
			}
		}
		var e event.Event
		if err := json.Unmarshal(v, &e); err != nil {
			return false, fmt.Errorf("decode event %s: %w", k, err)
		}
		if e.CreatedAt.Before(since) || (!until.IsZero() && !e.CreatedAt.Before(until)) {
			return true, nil
		}
		return fn(&e)
	})
}
