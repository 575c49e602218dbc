package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

const postgresBase = `
api_token: api-token-0123456789
sources: [{name: a, url: "http://127.0.0.1/x", id: .id, state: .s, items: ".[]"}]
`

// storage.postgres is checked as a whole, and no problem quotes the URL:
// it may hold a password.
func TestPostgresStorage(t *testing.T) {
	c := mustParse(t, postgresBase+"storage: {postgres: {url: \"postgres://u:pw-TOPSECRET@db:5432/app\"}}", noEnv)
	if pg := c.Storage.Postgres; pg.Schema != "pollrelay" || pg.MaxConns != 8 {
		t.Errorf("defaults: %+v", pg)
	}
	c = mustParse(t, postgresBase+"storage: {path: \"\", postgres: {url: \"postgresql:///app?host=/run/pg\", schema: team_a, max_conns: 3}}", noEnv)
	if pg := c.Storage.Postgres; pg.Schema != "team_a" || pg.MaxConns != 3 {
		t.Errorf("set: %+v", pg)
	}
	cases := map[string][]string{
		`{postgres: {url: "mysql://u:pw-TOPSECRET@db/app"}}`: {"storage.postgres.url: must start with postgres:// or postgresql://"},
		`{postgres: {url: "postgres://u:pw-TOPSECRET@db:99999999x/app"}}`: {
			"storage.postgres.url: must be a URL, postgres://user:password@host:5432/database"},
		`{postgres: {url: "postgres:///app"}}`: {"storage.postgres.url: must name a host, postgres://user:password@host:5432/database"},
		`{in_memory: true, postgres: {url: "postgres://db/app", schema: "Bad-Name", max_conns: 0}}`: {
			"storage.in_memory: cannot be set with storage.postgres.url: the store is the database",
			"storage.postgres.max_conns: must be from 1 to 1000",
			"storage.postgres.schema: must be a lower-case identifier ([a-z_][a-z0-9_]*, at most 63 characters, not starting with pg_)",
		},
		`{postgres: {url: "postgres://db/app", schema: pg_catalog, max_conns: 1001}}`: {
			"storage.postgres.max_conns: must be from 1 to 1000",
			"storage.postgres.schema: must be a lower-case identifier ([a-z_][a-z0-9_]*, at most 63 characters, not starting with pg_)",
		},
	}
	for storage, want := range cases {
		_, err := ParseWith([]byte(postgresBase+"storage: "+storage), noEnv)
		if err == nil {
			t.Errorf("%s: no error", storage)
			continue
		}
		if got := problemsOf(t, err); !slices.Equal(got, want) {
			t.Errorf("%s:\n  %s\nwant:\n  %s", storage, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
		if strings.Contains(err.Error(), "TOPSECRET") {
			t.Errorf("a secret leaked into the error: %v", err)
		}
	}
}

// Changing the database is a restart, like changing the directory.
func TestPostgresIsARestartKey(t *testing.T) {
	a := mustParse(t, postgresBase+"storage: {postgres: {url: \"postgres://db/app\"}}", noEnv)
	b := mustParse(t, postgresBase+"storage: {postgres: {url: \"postgres://db/app\", schema: other}}", noEnv)
	if got := RestartKeys(a, b); !slices.Equal(got, []string{"storage.postgres"}) {
		t.Errorf("RestartKeys = %q", got)
	}
}

// The URL usually comes from the environment, as a Secret would give it.
func TestPostgresURLFromEnvironment(t *testing.T) {
	c := mustParse(t, postgresBase, env(map[string]string{"POLLRELAY_STORAGE__POSTGRES__URL": "postgres://u:pw@db/app"}))
	if c.Storage.Postgres.URL != "postgres://u:pw@db/app" {
		t.Errorf("url = %q", c.Storage.Postgres.URL)
	}
}

// cluster: names this replica and its lease, only beside the shared
// store, and changing either is a restart.
func TestCluster(t *testing.T) {
	pg := postgresBase + "storage: {postgres: {url: \"postgres://db/app\"}}\n"
	c := mustParse(t, pg, noEnv)
	if c.Cluster.Member != "" || c.Cluster.Lease != DefaultLease {
		t.Errorf("defaults: %+v", c.Cluster)
	}
	c = mustParse(t, pg+"cluster: {member: web-7d9f-x2, lease: 30s}", env(map[string]string{}))
	if c.Cluster.Member != "web-7d9f-x2" || c.Cluster.Lease != 30*time.Second {
		t.Errorf("set: %+v", c.Cluster)
	}
	b := mustParse(t, pg+"cluster: {member: web-7d9f-x2, lease: 20s}", noEnv)
	if got := RestartKeys(c, b); !slices.Equal(got, []string{"cluster.lease"}) {
		t.Errorf("RestartKeys = %q", got)
	}
	cases := map[string][]string{
		postgresBase + "cluster: {member: a}":  {"cluster: applies only with storage.postgres.url: the embedded store serves one copy"},
		postgresBase + "cluster: {lease: 30s}": {"cluster: applies only with storage.postgres.url: the embedded store serves one copy"},
		pg + "cluster: {member: 'a b', lease: 1s}": {
			"cluster.lease: must be from 4s to 10m0s",
			"cluster.member: must be letters, digits, '.', '_' or '-' (at most 253), as a pod name is",
		},
		pg + "cluster: {lease: 11m}": {"cluster.lease: must be from 4s to 10m0s"},
	}
	for file, want := range cases {
		_, err := ParseWith([]byte(file), noEnv)
		if err == nil {
			t.Errorf("%s: no error", file)
			continue
		}
		if got := problemsOf(t, err); !slices.Equal(got, want) {
			t.Errorf("%s:\n  %s\nwant:\n  %s", file, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	}
}
