package badger

import (
	"encoding/json"
	"fmt"
)

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
