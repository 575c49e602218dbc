package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrInUse is a schema another pollrelay already runs on.
var ErrInUse = errors.New("schema in use by another pollrelay")

// holdSchema takes a session advisory lock on the schema's name on a
// connection kept for the store's life, so a second pollrelay on the same
// schema is refused at start rather than polling and delivering beside
// the first: members do not divide the work between them yet, and two
// would send every webhook twice. The lock goes with the session, so a
// killed process leaves nothing held.
func holdSchema(ctx context.Context, pool *pgxpool.Pool, schema string) (*pgxpool.Conn, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", "pollrelay-run:"+schema).Scan(&ok); err != nil {
		conn.Release()
		return nil, err
	}
	if !ok {
		conn.Release()
		return nil, fmt.Errorf("%w: schema %s is held by a running pollrelay; run one copy per schema (each replica its own schema), or stop the other first", ErrInUse, schema)
	}
	return conn, nil
}

// releaseSchema gives up what holdSchema took and returns conn to the
// pool. Unlocking is what makes it synchronous: the server ends a closed
// session's backend, and releases its locks, only some time after the
// client hangs up, and a pollrelay started at once in that time would be
// refused. If the unlock fails, the lock still goes with the session.
func releaseSchema(conn *pgxpool.Conn, schema string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_unlock(hashtextextended($1, 0))", "pollrelay-run:"+schema); err != nil {
		// Not back to the pool: the session may still hold the lock.
		conn.Conn().Close(ctx)
	}
	conn.Release()
}
