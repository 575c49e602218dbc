package postgres

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pollrelay/pollrelay/store"
)

// maxResource bounds Delivery.Resource: a source name and an id.
const maxResource = 2*store.MaxKeyPart + 1

// deliveryCols are what readDelivery takes.
const deliveryCols = "body, sub, event_id, resource"

// readDelivery decodes a delivery row; the key columns and the resource
// are taken as stored, which JSON may not have kept byte for byte.
func readDelivery(p *page, row int) (*store.Delivery, error) {
	var d store.Delivery
	if err := json.Unmarshal(p.at(row, 0), &d); err != nil {
		return nil, fmt.Errorf("decode delivery %s/%s: %w", p.at(row, 1), p.at(row, 2), err)
	}
	d.Subscription, d.EventID, d.Resource = string(p.at(row, 1)), string(p.at(row, 2)), string(p.at(row, 3))
	return &d, nil
}

// Delivery returns a delivery, or nil.
func (t *Txn) Delivery(sub, eventID string) (*store.Delivery, error) {
	if d, ok := t.prefetchedDelivery(sub, eventID); ok {
		return d, nil
	}

	var p page
	err := t.query("read delivery "+sub+"/"+eventID,
		"SELECT "+deliveryCols+" FROM deliveries WHERE sub = $1 AND event_id = $2",
		[]any{[]byte(sub), []byte(eventID)}, func(rows pgx.Rows) error { return p.fill(rows, false) })
	if err != nil || p.len() == 0 {
		return nil, err
	}
	d, err := readDelivery(&p, 0)
	if err != nil {
		return nil, store.Bad(err)
	}
	return d, nil
}

// putDeliverySQL writes a delivery. A new one takes its event's sequence
// (0 when the event is not logged), its place in the resource's order. $8 and $9 keep the schedule entry
// and the order entry as they are, where the delivery did not move in
// either (see PutDelivery).
const putDeliverySQL = `INSERT INTO deliveries (sub, event_id, seq, state, due, resource, ordered, body)
VALUES ($1, $2, coalesce((SELECT seq FROM events WHERE id = $2), 0), $3, $4, $5, $6, $7)
ON CONFLICT (sub, event_id) DO UPDATE SET
	state = excluded.state,
	due = CASE WHEN $8 THEN deliveries.due ELSE excluded.due END,
	ordered = CASE WHEN $9 THEN deliveries.ordered ELSE excluded.ordered END,
	resource = excluded.resource,
	body = excluded.body`

// PutDelivery stores d; prev is d as stored before (nil when new). The
// schedule and the order are columns of the delivery's row, set from d;
// where prev says d kept its due time (or its place in its resource's
// order) the column is left as it is, as Badger leaves its index entry,
// so an entry dropped as stale (DropDue, DropResource) stays dropped.
func (t *Txn) PutDelivery(d *store.Delivery, prev *store.Delivery) error {
	v, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode delivery %s/%s: %w", d.Subscription, d.EventID, err)
	}
	errs := []error{store.CheckKeyPart("subscription name", d.Subscription), store.CheckKeyPart("event id", d.EventID)}
	if len(d.Resource) > maxResource {
		errs = append(errs, store.Bad(fmt.Errorf("resource is %d bytes, over the %d-byte limit", len(d.Resource), maxResource)))
	}
	if len(v) > store.MaxValue {
		errs = append(errs, store.Bad(fmt.Errorf("delivery of %d bytes is over the %d-byte limit", len(v), store.MaxValue)))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("write delivery %s/%s: %w", d.Subscription, d.EventID, err)
	}
	var due *int64
	if d.Queued() {
		n := int64(store.DueNanos(d.NextAt))
		due = &n
	}
	var resource []byte
	if d.Resource != "" {
		resource = []byte(d.Resource)
	}
	keepDue := prev != nil && prev.Queued() && d.Queued() && prev.NextAt.Equal(d.NextAt)
	wasOrdered := prev != nil && prev.Resource != "" && prev.Open()
	isOrdered := d.Resource != "" && d.Open()
	keepOrder := wasOrdered && isOrdered && prev.Resource == d.Resource
	return t.write("write delivery "+d.Subscription+"/"+d.EventID, putDeliverySQL, len(v)+len(d.Resource),
		[]byte(d.Subscription), []byte(d.EventID), d.State, due, resource, isOrdered, v, keepDue, keepOrder)
}

// DropDue removes a stale schedule entry, one that no longer matches its
// delivery.
func (t *Txn) DropDue(r store.DueRef) error {
	return t.write("unschedule "+r.Subscription+"/"+r.EventID,
		"UPDATE deliveries SET due = NULL WHERE sub = $1 AND event_id = $2 AND due = $3", 0,
		[]byte(r.Subscription), []byte(r.EventID), int64(store.DueNanos(r.At)))
}

// DropResource takes a delivery out of its resource's order.
func (t *Txn) DropResource(sub, resource, eventID string) error {
	return t.write("unorder "+sub+"/"+eventID,
		"UPDATE deliveries SET ordered = false WHERE sub = $1 AND event_id = $2 AND resource = $3 AND ordered", 0,
		[]byte(sub), []byte(eventID), []byte(resource))
}

// dueAheadSQL is the schedule read with each due delivery and the head of
// its resource's order, which the notifier reads next.
const dueAheadSQL = `SELECT d.event_id, d.due, d.body, d.resource,
	CASE WHEN d.resource IS NOT NULL THEN (SELECT h.event_id FROM deliveries h
		WHERE h.sub = d.sub AND h.resource = d.resource AND h.ordered ORDER BY h.seq, h.event_id LIMIT 1) END
FROM deliveries d WHERE d.sub = $1 AND d.due <= $2 ORDER BY d.due, d.event_id LIMIT $3`

// Due returns up to limit of a subscription's queued deliveries due at or
// before now, earliest first. A read-only transaction reads the
// deliveries and their resources' heads with them (see prefetched).
func (t *Txn) Due(sub string, now time.Time, limit int) ([]store.DueRef, error) {
	if t.readOnly {
		return t.dueAhead(sub, now, limit)
	}
	var refs []store.DueRef
	err := t.query("read schedule of "+sub,
		"SELECT event_id, due FROM deliveries WHERE sub = $1 AND due <= $2 ORDER BY due, event_id LIMIT $3",
		[]any{[]byte(sub), int64(store.DueNanos(now)), limit}, func(rows pgx.Rows) error {
			for rows.Next() {
				var id []byte
				var due int64
				if err := rows.Scan(&id, &due); err != nil {
					return err
				}
				refs = append(refs, store.DueRef{Subscription: sub, EventID: string(id), At: time.Unix(0, due)})
			}
			return nil
		})
	return refs, err
}

func (t *Txn) dueAhead(sub string, now time.Time, limit int) ([]store.DueRef, error) {
	var refs []store.DueRef
	err := t.query("read schedule of "+sub, dueAheadSQL,
		[]any{[]byte(sub), int64(store.DueNanos(now)), limit}, func(rows pgx.Rows) error {
			for rows.Next() {
				var id, body, resource, head []byte
				var due int64
				if err := rows.Scan(&id, &due, &body, &resource, &head); err != nil {
					return err
				}
				refs = append(refs, store.DueRef{Subscription: sub, EventID: string(id), At: time.Unix(0, due)})
				var d store.Delivery
				if json.Unmarshal(body, &d) != nil {
					continue // Delivery reads it again and reports it
				}
				d.Subscription, d.EventID, d.Resource = sub, string(id), string(resource)
				t.keepDelivery(&d)
				if resource != nil {
					t.keepHead(sub, d.Resource, string(head))
				}
			}
			return nil
		})
	return refs, err
}

// NextDueAfter is when sub's next queued delivery after now is due.
func (t *Txn) NextDueAfter(sub string, now time.Time) (time.Time, bool, error) {
	return t.minDue("read schedule of "+sub, "SELECT min(due) FROM deliveries WHERE sub = $1 AND due > $2",
		[]byte(sub), int64(store.DueNanos(now)))
}

// nextDueSQL finds the earliest due time by the first entry of each
// subscription's schedule, hopping from one subscription to the next in
// the index rather than reading every entry (a loose index scan).
const nextDueSQL = `WITH RECURSIVE subs(sub) AS (
	(SELECT sub FROM deliveries WHERE due IS NOT NULL ORDER BY sub LIMIT 1)
	UNION ALL
	SELECT (SELECT d.sub FROM deliveries d WHERE d.due IS NOT NULL AND d.sub > subs.sub ORDER BY d.sub LIMIT 1)
	FROM subs WHERE subs.sub IS NOT NULL
)
SELECT min((SELECT d.due FROM deliveries d WHERE d.sub = subs.sub AND d.due IS NOT NULL ORDER BY d.due LIMIT 1))
FROM subs WHERE subs.sub IS NOT NULL`

// NextDue is the earliest due time of any queued delivery.
func (t *Txn) NextDue() (time.Time, bool, error) {
	return t.minDue("read schedule", nextDueSQL)
}

func (t *Txn) minDue(what, sql string, args ...any) (time.Time, bool, error) {
	var due *int64
	err := t.query(what, sql, args, func(rows pgx.Rows) error {
		for rows.Next() {
			if err := rows.Scan(&due); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || due == nil {
		return time.Time{}, false, err
	}
	return time.Unix(0, *due), true, nil
}

// ResourceHead is the event id of the oldest open delivery of (sub,
// resource) by sequence, or "".
func (t *Txn) ResourceHead(sub, resource string) (string, error) {
	if h, ok := t.prefetchedHead(sub, resource); ok {
		return h, nil
	}
	return t.eventID("read order of "+sub,
		"SELECT event_id FROM deliveries WHERE sub = $1 AND resource = $2 AND ordered ORDER BY seq, event_id LIMIT 1",
		[]byte(sub), []byte(resource))
}

// nextInResourceSQL finds the open delivery after $3 in its resource's
// order: after its place there, which is its delivery's (seq, event_id),
// else its event's, else (0, $3).
const nextInResourceSQL = `WITH pos AS (SELECT coalesce(
	(SELECT seq FROM deliveries WHERE sub = $1 AND event_id = $3),
	(SELECT seq FROM events WHERE id = $3), 0) AS seq)
SELECT d.event_id FROM deliveries d, pos
WHERE d.sub = $1 AND d.resource = $2 AND d.ordered AND (d.seq, d.event_id) > (pos.seq, $3)
ORDER BY d.seq, d.event_id LIMIT 1`

// NextInResource is the open delivery of (sub, resource) after eventID,
// or "".
func (t *Txn) NextInResource(sub, resource, eventID string) (string, error) {
	return t.eventID("read order of "+sub, nextInResourceSQL, []byte(sub), []byte(resource), []byte(eventID))
}

func (t *Txn) eventID(what, sql string, args ...any) (string, error) {
	v, err := t.body(what, sql, args...)
	return string(v), err
}

// AddAttempt logs an attempt. The response body is a column of its own,
// kept byte for byte.
func (t *Txn) AddAttempt(eventID string, a store.Attempt) error {
	resp := []byte(a.Body)
	a.Body = ""
	v, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode attempt: %w", err)
	}
	if err := errors.Join(store.CheckKeyPart("event id", eventID), store.CheckKeyPart("subscription name", a.Subscription)); err != nil {
		return fmt.Errorf("write attempt: %w", err)
	}
	return t.write("write attempt "+a.Subscription+"/"+eventID, `INSERT INTO attempts (event_id, sub, n, body, response)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (event_id, sub, n) DO UPDATE SET body = excluded.body, response = excluded.response`,
		len(v)+len(resp), []byte(eventID), []byte(a.Subscription), int32(a.N), v, resp)
}

// Attempts returns an event's attempts for every subscription, by
// subscription then attempt number.
func (t *Txn) Attempts(eventID string) ([]store.Attempt, error) {
	var p page
	err := t.query("read attempts of "+eventID,
		"SELECT body, sub, response FROM attempts WHERE event_id = $1 ORDER BY sub, n",
		[]any{[]byte(eventID)}, func(rows pgx.Rows) error { return p.fill(rows, false) })
	if err != nil {
		return nil, err
	}
	var out []store.Attempt
	for row := range p.len() {
		var a store.Attempt
		if err := json.Unmarshal(p.at(row, 0), &a); err != nil {
			return nil, fmt.Errorf("decode attempt of %s: %w", eventID, err)
		}
		a.Subscription, a.Body = string(p.at(row, 1)), string(p.at(row, 2))
		out = append(out, a)
	}
	return out, nil
}

// Deliveries calls fn for every delivery, by subscription and event id.
func (t *Txn) Deliveries(fn func(*store.Delivery) error) error {
	return t.scanDeliveries(deliveryCols, func(p *page, row int) error {
		d, err := readDelivery(p, row)
		if err != nil {
			return err
		}
		return fn(d)
	})
}

// scanDeliveries reads every delivery a page at a time; cols start with
// body, sub, event_id.
func (t *Txn) scanDeliveries(cols string, fn func(p *page, row int) error) error {
	first := "SELECT " + cols + " FROM deliveries ORDER BY sub, event_id LIMIT $1"
	next := "SELECT " + cols + " FROM deliveries WHERE (sub, event_id) > ($2, $3) ORDER BY sub, event_id LIMIT $1"
	var p page
	var sub, id []byte
	for {
		sql, args := first, []any{itemPage}
		if sub != nil {
			sql, args = next, append(args, sub, id)
		}
		if err := t.query("read deliveries", sql, args, func(rows pgx.Rows) error { return p.fill(rows, false) }); err != nil {
			return err
		}
		n := p.len()
		for row := range n {
			if err := fn(&p, row); err != nil {
				return err
			}
		}
		if n < itemPage {
			return nil
		}
		sub, id = own(p.at(n-1, 1)), own(p.at(n-1, 2))
	}
}
