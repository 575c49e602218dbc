package store

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
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
	err := s.Update(func(tx *Txn) error {
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
	err = s.View(func(tx *Txn) error {
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
	err = s.View(func(tx *Txn) error {
		return tx.ScanItemHeads("s", func(id []byte, got *Item) error {
			if w := want[string(id)]; got.Object != nil || string(got.State) != string(w.State) || !got.Since.Equal(w.Since) {
				t.Errorf("head of %s = %+v", id, got)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}

	if err := s.Update(func(tx *Txn) error { return tx.DeleteItem("s", "a") }); err != nil {
		t.Fatal(err)
	}
	err = s.View(func(tx *Txn) error {
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
