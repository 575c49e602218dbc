package postgres

import (
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pollrelay/pollrelay/store"
)

// APISubscription returns an API-created subscription, or nil.
func (t *Txn) APISubscription(id string) (*store.SubscriptionRecord, error) {
	v, err := t.body("read subscription "+id, "SELECT body FROM api_subscriptions WHERE id = $1", []byte(id))
	if err != nil || v == nil {
		return nil, err
	}
	var r store.SubscriptionRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("decode subscription %s: %w", id, err)
	}
	return &r, nil
}

// PutAPISubscription stores an API-created subscription.
func (t *Txn) PutAPISubscription(r *store.SubscriptionRecord) error {
	if err := store.CheckKeyPart("subscription id", r.ID); err != nil {
		return fmt.Errorf("write subscription: %w", err)
	}
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode subscription %s: %w", r.ID, err)
	}
	return t.write("write subscription "+r.ID, `INSERT INTO api_subscriptions (id, body) VALUES ($1, $2)
ON CONFLICT (id) DO UPDATE SET body = excluded.body`, len(v), []byte(r.ID), v)
}

// DeleteAPISubscription removes an API-created subscription.
func (t *Txn) DeleteAPISubscription(id string) error {
	return t.write("delete subscription "+id, "DELETE FROM api_subscriptions WHERE id = $1", 0, []byte(id))
}

// APISubscriptions calls fn for every API-created subscription, by id.
func (t *Txn) APISubscriptions(fn func(*store.SubscriptionRecord) error) error {
	p, err := t.all("read subscriptions", "SELECT body FROM api_subscriptions ORDER BY id")
	if err != nil {
		return err
	}
	for row := range p.len() {
		var r store.SubscriptionRecord
		if err := json.Unmarshal(p.at(row, 0), &r); err != nil {
			return fmt.Errorf("decode subscription: %w", err)
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	return nil
}

// all reads every row of a small table into one page.
func (t *Txn) all(what, sql string, args ...any) (*page, error) {
	var p page
	err := t.query(what, sql, args, func(rows pgx.Rows) error { return p.fill(rows, false) })
	return &p, err
}

// SubState returns a subscription's stored state, or nil.
func (t *Txn) SubState(sub string) (*store.SubState, error) {
	v, err := t.body("read subscription state "+sub, "SELECT body FROM sub_state WHERE sub = $1", []byte(sub))
	if err != nil || v == nil {
		return nil, err
	}
	var s store.SubState
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, fmt.Errorf("decode subscription state %s: %w", sub, err)
	}
	return &s, nil
}

// PutSubState stores a subscription's state.
func (t *Txn) PutSubState(sub string, s *store.SubState) error {
	if err := store.CheckKeyPart("subscription name", sub); err != nil {
		return fmt.Errorf("write subscription state: %w", err)
	}
	v, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode subscription state %s: %w", sub, err)
	}
	return t.write("write subscription state "+sub, `INSERT INTO sub_state (sub, body) VALUES ($1, $2)
ON CONFLICT (sub) DO UPDATE SET body = excluded.body`, len(v), []byte(sub), v)
}

// DeleteSubState forgets a subscription's state.
func (t *Txn) DeleteSubState(sub string) error {
	return t.write("delete subscription state "+sub, "DELETE FROM sub_state WHERE sub = $1", 0, []byte(sub))
}

// SubStates calls fn for every stored subscription state, by name. A
// record that cannot be decoded is passed as nil with its error (marked
// ErrBadRecord).
func (t *Txn) SubStates(fn func(sub string, s *store.SubState, err error) error) error {
	p, err := t.all("read subscription states", "SELECT body, sub FROM sub_state ORDER BY sub")
	if err != nil {
		return err
	}
	for row := range p.len() {
		sub := string(p.at(row, 1))
		var s store.SubState
		if err := json.Unmarshal(p.at(row, 0), &s); err != nil {
			err = store.Bad(fmt.Errorf("decode subscription state %s: %w", sub, err))
			if err := fn(sub, nil, err); err != nil {
				return err
			}
			continue
		}
		if err := fn(sub, &s, nil); err != nil {
			return err
		}
	}
	return nil
}
