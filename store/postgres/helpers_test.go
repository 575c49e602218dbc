package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pollrelay/pollrelay/internal/testenv"
)

// testURL is the server the tests use, from POLLRELAY_TEST_POSTGRES_URL.
func testURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("POLLRELAY_TEST_POSTGRES_URL")
	if u == "" {
		testenv.Missing(t, "POLLRELAY_TEST_POSTGRES_URL is not set: the PostgreSQL store's tests need a server, e.g. postgres://root@127.0.0.1:5432/test?sslmode=disable")
	}
	return u
}

// freshSchema names a schema no other test uses and drops it when t ends.
func freshSchema(t testing.TB) string {
	t.Helper()
	url := testURL(t)
	b := make([]byte, 6)
	rand.Read(b)
	name := "test_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("drop schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

// openIn opens the store in schema, closed when t ends.
func openIn(t testing.TB, schema string) *Store {
	t.Helper()
	s, err := Open(Options{URL: testURL(t), Schema: schema, MaxConns: 4, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openTest opens a store in a fresh schema.
func openTest(t testing.TB) *Store {
	t.Helper()
	return openIn(t, freshSchema(t))
}

var quiet = slog.New(slog.DiscardHandler)
