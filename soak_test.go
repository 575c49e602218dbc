package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/signature"
)

// soakUpstream serves five 10,000-item listings and 10,000 task statuses
// whose states move on every second.
type soakUpstream struct {
	mu   sync.Mutex
	tick int
}

func (u *soakUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	tick := u.tick
	u.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if id, ok := strings.CutPrefix(r.URL.Path, "/task/"); ok {
		n, _ := strconv.Atoi(strings.TrimPrefix(id, "t"))
		fmt.Fprintf(w, `{"id":%q,"status":"s%d"}`, id, (n+tick)/50%4)
		return
	}
	items := make([]map[string]any, 10000)
	for i := range items {
		// 1% of a listing changes state per tick.
		items[i] = map[string]any{"id": fmt.Sprintf("i%05d", i), "status": fmt.Sprintf("s%d", (i+tick)/100%3), "title": "an item of a soak listing"}
	}
	json.NewEncoder(w).Encode(map[string]any{"data": items})
}

// BenchmarkSoak runs a bridge with 10,000 watches and five list sources
// of 10,000 items for b.N seconds and reports RSS and goroutines at the
// start and the end, so a leak shows as growth. A few minutes:
//
//	go test -run '^$' -bench Soak -benchtime 180x .
func BenchmarkSoak(b *testing.B) {
	up := &soakUpstream{}
	upURL := newServer(b, up)
	sink := newServer(b, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	var ids strings.Builder
	for i := range 10000 {
		fmt.Fprintf(&ids, "%q,", fmt.Sprintf("t%05d", i))
	}
	var yaml strings.Builder
	fmt.Fprintf(&yaml, "listen: 127.0.0.1:0\nstorage: {path: %q}\nlog: {level: error}\nsources:\n", b.TempDir())
	for n := range 5 {
		fmt.Fprintf(&yaml, "  - {name: list%d, url: \"%s/list/%d\", interval: 5s, items: '.data[]'}\n", n, upURL, n)
	}
	fmt.Fprintf(&yaml, "  - {name: tasks, url: \"%s/task/{id}\", interval: 10s, concurrency: 16, ids: [%s]}\n", upURL, strings.TrimSuffix(ids.String(), ","))
	fmt.Fprintf(&yaml, "subscriptions:\n  - {name: app, url: %q, secret: %s, max_in_flight: 32}\n", sink, signature.NewSecret())
	cfg, err := config.Parse([]byte(yaml.String()))
	if err != nil {
		b.Fatal(err)
	}
	br, err := NewBridge(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	if err != nil {
		b.Fatal(err)
	}
	runUntilCleanup(b, br)
	time.Sleep(15 * time.Second) // baselines and the first watch round
	rss0, g0 := rssMiB(), runtime.NumGoroutine()
	b.ResetTimer()
	for range b.N {
		time.Sleep(time.Second)
		up.mu.Lock()
		up.tick++
		up.mu.Unlock()
	}
	b.StopTimer()
	rss1, g1 := rssMiB(), runtime.NumGoroutine()
	b.ReportMetric(rss0, "rss-start-MiB")
	b.ReportMetric(rss1, "rss-end-MiB")
	b.ReportMetric(float64(g0), "goroutines-start")
	b.ReportMetric(float64(g1), "goroutines-end")
	b.Logf("after %d s: RSS %.0f → %.0f MiB, goroutines %d → %d", b.N, rss0, rss1, g0, g1)
}

// rssMiB reads this process's resident memory from /proc.
func rssMiB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
