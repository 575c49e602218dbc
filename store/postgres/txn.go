package postgres

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

const (
	beginWrite = "BEGIN ISOLATION LEVEL SERIALIZABLE"
	beginRead  = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
)

// Txn is one transaction. It holds a connection from its first round trip
// to its end.
type Txn struct {
	s        *Store
	readOnly bool
	conn     *pgxpool.Conn
	begun    bool // BEGIN has been sent

	// q is the statements not yet sent, in the order they were made;
	// items and events are gathered apart (see bulk.go) and join q
	// before it is sent.
	q      []queued
	qbytes int
	items  itemWrites
	events eventWrites

	// err is the first error a round trip returned: PostgreSQL has
	// aborted the transaction, so everything after it fails the same way
	// and only a rollback (and, for a conflict, a fresh start) is left.
	err error

	// streaming is set while a scan hands rows to its callback straight
	// off the connection (see stream): the connection is busy until the
	// last row, so nothing else may be sent.
	streaming bool

	// ahead is what reads fetched ahead of the reads that want it.
	ahead prefetched

	added       int   // outbox entries written, for OnEvent
	size        int64 // bytes written, for Batch
	quarantined map[string]int
	onCommit    []func()
}

// queued is one statement waiting for the next round trip; what names it
// in the error it causes.
type queued struct {
	what string
	sql  string
	args []any
}

// Where queued writes are sent without waiting for a read: about what one
// round trip carries well.
const (
	maxQueued      = 512
	maxQueuedBytes = 4 << 20
)

func (s *Store) newTxn(readOnly bool) *Txn { return &Txn{s: s, readOnly: readOnly} }

// OnCommit runs fn after the transaction commits.
func (t *Txn) OnCommit(fn func()) { t.onCommit = append(t.onCommit, fn) }

// write queues a statement. Gathered event writes go first: a statement
// may depend on them (an outbox entry or a delivery takes its event's
// sequence). Items depend on nothing and wait for the next round trip.
func (t *Txn) write(what, sql string, size int, args ...any) error {
	if err := t.writable(); err != nil {
		return err
	}
	t.events.emit(t)
	t.push(queued{what: what, sql: sql, args: args}, size)
	return t.sendIfFull(len(t.q) >= maxQueued || t.qbytes >= maxQueuedBytes)
}

// sendIfFull sends what is queued when full, unless a scan holds the
// connection: then it waits for the next round trip.
func (t *Txn) sendIfFull(full bool) error {
	if !full || t.streaming {
		return nil
	}
	return t.send(nil, nil)
}

func (t *Txn) writable() error {
	if t.err != nil {
		return t.err
	}
	if t.readOnly {
		return errors.New("write in a read-only transaction")
	}
	if t.s.readOnly {
		return errors.New("the store is open read-only")
	}
	return nil
}

func (t *Txn) push(q queued, size int) {
	t.q = append(t.q, q)
	t.qbytes += size
	t.size += int64(size)
}

// query runs a read after whatever is queued, in the same round trip;
// scan reads its rows. The rows must not be kept: callers copy what they
// need and call back into consumer code only after query returns, when
// the connection is free for the next statement.
func (t *Txn) query(what, sql string, args []any, scan func(pgx.Rows) error) error {
	if t.err != nil {
		return t.err
	}
	return t.send(&queued{what: what, sql: sql, args: args}, scan)
}

// send sends the queued statements, then read if set, in one pipeline:
// BEGIN first when the transaction has not begun, then the fence check
// when the store is a fenced view. An error is kept in t.err.
func (t *Txn) send(read *queued, scan func(pgx.Rows) error) error {
	if t.err != nil {
		return t.err
	}
	if t.streaming {
		return errReadInScan
	}
	t.items.emit(t)
	t.events.emit(t)
	if len(t.q) == 0 && read == nil {
		return nil
	}
	if t.conn == nil {
		conn, err := t.s.pool.Acquire(t.s.ctx)
		if err != nil {
			t.err = fmt.Errorf("connect: %s", t.s.secrets.String(err.Error()))
			return t.err
		}
		t.conn = conn
	}
	stmts := t.q
	t.q, t.qbytes = nil, 0
	var pre []queued
	if !t.begun {
		t.begun = true
		if t.readOnly {
			pre = append(pre, queued{what: "begin", sql: beginRead})
		} else {
			pre = append(pre, queued{what: "begin", sql: beginWrite})
			if f := t.s.fence; f != nil {
				pre = append(pre, queued{what: "check lease " + f.lease, sql: "SELECT fence($1, $2)", args: []any{[]byte(f.lease), f.token}})
			}
		}
	}
	stmts = append(pre, stmts...)
	var b pgx.Batch
	for _, q := range stmts {
		b.Queue(q.sql, q.args...)
	}
	if read != nil {
		b.Queue(read.sql, read.args...)
	}
	br := t.conn.SendBatch(t.s.ctx, &b)
	failed, err := -1, error(nil)
	for i := range stmts {
		if _, err = br.Exec(); err != nil {
			failed = i
			break
		}
	}
	if err == nil && read != nil {
		err = scanRows(br, scan)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		return nil
	}
	var ce callbackError
	if errors.As(err, &ce) {
		return ce.err // the consumer's, not the database's: the transaction goes on
	}
	what := "read"
	switch {
	case failed >= 0:
		what = stmts[failed].what
	case read != nil:
		what = read.what
	}
	t.err = fmt.Errorf("%s: %w", what, fencedError(err, t.s.fence))
	return t.err
}

// stream runs a read after whatever is queued and calls each with every
// row's values as they arrive, valid only during each: the server sends
// the next rows while the consumer handles these. each must not read
// through t (the connection is busy): such a read fails with
// errReadInScan. An error each returns ends the read (the rest of the
// rows are drained) and is returned as it is.
func (t *Txn) stream(what, sql string, args []any, each func(vals [][]byte) error) error {
	if t.err != nil {
		return t.err
	}
	if t.streaming {
		return errReadInScan
	}
	return t.send(&queued{what: what, sql: sql, args: args}, func(rows pgx.Rows) error {
		t.streaming = true
		defer func() { t.streaming = false }()
		for rows.Next() {
			if err := each(rows.RawValues()); err != nil {
				return callbackError{err}
			}
		}
		return nil
	})
}

var errReadInScan = errors.New("a read through the transaction inside ScanItemHeads' callback: read before or after the scan")

// callbackError carries an error of a consumer's callback through send,
// which would otherwise take it for the database's.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }

func scanRows(br pgx.BatchResults, scan func(pgx.Rows) error) error {
	rows, err := br.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	if err := scan(rows); err != nil {
		return err
	}
	rows.Close()
	return rows.Err()
}

// commit sends what is queued and COMMIT in one round trip. A transaction
// that did nothing has nothing to commit.
func (t *Txn) commit() error {
	if t.err != nil {
		return t.err
	}
	t.items.emit(t)
	t.events.emit(t)
	if !t.begun && len(t.q) == 0 {
		return nil
	}
	t.q = append(t.q, queued{what: "commit", sql: "COMMIT"})
	return t.send(nil, nil)
}

// end rolls back what was not committed and gives the connection back.
func (t *Txn) end() {
	if t.conn == nil {
		return
	}
	if t.conn.Conn().PgConn().TxStatus() != 'I' {
		// An error here leaves the connection in a transaction, and the
		// pool closes such a connection rather than reuse it.
		_, _ = t.conn.Exec(t.s.ctx, "ROLLBACK")
	}
	t.conn.Release()
	t.conn = nil
}

// retryable reports a transaction that lost to a concurrent one: run
// again from a fresh snapshot, it may well commit.
func retryable(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	return pe.Code == "40001" || pe.Code == "40P01"
}
