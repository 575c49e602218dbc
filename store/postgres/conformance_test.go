package postgres

import (
	"sync"
	"testing"

	"github.com/pollrelay/pollrelay/store"
	"github.com/pollrelay/pollrelay/store/storetest"
)

// TestConformance runs the store conformance suite against PostgreSQL,
// each subtest in a fresh schema dropped when it ends, restarts included
// (a reopen is a new pool on the same schema).
func TestConformance(t *testing.T) {
	testURL(t)
	var mu sync.Mutex
	schemas := map[store.Store]string{}
	open := func(t *testing.T, schema string) store.Store {
		t.Helper()
		s, err := Open(Options{URL: testURL(t), Schema: schema, MaxConns: 4, Logger: quiet})
		if err != nil {
			t.Fatalf("open schema %s: %v", schema, err)
		}
		var once sync.Once
		t.Cleanup(func() { once.Do(func() { s.Close() }) })
		c := closeOnce{s, &once}
		mu.Lock()
		schemas[c] = schema
		mu.Unlock()
		return c
	}
	storetest.RunBackend(t, storetest.Backend{
		Open: func(t *testing.T) store.Store { return open(t, freshSchema(t)) },
		Reopen: func(t *testing.T, old store.Store) store.Store {
			mu.Lock()
			schema := schemas[old]
			mu.Unlock()
			if err := old.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			return open(t, schema)
		},
	})
}

// closeOnce lets Reopen close a store that a Cleanup closes too.
type closeOnce struct {
	*Store
	once *sync.Once
}

func (c closeOnce) Close() error {
	var err error
	c.once.Do(func() { err = c.Store.Close() })
	return err
}
