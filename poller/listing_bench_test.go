package poller

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/diff"
	"github.com/pollrelay/pollrelay/internal/benchdata"
	"github.com/pollrelay/pollrelay/store"
	"github.com/pollrelay/pollrelay/store/badger"
)

// BenchmarkListingHeap polls one 10 MiB listing into an empty store (the
// baseline, which stores every item) and reports the peak Go heap during
// the poll per byte of body, "heap-x": what a listing costs in memory;
// then polls the same listing again ("again-heap-x": an unchanged poll,
// the cost of every later interval). Two shapes: ~300-byte items with
// short ids, and 10 KiB ids.
//
//	go test ./poller/ -run '^$' -bench ListingHeap -benchtime 3x
func BenchmarkListingHeap(b *testing.B) {
	const size = 10 << 20
	small := benchdata.Listing(size/330, 0, 100)
	var big strings.Builder
	big.WriteString(`{"data":[`)
	for i := range size / (10<<10 + 40) {
		if i > 0 {
			big.WriteByte(',')
		}
		fmt.Fprintf(&big, `{"id":"%s%08d","status":"ready"}`, strings.Repeat("x", 10<<10-8), i)
	}
	big.WriteString("]}")
	for _, c := range []struct {
		name string
		body []byte
	}{{"ids=14B", small}, {"ids=10KiB", []byte(big.String())}} {
		b.Run(c.name, func(b *testing.B) {
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Length", strconv.Itoa(len(c.body)))
				w.Write(c.body)
			}))
			defer up.Close()
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			src := compiledSource(&testing.T{}, strings.Replace(benchSource, "http://127.0.0.1:1/v1/videos", up.URL, 1)+"    max_body_bytes: 20971520\n")
			f := newFetcher(src, log, func(int) {}, nil)
			ctx := context.Background()
			// poll runs one poll into st and returns its peak heap per byte.
			poll := func(st store.Store) float64 {
				runtime.GC()
				before := heapObjects()
				peak := sampleHeap()
				now := time.Now()
				s := &stream{now: now, load: func() *diff.Index { return diff.LoadIndex(st, src.Source, 0) },
					store: func(x *diff.Index, obs []diff.Observation) ([]diff.Observation, error) {
						return x.StoreNew(ctx, st, obs, now, nil)
					}}
				lst, err := fetchListing(ctx, src, f, diff.Validators{}, s, plainRequest(src))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := diff.Apply(ctx, st, src.Source, diff.Poll{Observations: lst.obs, Complete: true, Now: now, Index: s.index}); err != nil {
					b.Fatal(err)
				}
				if s.index != nil {
					s.index.Wait()
				}
				return float64(peak()-before) / float64(len(c.body))
			}
			var peakX, againX float64
			for b.Loop() {
				b.StopTimer()
				st, err := badger.Open(badger.Options{Path: b.TempDir(), Logger: log})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				peakX = max(peakX, poll(st))
				b.StopTimer()
				againX = max(againX, poll(st))
				st.Close()
				b.StartTimer()
			}
			b.ReportMetric(againX, "again-heap-x")
			b.ReportMetric(peakX, "heap-x")
			b.ReportMetric(float64(len(c.body))/(1<<20), "body-MiB")
		})
	}
}

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// sampleHeap samples the heap's live-and-unswept object bytes every
// millisecond until the returned function, which returns the peak.
func sampleHeap() func() uint64 {
	stop, done := make(chan struct{}), make(chan uint64)
	go func() {
		var peak uint64
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			peak = max(peak, heapObjects())
			select {
			case <-stop:
				done <- max(peak, heapObjects())
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 { close(stop); return <-done }
}
