package badger

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/store"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// hostileIDs are ids that break keys joined with a separator: NUL, the
// separator followed by what the next part starts with, ids that are
// prefixes of each other, invalid UTF-8, the escape bytes themselves.
var hostileIDs = []string{
	"a", "a\x00", "a\x00b", "a\x00\x00", "a\x00\x01", "a\x00\xff", "ab", "",
	"\x00", "\xff\xfe", "\x01", "a\x00evt_1", "\xc3\x28",
}

// Each resource keeps its own order whatever bytes its id holds: no
// resource's head or successor is another's event.
func TestResourceOrderHostileIDs(t *testing.T) {
	s := openStore(t)
	now := time.Now()
	events := map[string][]string{} // resource → its event ids in order
	var all []*Delivery
	ids := slices.Clone(hostileIDs)
	r := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		b := make([]byte, r.IntN(5))
		for i := range b {
			b[i] = []byte{0, 1, 2, 0xff, 'a', 'e'}[r.IntN(6)]
		}
		if !slices.Contains(ids, string(b)) {
			ids = append(ids, string(b))
		}
	}
	for round := range 3 {
		for i, id := range ids {
			res := "src\x00" + id
			ev := fmt.Sprintf("evt_%d_%03d", round, i)
			events[res] = append(events[res], ev)
			all = append(all, &Delivery{Subscription: "app", EventID: ev, Resource: res, State: Pending, NextAt: now})
		}
	}
	mustUpdate(t, s, func(tx *Txn) error {
		for _, d := range all {
			if err := tx.PutDelivery(d, nil); err != nil {
				return err
			}
		}
		return nil
	})
	mustView(t, s, func(tx *Txn) error {
		for res, want := range events {
			var got []string
			next, err := tx.ResourceHead("app", res)
			for err == nil && next != "" {
				got = append(got, next)
				next, err = tx.NextInResource("app", res, next)
			}
			if err != nil {
				return err
			}
			if !slices.Equal(got, want) {
				t.Errorf("resource %q: order %q, want %q", res, got, want)
			}
		}
		return nil
	})
}

// Encoded parts sort as the parts do and none is a prefix of another, so
// a scan of one part's keys never strays into another's and id order is
// key order; cutPart reads back exactly what appendPart wrote.
func TestAppendPartProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	parts := slices.Clone(hostileIDs)
	for range 2000 {
		b := make([]byte, r.IntN(6))
		for i := range b {
			b[i] = []byte{0, 1, 0xff, 'a', 0xfe}[r.IntN(5)]
		}
		parts = append(parts, string(b))
	}
	for _, p := range parts {
		got, rest, ok := cutPart(append(appendPart(nil, p), "tail"...))
		if !ok || got != p || string(rest) != "tail" {
			t.Fatalf("cutPart(appendPart(%q)) = %q, %q, %v", p, got, rest, ok)
		}
	}
	for i := 0; i+1 < len(parts); i++ {
		a, b := parts[i], parts[i+1]
		ea, eb := appendPart(nil, a), appendPart(nil, b)
		if sign(bytes.Compare(ea, eb)) != sign(strings.Compare(a, b)) {
			t.Errorf("order of %q, %q not kept by their encodings", a, b)
		}
		if a != b && (bytes.HasPrefix(ea, eb) || bytes.HasPrefix(eb, ea)) {
			t.Errorf("encoding of %q and %q: one is a prefix of the other", a, b)
		}
	}
}

func FuzzAppendPart(f *testing.F) {
	for _, id := range hostileIDs {
		f.Add(id, "a")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ea, eb := appendPart(nil, a), appendPart(nil, b)
		if sign(bytes.Compare(ea, eb)) != sign(strings.Compare(a, b)) {
			t.Errorf("order of %q, %q not kept", a, b)
		}
		if a != b && (bytes.HasPrefix(ea, eb) || bytes.HasPrefix(eb, ea)) {
			t.Errorf("%q and %q: one encoding is a prefix of the other", a, b)
		}
		if got, rest, ok := cutPart(append(ea, eb...)); !ok || got != a || !bytes.Equal(rest, eb) {
			t.Errorf("cutPart of %q then %q = %q, %q, %v", a, b, got, rest, ok)
		}
	})
}

func sign(n int) int { return max(-1, min(n, 1)) }

// Every item keeps its own state whatever bytes its id holds, and items
// list in id order (the order diff's index searches in).
func TestItemsHostileIDs(t *testing.T) {
	s := openStore(t)
	mustUpdate(t, s, func(tx *Txn) error {
		for i, id := range hostileIDs {
			if err := tx.PutItem("src", id, &Item{State: []byte(fmt.Sprint(i))}); err != nil {
				return err
			}
		}
		return nil
	})
	var got []string
	mustView(t, s, func(tx *Txn) error {
		for i, id := range hostileIDs {
			it, err := tx.Item("src", id)
			if err != nil {
				return err
			}
			if it == nil || string(it.State) != fmt.Sprint(i) {
				t.Errorf("item %q: %+v, want state %d", id, it, i)
			}
		}
		return tx.ItemHeads("src", func(id string, _ *Item) error {
			got = append(got, id)
			return nil
		})
	})
	want := slices.Sorted(slices.Values(hostileIDs))
	if !slices.Equal(got, want) {
		t.Errorf("items listed %q, want id order %q", got, want)
	}
}

// An id or name over MaxKeyPart is refused as a bad record, and a delivery
// refused so leaves nothing written.
func TestKeyPartLimit(t *testing.T) {
	s := openStore(t)
	ok := strings.Repeat("i", MaxKeyPart)
	long := ok + "i"
	mustUpdate(t, s, func(tx *Txn) error { return tx.PutItem("src", ok, &Item{State: []byte("1")}) })
	// At the limit everything is taken, even with every byte escaped.
	nuls := strings.Repeat("\x00", MaxKeyPart)
	mustUpdate(t, s, func(tx *Txn) error {
		return tx.PutDelivery(&Delivery{Subscription: strings.Repeat("s", MaxKeyPart), EventID: "evt_0",
			Resource: strings.Repeat("r", MaxKeyPart) + "\x00" + nuls, State: Pending}, nil)
	})
	for name, write := range map[string]func(*Txn) error{
		"item":  func(tx *Txn) error { return tx.PutItem("src", long, &Item{State: []byte("1")}) },
		"watch": func(tx *Txn) error { return tx.PutWatch(&Watch{Source: "w", ID: long}) },
		"ended": func(tx *Txn) error { return tx.MarkWatchEnded("w", long, time.Now()) },
		"delivery": func(tx *Txn) error {
			return tx.PutDelivery(&Delivery{Subscription: "app", EventID: "evt_1", Resource: "src\x00" + long + long, State: Pending}, nil)
		},
		"sub": func(tx *Txn) error {
			return tx.PutDelivery(&Delivery{Subscription: long, EventID: "evt_1", State: Pending}, nil)
		},
		"raw key": func(tx *Txn) error { return tx.set([]byte(strings.Repeat("k", 70000)), nil) },
	} {
		err := s.update(write)
		if !store.IsBadRecord(err) {
			t.Errorf("%s over the limit: %v, want a bad record", name, err)
		}
	}
	mustView(t, s, func(tx *Txn) error {
		d, err := tx.Delivery("app", "evt_1")
		if d != nil || err != nil {
			t.Errorf("refused delivery left %+v, %v", d, err)
		}
		return nil
	})
}

// A record set aside twice is one record seen twice, counted twice; an
// id of any length has a short key and keeps its first bytes.
func TestQuarantineRecord(t *testing.T) {
	s := openStore(t)
	id := strings.Repeat("é", 40000)
	now := time.Now().UTC()
	for range 2 {
		mustUpdate(t, s, func(tx *Txn) error {
			return tx.Quarantine(Quarantined{Kind: QuarantineItem, Source: "src", ItemID: id, Reason: "too long"}, now)
		})
	}
	var got []*Quarantined
	mustView(t, s, func(tx *Txn) error {
		return tx.QuarantineRecords("", func(q *Quarantined) bool { got = append(got, q); return true })
	})
	if len(got) != 1 || got[0].Count != 2 || got[0].ItemIDBytes != len(id) || !strings.HasPrefix(id, got[0].ItemID) || len(got[0].ItemID) > 256 {
		t.Fatalf("records %+v", got)
	}
	if n := testutil.ToFloat64(s.quarantined.WithLabelValues(QuarantineItem)); n != 2 {
		t.Errorf("pollrelay_quarantined_total{kind=item} = %v, want 2", n)
	}
	mustUpdate(t, s, func(tx *Txn) error { return tx.DeleteQuarantine(got[0].ID) })
	mustView(t, s, func(tx *Txn) error {
		q, err := tx.QuarantineRecord(got[0].ID)
		if q != nil || err != nil {
			t.Errorf("after delete: %+v, %v", q, err)
		}
		return nil
	})
}

// A database written before the key format was versioned (resource keys
// joined with NUL) opens with its resource index rebuilt in the new form:
// each resource's order is intact, and no old key is left to block one.
func TestMigrateResourceKeys(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	oldKey := func(sub, res, ev string) []byte { return []byte("r/" + sub + "\x00" + res + "\x00" + ev) }
	mustUpdate(t, s, func(tx *Txn) error {
		for _, d := range []*Delivery{
			{Subscription: "app", EventID: "evt_1", Resource: "src\x00a", State: Pending, NextAt: now},
			{Subscription: "app", EventID: "evt_2", Resource: "src\x00a\x00b", State: Waiting, NextAt: now},
			{Subscription: "app", EventID: "evt_3", Resource: "src\x00a", State: Waiting, NextAt: now},
			{Subscription: "app", EventID: "evt_0", Resource: "src\x00a", State: Delivered, NextAt: now},
		} {
			if err := tx.PutDelivery(d, nil); err != nil {
				return err
			}
		}
		// Replace the new-form index by what an older version wrote, plus
		// a stale entry of a finished delivery.
		if err := tx.scan(resourcePrefixAll, nil, false, func(k, _ []byte) (bool, error) {
			return true, tx.txn.Delete(bytes.Clone(k))
		}); err != nil {
			return err
		}
		for _, k := range [][]byte{oldKey("app", "src\x00a", "evt_1"), oldKey("app", "src\x00a\x00b", "evt_2"), oldKey("app", "src\x00a", "evt_3"), oldKey("app", "src\x00a", "evt_0")} {
			if err := tx.txn.Set(k, nil); err != nil {
				return err
			}
		}
		return tx.txn.Delete(formatKey)
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(Options{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustView(t, s, func(tx *Txn) error {
		chain := func(res string) []string {
			var got []string
			next, err := tx.ResourceHead("app", res)
			for err == nil && next != "" {
				got = append(got, next)
				next, err = tx.NextInResource("app", res, next)
			}
			return got
		}
		if got := chain("src\x00a"); !slices.Equal(got, []string{"evt_1", "evt_3"}) {
			t.Errorf("resource a: %q, want evt_1 evt_3", got)
		}
		if got := chain("src\x00a\x00b"); !slices.Equal(got, []string{"evt_2"}) {
			t.Errorf("resource a\\0b: %q, want evt_2", got)
		}
		n := 0
		if err := tx.scan(resourcePrefixAll, nil, false, func(k, _ []byte) (bool, error) {
			n++
			if _, rest, ok := cutPart(k[len(resourcePrefixAll):]); !ok || len(rest) == 0 {
				t.Errorf("key %q is not in the new form", k)
			}
			return true, nil
		}); err != nil {
			return err
		}
		if n != 3 {
			t.Errorf("%d resource keys, want 3", n)
		}
		v, err := tx.get(formatKey)
		if string(v) != fmt.Sprint(keyFormat) {
			t.Errorf("format key %q, want %d", v, keyFormat)
		}
		return err
	})
}

// A delivery record that cannot be decoded does not stop the start: it is
// quarantined with its schedule key dropped, and the others load.
func TestLoadDeliveriesQuarantinesUndecodable(t *testing.T) {
	s := openStore(t)
	now := time.Now()
	mustUpdate(t, s, func(tx *Txn) error {
		for _, id := range []string{"evt_1", "evt_2"} {
			if err := tx.PutDelivery(&Delivery{Subscription: "app", EventID: id, State: Pending, NextAt: now}, nil); err != nil {
				return err
			}
		}
		return tx.txn.Set(deliveryKey("app", "evt_1"), []byte("{not json"))
	})
	seen := 0
	if _, err := s.LoadDeliveries(func(*Delivery) error { seen++; return nil }); err != nil {
		t.Fatal(err)
	}
	mustView(t, s, func(tx *Txn) error {
		refs, err := tx.Due("app", now.Add(time.Second), 10)
		if seen != 1 || len(refs) != 1 || refs[0].EventID != "evt_2" {
			t.Errorf("loaded %d, due %v; want evt_2 alone", seen, refs)
		}
		var qs []*Quarantined
		tx.QuarantineRecords("", func(q *Quarantined) bool { qs = append(qs, q); return true })
		if len(qs) != 1 || qs[0].Kind != QuarantineDelivery || qs[0].EventID != "evt_1" || qs[0].Subscription != "app" {
			t.Errorf("quarantine %+v", qs)
		}
		return errors.Join(err)
	})
}
