package postgres

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/store"
)

func TestSmoke(t *testing.T) {
	s := openTest(t)
	at := time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.UTC)
	it := &store.Item{State: json.RawMessage(`"ready"`), Object: json.RawMessage(`{"id":"a"}`), Since: at,
		History: []store.HistoryEntry{{State: json.RawMessage(`"ready"`), At: at}}}
	e := &event.Event{ID: "evt_01", Type: "x.changed", Kind: event.Changed, Source: "s", ItemID: "a\x00\xff", CreatedAt: at}
	err := s.Update(func(tx store.Txn) error {
		if err := tx.PutItem("s", "a\x00\xff", it); err != nil {
			return err
		}
		return tx.AddEvent(e)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.View(func(tx store.Txn) error {
		got, err := tx.Item("s", "a\x00\xff")
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(got, it) {
			t.Errorf("Item = %+v, want %+v", got, it)
		}
		m, err := tx.EventMeta("evt_01")
		if err != nil {
			return err
		}
		if !m.CreatedAt.Equal(at) || m.ItemID != e.ItemID {
			t.Errorf("EventMeta = %+v", m)
		}
		ids, err := tx.Outbox(10)
		if err != nil {
			return err
		}
		if len(ids) != 1 || ids[0] != "evt_01" {
			t.Errorf("Outbox = %q", ids)
		}
		n := 0
		err = tx.ScanItemHeads("s", func(id []byte, it *store.Item) error {
			n++
			if string(id) != "a\x00\xff" {
				t.Errorf("id %q", id)
			}
			return nil
		}, nil)
		if n != 1 {
			t.Errorf("scanned %d", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
