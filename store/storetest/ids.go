package storetest

import (
	"errors"
	"strings"
	"testing"

	"github.com/pollrelay/pollrelay/store"
)

var idCases = []testCase{
	{"OverLimitRefused", testOverLimitRefused},
	{"MaxLengthAccepted", testMaxLengthAccepted},
}

var (
	longID   = strings.Repeat("\xff", store.MaxKeyPart+1)
	longName = strings.Repeat("s", store.MaxKeyPart+1)
)

// refusal is one write over a limit and how to tell it left nothing.
type refusal struct {
	name  string
	write func(tx store.Txn) error
	// absent reports what of the refused write is stored.
	absent func(t *testing.T, tx store.Txn) error
}

func refusals() []refusal {
	e := newEvent(t0, "src", "1")
	longRes := queued("app", e, t0)
	longRes.Resource = "src\x00" + strings.Repeat("x", store.MaxResource)
	return []refusal{
		{"ItemID", func(tx store.Txn) error { return tx.PutItem("src", longID, headItem("x")) }, itemsAbsent("src")},
		{"ItemSource", func(tx store.Txn) error { return tx.PutItem(longName, "1", headItem("x")) }, itemsAbsent(longName)},
		{"WatchID", func(tx store.Txn) error { return tx.PutWatch(&store.Watch{Source: "w", ID: longID, CreatedAt: t0}) }, watchesAbsent},
		{"WatchSource", func(tx store.Txn) error { return tx.PutWatch(&store.Watch{Source: longName, ID: "1", CreatedAt: t0}) }, watchesAbsent},
		{"WatchEndedID", func(tx store.Txn) error { return tx.MarkWatchEnded("w", longID, t0) }, func(t *testing.T, tx store.Txn) error {
			ended, err := tx.WatchEnded("w", longID)
			if ended {
				t.Error("the refused end mark is stored")
			}
			return err
		}},
		{"HistogramState", func(tx store.Txn) error { return tx.PutHistogram("src", longID, []byte{1}) }, func(t *testing.T, tx store.Txn) error {
			return tx.Histograms("src", func(string, []byte) error {
				t.Error("the refused histogram is stored")
				return nil
			})
		}},
		{"DeliverySubscription", func(tx store.Txn) error { return tx.PutDelivery(queued(longName, e, t0), nil) }, deliveryAbsent(longName, e.ID, "")},
		{"DeliveryResource", func(tx store.Txn) error { return tx.PutDelivery(longRes, nil) }, deliveryAbsent("app", e.ID, longRes.Resource)},
	}
}

func itemsAbsent(source string) func(t *testing.T, tx store.Txn) error {
	return func(t *testing.T, tx store.Txn) error {
		n, err := tx.CountItems(source)
		if n != 0 {
			t.Errorf("%d items of the refused write are stored", n)
		}
		return err
	}
}

func watchesAbsent(t *testing.T, tx store.Txn) error {
	return tx.Watches("", "", "", func(w *store.Watch) bool {
		t.Errorf("the refused watch is stored (%d-byte source, %d-byte id)", len(w.Source), len(w.ID))
		return true
	})
}

func deliveryAbsent(sub, id, resource string) func(t *testing.T, tx store.Txn) error {
	return func(t *testing.T, tx store.Txn) error {
		d, err := tx.Delivery(sub, id)
		if d != nil {
			t.Error("the refused delivery is stored")
		}
		refs, derr := tx.Due(sub, t0.Add(farFuture), 10)
		if len(refs) != 0 {
			t.Errorf("the refused delivery is scheduled: %v", refs)
		}
		_, found, nerr := tx.NextDue()
		if found {
			t.Error("NextDue finds the refused delivery")
		}
		var rerr error
		if resource != "" {
			var head string
			head, rerr = tx.ResourceHead(sub, resource)
			if head != "" {
				t.Errorf("the refused delivery heads its resource: %q", head)
			}
		}
		return errors.Join(err, derr, nerr, rerr)
	}
}

// A part over MaxKeyPart (a resource over MaxResource) is refused as a
// bad record before anything of the write is stored, and the transaction
// goes on: fan-out quarantines the one delivery and writes the others in
// the same transaction, and a poll skips the one item.
func testOverLimitRefused(t *testing.T, b Backend) {
	for _, r := range refusals() {
		t.Run(r.name, func(t *testing.T) {
			s := b.Open(t)
			update(t, s, func(tx store.Txn) error {
				if err := r.write(tx); !store.IsBadRecord(err) {
					t.Errorf("write over the limit: error %v, want a bad record", err)
				}
				return tx.PutItem("after", "1", headItem("1"))
			})
			view(t, s, func(tx store.Txn) error {
				if it, err := tx.Item("after", "1"); it == nil || err != nil {
					t.Errorf("the write after the refused one: %v, %v; want it committed", it, err)
				}
				return r.absent(t, tx)
			})
		})
	}
}

// Parts of exactly MaxKeyPart bytes of any kind, and a resource of
// MaxResource, are stored and found.
func testMaxLengthAccepted(t *testing.T, b Backend) {
	s := b.Open(t)
	source := strings.Repeat("s", store.MaxKeyPart)
	sub := strings.Repeat("a", store.MaxKeyPart)
	id := strings.Repeat("\xff", store.MaxKeyPart-1) + "\x00"
	e := newEvent(t0, source, id)
	d := ordered(sub, e, t0)
	if len(d.Resource) != store.MaxResource {
		t.Fatalf("test resource is %d bytes, want %d", len(d.Resource), store.MaxResource)
	}
	update(t, s, func(tx store.Txn) error {
		return errors.Join(
			tx.PutItem(source, id, headItem(id)),
			tx.PutWatch(&store.Watch{Source: source, ID: id, CreatedAt: t0, Origin: store.OriginAPI}),
			tx.MarkWatchEnded(source, id, t0),
			tx.PutHistogram(source, id, []byte{7}),
			tx.PutDelivery(d, nil),
		)
	})
	view(t, s, func(tx store.Txn) error {
		it, ierr := tx.Item(source, id)
		same(t, "Item with the longest source and id", it, headItem(id))
		w, werr := tx.Watch(source, id)
		if w == nil || w.ID != id || w.Source != source {
			t.Errorf("Watch with the longest source and id = %v", w != nil)
		}
		ended, eerr := tx.WatchEnded(source, id)
		if !ended {
			t.Error("WatchEnded with the longest source and id = false")
		}
		var states []string
		herr := tx.Histograms(source, func(state string, _ []byte) error {
			states = append(states, state)
			return nil
		})
		if len(states) != 1 || states[0] != id {
			t.Errorf("Histograms with the longest state: %d states", len(states))
		}
		refs, derr := tx.Due(sub, t0, 10)
		if len(refs) != 1 || refs[0].EventID != e.ID || refs[0].Subscription != sub {
			t.Errorf("Due of the longest subscription = %d refs", len(refs))
		}
		head, rerr := tx.ResourceHead(sub, d.Resource)
		if head != e.ID {
			t.Errorf("ResourceHead of the longest resource = %q, want %q", head, e.ID)
		}
		return errors.Join(ierr, werr, eerr, herr, derr, rerr)
	})
}
