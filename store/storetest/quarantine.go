package storetest

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pollrelay/pollrelay/store"
)

var quarantineCases = []testCase{
	{"Records", testQuarantineRecords},
	{"Paging", testQuarantinePaging},
	{"Counted", testQuarantineCounted},
	{"Delivery", testQuarantineDelivery},
}

func getQuarantined(t testing.TB, s store.Store, id string) *store.Quarantined {
	t.Helper()
	var q *store.Quarantined
	view(t, s, func(tx store.Txn) error {
		var err error
		q, err = tx.QuarantineRecord(id)
		return err
	})
	return q
}

// Quarantine sets a record aside under QuarantineID, the item id cut to
// MaxQuotedID bytes with its length kept; setting the same thing aside
// again counts it on the same record.
func testQuarantineRecords(t *testing.T, b Backend) {
	s := b.Open(t)
	itemID := strings.Repeat("é", 200) // 400 bytes
	q := store.Quarantined{Kind: store.QuarantineItem, Source: "src", ItemID: itemID, Reason: "id is 400 bytes"}
	id := store.QuarantineID(&q)
	update(t, s, func(tx store.Txn) error { return tx.Quarantine(q, t0) })
	want := &store.Quarantined{
		ID: id, Kind: store.QuarantineItem, Reason: q.Reason, Source: "src",
		ItemID: store.CutID(itemID, store.MaxQuotedID), ItemIDBytes: len(itemID), Count: 1, FirstAt: t0, LastAt: t0,
	}
	same(t, "QuarantineRecord", getQuarantined(t, s, id), want)
	again := q
	again.Reason = "still too long"
	update(t, s, func(tx store.Txn) error { return tx.Quarantine(again, t0.Add(time.Minute)) })
	want.Count, want.LastAt, want.Reason = 2, t0.Add(time.Minute), again.Reason
	same(t, "QuarantineRecord set aside again", getQuarantined(t, s, id), want)
	update(t, s, func(tx store.Txn) error { return errors.Join(tx.DeleteQuarantine(id), tx.DeleteQuarantine("qr_never")) })
	if got := getQuarantined(t, s, id); got != nil {
		t.Errorf("QuarantineRecord after DeleteQuarantine = %s", show(got))
	}
}

// QuarantineRecords lists the records in id order after a cursor: the
// API pages by the last id.
func testQuarantinePaging(t *testing.T, b Backend) {
	s := b.Open(t)
	var ids []string
	update(t, s, func(tx store.Txn) error {
		var errs []error
		for i := range 7 {
			q := store.Quarantined{Kind: store.QuarantineEvent, EventID: newEvent(t0, "src", "1").ID, Reason: "r"}
			if i%2 == 1 {
				q = store.Quarantined{Kind: store.QuarantineDelivery, EventID: q.EventID, Subscription: "app", Raw: json.RawMessage(`{"a":1}`)}
			}
			ids = append(ids, store.QuarantineID(&q))
			errs = append(errs, tx.Quarantine(q, t0))
		}
		return errors.Join(errs...)
	})
	slices.Sort(ids)
	page := func(after string, n int) []string {
		var out []string
		view(t, s, func(tx store.Txn) error {
			return tx.QuarantineRecords(after, func(q *store.Quarantined) bool {
				out = append(out, q.ID)
				return len(out) < n
			})
		})
		return out
	}
	same(t, "QuarantineRecords", page("", 100), ids)
	var paged []string
	for after := ""; ; {
		p := page(after, 3)
		paged = append(paged, p...)
		if len(p) < 3 {
			break
		}
		after = p[len(p)-1]
	}
	same(t, "QuarantineRecords in pages of 3", paged, ids)
}

// quarantinedTotal reads pollrelay_quarantined_total{kind} from the
// store's collectors.
func quarantinedTotal(t testing.TB, s store.Store, kind string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "pollrelay_quarantined_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" && l.GetValue() == kind {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no pollrelay_quarantined_total{kind=%q} among the store's collectors", kind)
	return 0
}

// pollrelay_quarantined_total counts each record Quarantine writes and
// what NoteQuarantined notes, once their transaction commits: not for a
// transaction that fails.
func testQuarantineCounted(t *testing.T, b Backend) {
	s := b.Open(t)
	base := map[string]float64{}
	for _, k := range store.QuarantineKinds {
		base[k] = quarantinedTotal(t, s, k)
	}
	write := func(tx store.Txn) error {
		tx.NoteQuarantined(store.QuarantineItem, 5)
		return errors.Join(
			tx.Quarantine(store.Quarantined{Kind: store.QuarantineItem, Source: "src", ItemID: "1"}, t0),
			tx.Quarantine(store.Quarantined{Kind: store.QuarantineEvent, EventID: "evt_1"}, t0),
		)
	}
	err := s.Update(func(tx store.Txn) error { return errors.Join(write(tx), errBoom) })
	if !errors.Is(err, errBoom) {
		t.Fatalf("Update = %v", err)
	}
	update(t, s, write)
	for kind, want := range map[string]float64{store.QuarantineItem: 6, store.QuarantineEvent: 1, store.QuarantineDelivery: 0} {
		if got := quarantinedTotal(t, s, kind) - base[kind]; got != want {
			t.Errorf("pollrelay_quarantined_total{kind=%q} rose by %v, want %v", kind, got, want)
		}
	}
}

// QuarantineDelivery moves a delivery into a quarantine record that holds
// it whole: the delivery, its schedule entry and its place in its order
// go, and the one waiting behind it is due now. Putting it back (a retry)
// makes it a delivery again, ahead of the later one.
func testQuarantineDelivery(t *testing.T, b Backend) {
	s := b.Open(t)
	es := newEvents(2, t0, time.Millisecond)
	es[1].ItemID = es[0].ItemID
	res := es[0].Resource()
	d1 := ordered("app", es[0], t0)
	d1.State, d1.Attempts = store.Retrying, 2
	update(t, s, func(tx store.Txn) error {
		d2 := ordered("app", es[1], t0)
		d2.State = store.Waiting
		return errors.Join(tx.PutDelivery(d1, nil), tx.PutDelivery(d2, nil))
	})
	now := t0.Add(time.Hour)
	update(t, s, func(tx store.Txn) error {
		return errors.Join(tx.QuarantineDelivery("app", es[0].ID, d1.NextAt, "dispatch: broken", now),
			tx.QuarantineDelivery("app", "evt_gone", time.Time{}, "gone", now))
	})
	if d := getDelivery(t, s, "app", es[0].ID); d != nil {
		t.Errorf("quarantined delivery still stored: %s", show(d))
	}
	same(t, "Due after quarantining", dueIDs(t, s, "app", now, 10), []string{es[1].ID})
	wantChain(t, "order after quarantining", s, "app", res, es[1])
	if d := getDelivery(t, s, "app", es[1].ID); d == nil || d.State != store.Pending || !d.NextAt.Equal(now) {
		t.Errorf("the delivery behind the quarantined one = %s, want pending at %v", show(d), now)
	}
	q := store.Quarantined{Kind: store.QuarantineDelivery, EventID: es[0].ID, Subscription: "app"}
	rec := getQuarantined(t, s, store.QuarantineID(&q))
	if rec == nil {
		t.Fatal("no quarantine record under QuarantineID")
	}
	var raw store.Delivery
	if err := json.Unmarshal(rec.Raw, &raw); err != nil {
		t.Fatalf("quarantine record's Raw: %v", err)
	}
	same(t, "the quarantined delivery", &raw, d1)
	if rec.Reason != "dispatch: broken" || rec.Count != 1 || !rec.FirstAt.Equal(now) {
		t.Errorf("quarantine record = %s", show(rec))
	}
	if other := getQuarantined(t, s, store.QuarantineID(&store.Quarantined{Kind: store.QuarantineDelivery, EventID: "evt_gone", Subscription: "app"})); other != nil {
		t.Errorf("quarantining a delivery that is not stored made a record: %s", show(other))
	}
	// The retry, as the notifier does it.
	update(t, s, func(tx store.Txn) error {
		raw.State, raw.NextAt, raw.Round = store.Pending, now, 0
		return errors.Join(tx.PutDelivery(&raw, nil), tx.DeleteQuarantine(rec.ID))
	})
	wantChain(t, "order after the retry", s, "app", res, es[0], es[1])
	same(t, "Due after the retry", sortedIDs(dueIDs(t, s, "app", now, 10)), eventIDs(es))
}
