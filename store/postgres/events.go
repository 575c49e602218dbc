package postgres

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/store"
)

// AddEvent logs e and puts it in the outbox.
func (t *Txn) AddEvent(e *event.Event) error { return t.logEvent(e, true) }

// LogEvent logs e without putting it in the outbox (a replay).
func (t *Txn) LogEvent(e *event.Event) error { return t.logEvent(e, false) }

func (t *Txn) logEvent(e *event.Event, outbox bool) error {
	if err := t.writable(); err != nil {
		return err
	}
	if err := store.CheckKeyPart("event id", e.ID); err != nil {
		return fmt.Errorf("write event: %w", err)
	}
	v, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode event %s: %w", e.ID, err)
	}
	if len(v) > store.MaxValue {
		return fmt.Errorf("write event %s: %w", e.ID, store.Bad(fmt.Errorf("event of %d bytes is over the %d-byte limit", len(v), store.MaxValue)))
	}
	if outbox {
		t.added++
	}
	delete(t.ahead.events, e.ID)
	return t.events.add(t, eventOp{id: e.ID, source: e.Source, itemID: e.ItemID, typ: e.Type, kind: e.Kind,
		createdAt: e.CreatedAt, body: v, outbox: outbox})
}

// eventCols are what readEvent takes: the body, and the fields JSON may
// not have kept byte for byte (it replaces invalid UTF-8).
const eventCols = "body, id, source, item_id, type"

// Event returns a logged event, or nil.
func (t *Txn) Event(id string) (*event.Event, error) {
	var p page
	err := t.query("read event "+id, "SELECT "+eventCols+" FROM events WHERE id = $1", []any{[]byte(id)},
		func(rows pgx.Rows) error { return p.fill(rows, false) })
	if err != nil || p.len() == 0 {
		return nil, err
	}
	e, err := readEvent(&p, 0)
	if err != nil {
		return nil, store.Bad(err)
	}
	return e, nil
}

func readEvent(p *page, row int) (*event.Event, error) {
	var e event.Event
	if err := json.Unmarshal(p.at(row, 0), &e); err != nil {
		return nil, fmt.Errorf("decode event %s: %w", p.at(row, 1), err)
	}
	e.ID, e.Source, e.ItemID, e.Type = string(p.at(row, 1)), string(p.at(row, 2)), string(p.at(row, 3)), string(p.at(row, 4))
	return &e, nil
}

// EventMeta is Event without its states and object, read from the
// columns beside the body.
func (t *Txn) EventMeta(id string) (*event.Event, error) {
	if e, ok := t.prefetchedEvent(id); ok {
		return e, nil
	}
	var e *event.Event
	err := t.query("read event "+id,
		"SELECT id, type, kind, source, item_id, created_at, created_ns FROM events WHERE id = $1", []any{[]byte(id)},
		func(rows pgx.Rows) error {
			for rows.Next() {
				var id, typ, source, item []byte
				var kind string
				var at time.Time
				var ns int32
				if err := rows.Scan(&id, &typ, &kind, &source, &item, &at, &ns); err != nil {
					return err
				}
				e = &event.Event{ID: string(id), Type: string(typ), Kind: kind, Source: string(source), ItemID: string(item),
					CreatedAt: at.Add(time.Duration(ns)).UTC()}
			}
			return nil
		})
	return e, err
}

// Events calls fn for events before the id before (all when empty),
// newest first, until fn returns false.
func (t *Txn) Events(before string, fn func(*event.Event) bool) error {
	var p page
	cursor, after := []byte(before), before != ""
	for {
		sql, args := "SELECT "+eventCols+" FROM events ORDER BY id DESC LIMIT $1", []any{rowPage}
		if after {
			sql, args = "SELECT "+eventCols+" FROM events WHERE id < $2 ORDER BY id DESC LIMIT $1", []any{rowPage, cursor}
		}
		if err := t.query("read events", sql, args, func(rows pgx.Rows) error { return p.fill(rows, false) }); err != nil {
			return err
		}
		n := p.len()
		for row := range n {
			e, err := readEvent(&p, row)
			if err != nil {
				return err
			}
			if !fn(e) {
				return nil
			}
		}
		if n < rowPage {
			return nil
		}
		cursor, after = own(p.at(n-1, 1)), true
	}
}

// EventsBetween calls fn for events created in [since, until), oldest
// first, until fn returns false. A zero since means from the first event,
// a zero until up to the newest. created_at keeps microseconds, so the
// query takes the microseconds around the bounds and the exact times
// decide.
func (t *Txn) EventsBetween(since, until time.Time, fn func(*event.Event) (bool, error)) error {
	lo := pgtype.Timestamptz{Time: since, Valid: true}
	if since.IsZero() {
		lo = pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}
	}
	hi := pgtype.Timestamptz{Time: until, Valid: true}
	if until.IsZero() {
		hi = pgtype.Timestamptz{InfinityModifier: pgtype.Infinity, Valid: true}
	}
	const cols = eventCols + ", created_at"
	first := "SELECT " + cols + " FROM events WHERE created_at >= $1 AND created_at <= $2 ORDER BY created_at, id LIMIT $3"
	next := "SELECT " + cols + " FROM events WHERE created_at <= $2 AND (created_at, id) > ($4, $5) ORDER BY created_at, id LIMIT $3"
	var p page
	var curAt time.Time
	var curID []byte
	for {
		sql, args := first, []any{lo, hi, rowPage}
		if curID != nil {
			sql, args = next, append(args, curAt, curID)
		}
		var ats []time.Time
		err := t.query("read events", sql, args, func(rows pgx.Rows) error {
			// created_at is the one column not bytea: read it apart.
			if err := p.fill(rows, false); err != nil {
				return err
			}
			ats = ats[:0]
			for row := range p.len() {
				at, err := decodeTimestamptz(p.at(row, 5))
				if err != nil {
					return err
				}
				ats = append(ats, at)
			}
			return nil
		})
		if err != nil {
			return err
		}
		n := p.len()
		for row := range n {
			e, err := readEvent(&p, row)
			if err != nil {
				return err
			}
			if e.CreatedAt.Before(since) || (!until.IsZero() && !e.CreatedAt.Before(until)) {
				continue
			}
			if more, err := fn(e); err != nil || !more {
				return err
			}
		}
		if n < rowPage {
			return nil
		}
		curAt, curID = ats[n-1], own(p.at(n-1, 1))
	}
}

// outboxAheadSQL reads the outbox with what EventMeta returns of each
// event, which fan-out reads next (see prefetched).
const outboxAheadSQL = `SELECT o.event_id, e.id IS NOT NULL, e.type, e.kind, e.source, e.item_id, e.created_at, e.created_ns
FROM outbox o LEFT JOIN events e ON e.id = o.event_id ORDER BY o.event_id LIMIT $1`

// Outbox returns up to limit outbox event ids, oldest first.
func (t *Txn) Outbox(limit int) ([]string, error) {
	var ids []string
	err := t.query("read outbox", outboxAheadSQL, []any{limit}, func(rows pgx.Rows) error {
		for rows.Next() {
			var id, typ, source, item []byte
			var logged bool
			var kind *string
			var at *time.Time
			var ns *int32
			if err := rows.Scan(&id, &logged, &typ, &kind, &source, &item, &at, &ns); err != nil {
				return err
			}
			ids = append(ids, string(id))
			if !logged || kind == nil || at == nil || ns == nil {
				t.keepEvent(string(id), nil)
				continue
			}
			t.keepEvent(string(id), &event.Event{ID: string(id), Type: string(typ), Kind: *kind, Source: string(source),
				ItemID: string(item), CreatedAt: at.Add(time.Duration(*ns)).UTC()})
		}
		return nil
	})
	return ids, err
}

// NextOutbox is Outbox: PostgreSQL's index skips removed entries itself.
func (t *Txn) NextOutbox(limit int) ([]string, error) { return t.Outbox(limit) }

// ReturnToOutbox puts a logged event back in the outbox, in its place.
func (t *Txn) ReturnToOutbox(id string) error {
	if err := store.CheckKeyPart("event id", id); err != nil {
		return fmt.Errorf("write outbox: %w", err)
	}
	err := t.write("write outbox "+id, "INSERT INTO outbox (event_id) VALUES ($1) ON CONFLICT (event_id) DO NOTHING", len(id), []byte(id))
	if err == nil {
		t.added++
	}
	return err
}

// RemoveFromOutbox marks an event as fanned out.
func (t *Txn) RemoveFromOutbox(id string) error {
	return t.write("delete outbox "+id, "DELETE FROM outbox WHERE event_id = $1", len(id), []byte(id))
}
