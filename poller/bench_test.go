package poller

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/cluster"
	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/diff"
	"github.com/pollrelay/pollrelay/internal/benchdata"
	"github.com/pollrelay/pollrelay/internal/pgtest"
	"github.com/pollrelay/pollrelay/store"
	"github.com/pollrelay/pollrelay/store/badger"
	"github.com/pollrelay/pollrelay/store/postgres"
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
func benchPoll(b *testing.B, st store.Store, body []byte, now time.Time, preload bool) diff.Result {
	ctx := context.Background()
	src := compiledSource(&testing.T{}, benchSource)
	var x *diff.Index
	if preload {
		x = diff.LoadIndex(st, src.Source, benchItems)
	}
	obs, _, err := parsePage(ctx, src, src.pages, &response{status: 200, body: body})
	if err != nil {
		b.Fatal(err)
	}
	res, err := diff.Apply(ctx, st, src.Source, diff.Poll{Observations: obs, Complete: true, Now: now, Index: x})
	if err != nil {
		b.Fatal(err)
	}
	return res
}

// asRecommended sets the runtime up as `run` does with the README's
// recommended memory_limit_bytes for about a million items.
func asRecommended(b *testing.B) {
	prev := debug.SetMemoryLimit(config.RecommendedMemoryLimit)
	b.Cleanup(func() { debug.SetMemoryLimit(prev) })
}

// openBenchStore opens Badger on disk with synced commits, as `run` does.
func openBenchStore(b *testing.B) store.Store {
	st, err := badger.Open(badger.Options{Path: b.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// openBenchPostgres opens a fresh schema on POLLRELAY_TEST_POSTGRES_URL's
// server and returns the store fenced by the videos source's lease, held
// by one member, as the poller writes through it.
func openBenchPostgres(b *testing.B) store.Store {
	st, err := postgres.Open(postgres.Options{URL: pgtest.URL(b), Schema: pgtest.Schema(b), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	ctx := context.Background()
	h := cluster.Holder{Member: "bench", ID: "1"}
	if err := st.Cluster().Join(ctx, cluster.Member{Holder: h}, time.Hour, map[string]string{"videos": "v"}); err != nil {
		b.Fatal(err)
	}
	lease := cluster.SourceLease("videos")
	tokens, err := st.Cluster().Acquire(ctx, h, []cluster.Claim{{Name: lease, Config: "v"}})
	if err != nil || tokens[lease] == 0 {
		b.Fatalf("acquire the lease: %v %v", tokens, err)
	}
	return st.Fenced(lease, tokens[lease])
}

// BenchmarkDiffUnchanged measures a poll of a 100,000-item listing that
// matches what is stored: decode, extract, compare, and nothing written.
// Target: ≥ 1,000,000 items/s.
func BenchmarkDiffUnchanged(b *testing.B) { benchDiffUnchanged(b, openBenchStore(b)) }

// BenchmarkDiffUnchangedPostgres is BenchmarkDiffUnchanged on PostgreSQL,
// through the store fenced by the source's lease as its holder polls.
// Target: ≥ 500,000 items/s.
//
//	POLLRELAY_TEST_POSTGRES_URL=postgres://… go test ./poller/ -run '^$' -bench Postgres -benchtime 5x
func BenchmarkDiffUnchangedPostgres(b *testing.B) { benchDiffUnchanged(b, openBenchPostgres(b)) }

// BenchmarkDiffOnePercentChangedPostgres is BenchmarkDiffOnePercentChanged
// on PostgreSQL, fenced. Target: ≤ 1 s/poll.
func BenchmarkDiffOnePercentChangedPostgres(b *testing.B) {
	benchDiffOnePercentChanged(b, openBenchPostgres(b))
}

func benchDiffUnchanged(b *testing.B, st store.Store) {
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
func BenchmarkDiffOnePercentChanged(b *testing.B) { benchDiffOnePercentChanged(b, openBenchStore(b)) }

func benchDiffOnePercentChanged(b *testing.B, st store.Store) {
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

// BenchmarkTrackedMillion stores 1,000,000 items of one list source (each
// with a ~300-byte object, as the listing benchmarks generate) and reports
// the database's size on disk, the RSS of the process with the store
// reopened and idle, and its peak RSS during one complete, unchanged poll
// of them: a loopback upstream serves 1,000 pages of 1,000 items, fetched,
// parsed and compared as the poll loop does. It is the first poll after a
// restart, so nothing is read in advance and no stored digest lets it skip
// the comparison. The database is flattened first, so Badger's compactions
// after loading a million items at once are not measured as the poll's.
// RSS includes the pages of Badger's memory-mapped tables that the poll
// read (file-MiB); anon-MiB is the process's own memory. The runtime runs
// with the recommended memory_limit_bytes (config.RecommendedMemoryLimit).
// Targets: ≤ 300 MiB on disk and ≤ 150 MiB RSS.
//
//	go test ./poller/ -run '^$' -bench TrackedMillion -benchtime 1x
func BenchmarkTrackedMillion(b *testing.B) {
	const n, pageSize = 1_000_000, 1_000
	asRecommended(b)
	dir := b.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := badger.Open(badger.Options{Path: dir, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	batch := st.NewBatch()
	var buf []byte
	for i := range n {
		s := json.RawMessage(strconv.Quote(benchdata.Status(i, 0, 100)))
		buf = benchdata.Item(buf[:0], i, benchdata.Status(i, 0, 100))
		it := &store.Item{State: s, Object: json.RawMessage(buf), Since: now, History: []store.HistoryEntry{{State: s, At: now}}}
		if err := batch.Group(func(t store.Txn) error { return t.PutItem("videos", benchdata.ID(i), it) }); err != nil {
			b.Fatal(err)
		}
	}
	if err := batch.Group(func(t store.Txn) error {
		return t.PutSourceState("videos", store.SourceState{Baselined: true})
	}); err != nil {
		b.Fatal(err)
	}
	if err := batch.Commit(); err != nil {
		b.Fatal(err)
	}
	// Closing flushes the memtables; flattening after that leaves nothing
	// for Badger to compact when the store is opened for the poll.
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	if st, err = badger.Open(badger.Options{Path: dir, Logger: log}); err != nil {
		b.Fatal(err)
	}
	if err := st.Flatten(); err != nil {
		b.Fatal(err)
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	var disk int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				disk += fi.Size()
			}
		}
		return nil
	})

	src, f := millionUpstream(b, n, pageSize, log)

	if st, err = badger.Open(badger.Options{Path: dir, Logger: log}); err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	// Return what writing the items used to the OS, so the RSS is the
	// reopened store's; and reset the peak so it covers only the poll.
	debug.FreeOSMemory()
	idle := procStatus(b, "VmRSS:")
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	ctx := context.Background()
	peaks := samplePeaks(b)
	b.ResetTimer()
	for b.Loop() {
		s := &stream{now: now, load: func() *diff.Index { return diff.LoadIndex(st, src.Source, n) }}
		lst, err := fetchListing(ctx, src, f, diff.Validators{}, s, plainRequest(src))
		if err != nil || !lst.complete {
			b.Fatalf("fetch: complete %v, %v", lst.complete, err)
		}
		res, err := diff.Apply(ctx, st, src.Source, diff.Poll{Observations: lst.obs, Complete: true, Now: now, Index: s.index})
		if err != nil || res.Changes != 0 || res.Tracked != n {
			b.Fatalf("poll: %d changes, %d tracked, %v", res.Changes, res.Tracked, err)
		}
	}
	peakAnon, peakFile := peaks()
	// ResetTimer drops reported metrics, so all are reported here.
	b.ReportMetric(float64(disk)/(1<<20), "disk-MiB")
	b.ReportMetric(idle, "idle-rss-MiB")
	b.ReportMetric(peakAnon, "anon-MiB")
	b.ReportMetric(peakFile, "file-MiB")
	b.ReportMetric(procStatus(b, "VmHWM:"), "rss-MiB")
}

// BenchmarkBaselineMillion is a source's first poll of 1,000,000 items in
// 1,000 pages into an empty store: the baseline, whose new items are
// stored page by page. It reports the peak RSS (as BenchmarkTrackedMillion
// does) and how long the poll took.
//
//	go test ./poller/ -run '^$' -bench BaselineMillion -benchtime 1x
func BenchmarkBaselineMillion(b *testing.B) {
	const n, pageSize = 1_000_000, 1_000
	asRecommended(b)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	src, f := millionUpstream(b, n, pageSize, log)
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		st, err := badger.Open(badger.Options{Path: b.TempDir(), Logger: log})
		if err != nil {
			b.Fatal(err)
		}
		debug.FreeOSMemory()
		os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
		peaks := samplePeaks(b)
		b.StartTimer()
		res := pagedPoll(b, st, src, f, time.Now(), 0)
		if !res.Baseline || res.Tracked != n || len(res.Events) != 0 {
			b.Fatalf("poll: baseline %v, %d tracked, %d events", res.Baseline, res.Tracked, len(res.Events))
		}
		b.StopTimer()
		peakAnon, peakFile := peaks()
		b.ReportMetric(peakAnon, "anon-MiB")
		b.ReportMetric(peakFile, "file-MiB")
		b.ReportMetric(procStatus(b, "VmHWM:"), "rss-MiB")
		st.Close()
		b.StartTimer()
	}
}

// pagedPoll is one complete poll of a paged source as the loop runs it:
// pages fetched and streamed (a baseline's new items stored ahead, and
// what a batch of changes makes written ahead), then applied. hint sizes
// the index it loads.
func pagedPoll(b *testing.B, st store.Store, src *compiled, f *fetcher, now time.Time, hint int) diff.Result {
	ctx := context.Background()
	s := &stream{now: now, load: func() *diff.Index { return diff.LoadIndex(st, src.Source, hint) },
		store: func(x *diff.Index, obs []diff.Observation) ([]diff.Observation, error) {
			return x.StoreNew(ctx, st, obs, now, nil)
		},
		ahead: func(x *diff.Index, obs []diff.Observation) ([]diff.Observation, error) {
			return x.ApplyAhead(ctx, st, obs, now, nil)
		}}
	lst, err := fetchListing(ctx, src, f, diff.Validators{}, s, plainRequest(src))
	if err != nil || !lst.complete {
		b.Fatalf("fetch: complete %v, %v", lst.complete, err)
	}
	res, err := diff.Apply(ctx, st, src.Source, diff.Poll{Observations: lst.obs, Complete: true, Now: now, Index: s.index})
	if err != nil {
		b.Fatal(err)
	}
	return res
}

// millionUpstream serves n generated items in pages of pageSize with a
// `next` cursor, and returns a paginated source for it with its fetcher.
func millionUpstream(b *testing.B, n, pageSize int, log *slog.Logger) (*compiled, *fetcher) {
	return pagedUpstream(b, n, pageSize, 100, new(atomic.Int64), log)
}

// pagedUpstream serves n items in pages of pageSize, in the generation
// gen holds (every every-th item's status moves on per generation).
func pagedUpstream(b *testing.B, n, pageSize, every int, gen *atomic.Int64, log *slog.Logger) (*compiled, *fetcher) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		from, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
		g := int(gen.Load())
		page := []byte(`{"data":[`)
		for i := from; i < min(from+pageSize, n); i++ {
			if i > from {
				page = append(page, ',')
			}
			page = benchdata.Item(page, i, benchdata.Status(i, g, every))
		}
		page = append(page, `],"next":`...)
		if from+pageSize < n {
			page = strconv.AppendQuote(page, strconv.Itoa(from+pageSize))
		} else {
			page = append(page, "null"...)
		}
		page = append(page, '}')
		w.Header().Set("Content-Type", "application/json")
		w.Write(page)
	}))
	b.Cleanup(upstream.Close)
	src := compiledSource(&testing.T{}, strings.Replace(benchSource, "http://127.0.0.1:1/v1/videos", upstream.URL, 1)+
		"    pagination: {next: .next, param: cursor, max_pages: 2000}\n")
	return src, newFetcher(src, log, func(int) {}, nil)
}

// samplePeaks samples the process's anonymous and file-backed RSS until
// the function it returns is called, which returns their peaks in MiB:
// VmHWM gives only their sum.
func samplePeaks(b *testing.B) func() (anon, file float64) {
	var peakAnon, peakFile float64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			peakAnon = max(peakAnon, procStatus(b, "RssAnon:"))
			peakFile = max(peakFile, procStatus(b, "RssFile:"))
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() (float64, float64) {
		close(stop)
		<-sampled
		return peakAnon, peakFile
	}
}

// procStatus reads a kB field of /proc/self/status in MiB.
func procStatus(b *testing.B, key string) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	b.Fatalf("no %s in /proc/self/status", key)
	return 0
}

// BenchmarkBareScan is the ceiling BenchmarkDiffUnchanged is bounded by on
// this machine: encoding/json's scanner over the same 100,000-item listing
// (json.Valid), which every poll runs and nothing can skip. go run ./bench
// prints the unchanged diff as a share of it.
//
//	go test ./poller/ -run '^$' -bench BareScan -benchtime 5x
func BenchmarkBareScan(b *testing.B) {
	body := benchdata.Listing(benchItems, 0, 100)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if !json.Valid(body) {
			b.Fatal("the listing is not valid JSON")
		}
	}
	b.ReportMetric(float64(benchItems)*float64(b.N)/b.Elapsed().Seconds(), "items/s")
}

// BenchmarkGrowth measures how a poll's cost grows with the listing: for
// 10k, 100k and 1M items (pages of 1,000 from a loopback upstream, Badger
// on disk with synced commits, the defaults) with 1% or 100% of them
// changed since the baseline, one poll's wall time, its CPU time per
// changed item, and the process's peak RSS during it: in all (VmHWM), and
// its own memory and Badger's memory-mapped pages apart (anon-MiB,
// file-MiB, sampled). go run ./bench -only growth runs each case in its
// own process.
//
//	go test ./poller/ -run '^$' -bench 'BenchmarkGrowth/items=100000/changed=1$' -benchtime 1x
func BenchmarkGrowth(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		for _, pct := range []int{1, 100} {
			b.Run(fmt.Sprintf("items=%d/changed=%d", n, pct), func(b *testing.B) { benchGrowth(b, n, 100/pct) })
		}
	}
}

func benchGrowth(b *testing.B, n, every int) {
	log := slog.New(slog.DiscardHandler)
	st := openBenchStore(b)
	gen := new(atomic.Int64)
	src, f := pagedUpstream(b, n, 1_000, every, gen, log)
	poll := func(now time.Time) diff.Result { return pagedPoll(b, st, src, f, now, n) }
	now := time.Now()
	if res := poll(now); !res.Baseline || res.Tracked != n {
		b.Fatalf("baseline: %v, %d tracked", res.Baseline, res.Tracked)
	}
	debug.FreeOSMemory()
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	peaks := samplePeaks(b)
	var changed int
	var cpu time.Duration
	b.ResetTimer()
	for b.Loop() {
		gen.Add(1)
		now = now.Add(time.Minute)
		c0 := cpuTime(b)
		res := poll(now)
		cpu += cpuTime(b) - c0
		if want := (n + every - 1) / every; res.Changes != want {
			b.Fatalf("%d changes, want %d", res.Changes, want)
		}
		changed += res.Changes
	}
	peakAnon, peakFile := peaks()
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/poll")
	b.ReportMetric(peakAnon, "anon-MiB")
	b.ReportMetric(peakFile, "file-MiB")
	b.ReportMetric(float64(cpu.Microseconds())/float64(changed), "cpu-µs/change")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/poll")
	b.ReportMetric(procStatus(b, "VmHWM:"), "rss-MiB")
	b.ReportMetric(0, "ns/op")
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
