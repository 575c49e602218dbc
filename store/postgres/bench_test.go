package postgres

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/store"
)

// benchItem is an item as a list source stores it: a short state, a
// history of two, an object of ~200 bytes.
func benchItem(i int, at time.Time) *store.Item {
	state := json.RawMessage(`"ready"`)
	return &store.Item{
		State:   state,
		Object:  json.RawMessage(fmt.Sprintf(`{"id":"item-%07d","status":"ready","title":"a video of some length","owner":"user-%d","tags":["a","b","c"],"size":%d,"updated_at":"2026-01-02T03:04:05Z"}`, i, i%97, i*31)),
		Since:   at,
		History: []store.HistoryEntry{{State: json.RawMessage(`"processing"`), At: at.Add(-time.Minute)}, {State: state, At: at}},
	}
}

// fill stores n items of source in batches, as a baseline poll does.
func fill(tb testing.TB, s *Store, source string, n int) {
	tb.Helper()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b := s.NewBatch()
	for i := range n {
		err := b.Group(func(tx store.Txn) error { return tx.PutItem(source, fmt.Sprintf("item-%07d", i), benchItem(i, at)) })
		if err != nil {
			tb.Fatal(err)
		}
	}
	if err := b.Commit(); err != nil {
		tb.Fatal(err)
	}
	if _, err := s.pool.Exec(s.ctx, "VACUUM ANALYZE items"); err != nil {
		tb.Fatal(err)
	}
}

// An unchanged listing reads every item head of its source: the figure
// that bounds the 500,000 items/s a 100,000-item listing needs. raw is
// the reference measured beside it: the same rows read by pgx in one
// query with nothing decoded, what the wire and the server cost.
//
//	go test ./store/postgres -run '^$' -bench ScanItemHeads -benchtime 20x
func BenchmarkScanItemHeads100k(b *testing.B) {
	const n = 100_000
	s := openTest(b)
	fill(b, s, "src", n)
	b.Run("store", func(b *testing.B) {
		for b.Loop() {
			seen := 0
			err := s.View(func(tx store.Txn) error {
				return tx.ScanItemHeads("src", func(id []byte, it *store.Item) error {
					seen += len(id) & 1
					return nil
				}, nil)
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "items/s")
	})
	b.Run("raw", func(b *testing.B) {
		for b.Loop() {
			rows, err := s.pool.Query(s.ctx, "SELECT id, state, head FROM items WHERE source = $1 ORDER BY id", []byte("src"))
			if err != nil {
				b.Fatal(err)
			}
			seen := 0
			for rows.Next() {
				seen += len(rows.RawValues())
			}
			rows.Close()
			if err := rows.Err(); err != nil || seen != 3*n {
				b.Fatal(seen, err)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "items/s")
	})
}

// A poll that changed 1,000 items writes each with its event, one group
// each, in one batch.
//
//	go test ./store/postgres -run '^$' -bench BatchPutItemAddEvent -benchtime 20x
func BenchmarkBatchPutItemAddEvent1000(b *testing.B) {
	const n = 1000
	s := openTest(b)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	round := 0
	for b.Loop() {
		round++
		batch := s.NewBatch()
		for i := range n {
			id := fmt.Sprintf("item-%07d", i)
			it := benchItem(i, at)
			e := &event.Event{ID: fmt.Sprintf("evt_%06d_%07d", round, i), Type: "video.ready", Kind: event.Changed,
				Source: "src", ItemID: id, Previous: json.RawMessage(`"processing"`), Current: it.State, Object: it.Object, CreatedAt: at}
			err := batch.Group(func(tx store.Txn) error {
				if err := tx.PutItem("src", id, it); err != nil {
					return err
				}
				return tx.AddEvent(e)
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		if err := batch.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "groups/s")
}

// Recording delivery outcomes as the notifier does, 32 to a transaction:
// read the delivery, log the attempt, store what comes next.
//
//	go test ./store/postgres -run '^$' -bench DeliveryOutcomes -benchtime 100x
func BenchmarkDeliveryOutcomes(b *testing.B) {
	const per = 32
	s := openTest(b)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	next := 0
	// Deliveries to record, made ahead in fan-out-sized transactions.
	pending := func(count int) []string {
		ids := make([]string, 0, count)
		err := s.Update(func(tx store.Txn) error {
			ids = ids[:0]
			for i := range count {
				e := &event.Event{ID: fmt.Sprintf("evt_%08d", next+i), Type: "t", Kind: event.Changed, Source: "src", ItemID: fmt.Sprint(i), CreatedAt: at}
				if err := tx.AddEvent(e); err != nil {
					return err
				}
				d := &store.Delivery{EventID: e.ID, Subscription: "sub", Resource: e.Resource(), State: store.Pending, NextAt: at, CreatedAt: at, EventAt: at}
				if err := tx.PutDelivery(d, nil); err != nil {
					return err
				}
				ids = append(ids, e.ID)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		next += count
		return ids
	}
	var batches [][]string
	for range b.N {
		batches = append(batches, pending(per))
	}
	b.ResetTimer()
	for i := range b.N {
		ids := batches[i]
		err := s.Update(func(tx store.Txn) error {
			for _, id := range ids {
				prev, err := tx.Delivery("sub", id)
				if err != nil {
					return err
				}
				d := *prev
				d.Attempts++
				d.State, d.LastStatus, d.UpdatedAt = store.Delivered, 200, at
				if err := tx.AddAttempt(id, store.Attempt{N: d.Attempts, Subscription: "sub", At: at, Status: 200, Outcome: "success"}); err != nil {
					return err
				}
				if err := tx.PutDelivery(&d, prev); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(per*b.N)/b.Elapsed().Seconds(), "deliveries/s")
}
