package storetest

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/store"
)

var watchCases = []testCase{
	{"RoundTrip", testWatchRoundTrip},
	{"OrderAndPaging", testWatchesPaging},
	{"ListedIDsAsStored", testWatchesListedIDs},
	{"EndedMarks", testWatchEnded},
}

func fullWatch(source, id string) *store.Watch {
	return &store.Watch{
		Source: source, ID: id, Metadata: json.RawMessage(`{"customer":"c1"}`),
		CreatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour), Origin: store.OriginAPI,
		ObservedAt: time.Unix(t0.Unix(), 5), ETag: `"e1"`, LastModified: "Sun, 01 Mar 2026 12:00:00 GMT",
		ValidatorsFor: "cfg-1",
	}
}

func getWatch(t testing.TB, s store.Store, source, id string) *store.Watch {
	t.Helper()
	var w *store.Watch
	view(t, s, func(tx store.Txn) error {
		var err error
		w, err = tx.Watch(source, id)
		return err
	})
	return w
}

func testWatchRoundTrip(t *testing.T, b Backend) {
	s := b.Open(t)
	update(t, s, func(tx store.Txn) error { return tx.PutWatch(fullWatch("w", "1")) })
	same(t, "Watch", getWatch(t, s, "w", "1"), fullWatch("w", "1"))
	if w := getWatch(t, s, "w", "2"); w != nil {
		t.Errorf("Watch of an id not watched = %s", show(w))
	}
	renewed := fullWatch("w", "1")
	renewed.Origin, renewed.Metadata, renewed.ExpiresAt = store.OriginWatchFrom, nil, time.Time{}
	update(t, s, func(tx store.Txn) error { return tx.PutWatch(renewed) })
	same(t, "Watch after a second PutWatch", getWatch(t, s, "w", "1"), renewed)
	update(t, s, func(tx store.Txn) error { return errors.Join(tx.DeleteWatch("w", "1"), tx.DeleteWatch("w", "never")) })
	if w := getWatch(t, s, "w", "1"); w != nil {
		t.Errorf("Watch after DeleteWatch = %s", show(w))
	}
}

// watchIDs are the ids of watchesFixture: what an API PUT may carry.
func watchIDs() []string {
	return []string{"b", "a", "a\x00", "a/b", "\xff", "\xc3", "é", "a b", "A", strings.Repeat("\xfe", store.MaxKeyPart)}
}

type watchKey struct{ source, id string }

func briefKeys(ks []watchKey) string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.source + "/" + k.id
	}
	return brief(out)
}

// watchesFixture stores the watch ids in sources that share prefixes and
// returns every watch in (source, id) order.
func watchesFixture(t testing.TB, s store.Store) []watchKey {
	t.Helper()
	var all []watchKey
	update(t, s, func(tx store.Txn) error {
		for _, src := range []string{"w", "w-2", "w2", "v"} {
			for _, id := range watchIDs() {
				all = append(all, watchKey{src, id})
				if err := tx.PutWatch(&store.Watch{Source: src, ID: id, CreatedAt: t0, Origin: store.OriginConfig}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	slices.SortFunc(all, func(a, b watchKey) int {
		if c := strings.Compare(a.source, b.source); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	return all
}

func listWatches(t testing.TB, s store.Store, source string, after watchKey, limit int) []watchKey {
	t.Helper()
	var out []watchKey
	view(t, s, func(tx store.Txn) error {
		return tx.Watches(source, after.source, after.id, func(w *store.Watch) bool {
			out = append(out, watchKey{w.Source, w.ID})
			return len(out) < limit
		})
	})
	return out
}

// Watches lists one source's watches, or every source's, in (source, id)
// bytewise order, after a cursor: pages of the API list each watch once.
func testWatchesPaging(t *testing.T, b Backend) {
	s := b.Open(t)
	all := watchesFixture(t, s)
	var ofW []watchKey
	for _, k := range all {
		if k.source == "w" {
			ofW = append(ofW, k)
		}
	}
	for _, c := range []struct {
		source string
		want   []watchKey
	}{{"", all}, {"w", ofW}} {
		if got := listWatches(t, s, c.source, watchKey{}, 1000); !slices.Equal(got, c.want) {
			t.Errorf("Watches(%q) = %s\nwant %s", c.source, briefKeys(got), briefKeys(c.want))
		}
		var paged []watchKey
		for after := (watchKey{}); ; {
			p := listWatches(t, s, c.source, after, 3)
			paged = append(paged, p...)
			if len(p) < 3 {
				break
			}
			after = p[len(p)-1]
		}
		if !slices.Equal(paged, c.want) {
			t.Errorf("Watches(%q) in pages of 3 = %s\nwant %s", c.source, briefKeys(paged), briefKeys(c.want))
		}
	}
	view(t, s, func(tx store.Txn) error {
		n, err := tx.CountWatches("w")
		if n != len(watchIDs()) {
			t.Errorf("CountWatches = %d, want %d", n, len(watchIDs()))
		}
		return err
	})
}

// A listed watch carries its source and id as they were put, any bytes
// kept: the watch loop polls, updates and removes it by them.
func testWatchesListedIDs(t *testing.T, b Backend) {
	s := b.Open(t)
	watchesFixture(t, s)
	listed := listWatches(t, s, "w", watchKey{}, 1000)
	update(t, s, func(tx store.Txn) error {
		for _, k := range listed {
			w, err := tx.Watch(k.source, k.id)
			if err != nil {
				return err
			}
			if w == nil || w.Source != k.source || w.ID != k.id {
				t.Errorf("Watch(%q, %s) as listed = %v", k.source, briefID(k.id), w != nil)
			}
			if err := tx.DeleteWatch(k.source, k.id); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(tx store.Txn) error {
		n, err := tx.CountWatches("w")
		if n != 0 {
			t.Errorf("%d watches left after deleting every listed one", n)
		}
		other, oerr := tx.CountWatches("w-2")
		if other != len(watchIDs()) {
			t.Errorf("another source's watches: %d, want %d", other, len(watchIDs()))
		}
		return errors.Join(err, oerr)
	})
}

// An end mark is kept apart from the watch record: it outlives the
// watch, and only ClearWatchEnded removes it.
func testWatchEnded(t *testing.T, b Backend) {
	s := b.Open(t)
	ids := append(watchIDs(), "a\x00\x01")
	ended := func(source, id string) bool {
		var ok bool
		view(t, s, func(tx store.Txn) error {
			var err error
			ok, err = tx.WatchEnded(source, id)
			return err
		})
		return ok
	}
	update(t, s, func(tx store.Txn) error {
		errs := []error{tx.PutWatch(fullWatch("w", "a"))}
		for _, id := range ids {
			errs = append(errs, tx.MarkWatchEnded("w", id, t0))
		}
		return errors.Join(append(errs, tx.DeleteWatch("w", "a"))...)
	})
	for _, id := range ids {
		if !ended("w", id) {
			t.Errorf("WatchEnded(w, %s) = false after MarkWatchEnded", briefID(id))
		}
		if ended("w-2", id) {
			t.Errorf("WatchEnded of another source (w-2, %s) = true", briefID(id))
		}
	}
	update(t, s, func(tx store.Txn) error {
		return errors.Join(tx.ClearWatchEnded("w", "a"), tx.ClearWatchEnded("w", "never"))
	})
	if ended("w", "a") {
		t.Error("WatchEnded after ClearWatchEnded = true")
	}
	if !ended("w", "a\x00") || !ended("w", "a\x00\x01") {
		t.Error("ClearWatchEnded(a) cleared the marks of ids it is a prefix of")
	}
	if w := getWatch(t, s, "w", "a"); w != nil {
		t.Error("MarkWatchEnded made a watch")
	}
}
