package badger

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/event"
)

// An item's object is stored apart from its record; every way of reading
// it puts the two together again, records written with the object inline
// (by earlier versions) still read, and deleting an item leaves neither.
func TestItemObjectStoredApart(t *testing.T) {
	s := openStore(t)
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	apart := &Item{State: json.RawMessage(`"ready"`), Object: json.RawMessage(`{"id":"a"}`), Since: at,
		History: []HistoryEntry{{State: json.RawMessage(`"ready"`), At: at}}}
	inline := &Item{State: json.RawMessage(`"queued"`), Object: json.RawMessage(`{"id":"b"}`), Since: at}
	bare := &Item{State: json.RawMessage(`"x"`), Since: at}
	err := s.update(func(tx *Txn) error {
		if err := tx.PutItem("s", "a", apart); err != nil {
			return err
		}
		if err := tx.set(itemKey("s", "b"), encodeItem(nil, inline)); err != nil {
			return err
		}
		// An object dropped on rewrite must not come back.
		if err := tx.PutItem("s", "c", apart); err != nil {
			return err
		}
		return tx.PutItem("s", "c", bare)
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]*Item{"a": apart, "b": inline, "c": bare}
	err = s.view(func(tx *Txn) error {
		for id, w := range want {
			got, err := tx.Item("s", id)
			if err != nil {
				return err
			}
			if !reflect.DeepEqual(got, w) {
				t.Errorf("Item(%s) = %+v, want %+v", id, got, w)
			}
		}
		n := 0
		err := tx.Items("s", func(id string, got *Item) error {
			n++
			if !reflect.DeepEqual(got, want[id]) {
				t.Errorf("Items: %s = %+v, want %+v", id, got, want[id])
			}
			return nil
		})
		if n != 3 {
			t.Errorf("Items gave %d items, want 3", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.view(func(tx *Txn) error {
		return tx.ScanItemHeads("s", func(id []byte, got *Item) error {
			if w := want[string(id)]; got.Object != nil || string(got.State) != string(w.State) || !got.Since.Equal(w.Since) {
				t.Errorf("head of %s = %+v", id, got)
			}
			return nil
		}, nil)
	})
	if err != nil {
		t.Fatal(err)
	}

	if err := s.update(func(tx *Txn) error { return tx.DeleteItem("s", "a") }); err != nil {
		t.Fatal(err)
	}
	err = s.view(func(tx *Txn) error {
		v, err := tx.get(objectKey("s", "a"))
		if v != nil {
			t.Errorf("a's object outlived it: %s", v)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// EventMeta picks out the same fields a full decode gives, whatever they
// hold.
func TestEventMetaMatchesEvent(t *testing.T) {
	s := openStore(t)
	events := []*event.Event{
		{ID: "01A", Type: "video.ready", Kind: "changed", Source: "videos", ItemID: "v_1", CreatedAt: time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.UTC),
			Current: json.RawMessage(`{"type":"not this","id":"nor this"}`), Object: json.RawMessage(`{"item_id":"x"}`)},
		{ID: "01B", Type: "a\"b\\c é\n", Kind: "created", Source: "s", ItemID: "\u2028id", CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))},
		{ID: "01C"},
	}
	err := s.update(func(tx *Txn) error {
		for _, e := range events {
			if err := tx.AddEvent(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.view(func(tx *Txn) error {
		for _, e := range events {
			full, err := tx.Event(e.ID)
			if err != nil {
				return err
			}
			meta, err := tx.EventMeta(e.ID)
			if err != nil {
				return err
			}
			want := event.Event{ID: full.ID, Type: full.Type, Kind: full.Kind, Source: full.Source, ItemID: full.ItemID}
			got := *meta
			got.CreatedAt = time.Time{}
			if !reflect.DeepEqual(got, want) || !meta.CreatedAt.Equal(full.CreatedAt) {
				t.Errorf("EventMeta(%s) = %+v, want %+v at %v", e.ID, meta, want, full.CreatedAt)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
