package postgres

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/store"
)

// hostileIDs are ids a store must keep byte for byte and sort bytewise:
// NUL anywhere, invalid UTF-8, 0xff, prefixes of one another, and bytes
// a collation would fold or reorder.
var hostileIDs = []string{
	"", "\x00", "\x00\x00", "\x00\xff", "a", "a\x00", "a\x00b", "a\x01", "aB", "ab", "A", "Ab", "é", "e\u0301",
	"\xff", "\xff\xfe", "\xfe\xff", "\xc3\x28", "\xed\xa0\x80", "x\x00\x00y", strings.Repeat("z", store.MaxKeyPart),
}

func sortedBytewise(ids []string) []string {
	out := slices.Clone(ids)
	slices.SortFunc(out, func(a, b string) int { return bytes.Compare([]byte(a), []byte(b)) })
	return out
}

// Items, watches and histograms keep their ids exactly and list them in
// bytewise order, whichever way they are read.
func TestHostileIDsRoundTripInBytewiseOrder(t *testing.T) {
	s := openTest(t)
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	err := s.Update(func(tx store.Txn) error {
		for i, id := range hostileIDs {
			it := &store.Item{State: json.RawMessage(`"` + string(rune('a'+i)) + `"`), Object: []byte("\x00raw\xff"), Since: at}
			if err := tx.PutItem("src", id, it); err != nil {
				return err
			}
			if err := tx.PutWatch(&store.Watch{Source: "src", ID: id, CreatedAt: at, Origin: store.OriginAPI}); err != nil {
				return err
			}
			if err := tx.PutHistogram("src", id, []byte{0, byte(i), 0xff}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := sortedBytewise(hostileIDs)
	err = s.View(func(tx store.Txn) error {
		var got []string
		collect := func(id string, _ *store.Item) error { got = append(got, id); return nil }
		if err := tx.Items("src", collect); err != nil {
			return err
		}
		check(t, "Items", got, want)
		got = nil
		if err := tx.ItemHeads("src", collect); err != nil {
			return err
		}
		check(t, "ItemHeads", got, want)
		got = nil
		err := tx.ScanItemHeads("src", func(id []byte, _ *store.Item) error { got = append(got, string(id)); return nil }, nil)
		if err != nil {
			return err
		}
		check(t, "ScanItemHeads", got, want)
		got = nil
		if err := tx.Watches("src", "", "", func(w *store.Watch) bool { got = append(got, w.ID); return true }); err != nil {
			return err
		}
		check(t, "Watches", got, want)
		got = nil
		if err := tx.Histograms("src", func(state string, _ []byte) error { got = append(got, state); return nil }); err != nil {
			return err
		}
		check(t, "Histograms", got, want)
		for _, id := range hostileIDs {
			it, err := tx.Item("src", id)
			if err != nil {
				return err
			}
			if it == nil || string(it.Object) != "\x00raw\xff" {
				t.Errorf("Item(%q) = %+v", id, it)
			}
			w, err := tx.Watch("src", id)
			if err != nil {
				return err
			}
			if w == nil || w.ID != id {
				t.Errorf("Watch(%q) = %+v", id, w)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func check(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s order:\n got %q\nwant %q", what, got, want)
	}
}

// What JSON would mangle (invalid UTF-8 turns into U+FFFD) is kept in
// columns of its own: an event's item id and type, a delivery's resource,
// an attempt's response body.
func TestHostileBytesInEventsAndDeliveries(t *testing.T) {
	s := openTest(t)
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	ids := []string{"\xff\x00a", "\xc3\x28", "ok"}
	err := s.Update(func(tx store.Txn) error {
		for i, id := range ids {
			e := &event.Event{ID: "evt_" + string(rune('A'+i)), Type: "t.\xfe", Kind: event.Changed, Source: "src", ItemID: id, CreatedAt: at}
			if err := tx.AddEvent(e); err != nil {
				return err
			}
			d := &store.Delivery{EventID: e.ID, Subscription: "sub", Resource: e.Resource(), State: store.Pending, NextAt: at}
			if err := tx.PutDelivery(d, nil); err != nil {
				return err
			}
			if err := tx.AddAttempt(e.ID, store.Attempt{N: 1, Subscription: "sub", At: at, Body: "\xff\x00body"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.View(func(tx store.Txn) error {
		for i, id := range ids {
			eid := "evt_" + string(rune('A'+i))
			e, err := tx.Event(eid)
			if err != nil {
				return err
			}
			if e.ItemID != id || e.Type != "t.\xfe" {
				t.Errorf("Event(%s) = item %q type %q", eid, e.ItemID, e.Type)
			}
			m, err := tx.EventMeta(eid)
			if err != nil {
				return err
			}
			if m.ItemID != id || !m.CreatedAt.Equal(at) {
				t.Errorf("EventMeta(%s) = %+v", eid, m)
			}
			d, err := tx.Delivery("sub", eid)
			if err != nil {
				return err
			}
			if d.Resource != e.Resource() {
				t.Errorf("Delivery(%s).Resource = %q, want %q", eid, d.Resource, e.Resource())
			}
			head, err := tx.ResourceHead("sub", e.Resource())
			if err != nil {
				return err
			}
			if head != eid {
				t.Errorf("ResourceHead(%q) = %q, want %q", e.Resource(), head, eid)
			}
			as, err := tx.Attempts(eid)
			if err != nil {
				return err
			}
			if len(as) != 1 || as[0].Body != "\xff\x00body" {
				t.Errorf("Attempts(%s) = %+v", eid, as)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A key part over store.MaxKeyPart is a bad record, refused before it is
// written, and the rest of the transaction commits.
func TestKeyPartLimit(t *testing.T) {
	s := openTest(t)
	long := strings.Repeat("x", store.MaxKeyPart+1)
	it := &store.Item{State: json.RawMessage(`1`)}
	err := s.Update(func(tx store.Txn) error {
		checks := map[string]error{
			"PutItem id":     tx.PutItem("src", long, it),
			"PutItem source": tx.PutItem(long, "a", it),
			"PutWatch":       tx.PutWatch(&store.Watch{Source: "src", ID: long}),
			"MarkWatchEnded": tx.MarkWatchEnded("src", long, time.Now()),
			"PutDelivery":    tx.PutDelivery(&store.Delivery{Subscription: long, EventID: "e", State: store.Pending}, nil),
			"PutHistogram":   tx.PutHistogram("src", long, nil),
		}
		for what, err := range checks {
			if !store.IsBadRecord(err) {
				t.Errorf("%s over the limit = %v, want a bad record", what, err)
			}
		}
		return tx.PutItem("src", long[1:], it)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.View(func(tx store.Txn) error {
		n, err := tx.CountItems("src")
		if n != 1 {
			t.Errorf("CountItems = %d, want the one at the limit", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
