package poller

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/diff"
	"github.com/pollrelay/pollrelay/internal/benchdata"
	"github.com/pollrelay/pollrelay/store"
)

// benchSource is a list source as a user would configure one: `.data[]`
// items, field-path id and state, the whole item as the event object.
const benchSource = `
  - name: videos
    url: http://127.0.0.1:1/v1/videos
    items: '.data[]'
    id: '.id'
    state: '.status'
    events:
      - type: 'video.status.{current}'
        on: changed
`

const benchItems = 100_000

// benchPoll is one poll as the loop runs it after the fetch: parse the
// body, extract every item, diff against Badger and commit.
// With preload the stored items are read while the body is parsed, as the
// loop does after a poll that compared.
func benchPoll(b *testing.B, st *store.Store, body []byte, now time.Time, preload bool) diff.Result {
	ctx := context.Background()
	src := source(&testing.T{}, benchSource)
	var heads *diff.Heads
	if preload {
		heads = diff.LoadHeads(st, src.Name, benchItems)
	}
	obs, _, err := parsePage(ctx, src, src.Pagination, &response{status: 200, body: body})
	if err != nil {
		b.Fatal(err)
	}
	res, err := diff.Apply(ctx, st, src, diff.Poll{Observations: obs, Complete: true, Now: now, Heads: heads})
	if err != nil {
		b.Fatal(err)
	}
	return res
}

// openBenchStore opens Badger on disk with synced commits, as `run` does.
func openBenchStore(b *testing.B) *store.Store {
	st, err := store.Open(store.Options{Path: b.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// BenchmarkDiffUnchanged measures a poll of a 100,000-item listing that
// matches what is stored: decode, extract, compare, and nothing written.
// Target: ≥ 1,000,000 items/s.
func BenchmarkDiffUnchanged(b *testing.B) {
	st := openBenchStore(b)
	body := benchdata.Listing(benchItems, 0, 100)
	now := time.Now()
	benchPoll(b, st, body, now, false) // the baseline
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for b.Loop() {
		if res := benchPoll(b, st, body, now, false); res.Changes != 0 {
			b.Fatalf("unchanged listing wrote %d changes", res.Changes)
		}
	}
	b.ReportMetric(float64(benchItems)*float64(b.N)/b.Elapsed().Seconds(), "items/s")
}

// BenchmarkDiffOnePercentChanged measures a poll of a 100,000-item listing
// in which 1% of the items changed state: the state and the events are
// committed to Badger on disk with synced writes. Target: ≤ 300 ms/poll.
func BenchmarkDiffOnePercentChanged(b *testing.B) {
	st := openBenchStore(b)
	// Two generations that differ in 1% of the items; alternating them
	// makes every poll change the same number of items.
	bodies := [2][]byte{benchdata.Listing(benchItems, 0, 100), benchdata.Listing(benchItems, 1, 100)}
	now := time.Now()
	benchPoll(b, st, bodies[0], now, false)
	b.ResetTimer()
	i := 0
	for b.Loop() {
		i++
		if res := benchPoll(b, st, bodies[i%2], now, true); len(res.Events) != benchItems/100 {
			b.Fatalf("got %d events, want %d", len(res.Events), benchItems/100)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/poll")
}
