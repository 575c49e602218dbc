package badger

import (
	"encoding/json"
	"fmt"
)

func apiSubKey(id string) []byte { return []byte("c/" + id) }

var apiSubPrefix = []byte("c/")

// APISubscription returns an API-created subscription, or nil.
func (t *Txn) APISubscription(id string) (*SubscriptionRecord, error) {
	v, err := t.get(apiSubKey(id))
	if err != nil || v == nil {
		return nil, wrap(err, "read subscription %s", id)
	}
	var r SubscriptionRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("decode subscription %s: %w", id, err)
	}
	return &r, nil
}

// PutAPISubscription stores an API-created subscription.
func (t *Txn) PutAPISubscription(r *SubscriptionRecord) error {
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode subscription %s: %w", r.ID, err)
	}
	return wrap(t.set(apiSubKey(r.ID), v), "write subscription %s", r.ID)
}

// DeleteAPISubscription removes an API-created subscription.
func (t *Txn) DeleteAPISubscription(id string) error {
	return wrap(t.del(apiSubKey(id)), "delete subscription %s", id)
}

// APISubscriptions calls fn for every API-created subscription.
func (t *Txn) APISubscriptions(fn func(*SubscriptionRecord) error) error {
	return t.scan(apiSubPrefix, nil, false, func(_, v []byte) (bool, error) {
		var r SubscriptionRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return false, fmt.Errorf("decode subscription: %w", err)
		}
		return true, fn(&r)
	})
}
