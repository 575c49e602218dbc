// Command bench measures pollrelay against its performance targets and
// prints one table: each row's median over several runs, the target, and
// pass or short. It exits 1 if any row is short.
//
//	go run ./bench
//
// The footprint rows run the real binary (built here with go build) against
// a loopback upstream and receiver and read its memory and CPU time from
// /proc; the throughput rows run the go test benchmarks of the package each
// measures, so a profile of any row is one -cpuprofile away.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pollrelay/pollrelay/internal/benchdata"
)

// row is one line of the table. Lower is better unless higher is set;
// strict rows must stay below the target, not reach it. A row with info
// set has no target and says what it is instead: a "ceiling" measured on
// this machine in the same run, which a ratio row divides by, or a figure
// "reported" for sizing.
type row struct {
	name, unit string
	target     float64
	higher     bool
	strict     bool
	info       string
	runs       []float64
}

// ratio returns the row of of's runs divided by ceiling's, run by run:
// a figure that holds on another machine, where the absolute ones move
// with the CPU and the disk.
func ratio(name string, of, ceiling *row, target float64) *row {
	r := &row{name: name, unit: "× ceiling", target: target, higher: true}
	for i := range min(len(of.runs), len(ceiling.runs)) {
		if ceiling.runs[i] > 0 {
			r.runs = append(r.runs, of.runs[i]/ceiling.runs[i])
		}
	}
	return r
}

func (r *row) median() float64 {
	if len(r.runs) == 0 {
		return 0
	}
	s := slices.Clone(r.runs)
	slices.Sort(s)
	return s[len(s)/2]
}

func (r *row) pass() bool {
	if len(r.runs) == 0 {
		return false
	}
	switch {
	case r.higher:
		return r.median() >= r.target
	case r.strict:
		return r.median() < r.target
	}
	return r.median() <= r.target
}

func main() {
	runs := flag.Int("runs", 3, "runs per row; the table shows the median")
	idle := flag.Duration("idle", 10*time.Second, "how long idle CPU is measured per run")
	only := flag.String("only", "", "run only these groups, comma-separated: sidecar, diff, million, deliveries, burst, sources, postgres, growth (postgres runs only when named or POLLRELAY_TEST_POSTGRES_URL is set; growth, how cost grows with listings and subscriptions, only when named)")
	sources := flag.Int("sources", 10_000, "list sources in the sources group")
	interval := flag.Duration("sources-interval", 30*time.Second, "their interval: the run waits one for every first poll")
	flag.Parse()
	o := opts{runs: *runs, idle: *idle, sources: *sources, interval: *interval, only: map[string]bool{}}
	for g := range strings.SplitSeq(*only, ",") {
		if g = strings.TrimSpace(g); g != "" {
			o.only[g] = true
		}
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
}

// opts are the command's flags.
type opts struct {
	runs, sources  int
	idle, interval time.Duration
	only           map[string]bool // empty = every group
}

func (o opts) want(group string) bool { return len(o.only) == 0 || o.only[group] }

func run(o opts) error {
	runs := o.runs
	dir, err := os.MkdirTemp("", "pollrelay-bench-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "pollrelay")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}

	var rows []*row
	if o.want("sidecar") {
		rss := &row{name: "idle RSS (1 list source, 1 subscription, Badger open)", unit: "MiB", target: 40}
		start := &row{name: "startup to first poll", unit: "ms", target: 150}
		cpu := &row{name: "CPU when idle between polls", unit: "% of a core", target: 1, strict: true}
		for i := range runs {
			if err := sidecar(bin, filepath.Join(dir, fmt.Sprint("run", i)), o.idle, rss, start, cpu); err != nil {
				return fmt.Errorf("run %d: %w", i+1, err)
			}
		}
		rows = append(rows, rss, start, cpu)
	}
	if o.want("diff") {
		unchanged := &row{name: "diff, unchanged 100k listing", unit: "items/s", target: 1_000_000, higher: true}
		changed := &row{name: "diff, 100k listing 1% changed, durable", unit: "ms/poll", target: 300}
		scan := &row{name: "  ceiling: bare scan of the same bytes (json.Valid)", unit: "items/s", info: "ceiling"}
		if err := gotest("./poller/", "Benchmark(DiffUnchanged|DiffOnePercentChanged|BareScan)$", "5x", runs, map[string]metric{
			"BenchmarkDiffUnchanged":         {unchanged, "items/s"},
			"BenchmarkDiffOnePercentChanged": {changed, "ms/poll"},
			"BenchmarkBareScan":              {scan, "items/s"},
		}); err != nil {
			return err
		}
		rows = append(rows, unchanged, scan, ratio("  unchanged diff as a share of the bare scan", unchanged, scan, 0.5), changed)
	}
	if o.want("million") {
		disk := &row{name: "1,000,000 tracked items: disk", unit: "MiB", target: 300}
		idleRSS := &row{name: "1,000,000 tracked items: RSS, store open", unit: "MiB", target: 150}
		heap := &row{name: "1,000,000 tracked items: peak RSS, full poll (memory_limit_bytes: 100 MiB)", unit: "MiB", target: 150}
		if err := gotest("./poller/", "BenchmarkTrackedMillion$", "1x", 1, map[string]metric{
			"BenchmarkTrackedMillion":   {disk, "disk-MiB"},
			"BenchmarkTrackedMillion#":  {idleRSS, "idle-rss-MiB"},
			"BenchmarkTrackedMillion##": {heap, "rss-MiB"},
		}); err != nil {
			return err
		}
		rows = append(rows, disk, idleRSS, heap)
	}
	if o.want("deliveries") {
		rate := &row{name: "durable signed deliveries, sustained", unit: "/s", target: 5000, higher: true}
		p99 := &row{name: "p99 event written → 2xx at 1,000/s", unit: "ms", target: 50}
		posts := &row{name: "  ceiling: signed POSTs, same client and receiver, no store", unit: "/s", info: "ceiling"}
		commits := &row{name: "  ceiling: synced commits of 16 outcomes, as outcomes", unit: "/s", info: "ceiling"}
		if err := gotest("./notifier/", "Benchmark(DurableDeliveries|SignedPOSTs)$", "20000x", runs, map[string]metric{
			"BenchmarkDurableDeliveries": {rate, "deliveries/s"},
			"BenchmarkSignedPOSTs":       {posts, "posts/s"},
		}); err != nil {
			return err
		}
		if err := gotest("./notifier/", "BenchmarkSyncedCommits$", "2000x", runs, map[string]metric{
			"BenchmarkSyncedCommits": {commits, "outcomes/s"},
		}); err != nil {
			return err
		}
		p99at5k := &row{name: "p99 event written → 2xx at 5,000/s", unit: "ms", info: "reported"}
		reached := &row{name: "  deliveries/s reached at 5,000/s offered", unit: "/s", info: "reported"}
		if err := gotest("./notifier/", "BenchmarkDurableDeliveriesAt1000PerSecond$", "5000x", runs, map[string]metric{
			"BenchmarkDurableDeliveriesAt1000PerSecond": {p99, "p99-ms"},
		}); err != nil {
			return err
		}
		if err := gotest("./notifier/", "BenchmarkDurableDeliveriesAt5000PerSecond$", "20000x", runs, map[string]metric{
			"BenchmarkDurableDeliveriesAt5000PerSecond":  {p99at5k, "p99-ms"},
			"BenchmarkDurableDeliveriesAt5000PerSecond#": {reached, "deliveries/s"},
		}); err != nil {
			return err
		}
		rows = append(rows, rate, posts, ratio("  durable deliveries as a share of signed POSTs", rate, posts, 1.0/3), commits, p99, p99at5k, reached)
	}
	if o.want("burst") {
		b := newBurstRows()
		for i := range runs {
			if err := burst(bin, filepath.Join(dir, fmt.Sprint("burst", i)), b); err != nil {
				return fmt.Errorf("burst, run %d: %w", i+1, err)
			}
		}
		rows = append(rows, b.all()...)
	}
	if o.want("postgres") && (o.only["postgres"] || os.Getenv("POLLRELAY_TEST_POSTGRES_URL") != "") {
		if os.Getenv("POLLRELAY_TEST_POSTGRES_URL") == "" {
			os.Setenv("POLLRELAY_TEST_POSTGRES_URL", "postgres://root@127.0.0.1:5432/test?sslmode=disable")
		}
		unchanged := &row{name: "PostgreSQL: diff, unchanged 100k listing, on the lease holder", unit: "items/s", target: 500_000, higher: true}
		changed := &row{name: "PostgreSQL: diff, 100k listing 1% changed, fenced commit", unit: "ms/poll", target: 1000}
		rate := &row{name: "PostgreSQL: durable signed deliveries, one member", unit: "/s", target: 2000, higher: true}
		if err := gotest("./poller/", "BenchmarkDiff(Unchanged|OnePercentChanged)Postgres$", "5x", runs, map[string]metric{
			"BenchmarkDiffUnchangedPostgres":         {unchanged, "items/s"},
			"BenchmarkDiffOnePercentChangedPostgres": {changed, "ms/poll"},
		}); err != nil {
			return err
		}
		if err := gotest("./notifier/", "BenchmarkDurableDeliveriesPostgres$", "20000x", runs, map[string]metric{
			"BenchmarkDurableDeliveriesPostgres": {rate, "deliveries/s"},
		}); err != nil {
			return err
		}
		rows = append(rows, unchanged, changed, rate)
	}
	if o.only["growth"] {
		if err := growth(); err != nil {
			return fmt.Errorf("growth: %w", err)
		}
	}
	if o.want("sources") {
		// Once: a run waits an interval for every first poll.
		many := newManyRows(o.sources)
		if err := manySources(bin, filepath.Join(dir, "many"), o.sources, o.interval, many); err != nil {
			return fmt.Errorf("%d sources: %w", o.sources, err)
		}
		rows = append(rows, many.all()...)
	}
	if len(rows) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "row\tmedian\ttarget\tresult\truns")
	short := false
	for _, r := range rows {
		if r.info != "" {
			fmt.Fprintf(tw, "%s\t%s %s\t—\t%s\t%d\n", r.name, num(r.median()), r.unit, r.info, len(r.runs))
			continue
		}
		op, res := "≤", "pass"
		switch {
		case r.higher:
			op = "≥"
		case r.strict:
			op = "<"
		}
		if !r.pass() {
			res, short = "short", true
		}
		fmt.Fprintf(tw, "%s\t%s %s\t%s %s %s\t%s\t%d\n", r.name, num(r.median()), r.unit, op, num(r.target), r.unit, res, len(r.runs))
	}
	tw.Flush()
	if short {
		os.Exit(1)
	}
	return nil
}

func num(v float64) string {
	switch {
	case v >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

// sidecar runs the binary once with one list source and one subscription:
// the time from exec to the upstream's first request, then RSS and CPU
// time while it waits for its next poll.
func sidecar(bin, dir string, idle time.Duration, rss, start, cpu *row) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("mkdir: %w", err)
	}
	firstPoll := make(chan time.Time, 1)
	listing := benchdata.Listing(100, 0, 100)
	up, err := serve(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		select {
		case firstPoll <- time.Now():
		default:
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(listing)
	}))
	if err != nil {
		return err
	}
	defer up.Close()
	recv, err := receiver(func() {})
	if err != nil {
		return err
	}
	defer recv.Close()
	port, err := freePort()
	if err != nil {
		return err
	}
	t0 := time.Now()
	cmd, err := startBinary(bin, dir, videosConfig(port, dir, up.Addr(), "", recv.Addr()))
	if err != nil {
		return err
	}
	defer stopBinary(cmd)
	// A source's first poll waits for its slot in the interval; the row
	// is the time to a poll asked for as soon as the API answers.
	if err := pollWhenReady(fmt.Sprintf("http://127.0.0.1:%d", port), "videos"); err != nil {
		return err
	}
	select {
	case t := <-firstPoll:
		start.runs = append(start.runs, float64(t.Sub(t0).Microseconds())/1000)
	case <-time.After(10 * time.Second):
		return errors.New("no poll within 10s of start")
	}
	// Let the baseline commit and the runtime settle before measuring idle.
	time.Sleep(2 * time.Second)
	pid := cmd.Process.Pid
	c0, err := cpuTicks(pid)
	if err != nil {
		return err
	}
	w0 := time.Now()
	time.Sleep(idle)
	c1, err := cpuTicks(pid)
	if err != nil {
		return err
	}
	// USER_HZ is 100 on Linux: a tick is 10 ms of CPU time.
	cpu.runs = append(cpu.runs, float64(c1-c0)*10/float64(time.Since(w0).Milliseconds())*100)
	kb, err := rssKiB(pid)
	if err != nil {
		return err
	}
	rss.runs = append(rss.runs, float64(kb)/1024)
	return nil
}

const benchToken = "bench-token-0123456789abcdef"

// videosConfig is the bench's config: the API on port, Badger in
// dir/data, one list source "videos" on upstream (paginated when
// pagination is set, as YAML) and one subscription to receiver.
func videosConfig(port int, dir, upstream, pagination, receiver string) string {
	if pagination != "" {
		pagination = "\n    pagination: " + pagination
	}
	return fmt.Sprintf(`listen: 127.0.0.1:%d
api_token: %s
storage: {path: %s}
log: {level: warn, format: json}
sources:
  - name: videos
    url: http://%s/v1/videos
    interval: 1h
    items: '.data[]'
    id: '.id'
    state: '.status'%s
    events:
      - type: 'video.status.{current}'
        on: changed
subscriptions:
  - name: app
    url: http://%s/webhooks
    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
`, port, benchToken, filepath.Join(dir, "data"), upstream, pagination, receiver)
}

// startBinary writes cfg into dir and starts bin on it; stopBinary ends it.
func startBinary(bin, dir, cfg string) (*exec.Cmd, error) {
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, fmt.Errorf("write config: %w", err)
	}
	cmd := exec.Command(bin, "run", "--config", path)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	return cmd, nil
}

// pollWhenReady waits for /readyz, then asks for a poll of source.
func pollWhenReady(base, source string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			return errors.New("not ready within 10s of start")
		}
		time.Sleep(2 * time.Millisecond)
	}
	req, err := http.NewRequest(http.MethodPost, base+"/v1/sources/"+source+"/poll", nil)
	if err != nil {
		return fmt.Errorf("poll request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+benchToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("poll now: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("poll now: status %d", resp.StatusCode)
	}
	return nil
}

// receiver is a webhook receiver answering 204 to every POST, calling
// each after it has read one.
func receiver(each func()) (*server, error) {
	return serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
		each()
	}))
}

// server is a loopback HTTP server.
type server struct {
	ln  net.Listener
	srv *http.Server
}

func serve(h http.Handler) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s := &server{ln: ln, srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}}
	go s.srv.Serve(ln)
	return s, nil
}

func (s *server) Addr() string { return s.ln.Addr().String() }
func (s *server) Close()       { s.srv.Shutdown(context.Background()) }

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// cpuTicks is utime+stime of pid in clock ticks (/proc/<pid>/stat fields
// 14 and 15, counted after the parenthesised command name).
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read stat: %w", err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	k, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("parse stat: %w", err)
	}
	return u + k, nil
}

// rssKiB is VmRSS from /proc/<pid>/status.
func rssKiB(pid int) (int64, error) { return statusKiB(pid, "VmRSS:") }

// metric names the row a benchmark's reported unit goes to.
type metric struct {
	row  *row
	unit string
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

// gotest runs go test benchmarks count times and adds each reported value
// to its row. A key ending in "#"s is another metric of the same benchmark.
func gotest(pkg, bench, benchtime string, count int, want map[string]metric) error {
	cmd := exec.Command("go", "test", pkg, "-run", "^$", "-bench", bench, "-benchtime", benchtime, "-count", strconv.Itoa(count))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go test %s -bench %s: %w\n%s", pkg, bench, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		f := strings.Fields(m[2])
		for i := 0; i+1 < len(f); i += 2 {
			for key, mt := range want {
				if strings.TrimRight(key, "#") != m[1] || f[i+1] != mt.unit {
					continue
				}
				v, err := strconv.ParseFloat(f[i], 64)
				if err != nil {
					return fmt.Errorf("%s: parse %q: %w", m[1], f[i], err)
				}
				mt.row.runs = append(mt.row.runs, v)
			}
		}
	}
	return nil
}
