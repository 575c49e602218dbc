package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Migrations are embedded SQL files, NNNN_name.sql, applied in order and
// recorded in the schema's schema_migrations table. A library (goose,
// tern) was weighed and not taken: each needs its own locking and
// version table, while here every pending file must run in the one
// transaction that holds pg_advisory_xact_lock on the schema's name, so
// that members starting together apply each file once and a crash part
// way leaves nothing half done (PostgreSQL's DDL is transactional); and
// refusing a schema newer than this build is a check of its own either
// way. What that leaves is a loop over a directory.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations lists the embedded files by version.
func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, n := range names {
		base := path.Base(n)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: the name must start with a version, as 0001_name.sql", base)
		}
		b, err := migrationFiles.ReadFile(n)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: strings.TrimSuffix(base, ".sql"), sql: string(b)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s have the same version", out[i-1].name, out[i].name)
		}
	}
	return out, nil
}

// schemaVersion is the newest version this build knows.
func schemaVersion() int {
	ms, err := migrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// ErrNoSchema marks a read-only open of a schema that was never created:
// nothing has been stored there yet.
var ErrNoSchema = errors.New("schema does not exist")

// migrate creates the schema and applies what it lacks, in one
// transaction under the schema's advisory lock. Members that start
// together wait for the first, then find nothing to do.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string) (from, to int, err error) {
	ms, err := migrations()
	if err != nil {
		return 0, 0, err
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// hashtextextended maps the name into the lock's bigint space;
		// another schema's name hashing the same only makes the two
		// migrate one after the other.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", "pollrelay:"+schema); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		// A schema made beforehand by a DBA is used as it is: CREATE
		// SCHEMA needs a privilege on the database its owner may lack.
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&exists); err != nil {
			return err
		}
		ident := pgx.Identifier{schema}.Sanitize()
		if !exists {
			if _, err := tx.Exec(ctx, "CREATE SCHEMA "+ident); err != nil {
				return fmt.Errorf("create schema: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, "SET LOCAL search_path TO "+ident); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT clock_timestamp())`)
		if err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&from); err != nil {
			return err
		}
		to = from
		if latest := ms[len(ms)-1].version; from > latest {
			return newerError(schema, from, latest)
		}
		for _, m := range ms {
			if m.version <= from {
				continue
			}
			// No arguments: pgx sends the file as a simple query, which
			// may hold many statements.
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("apply %s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
				return fmt.Errorf("record %s: %w", m.name, err)
			}
			to = m.version
		}
		return nil
	})
	return from, to, err
}

func newerError(schema string, have, know int) error {
	return fmt.Errorf("schema %s is at version %d, newer than this pollrelay knows (%d): run a newer pollrelay, or another schema", schema, have, know)
}

// checkSchema is migrate for a read-only open: it changes nothing and
// refuses a schema that is missing, older or newer than this build.
func checkSchema(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	var exists bool
	err := pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", pgx.Identifier{schema, "schema_migrations"}.Sanitize()).Scan(&exists)
	if err != nil {
		return err
	}
	if !exists {
		return fmt.Errorf("schema %s: %w", schema, ErrNoSchema)
	}
	var have int
	if err := pool.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&have); err != nil {
		return err
	}
	know := schemaVersion()
	switch {
	case have > know:
		return newerError(schema, have, know)
	case have < know:
		return fmt.Errorf("schema %s is at version %d, older than this pollrelay's (%d): it is migrated when pollrelay run starts", schema, have, know)
	}
	return nil
}
