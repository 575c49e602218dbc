package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/store"
)

var batchCases = []testCase{
	{"GroupsSeeEarlierGroups", testBatchSeesEarlierGroups},
	{"Discard", testBatchDiscard},
	{"Large", testBatchLarge},
}

// A group reads what the batch's earlier groups wrote, committed or not:
// SyncConfigWatches lists an id twice and must add its watch once.
func testBatchSeesEarlierGroups(t *testing.T, b Backend) {
	s := b.Open(t)
	added := 0
	bt := s.NewBatch()
	defer bt.Discard()
	for range 3 {
		err := bt.Group(func(tx store.Txn) error {
			w, err := tx.Watch("w", "1")
			if err != nil || w != nil {
				return err
			}
			tx.OnCommit(func() { added++ })
			return tx.PutWatch(&store.Watch{Source: "w", ID: "1", CreatedAt: t0, Origin: store.OriginConfig})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := bt.Commit(); err != nil {
		t.Fatal(err)
	}
	if added != 1 {
		t.Errorf("a watch put by three groups in turn was added %d times, want once", added)
	}
}

// Discard drops the groups not committed: a small batch is committed only
// by Commit, so all of it.
func testBatchDiscard(t *testing.T, b Backend) {
	s := b.Open(t)
	ran := 0
	bt := s.NewBatch()
	es := newEvents(3, t0, 0)
	for i, e := range es {
		err := bt.Group(func(tx store.Txn) error {
			tx.OnCommit(func() { ran++ })
			return errors.Join(tx.PutItem("src", fmt.Sprint(i), headItem("x")), tx.AddEvent(e))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	bt.Discard()
	if ran != 0 {
		t.Errorf("%d OnCommit functions ran for discarded groups", ran)
	}
	view(t, s, func(tx store.Txn) error {
		n, err := tx.CountItems("src")
		ob, oerr := tx.Outbox(10)
		if n != 0 || len(ob) != 0 {
			t.Errorf("after Discard: %d items, outbox %v; want none", n, ob)
		}
		return errors.Join(err, oerr)
	})
}

// largeBatch is more groups than one transaction of Badger takes (about
// 12,000 writes with pollrelay's options), so the batch spans several.
const largeBatch = 50_000

// A batch of many groups, each an item and its event, commits whole
// across as many transactions as the backend needs: all of it is visible
// after Commit, every group's OnCommit ran once, and each group saw the
// one before it, in whichever transaction that one went.
func testBatchLarge(t *testing.T, b Backend) {
	s := b.Open(t)
	fired := make(chan struct{}, 1)
	s.OnEvent(func() {
		select {
		case fired <- struct{}{}:
		default:
		}
	})
	ids := make([]string, largeBatch)
	for i := range ids {
		ids[i] = fmt.Sprintf("%06d", i)
	}
	events := newEvents(largeBatch, t0, 0)
	committed := 0
	bt := s.NewBatch()
	defer bt.Discard()
	for i, id := range ids {
		err := bt.Group(func(tx store.Txn) error {
			if i > 0 {
				prev, err := tx.Item("src", ids[i-1])
				if err != nil {
					return err
				}
				if prev == nil {
					return fmt.Errorf("group %d does not see group %d's item", i, i-1)
				}
			}
			tx.OnCommit(func() { committed++ })
			return errors.Join(tx.PutItem("src", id, &store.Item{State: []byte(`"open"`), Since: t0}), tx.AddEvent(events[i]))
		})
		if err != nil {
			t.Fatalf("Group %d: %v", i, err)
		}
	}
	if err := bt.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if committed != largeBatch {
		t.Errorf("%d OnCommit functions ran, want %d", committed, largeBatch)
	}
	waitFor(t, fired, "OnEvent after a batch that added events")
	checkLarge(t, s, ids, events)
}

func checkLarge(t *testing.T, s store.Store, ids []string, events []*event.Event) {
	t.Helper()
	view(t, s, func(tx store.Txn) error {
		var got []string
		err := tx.ItemHeads("src", func(id string, _ *store.Item) error {
			got = append(got, id)
			return nil
		})
		if !slices.Equal(got, ids) {
			t.Errorf("ItemHeads after the batch: %d items, want %d", len(got), len(ids))
		}
		ob, oerr := tx.Outbox(len(events) + 1)
		if !slices.Equal(ob, eventIDs(events)) {
			t.Errorf("outbox after the batch: %d events, want %d in order", len(ob), len(events))
		}
		return errors.Join(err, oerr)
	})
}
