package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// manyRows are the rows of the many-sources run.
type manyRows struct {
	rss, rssReloaded, goroutines, goroutinesReloaded, spread *row
}

func newManyRows(n int) manyRows {
	name := func(s string) string { return fmt.Sprintf("%s idle list sources: %s", thousands(n), s) }
	return manyRows{
		rss:         &row{name: name("RSS once each has polled"), unit: "MiB", target: 200},
		rssReloaded: &row{name: name("RSS after 3 SIGHUPs"), unit: "MiB", target: 200},
		// An idle source holds no goroutine: the count does not grow with n.
		goroutines:         &row{name: name("goroutines"), unit: "", target: 200},
		goroutinesReloaded: &row{name: name("goroutines after 3 SIGHUPs"), unit: "", target: 200},
		// Evenly spread, each tenth of the interval holds 10% of the first
		// polls; 15% leaves room for the hash's unevenness.
		spread: &row{name: name("first polls in the busiest tenth of the interval"), unit: "%", target: 15},
	}
}

func (r manyRows) all() []*row {
	return []*row{r.rss, r.rssReloaded, r.goroutines, r.goroutinesReloaded, r.spread}
}

// thousands writes n with commas: 10,000.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// firstPolls records when each source's first request arrived.
type firstPolls struct {
	mu   sync.Mutex
	at   map[string]time.Time
	n    int
	done chan struct{}
}

func (f *firstPolls) see(path string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.at[path]; ok {
		return
	}
	f.at[path] = time.Now()
	if len(f.at) == f.n {
		close(f.done)
	}
}

func (f *firstPolls) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.at)
}

// busiestTenth is the share of first polls, in percent, in the busiest
// window a tenth of the interval long.
func (f *firstPolls) busiestTenth(interval time.Duration) float64 {
	f.mu.Lock()
	ts := slices.SortedFunc(maps.Values(f.at), time.Time.Compare)
	f.mu.Unlock()
	best, j := 0, 0
	for i := range ts {
		for j < len(ts) && ts[j].Sub(ts[i]) < interval/10 {
			j++
		}
		best = max(best, j-i)
	}
	return float64(best) * 100 / float64(len(ts))
}

// manySources runs the binary with n list sources polling one loopback
// upstream every interval: each answers a one-item listing with an ETag,
// then 304. It waits until every source has polled once, then reads RSS
// and the goroutine count, sends SIGHUP three times (the same file, so no
// source changes) and reads them again.
func manySources(bin, dir string, n int, interval time.Duration, rows manyRows) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("mkdir: %w", err)
	}
	fp := &firstPolls{at: map[string]time.Time{}, n: n, done: make(chan struct{})}
	up, err := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fp.see(r.URL.Path)
		w.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"data":[{"id":"a","status":"ready"}]}`)
	}))
	if err != nil {
		return err
	}
	defer up.Close()
	port, err := freePort()
	if err != nil {
		return err
	}
	var cfg bytes.Buffer
	fmt.Fprintf(&cfg, "listen: 127.0.0.1:%d\nstorage: {path: %s}\nlog: {level: info, format: json}\nsources:\n",
		port, filepath.Join(dir, "data"))
	for i := range n {
		fmt.Fprintf(&cfg, `  - {name: s%d, url: "http://%s/s/%d", interval: %s, items: '.data[]', id: '.id', state: '.status', events: [{type: 'item.{current}', on: changed}]}
`, i, up.Addr(), i, interval)
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, cfg.Bytes(), 0o600); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	logs, err := cmd.StderrPipe()
	if err != nil {
		return fmt.Errorf("stderr: %w", err)
	}
	cmd.Stdout = io.Discard
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	defer stopBinary(cmd)
	reloaded := make(chan struct{}, 8)
	go func() {
		sc := bufio.NewScanner(logs)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if strings.Contains(sc.Text(), `"msg":"config reloaded"`) {
				reloaded <- struct{}{}
			}
		}
		io.Copy(io.Discard, logs)
	}()
	select {
	case <-fp.done:
	case <-time.After(interval + time.Minute):
		return fmt.Errorf("after %s only %d of %d sources had polled", time.Since(t0).Round(time.Second), fp.count(), n)
	}
	rows.spread.runs = append(rows.spread.runs, fp.busiestTenth(interval))
	api := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	if err := measure(cmd.Process.Pid, api, rows.rss, rows.goroutines); err != nil {
		return err
	}
	for i := range 3 {
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			return fmt.Errorf("SIGHUP: %w", err)
		}
		select {
		case <-reloaded:
		case <-time.After(time.Minute):
			return fmt.Errorf("reload %d did not finish within a minute", i+1)
		}
	}
	return measure(cmd.Process.Pid, api, rows.rssReloaded, rows.goroutinesReloaded)
}

// measure lets the process settle, then reads its RSS and, from /metrics
// (after RSS: a scrape of this size allocates), its goroutines.
func measure(pid int, metricsURL string, rss, goroutines *row) error {
	time.Sleep(5 * time.Second)
	kb, err := rssKiB(pid)
	if err != nil {
		return err
	}
	rss.runs = append(rss.runs, float64(kb)/1024)
	g, err := scrapeGauge(metricsURL, "go_goroutines")
	if err != nil {
		return err
	}
	goroutines.runs = append(goroutines.runs, g)
	return nil
}

// scrapeGauge reads one unlabelled metric from a Prometheus text page.
func scrapeGauge(url, name string) (float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, fmt.Errorf("scrape: %w", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			io.Copy(io.Discard, resp.Body)
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("scrape: %w", err)
	}
	return 0, errors.New("scrape: no " + name)
}

// stopBinary sends SIGTERM and waits, killing the process after 30 s.
func stopBinary(cmd *exec.Cmd) {
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}
