package postgres

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pollrelay/pollrelay/store"
)

// Quarantine sets q aside at now: a new record, or one more sighting of
// an existing one. The item id is identified whole and kept cut (see
// store.CutID). Counted in pollrelay_quarantined_total once committed.
func (t *Txn) Quarantine(q store.Quarantined, now time.Time) error { return store.SetAside(t, q, now) }

// NoteQuarantined counts n more records of kind set aside without a
// record of their own.
func (t *Txn) NoteQuarantined(kind string, n int) {
	if n <= 0 {
		return
	}
	if t.quarantined == nil {
		t.quarantined = map[string]int{}
	}
	t.quarantined[kind] += n
}

// QuarantineRecord returns a quarantine record, or nil.
func (t *Txn) QuarantineRecord(id string) (*store.Quarantined, error) {
	v, err := t.body("read quarantine "+id, "SELECT body FROM quarantine WHERE id = $1", []byte(id))
	if err != nil || v == nil {
		return nil, err
	}
	var q store.Quarantined
	if err := json.Unmarshal(v, &q); err != nil {
		return nil, store.Bad(fmt.Errorf("decode quarantine %s: %w", id, err))
	}
	return &q, nil
}

// QuarantineRecords calls fn for the records after the id after (empty =
// from the first), in id order, until fn returns false. A record that
// cannot be decoded is skipped.
func (t *Txn) QuarantineRecords(after string, fn func(*store.Quarantined) bool) error {
	cursor, from := []byte(after), after != ""
	var p page
	for {
		sql, args := "SELECT body, id FROM quarantine ORDER BY id LIMIT $1", []any{rowPage}
		if from {
			sql, args = "SELECT body, id FROM quarantine WHERE id > $2 ORDER BY id LIMIT $1", []any{rowPage, cursor}
		}
		if err := t.query("read quarantine", sql, args, func(rows pgx.Rows) error { return p.fill(rows, false) }); err != nil {
			return err
		}
		n := p.len()
		for row := range n {
			var q store.Quarantined
			if json.Unmarshal(p.at(row, 0), &q) != nil {
				continue
			}
			if !fn(&q) {
				return nil
			}
		}
		if n < rowPage {
			return nil
		}
		cursor, from = own(p.at(n-1, 1)), true
	}
}

// DeleteQuarantine forgets a quarantine record.
func (t *Txn) DeleteQuarantine(id string) error {
	return t.write("delete quarantine "+id, "DELETE FROM quarantine WHERE id = $1", 0, []byte(id))
}

// QuarantineDelivery sets a stored delivery aside: its record moves into
// the quarantine record, which a retry puts back, it leaves the schedule
// and its resource's order (both are its row's), and the delivery that
// waited behind it in the order is queued now, as when a delivery
// finishes. A later one that cannot be read either is set aside in turn.
// at, where Badger finds the schedule entry, is not needed here.
func (t *Txn) QuarantineDelivery(sub, eventID string, _ time.Time, reason string, now time.Time) error {
	for eventID != "" {
		next, err := t.quarantineDelivery(sub, eventID, reason, now)
		if err != nil {
			return fmt.Errorf("quarantine delivery %s/%s: %w", sub, eventID, err)
		}
		eventID = next
	}
	return nil
}

// quarantineDelivery sets one delivery aside and releases the next of its
// resource; it returns that next one's id when it cannot be read.
func (t *Txn) quarantineDelivery(sub, eventID, reason string, now time.Time) (string, error) {
	var p page
	err := t.query("read delivery "+sub+"/"+eventID,
		"SELECT body, resource, CASE WHEN ordered THEN ''::bytea END FROM deliveries WHERE sub = $1 AND event_id = $2",
		[]any{[]byte(sub), []byte(eventID)}, func(rows pgx.Rows) error { return p.fill(rows, false) })
	if err != nil || p.len() == 0 {
		return "", err // gone, or set aside already
	}
	raw, resource, ordered := p.at(0, 0), string(p.at(0, 1)), p.cells[2].n >= 0
	q := store.Quarantined{Kind: store.QuarantineDelivery, Reason: reason, EventID: eventID, Subscription: sub}
	if json.Valid(raw) {
		q.Raw = append(json.RawMessage{}, raw...)
	}
	if err := t.Quarantine(q, now); err != nil {
		return "", err
	}
	// The next in the order is read before the row goes: its place is
	// the row's sequence.
	next := ""
	if ordered {
		if next, err = t.NextInResource(sub, resource, eventID); err != nil {
			return "", err
		}
	}
	if err := t.write("delete delivery "+sub+"/"+eventID, "DELETE FROM deliveries WHERE sub = $1 AND event_id = $2", 0,
		[]byte(sub), []byte(eventID)); err != nil {
		return "", err
	}
	if next == "" {
		return "", nil
	}
	d, err := t.Delivery(sub, next)
	if store.IsBadRecord(err) {
		return next, nil
	}
	if err != nil || d == nil || d.State != store.Waiting {
		return "", err
	}
	nd := *d
	nd.State, nd.NextAt, nd.UpdatedAt = store.Pending, now, now
	return "", t.PutDelivery(&nd, d)
}
