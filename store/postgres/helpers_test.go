package postgres

import (
	"log/slog"
	"testing"

	"github.com/pollrelay/pollrelay/internal/pgtest"
)

func testURL(t testing.TB) string { return pgtest.URL(t) }

func freshSchema(t testing.TB) string { return pgtest.Schema(t) }

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
