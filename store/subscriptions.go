package store

import (
	"encoding/json"
	"fmt"
	"time"
)

// SubscriptionRecord is a subscription created through the management API.
// Spec holds its settings as config keys (without the secret), so it is
// validated and normalised exactly like a subscription in the config file.
type SubscriptionRecord struct {
	ID        string          `json:"id"`
	Spec      json.RawMessage `json:"spec"`
	Secrets   []StoredSecret  `json:"secrets"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
	// Version counts the writes of the record, so a change computed from
	// one version can tell that another change was stored since.
	Version uint64 `json:"version,omitempty"`
}

// StoredSecret is one signing secret. After a rotation the old secret keeps
// signing alongside the new one until ExpiresAt.
type StoredSecret struct {
	Value     string    `json:"value"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// Active returns the secrets still signing at now, newest first.
func (r *SubscriptionRecord) Active(now time.Time) []string {
	var out []string
	for _, s := range r.Secrets {
		if s.ExpiresAt.IsZero() || now.Before(s.ExpiresAt) {
			out = append(out, s.Value)
		}
	}
	return out
}

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
