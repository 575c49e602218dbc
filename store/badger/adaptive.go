package badger

import (
	"bytes"
	"fmt"
)

// Keys: h/<source>\x00<state> holds the encoded duration histogram of one
// state of an adaptive watch source (poller/adaptive.Histogram). The store
// keeps the bytes opaque so it does not depend on the scheduler; losing
// them costs only a relearning period at the fixed interval.
func histPrefix(source string) []byte { return []byte("h/" + source + "\x00") }
func histKey(source, state string) []byte {
	return append(histPrefix(source), state...)
}

// PutHistogram stores the encoded histogram of a source's state.
func (t *Txn) PutHistogram(source, state string, v []byte) error {
	if err := CheckKeyPart("state", state); err != nil {
		return fmt.Errorf("write histogram %s: %w", source, err)
	}
	return wrap(t.set(histKey(source, state), v), "write histogram %s", source)
}

// Histograms calls fn with each stored histogram of source, by state.
func (t *Txn) Histograms(source string, fn func(state string, v []byte) error) error {
	p := histPrefix(source)
	err := t.scan(p, nil, false, func(k, v []byte) (bool, error) {
		return true, fn(string(bytes.TrimPrefix(k, p)), v)
	})
	return wrap(err, "read histograms %s", source)
}
