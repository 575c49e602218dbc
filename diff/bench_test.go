package diff

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/internal/benchdata"
	"github.com/pollrelay/pollrelay/store"
)

// BenchmarkTrackedMillion stores 1,000,000 items of one list source (each
// with a ~300-byte object, as the listing benchmarks generate) and reports
// the database's size on disk, the RSS of the process with the store
// reopened and idle, and its peak RSS while it holds 1,000,000 observations
// and runs one complete, unchanged poll of them (the first poll after a
// restart, so no stored digest lets it skip the comparison). Targets: ≤ 300 MiB on disk and ≤ 150 MiB RSS.
//
//	go test ./diff/ -run '^$' -bench TrackedMillion -benchtime 1x
func BenchmarkTrackedMillion(b *testing.B) {
	const n = 1_000_000
	dir := b.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(store.Options{Path: dir, Logger: log})
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
		if err := batch.Group(func(t *store.Txn) error { return t.PutItem("videos", benchdata.ID(i), it) }); err != nil {
			b.Fatal(err)
		}
	}
	if err := batch.Group(func(t *store.Txn) error {
		return t.PutSourceState("videos", store.SourceState{Baselined: true})
	}); err != nil {
		b.Fatal(err)
	}
	if err := batch.Commit(); err != nil {
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

	if st, err = store.Open(store.Options{Path: dir, Logger: log}); err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	// Return what writing the items used to the OS, so the RSS is the
	// reopened store's; and reset the peak so it covers only the poll.
	debug.FreeOSMemory()
	idle := procStatus(b, "VmRSS:")
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	obs := make([]Observation, n)
	for i := range obs {
		obs[i] = Observation{ID: benchdata.ID(i), State: json.RawMessage(strconv.Quote(benchdata.Status(i, 0, 100)))}
	}
	src := &config.Source{Name: "videos", Deletes: new(bool)}
	b.ResetTimer()
	for b.Loop() {
		res, err := Apply(context.Background(), st, src, Poll{Observations: obs, Complete: true, Now: now})
		if err != nil || res.Changes != 0 {
			b.Fatalf("poll: %d changes, %v", res.Changes, err)
		}
	}
	// ResetTimer drops reported metrics, so all are reported here.
	b.ReportMetric(float64(disk)/(1<<20), "disk-MiB")
	b.ReportMetric(idle, "idle-rss-MiB")
	b.ReportMetric(procStatus(b, "VmHWM:"), "rss-MiB")
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
