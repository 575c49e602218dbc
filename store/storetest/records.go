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

var subscriptionCases = []testCase{
	{"APIRecords", testAPISubscriptions},
	{"SubState", testSubState},
}

var histogramCases = []testCase{
	{"RoundTrip", testHistograms},
}

func apiSub(id string, version uint64) *store.SubscriptionRecord {
	return &store.SubscriptionRecord{
		ID: id, Spec: json.RawMessage(`{"url":"https://example.com/hook","types":["orders.*"]}`),
		Secrets: []store.StoredSecret{
			{Value: "whsec_" + strings.Repeat("n", 32)},
			{Value: "whsec_" + strings.Repeat("o", 32), ExpiresAt: t0.Add(time.Hour)},
		},
		CreatedAt: t0, UpdatedAt: t0.Add(time.Duration(version) * time.Minute), Version: version,
	}
}

func listAPISubs(t testing.TB, s store.Store) []*store.SubscriptionRecord {
	t.Helper()
	var out []*store.SubscriptionRecord
	view(t, s, func(tx store.Txn) error {
		return tx.APISubscriptions(func(r *store.SubscriptionRecord) error {
			out = append(out, r)
			return nil
		})
	})
	slices.SortFunc(out, func(a, b *store.SubscriptionRecord) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// API subscriptions come back as put; a later put replaces one; the list
// holds each once (in no particular order: the API sorts it).
func testAPISubscriptions(t *testing.T, b Backend) {
	s := b.Open(t)
	update(t, s, func(tx store.Txn) error {
		return errors.Join(tx.PutAPISubscription(apiSub("sub-b", 1)), tx.PutAPISubscription(apiSub("sub-a", 1)),
			tx.PutAPISubscription(apiSub("sub-c", 1)))
	})
	update(t, s, func(tx store.Txn) error { return tx.PutAPISubscription(apiSub("sub-b", 2)) })
	view(t, s, func(tx store.Txn) error {
		got, err := tx.APISubscription("sub-b")
		same(t, "APISubscription", got, apiSub("sub-b", 2))
		none, nerr := tx.APISubscription("sub-z")
		if none != nil {
			t.Errorf("APISubscription of an unknown id = %s", show(none))
		}
		return errors.Join(err, nerr)
	})
	same(t, "APISubscriptions", listAPISubs(t, s), []*store.SubscriptionRecord{apiSub("sub-a", 1), apiSub("sub-b", 2), apiSub("sub-c", 1)})
	update(t, s, func(tx store.Txn) error {
		return errors.Join(tx.DeleteAPISubscription("sub-b"), tx.DeleteAPISubscription("sub-z"))
	})
	same(t, "APISubscriptions after a delete", listAPISubs(t, s), []*store.SubscriptionRecord{apiSub("sub-a", 1), apiSub("sub-c", 1)})
	err := s.View(func(tx store.Txn) error {
		return tx.APISubscriptions(func(*store.SubscriptionRecord) error { return errBoom })
	})
	if !errors.Is(err, errBoom) {
		t.Errorf("APISubscriptions with a failing fn = %v, want its error", err)
	}
}

func testSubState(t *testing.T, b Backend) {
	s := b.Open(t)
	full := &store.SubState{
		Disabled: true, DisabledAt: t0, DisabledReason: "failing for 5 days",
		FailureCount: 12, FirstFailureAt: t0.Add(-time.Hour), LastTriggeredAt: t0.Add(-time.Minute), LastResponseStatus: 503,
	}
	view(t, s, func(tx store.Txn) error {
		st, err := tx.SubState("app")
		if st != nil {
			t.Errorf("SubState of a subscription never stored = %s", show(st))
		}
		return err
	})
	update(t, s, func(tx store.Txn) error {
		return errors.Join(tx.PutSubState("app", full), tx.PutSubState("app-2", &store.SubState{FailureCount: 1}))
	})
	got := map[string]*store.SubState{}
	view(t, s, func(tx store.Txn) error {
		st, err := tx.SubState("app")
		same(t, "SubState", st, full)
		lerr := tx.SubStates(func(sub string, st *store.SubState, err error) error {
			if err != nil {
				t.Errorf("SubStates(%s): %v", sub, err)
			}
			got[sub] = st
			return nil
		})
		return errors.Join(err, lerr)
	})
	same(t, "SubStates", got, map[string]*store.SubState{"app": full, "app-2": {FailureCount: 1}})
	update(t, s, func(tx store.Txn) error { return tx.DeleteSubState("app") })
	view(t, s, func(tx store.Txn) error {
		st, err := tx.SubState("app")
		if st != nil {
			t.Errorf("SubState after DeleteSubState = %s", show(st))
		}
		return err
	})
}

type hist struct{ state, v string }

func briefHists(hs []hist) string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.state + "=" + h.v
	}
	return brief(out)
}

// Histograms lists each of a source's histograms once, as last put, and
// nothing of another source.
func testHistograms(t *testing.T, b Backend) {
	s := b.Open(t)
	states := []string{`"open"`, `{"s":1}`, "\x00", "a/b", "a", "a\x00", strings.Repeat("\xff", store.MaxKeyPart)}
	update(t, s, func(tx store.Txn) error {
		var errs []error
		for i, st := range states {
			errs = append(errs, tx.PutHistogram("src", st, []byte{byte(i), 0, 0xff}))
			errs = append(errs, tx.PutHistogram("src-2", st, []byte{9}), tx.PutHistogram("sr", st, []byte{9}))
		}
		return errors.Join(errs...)
	})
	update(t, s, func(tx store.Txn) error { return tx.PutHistogram("src", "a", []byte("new")) })
	var want []hist
	for i, st := range states {
		v := string([]byte{byte(i), 0, 0xff})
		if st == "a" {
			v = "new"
		}
		want = append(want, hist{st, v})
	}
	slices.SortFunc(want, func(a, b hist) int { return strings.Compare(a.state, b.state) })
	var got []hist
	view(t, s, func(tx store.Txn) error {
		return tx.Histograms("src", func(state string, v []byte) error {
			got = append(got, hist{state, string(v)})
			return nil
		})
	})
	slices.SortFunc(got, func(a, b hist) int { return strings.Compare(a.state, b.state) })
	if !slices.Equal(got, want) {
		t.Errorf("Histograms = %s\nwant %s", briefHists(got), briefHists(want))
	}
}
