package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pollrelay/pollrelay/cluster"
)

// Cluster is the cluster's members and leases in the store's schema
// (migrations/0002_cluster.sql): a cluster.Backend for replicas that share
// the database. The leases' token rows are the store's leases table, the
// rows its fenced views check. A lease lasts as long as its holder's
// heartbeat, so renewing thousands of leases writes one row.
type Cluster struct {
	pool    *pgxpool.Pool
	channel string
	log     *slog.Logger
	// connConfig opens the listening connection, apart from the pool:
	// LISTEN holds a connection for as long as it runs.
	connConfig *pgx.ConnConfig
}

// Cluster returns the store's cluster backend.
func (s *Store) Cluster() *Cluster {
	return &Cluster{pool: s.pool, channel: clusterChannel(s.schema), log: s.log, connConfig: s.pool.Config().ConnConfig.Copy()}
}

// clusterChannel is the NOTIFY channel of a schema's cluster: named after
// the schema, so deployments sharing a database do not wake each other,
// and within PostgreSQL's 63 bytes.
func clusterChannel(schema string) string {
	const suffix = "_cluster"
	return schema[:min(len(schema), 63-len(suffix))] + suffix
}

// acquireWait is how long an acquisition waits for a poll that holds the
// old token to end before it leaves the lease for a later try: short, as
// each lease of a batch may wait this long.
const acquireWait = 50 * time.Millisecond

// staleMembers is how long after its expiry a member's row is kept: long
// enough to read why a member went away, short enough to stay small.
const staleMembers = "1 hour"

// Join registers m with its configs, in one transaction.
func (c *Cluster) Join(ctx context.Context, m cluster.Member, ttl time.Duration, configs map[string]string) error {
	sources := make([][]byte, 0, len(configs))
	hashes := make([]string, 0, len(configs))
	for s, h := range configs {
		sources = append(sources, []byte(s))
		hashes = append(hashes, h)
	}
	h := m.Holder
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		var b pgx.Batch
		b.Queue("DELETE FROM members WHERE expires_at < clock_timestamp() - $1::interval", staleMembers)
		b.Queue(`INSERT INTO members (member, process, version, expires_at) VALUES ($1, $2, $3, clock_timestamp() + $4)
			ON CONFLICT (member, process) DO UPDATE SET version = excluded.version, expires_at = excluded.expires_at`,
			h.Member, h.ID, m.Version, ttl)
		b.Queue("DELETE FROM member_configs WHERE member = $1 AND process = $2", h.Member, h.ID)
		b.Queue(`INSERT INTO member_configs (member, process, source, config)
			SELECT $1, $2, s, c FROM unnest($3::bytea[], $4::text[]) AS x(s, c)`, h.Member, h.ID, sources, hashes)
		// The leases it holds take on its new configs: the rolling-change
		// rule compares with the config the holder runs now.
		b.Queue(`UPDATE lease_holds l SET config = c.config FROM member_configs c
			WHERE l.member = $1 AND l.process = $2 AND c.member = l.member AND c.process = l.process
			  AND c.source = l.source AND l.config <> c.config`, h.Member, h.ID)
		b.Queue("SELECT pg_notify($1, $2)", c.channel, h.String())
		return tx.SendBatch(ctx, &b).Close()
	})
	if err != nil {
		return fmt.Errorf("join as %s: %w", h, err)
	}
	return nil
}

// Heartbeat keeps h live, and with it every lease it holds: one row
// written however many leases it holds. It returns those of names h still
// holds. A lease whose holder's heartbeat expired but that no one acquired
// since is held again: its token never changed, so no one else polled
// under it.
func (c *Cluster) Heartbeat(ctx context.Context, h cluster.Holder, ttl time.Duration, names []string) ([]string, error) {
	var held [][]byte
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "UPDATE members SET expires_at = clock_timestamp() + $3 WHERE member = $1 AND process = $2",
			h.Member, h.ID, ttl)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return cluster.ErrNotMember
		}
		if len(names) == 0 {
			return nil
		}
		rows, err := tx.Query(ctx, "SELECT name FROM lease_holds WHERE member = $1 AND process = $2 AND released IS NULL",
			h.Member, h.ID)
		if err != nil {
			return err
		}
		held, err = pgx.CollectRows(rows, pgx.RowTo[[]byte])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("heartbeat of %s: %w", h, err)
	}
	mine := make(map[string]bool, len(held))
	for _, n := range held {
		mine[string(n)] = true
	}
	var renewed []string
	for _, n := range names {
		if mine[n] {
			renewed = append(renewed, n)
		}
	}
	return renewed, nil
}

func byteNames(names []string) [][]byte {
	out := make([][]byte, len(names))
	for i, n := range names {
		out[i] = []byte(n)
	}
	return out
}

// Members returns the live members.
func (c *Cluster) Members(ctx context.Context) ([]cluster.Member, error) {
	rows, err := c.pool.Query(ctx, `SELECT member, process, version FROM members
		WHERE expires_at > clock_timestamp() ORDER BY member, process`)
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	ms, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cluster.Member, error) {
		var m cluster.Member
		err := r.Scan(&m.Holder.Member, &m.Holder.ID, &m.Version)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	return ms, nil
}

// MemberConfigs returns a member's config hash per source.
func (c *Cluster) MemberConfigs(ctx context.Context, h cluster.Holder) (map[string]string, error) {
	rows, err := c.pool.Query(ctx, "SELECT source, config FROM member_configs WHERE member = $1 AND process = $2", h.Member, h.ID)
	if err != nil {
		return nil, fmt.Errorf("configs of %s: %w", h, err)
	}
	out := map[string]string{}
	var src []byte
	var cfg string
	_, err = pgx.ForEachRow(rows, []any{&src, &cfg}, func() error {
		out[string(src)] = cfg
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("configs of %s: %w", h, err)
	}
	return out, nil
}

// Leases returns every lease's state. It reads the token rows without
// locking them, so it never waits for a poll.
func (c *Cluster) Leases(ctx context.Context) ([]cluster.Lease, error) {
	rows, err := c.pool.Query(ctx, `SELECT l.name, h.member, h.process, l.token, h.config,
			h.released IS NULL AND coalesce(m.expires_at > clock_timestamp(), false), coalesce(h.released, '')
		FROM leases l JOIN lease_holds h USING (name)
		LEFT JOIN members m ON m.member = h.member AND m.process = h.process
		ORDER BY l.name`)
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	ls, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cluster.Lease, error) {
		var l cluster.Lease
		var name []byte
		err := r.Scan(&name, &l.Holder.Member, &l.Holder.ID, &l.Token, &l.Config, &l.Live, &l.Released)
		l.Name = string(name)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	return ls, nil
}

// Acquire makes h the holder of the claimed leases that are free or
// expired with the token expected (acquire_leases in
// migrations/0002_cluster.sql), in one round trip.
func (c *Cluster) Acquire(ctx context.Context, h cluster.Holder, claims []cluster.Claim) (map[string]int64, error) {
	names, srcs := make([][]byte, len(claims)), make([][]byte, len(claims))
	cfgs, expects := make([]string, len(claims)), make([]int64, len(claims))
	for i, cl := range claims {
		_, src, _, ok := cluster.ParseLease(cl.Name)
		if !ok {
			return nil, fmt.Errorf("acquire %q: not a lease name", cl.Name)
		}
		names[i], srcs[i], cfgs[i], expects[i] = []byte(cl.Name), []byte(src), cl.Config, cl.Expect
	}
	rows, err := c.pool.Query(ctx, "SELECT lease, token FROM acquire_leases($1, $2, $3, $4, $5, $6, $7)",
		names, srcs, cfgs, expects, h.Member, h.ID, acquireWait)
	if err != nil {
		return nil, fmt.Errorf("acquire %d leases: %w", len(claims), err)
	}
	got := map[string]int64{}
	var name []byte
	var token int64
	_, err = pgx.ForEachRow(rows, []any{&name, &token}, func() error {
		got[string(name)] = token
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("acquire %d leases: %w", len(claims), err)
	}
	return got, nil
}

// Release frees the leases h holds among names, and wakes the other
// members to take them.
func (c *Cluster) Release(ctx context.Context, h cluster.Holder, names []string, reason string) error {
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		var b pgx.Batch
		b.Queue(`UPDATE lease_holds SET released = $3
			WHERE name = ANY($4::bytea[]) AND member = $1 AND process = $2 AND released IS NULL`,
			h.Member, h.ID, reason, byteNames(names))
		b.Queue("SELECT pg_notify($1, $2)", c.channel, h.String())
		return tx.SendBatch(ctx, &b).Close()
	})
	if err != nil {
		return fmt.Errorf("release %d leases of %s: %w", len(names), h, err)
	}
	return nil
}

// Leave releases h's leases and removes h from the members, in one
// transaction.
func (c *Cluster) Leave(ctx context.Context, h cluster.Holder) error {
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		var b pgx.Batch
		b.Queue("UPDATE lease_holds SET released = $3 WHERE member = $1 AND process = $2 AND released IS NULL",
			h.Member, h.ID, cluster.ReasonReleased)
		b.Queue("DELETE FROM members WHERE member = $1 AND process = $2", h.Member, h.ID)
		b.Queue("SELECT pg_notify($1, $2)", c.channel, h.String())
		return tx.SendBatch(ctx, &b).Close()
	})
	if err != nil {
		return fmt.Errorf("leave as %s: %w", h, err)
	}
	return nil
}

// listenRetry is how long the listener waits before it connects again.
const listenRetry = time.Second

// Wakeups sends when another member joined, left or released leases,
// until ctx ends. A notification missed while the listener reconnects
// costs only a wait for the next renewal.
func (c *Cluster) Wakeups(ctx context.Context, me cluster.Holder) <-chan struct{} {
	out := make(chan struct{}, 1)
	go func() {
		defer close(out)
		for ctx.Err() == nil {
			err := c.listen(ctx, me.String(), out)
			if ctx.Err() != nil {
				return
			}
			c.log.Debug("cluster: listening for lease changes failed; retrying", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(listenRetry):
			}
		}
	}()
	return out
}

func (c *Cluster) listen(ctx context.Context, me string, out chan<- struct{}) error {
	conn, err := pgx.ConnectConfig(ctx, c.connConfig)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{c.channel}.Sanitize()); err != nil {
		return err
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if n.Payload == me {
			continue
		}
		select {
		case out <- struct{}{}:
		default:
		}
	}
}

var _ cluster.Waker = (*Cluster)(nil)
