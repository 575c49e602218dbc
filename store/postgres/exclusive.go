package postgres

import (
	"context"
	"errors"
	"fmt"

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
