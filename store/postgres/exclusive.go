package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrInUse is a schema another pollrelay already runs on.
var ErrInUse = errors.New("schema in use by another pollrelay")

// schemaCheck is how often the session that holds a schema is checked,
// and how often, once it is gone, the lock is tried again.
var schemaCheck = 2 * time.Second

// schemaHold is the session advisory lock on a schema's name, on a
// connection kept for the store's life, so a second pollrelay on the same
// schema is refused at start rather than polling and delivering beside
// the first: members do not divide the work between them yet, and two
// would send every webhook twice. The lock goes with the session, so a
// killed process leaves nothing held.
//
// It also goes when the database restarts or the connection is cut, and a
// copy started then would be let in. So the session is checked every
// schemaCheck and, once it is gone, the lock taken again on a new one as
// soon as the database answers. Should another pollrelay have taken it
// meanwhile, Lost says so and the running one must stop.
type schemaHold struct {
	pool   *pgxpool.Pool
	schema string
	log    *slog.Logger

	mu   sync.Mutex
	conn *pgxpool.Conn // nil while the lock is not held
	// session is the server process that holds, or last held, the lock.
	session backend

	lost chan error // gets ErrInUse once, when another took the schema
	stop chan struct{}
	once sync.Once // closes stop: Close may be called more than once
	done chan struct{}
}

func (h *schemaHold) key() string { return "pollrelay-run:" + h.schema }

// holdSchema takes the schema's lock, or fails with ErrInUse, and keeps
// it until release.
func holdSchema(ctx context.Context, pool *pgxpool.Pool, schema string, log *slog.Logger) (*schemaHold, error) {
	h := &schemaHold{pool: pool, schema: schema, log: log,
		lost: make(chan error, 1), stop: make(chan struct{}), done: make(chan struct{})}
	conn, ok, err := h.take(ctx)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: schema %s is held by a running pollrelay; run one copy per schema (each replica its own schema), or stop the other first", ErrInUse, schema)
	}
	h.conn = conn
	go h.keep()
	return h, nil
}

// backend names a server process: its pid, and when it started, since
// pids are reused.
type backend struct {
	pid     int32
	started time.Time
}

func (b backend) is(o backend) bool { return b.pid == o.pid && b.started.Equal(o.started) }

// take tries the lock on a new session: the session when it got it.
func (h *schemaHold) take(ctx context.Context) (*pgxpool.Conn, bool, error) {
	conn, err := h.pool.Acquire(ctx)
	if err != nil {
		return nil, false, err
	}
	var ok bool
	var b backend
	err = conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 0)), pg_backend_pid(),
  (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid())`, h.key()).Scan(&ok, &b.pid, &b.started)
	if err != nil {
		conn.Release()
		return nil, false, err
	}
	if !ok {
		conn.Release()
		return nil, false, nil
	}
	h.session = b
	return conn, true, nil
}

// holder is the server process that holds the schema's lock, if any.
func (h *schemaHold) holder(ctx context.Context) (backend, bool, error) {
	var b backend
	err := h.pool.QueryRow(ctx, `
SELECT a.pid, a.backend_start
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid, (SELECT hashtextextended($1, 0) AS k) h
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid::bigint = (h.k >> 32) & 4294967295 AND l.objid::bigint = h.k & 4294967295`, h.key()).Scan(&b.pid, &b.started)
	if errors.Is(err, pgx.ErrNoRows) {
		return backend{}, false, nil
	}
	return b, err == nil, err
}

// retake takes the lock again on a new session. A connection cut without
// the server hearing of it leaves this store's old session, and the lock,
// there until the server times it out (hours, with TCP's defaults): that
// session is ended, and the lock taken once it is gone. lost reports a
// lock held by any other process: another pollrelay's.
func (h *schemaHold) retake(ctx context.Context) (conn *pgxpool.Conn, lost bool, err error) {
	ended := false
	for {
		conn, ok, err := h.take(ctx)
		if err != nil || ok {
			return conn, false, err
		}
		hb, found, err := h.holder(ctx)
		switch {
		case err != nil:
			return nil, false, err
		case !found:
			// Let go between the two: try again.
		case !hb.is(h.session):
			return nil, true, nil
		default:
			if !ended {
				h.log.Warn("store: ending this store's earlier session, cut off but still holding the schema on the server", "schema", h.schema, "pid", hb.pid)
				ended = true
			}
			if _, err := h.pool.Exec(ctx, "SELECT pg_terminate_backend($1)", hb.pid); err != nil {
				return nil, false, err
			}
		}
		select {
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case <-time.After(50 * time.Millisecond): // the ended process lets go as it exits
		}
	}
}

// keep checks the session and takes the lock again when it is gone,
// until release or until another pollrelay has it.
func (h *schemaHold) keep() {
	defer close(h.done)
	t := time.NewTicker(schemaCheck)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		if h.check() {
			return
		}
	}
}

// check makes sure the lock is held, and reports whether it is lost to
// another pollrelay for good.
func (h *schemaHold) check() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conn != nil {
		_, err := h.conn.Exec(ctx, "SELECT 1")
		if err == nil {
			return false
		}
		h.log.Warn("store: the session holding the schema is gone, and the lock with it; taking it again", "schema", h.schema, "error", err.Error())
		// Not back to the pool: a broken connection is no use to it.
		h.conn.Conn().Close(ctx)
		h.conn.Release()
		h.conn = nil
	}
	conn, lost, err := h.retake(ctx)
	switch {
	case err != nil:
		return false // the database is still away: again at the next check
	case lost:
		h.log.Error("store: another pollrelay took the schema while the database was away; this one must stop", "schema", h.schema)
		h.lost <- fmt.Errorf("%w: schema %s was taken by another pollrelay while the database was away", ErrInUse, h.schema)
		return true
	}
	h.conn = conn
	h.log.Info("store: schema lock taken again", "schema", h.schema)
	return false
}

// held reports whether the lock is held now.
func (h *schemaHold) held() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.conn != nil
}

// release gives the lock up. Unlocking is what makes it synchronous: the
// server ends a closed session's backend, and releases its locks, only
// some time after the client hangs up, and a pollrelay started at once in
// that time would be refused. If the unlock fails, the lock still goes
// with the session.
func (h *schemaHold) release() {
	h.once.Do(func() { close(h.stop) })
	<-h.done
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := h.conn.Exec(ctx, "SELECT pg_advisory_unlock(hashtextextended($1, 0))", h.key()); err != nil {
		// Not back to the pool: the session may still hold the lock.
		h.conn.Conn().Close(ctx)
	}
	h.conn.Release()
	h.conn = nil
}
