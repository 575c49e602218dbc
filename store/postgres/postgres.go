// Package postgres is pollrelay's shared store: store's interfaces over
// PostgreSQL, for several replicas that act as one (see DESIGN.md,
// "Scale-out"). Its tables and why they are so are in
// migrations/0001_init.sql; they live in one schema of the database, so
// several deployments may share a database.
//
// Transactions. Update and Batch run SERIALIZABLE, which gives what
// Badger gives and the consumers rely on: a transaction that read
// something a concurrent one changed fails instead of committing a
// decision made on old data (REPEATABLE READ would catch only two writes
// of one row). Such failures (SQLSTATE 40001, and 40P01 for deadlocks)
// are redone here, up to maxConflicts times, then returned wrapping
// store.ErrConflict. View is REPEATABLE READ READ ONLY: one snapshot,
// never a serialization failure.
//
// Round trips. A Txn queues its writes and sends them with the next read
// or the commit, in one pipeline: a transaction that only writes costs
// one round trip, BEGIN and COMMIT included. Writes of items and events,
// which a poll makes by the thousand, are gathered into one statement
// each over arrays (see bulk.go).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pollrelay/pollrelay/internal/redact"
	"github.com/pollrelay/pollrelay/store"
)

// Options configures Open.
type Options struct {
	// URL is a PostgreSQL connection string, URL or key=value. It may
	// hold a password, which no error or log line shows.
	URL string
	// Schema holds the tables; created when missing. Default "pollrelay".
	Schema string
	// MaxConns bounds the pool. Default 8.
	MaxConns int
	Logger   *slog.Logger
	// ReadOnly opens an existing schema without migrating it, and
	// refuses every write (probe).
	ReadOnly bool
	// Exclusive refuses a schema another store holds Exclusive, and
	// holds it until Close (see holdSchema).
	Exclusive bool
}

// DefaultSchema is the schema used when Options.Schema is empty.
const DefaultSchema = "pollrelay"

// DefaultMaxConns is the pool size when Options.MaxConns is 0.
const DefaultMaxConns = 8

// schemaRE is what a schema name may be: an identifier that needs no
// quoting anywhere it is written, and not one of PostgreSQL's own.
var schemaRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// CheckSchema reports a schema name Open would refuse.
func CheckSchema(name string) error {
	if !schemaRE.MatchString(name) || len(name) >= 3 && name[:3] == "pg_" {
		return fmt.Errorf("schema %q: must be a lower-case identifier ([a-z_][a-z0-9_]*, at most 63 bytes, not starting with pg_)", name)
	}
	return nil
}

// Store is pollrelay's state in one PostgreSQL schema.
type Store struct {
	*shared
	// fence, when set, is checked first by every transaction that writes
	// (see Fenced).
	fence *fence
}

// shared is what a Store and its fenced views have in common.
type shared struct {
	pool     *pgxpool.Pool
	schema   string
	log      *slog.Logger
	readOnly bool
	secrets  *redact.Set
	// ctx ends with Close, so a transaction in flight stops then.
	ctx    context.Context
	cancel context.CancelFunc

	onEvent store.Hooks // run after a commit that added events to the outbox
	// held keeps the Exclusive lock's session; nil when not Exclusive.
	held *schemaHold

	metrics *metrics
}

// Open connects, creates or migrates the schema, and returns the store.
func Open(opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	schema := opts.Schema
	if schema == "" {
		schema = DefaultSchema
	}
	if err := CheckSchema(schema); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	cfg, secrets, err := poolConfig(opts, schema)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("open store: %s", secrets.String(err.Error()))
	}
	s := &Store{shared: &shared{
		pool: pool, schema: schema, log: log, readOnly: opts.ReadOnly, secrets: secrets,
		ctx: ctx, cancel: cancel,
	}}
	s.metrics = newMetrics(pool)
	if err := s.start(); err != nil {
		pool.Close()
		cancel()
		return nil, err
	}
	if opts.Exclusive && !opts.ReadOnly {
		if s.held, err = holdSchema(ctx, pool, schema, log); err != nil {
			pool.Close()
			cancel()
			if errors.Is(err, ErrInUse) {
				return nil, fmt.Errorf("open store: %w", err)
			}
			return nil, s.openError(err)
		}
	}
	return s, nil
}

// openTimeout bounds the connection and migration at start, so a
// database that is not there fails the start instead of hanging it.
const openTimeout = 30 * time.Second

func (s *Store) start() error {
	ctx, cancel := context.WithTimeout(s.ctx, openTimeout)
	defer cancel()
	if s.readOnly {
		if err := checkSchema(ctx, s.pool, s.schema); err != nil {
			return s.openError(err)
		}
		return nil
	}
	from, to, err := migrate(ctx, s.pool, s.schema)
	if err != nil {
		return s.openError(err)
	}
	if to != from {
		s.log.Info("store schema migrated", "schema", s.schema, "from_version", from, "to_version", to)
	}
	return nil
}

// openError says what failed at open without the URL's secrets; it
// keeps ErrNoSchema visible to errors.Is.
func (s *Store) openError(err error) error {
	msg := s.secrets.String(err.Error())
	if errors.Is(err, ErrNoSchema) {
		return fmt.Errorf("open store: %s: %w", msg, ErrNoSchema)
	}
	return fmt.Errorf("open store: schema %s: %s", s.schema, msg)
}

// poolConfig parses the URL and sets what the store needs of every
// connection: search_path to the schema, so the SQL names tables
// unqualified and one build serves any schema.
func poolConfig(opts Options, schema string) (*pgxpool.Config, *redact.Set, error) {
	secrets := &redact.Set{}
	cfg, err := pgxpool.ParseConfig(opts.URL)
	if err != nil {
		// pgx masks the password in what it quotes of the URL, as well
		// as it can parse one that failed to parse; the whole URL is cut
		// too, in case it could not.
		secrets.Add(opts.URL)
		return nil, nil, fmt.Errorf("open store: storage.postgres.url: %s", secrets.String(err.Error()))
	}
	secrets.Add(cfg.ConnConfig.Password)
	maxConns := opts.MaxConns
	if maxConns <= 0 {
		maxConns = DefaultMaxConns
	}
	cfg.MaxConns = int32(maxConns)
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	}
	rp := cfg.ConnConfig.RuntimeParams
	rp["search_path"] = pgx.Identifier{schema}.Sanitize()
	if rp["application_name"] == "" {
		rp["application_name"] = "pollrelay"
	}
	if opts.ReadOnly {
		rp["default_transaction_read_only"] = "on"
	}
	return cfg, secrets, nil
}

// Close closes the pool; a transaction in flight fails.
func (s *Store) Close() error {
	if s.fence != nil {
		return nil // a view: the store it came from owns the pool
	}
	if s.held != nil {
		s.held.release()
	}
	s.cancel()
	s.pool.Close()
	return nil
}

// Lost yields an error when, after the database went away, another
// pollrelay took the schema an Exclusive store held: this one must stop.
// It is nil for a store that is not Exclusive.
func (s *Store) Lost() <-chan error {
	if s.held == nil {
		return nil
	}
	return s.held.lost
}

// HoldsSchema reports whether an Exclusive store holds its schema's lock
// now: not while the database is away, until it is taken again.
func (s *Store) HoldsSchema() bool { return s.held != nil && s.held.held() }

// Pool is the store's connection pool, for the parts of a cluster that
// keep tables of their own beside the store's (leases, members). Its
// connections' search_path is the store's schema.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ping reports whether the database answers now, for /readyz.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping the database: %w", err)
	}
	return nil
}

// Schema is the schema the store's tables are in.
func (s *Store) Schema() string { return s.schema }

// OnEvent registers fn to run after every commit of this process that
// added events to the outbox.
func (s *Store) OnEvent(fn func()) { s.onEvent.Add(fn) }

func (s *Store) notifyEvent() { s.onEvent.Run() }

// Collectors are the store's metrics: pollrelay_quarantined_total and the
// pool's and transactions' pollrelay_store_* figures.
func (s *Store) Collectors() []prometheus.Collector { return s.metrics.collectors() }

var (
	_ store.Store = (*Store)(nil)
	_ store.Txn   = (*Txn)(nil)
	_ store.Batch = (*Batch)(nil)
)
