package poller

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	bdg "github.com/dgraph-io/badger/v4"
	"github.com/pollrelay/pollrelay/store/badger"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pollrelay/pollrelay/store"
)

// A listing naming items whose ids are over the key limit is applied
// without them: the other items' changes fire, the poll succeeds, each
// poll logs the skipped items once (not once per item) and counts them,
// and an item skipped so is never "deleted" when it leaves the listing.
func TestListingWithOverLimitIDs(t *testing.T) {
	big := map[string]bool{
		strings.Repeat("x", store.MaxKeyPart+1): true,
		strings.Repeat("y", 65000):              true,
		strings.Repeat("z", 70000):              true,
	}
	status := map[string]string{"a": "queued", "b": "queued"}
	for id := range big {
		status[id] = "queued"
	}
	up := newTasks(status)
	srv := httptest.NewServer(up)
	defer srv.Close()
	log, logs := captureLogger()
	h := newHarnessLog(t, nil, log)
	reg := prometheus.NewRegistry()
	reg.MustRegister(h.st.Collectors()...)
	h.start(sources(t, faultSource(srv, ", deletes: true")))
	h.mustPoll("l") // the baseline
	for _, id := range []string{"a", "b"} {
		if h.item("l", id) == nil {
			t.Fatalf("baseline did not store %s", id)
		}
	}

	// Count from here: Start may have polled too.
	warning := "items skipped; the rest of the listing was applied"
	item := map[string]string{"kind": store.QuarantineItem}
	logsBefore := strings.Count(logs.String(), warning)
	countBefore := counter(t, reg, "pollrelay_quarantined_total", item)
	var seenBefore int
	if err := h.st.View(func(tx store.Txn) error {
		return tx.QuarantineRecords("", func(q *store.Quarantined) bool { seenBefore = q.Count; return true })
	}); err != nil {
		t.Fatal(err)
	}
	for id := range status {
		up.set(id, "ready")
	}
	h.mustPoll("l")
	h.mustPoll("l") // the same listing again
	for id := range big {
		up.set(id, "")
	}
	up.set("b", "errored")
	h.mustPoll("l")

	got := types(h.events("l"))
	want := []string{"l.changed:a", "l.changed:b", "l.changed:b"}
	if !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
	if s := h.status("l"); s.LastError != "" || s.ItemsTracked != 2 {
		t.Errorf("status %+v: want success with 2 items", s)
	}
	if n := strings.Count(logs.String(), warning) - logsBefore; n != 2 {
		t.Errorf("skipped items logged %d times, want once per poll that saw them (2):\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), "skipped=3") {
		t.Errorf("log does not count the 3 skipped items:\n%s", logs)
	}
	if n := counter(t, reg, "pollrelay_quarantined_total", item) - countBefore; n != 6 {
		t.Errorf("pollrelay_quarantined_total{kind=item} grew by %v, want 6 (3 items × 2 polls)", n)
	}
	var qs []*store.Quarantined
	if err := h.st.View(func(tx store.Txn) error {
		return tx.QuarantineRecords("", func(q *store.Quarantined) bool { qs = append(qs, q); return true })
	}); err != nil {
		t.Fatal(err)
	}
	if len(qs) != 3 {
		t.Fatalf("%d quarantine records, want 3: %+v", len(qs), qs)
	}
	for _, q := range qs {
		if q.Kind != store.QuarantineItem || q.Source != "l" || q.Count != seenBefore+2 || !big[strings.Repeat(q.ItemID[:1], q.ItemIDBytes)] {
			t.Errorf("record %+v", q)
		}
	}
}

// A stored item whose record cannot be decoded is skipped by its polls
// (quarantined, with the reason) instead of failing each of them: the
// source's other items go on changing and firing.
func TestUndecodableStoredItem(t *testing.T) {
	up := newTasks(map[string]string{"a": "queued", "b": "queued"})
	srv := httptest.NewServer(up)
	defer srv.Close()
	h := newHarness(t, nil)
	h.start(sources(t, faultSource(srv, ", deletes: true")))
	h.mustPoll("l") // the baseline
	if err := h.st.(*badger.Store).DB().Update(func(txn *bdg.Txn) error { return txn.Set([]byte("i/l\x00b"), []byte("{broken")) }); err != nil {
		t.Fatal(err)
	}
	up.set("a", "ready")
	up.set("b", "ready")
	h.mustPoll("l")
	if got := types(h.events("l")); !slices.Equal(got, []string{"l.changed:a"}) {
		t.Errorf("events %q, want a's change only", got)
	}
	var qs []*store.Quarantined
	if err := h.st.View(func(tx store.Txn) error {
		return tx.QuarantineRecords("", func(q *store.Quarantined) bool { qs = append(qs, q); return true })
	}); err != nil {
		t.Fatal(err)
	}
	if len(qs) != 1 || qs[0].ItemID != "b" || !strings.Contains(qs[0].Reason, "cannot be decoded") {
		t.Errorf("quarantine %+v, want b's record", qs)
	}
}
