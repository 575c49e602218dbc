package postgres

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pollrelay/pollrelay/store"
)

// fence is the lease a view's writes are made under.
type fence struct {
	lease string
	token int64
}

// Fenced returns a view of s whose every Update and Batch transaction
// first locks lease's row in the leases table FOR SHARE and aborts
// unless its token is token: the fencing of DESIGN.md, so a poll's
// writes commit only while the poller still holds its lease, and a
// change of holder waits for them to end. A refused transaction returns
// an error wrapping store.ErrFenced, which is not retried. The check
// goes in the transaction's first round trip, so it costs no extra one.
//
// The view shares s's pool, hooks and metrics; View, Prune and
// LoadDeliveries are s's own, and closing the view does nothing. The
// lease rows are the cluster's to write; migrations/0001_init.sql has
// the table and the fence function the check calls.
func (s *Store) Fenced(lease string, token int64) store.Store {
	return &Store{shared: s.shared, fence: &fence{lease: lease, token: token}}
}

// fencedCode is the SQLSTATE the fence function raises.
const fencedCode = "PRF01"

// fencedError turns the fence function's refusal into store.ErrFenced.
func fencedError(err error, f *fence) error {
	var pe *pgconn.PgError
	if f == nil || !errors.As(err, &pe) || pe.Code != fencedCode {
		return err
	}
	return fmt.Errorf("%w: lease %q is held under another token than %d", store.ErrFenced, f.lease, f.token)
}
