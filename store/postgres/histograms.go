package postgres

import (
	"fmt"

	"github.com/pollrelay/pollrelay/store"
)

// PutHistogram stores the encoded histogram of a source's state; the
// bytes are the scheduler's, opaque here.
func (t *Txn) PutHistogram(source, state string, v []byte) error {
	if err := store.CheckKeyPart("state", state); err != nil {
		return fmt.Errorf("write histogram %s: %w", source, err)
	}
	if v == nil {
		v = []byte{}
	}
	return t.write("write histogram "+source, `INSERT INTO histograms (source, state, body) VALUES ($1, $2, $3)
ON CONFLICT (source, state) DO UPDATE SET body = excluded.body`, len(v), []byte(source), []byte(state), v)
}

// Histograms calls fn with each stored histogram of source, by state.
func (t *Txn) Histograms(source string, fn func(state string, v []byte) error) error {
	p, err := t.all("read histograms "+source, "SELECT state, body FROM histograms WHERE source = $1 ORDER BY state", []byte(source))
	if err != nil {
		return err
	}
	for row := range p.len() {
		if err := fn(string(p.at(row, 0)), p.at(row, 1)); err != nil {
			return fmt.Errorf("read histograms %s: %w", source, err)
		}
	}
	return nil
}
