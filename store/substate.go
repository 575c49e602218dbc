package store

import (
	"encoding/json"
	"fmt"
	"time"
)

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

var subStatePrefix = []byte("u/")

func subStateKey(sub string) []byte { return append(append([]byte{}, subStatePrefix...), sub...) }

// SubState returns a subscription's stored state, or nil.
func (t *Txn) SubState(sub string) (*SubState, error) {
	v, err := t.get(subStateKey(sub))
	if err != nil || v == nil {
		return nil, wrap(err, "read subscription state %s", sub)
	}
	var s SubState
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, fmt.Errorf("decode subscription state %s: %w", sub, err)
	}
	return &s, nil
}

// PutSubState stores a subscription's state.
func (t *Txn) PutSubState(sub string, s *SubState) error {
	v, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode subscription state %s: %w", sub, err)
	}
	return wrap(t.set(subStateKey(sub), v), "write subscription state %s", sub)
}

// DeleteSubState forgets a subscription's state, for a subscription that is
// deleted for good.
func (t *Txn) DeleteSubState(sub string) error {
	return wrap(t.del(subStateKey(sub)), "delete subscription state %s", sub)
}

// SubStates calls fn for every stored subscription state. A record that
// cannot be decoded is passed as nil with its error (marked ErrBadRecord),
// so one broken record does not keep every subscription from loading.
func (t *Txn) SubStates(fn func(sub string, s *SubState, err error) error) error {
	return t.scan(subStatePrefix, nil, false, func(k, v []byte) (bool, error) {
		sub := string(k[len(subStatePrefix):])
		var s SubState
		if err := json.Unmarshal(v, &s); err != nil {
			return true, fn(sub, nil, bad(fmt.Errorf("decode subscription state %s: %w", sub, err)))
		}
		return true, fn(sub, &s, nil)
	})
}
