package postgres

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/pollrelay/pollrelay/store"
)

// versions lists what schema_migrations records.
func versions(t *testing.T, s *Store) []int {
	t.Helper()
	rows, err := s.pool.Query(context.Background(), "SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func wantVersions(t *testing.T, s *Store) {
	t.Helper()
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	got := versions(t, s)
	if len(got) != len(ms) {
		t.Fatalf("schema_migrations = %v, want one row for each of %d migrations", got, len(ms))
	}
	for i, m := range ms {
		if got[i] != m.version {
			t.Fatalf("schema_migrations = %v, want %d at %d", got, m.version, i)
		}
	}
}

// A fresh schema gets every table; opening it again changes nothing and
// keeps what was stored.
func TestMigrateFreshThenAgain(t *testing.T) {
	schema := freshSchema(t)
	s := openIn(t, schema)
	wantVersions(t, s)
	err := s.Update(func(tx store.Txn) error { return tx.PutSourceState("a", store.SourceState{Baselined: true}) })
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	s2 := openIn(t, schema)
	wantVersions(t, s2)
	err = s2.View(func(tx store.Txn) error {
		st, err := tx.SourceState("a")
		if err == nil && !st.Baselined {
			t.Error("the source's state is gone after a second open")
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A schema migrated by a newer pollrelay is refused, not written to.
func TestMigrateRefusesNewerSchema(t *testing.T) {
	schema := freshSchema(t)
	s := openIn(t, schema)
	latest := schemaVersion()
	if _, err := s.pool.Exec(context.Background(), "INSERT INTO schema_migrations (version, name) VALUES ($1, 'from_the_future')", latest+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, ro := range []bool{false, true} {
		_, err := Open(Options{URL: testURL(t), Schema: schema, ReadOnly: ro, Logger: quiet})
		if err == nil || !strings.Contains(err.Error(), "newer than this pollrelay knows") {
			t.Errorf("read-only %v: Open = %v, want a refusal of the newer schema", ro, err)
		}
	}
}

// Members starting together on a new schema all start: the advisory
// lock makes one migrate and the others find it done.
func TestMigrateConcurrentOpens(t *testing.T) {
	schema := freshSchema(t)
	const n = 4
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			stores[i], errs[i] = Open(Options{URL: testURL(t), Schema: schema, MaxConns: 2, Logger: quiet})
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("open %d: %v", i, errs[i])
			continue
		}
		defer stores[i].Close()
	}
	if t.Failed() {
		return
	}
	wantVersions(t, stores[0])
}

// A read-only open (probe) migrates nothing: a schema never created is
// ErrNoSchema and stays uncreated, and an existing one refuses writes.
func TestReadOnlyOpen(t *testing.T) {
	schema := freshSchema(t)
	_, err := Open(Options{URL: testURL(t), Schema: schema, ReadOnly: true, Logger: quiet})
	if !errors.Is(err, ErrNoSchema) {
		t.Fatalf("Open of a missing schema = %v, want ErrNoSchema", err)
	}
	openIn(t, schema).Close()
	ro, err := Open(Options{URL: testURL(t), Schema: schema, ReadOnly: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	err = ro.Update(func(tx store.Txn) error { return tx.PutSourceState("a", store.SourceState{}) })
	if err == nil {
		t.Error("a read-only store took a write")
	}
	if err := ro.View(func(tx store.Txn) error { _, err := tx.SourceState("a"); return err }); err != nil {
		t.Errorf("View: %v", err)
	}
}

// Bad options are refused before anything connects, and no error shows
// the URL's password.
func TestOpenErrorsKeepThePasswordOut(t *testing.T) {
	for _, o := range []Options{
		{URL: "postgres://u:pw-TOPSECRET@127.0.0.1:1/db?connect_timeout=1", Schema: "x"},
		{URL: "postgres://u:pw-TOPSECRET@127.0.0.1:5432/db?sslmode=bogus"},
		{URL: "postgres://u:pw-TOPSECRET@[::1/db"},
		{URL: "postgres://u:pw-TOPSECRET@127.0.0.1/db", Schema: "Robert'); DROP"},
	} {
		_, err := Open(o)
		if err == nil {
			t.Errorf("Open(%q): no error", o.Schema)
			continue
		}
		t.Log(err)
		if strings.Contains(err.Error(), "TOPSECRET") {
			t.Errorf("the password is in the error: %v", err)
		}
	}
}
