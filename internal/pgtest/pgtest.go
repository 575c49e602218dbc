// Package pgtest gives tests a PostgreSQL schema of their own on the
// server POLLRELAY_TEST_POSTGRES_URL names.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pollrelay/pollrelay/internal/testenv"
)

// URL is the test server's connection string. Without one the test is
// skipped, or fails in CI.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("POLLRELAY_TEST_POSTGRES_URL")
	if u == "" {
		testenv.Missing(t, "POLLRELAY_TEST_POSTGRES_URL is not set: this test needs a PostgreSQL server, e.g. postgres://root@127.0.0.1:5432/test?sslmode=disable")
	}
	return u
}

// Schema names a schema no other test uses, dropped with everything in
// it when t ends.
func Schema(t testing.TB) string {
	t.Helper()
	return SchemaOn(t, URL(t))
}

// SchemaOn is Schema on the server url names.
func SchemaOn(t testing.TB, url string) string {
	t.Helper()
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
