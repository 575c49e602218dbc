package store

import (
	"encoding/json"
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
	// Compat is what a vendor-shaped API keeps of a subscription it
	// created beyond the spec (its vendor, id and display fields), in the
	// facade's own form; nil for one made through /v1.
	Compat json.RawMessage `json:"compat,omitempty"`
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

// SubState is what pollrelay remembers about a subscription's endpoint
// across restarts: whether it is disabled, and how its recent attempts went.
// It is keyed by subscription id (u/<sub>), so it survives a config reload
// that drops and re-adds the subscription.
type SubState struct {
	// Disabled endpoints keep their deliveries queued but are sent nothing.
	Disabled       bool      `json:"disabled,omitempty"`
	DisabledAt     time.Time `json:"disabled_at,omitzero"`
	DisabledReason string    `json:"disabled_reason,omitempty"`
	// FailureCount counts consecutive failed attempts; a 2xx resets it.
	FailureCount int `json:"failure_count,omitempty"`
	// FirstFailureAt is when the current run of failures began, for
	// disable_after.
	FirstFailureAt     time.Time `json:"first_failure_at,omitzero"`
	LastTriggeredAt    time.Time `json:"last_triggered_at,omitzero"`
	LastResponseStatus int       `json:"last_response_status,omitempty"`
}
