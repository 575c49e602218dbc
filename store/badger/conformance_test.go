package badger_test

import (
	"sync"
	"testing"

	"github.com/pollrelay/pollrelay/store"
	"github.com/pollrelay/pollrelay/store/badger"
	"github.com/pollrelay/pollrelay/store/storetest"
)

// TestConformance runs the store conformance suite against Badger in a
// temporary directory, restarts included.
func TestConformance(t *testing.T) {
	var mu sync.Mutex
	paths := map[store.Store]string{}
	open := func(t *testing.T, path string) store.Store {
		t.Helper()
		s, err := badger.Open(badger.Options{Path: path})
		if err != nil {
			t.Fatalf("open %s: %v", path, err)
		}
		var once sync.Once
		t.Cleanup(func() { once.Do(func() { s.Close() }) })
		mu.Lock()
		paths[s] = path
		mu.Unlock()
		return closeOnce{s, &once}
	}
	storetest.RunBackend(t, storetest.Backend{
		Open: func(t *testing.T) store.Store { return open(t, t.TempDir()) },
		Reopen: func(t *testing.T, old store.Store) store.Store {
			c := old.(closeOnce)
			mu.Lock()
			path := paths[c.Store]
			mu.Unlock()
			if err := c.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			return open(t, path)
		},
	})
}

// closeOnce lets Reopen close a store that a Cleanup closes too.
type closeOnce struct {
	*badger.Store
	once *sync.Once
}

func (c closeOnce) Close() error {
	var err error
	c.once.Do(func() { err = c.Store.Close() })
	return err
}
