package e2e

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/pollrelay/pollrelay/internal/harness"
	"github.com/pollrelay/pollrelay/signature"
)

// outageUpstream lists a fixed set of tasks, all "queued" until move sends
// the next ones to "ready". Each task moves once, so every move is exactly
// one transition however polls fall: the expected set is exact.
type outageUpstream struct {
	mu    sync.Mutex
	ids   []string
	moved int
	polls int
	cache []byte // the listing, rebuilt only after a move
}

func (u *outageUpstream) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	u.mu.Lock()
	u.polls++
	if u.cache == nil {
		var b strings.Builder
		b.WriteString(`{"data":[`)
		for i, id := range u.ids {
			if i > 0 {
				b.WriteByte(',')
			}
			status := "queued"
			if i < u.moved {
				status = "ready"
			}
			fmt.Fprintf(&b, `{"id":%q,"status":%q}`, id, status)
		}
		b.WriteString("]}")
		u.cache = []byte(b.String())
	}
	body := u.cache
	u.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

// move sends the next n tasks to "ready" and returns how many have moved.
func (u *outageUpstream) move(n int) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.moved = min(u.moved+n, len(u.ids))
	u.cache = nil
	return u.moved
}

func (u *outageUpstream) pollCount() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.polls
}

// outageSink is the receiver. It can refuse connections (its listener is
// closed, as when its process is gone) or answer 503 (a proxy in front of
// it is up), and it verifies every request with the official Standard
// Webhooks library.
type outageSink struct {
	wh   *standardwebhooks.Webhook
	addr string

	mu       sync.Mutex
	srv      *http.Server
	failing  bool           // answering 503
	ok       map[string]int // 2xx by webhook-id
	item     map[string]string
	answered int // 503s
	bad      int // requests that failed verification
}

func newOutageSink(tb testing.TB, secret string) *outageSink {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		tb.Fatal(err)
	}
	s := &outageSink{wh: wh, ok: map[string]int{}, item: map[string]string{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	tb.Cleanup(func() { s.refuse() })
	return s
}

func (s *outageSink) serve(ln net.Listener) {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go srv.Serve(ln)
}

// refuse closes the listener and every connection: dials are refused.
func (s *outageSink) refuse() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// listen serves again on the same address, answering 503 or 2xx.
func (s *outageSink) listen(tb testing.TB, failing bool) {
	s.mu.Lock()
	s.failing = failing
	up := s.srv != nil
	s.mu.Unlock()
	if up {
		return
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		tb.Fatalf("listen again on %s: %v", s.addr, err)
	}
	s.serve(ln)
}

func (s *outageSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing {
		s.answered++
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if err := s.wh.Verify(body, r.Header); err != nil {
		s.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var env struct {
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	json.Unmarshal(body, &env)
	id := r.Header.Get("webhook-id")
	s.ok[id]++
	s.item[id] = env.Data.ID
	w.WriteHeader(http.StatusNoContent)
}

// delivered returns the tasks that got a 2xx, with their webhook-ids, and
// how many 2xx repeated a webhook-id.
func (s *outageSink) delivered() (items map[string][]string, repeats int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	items = map[string][]string{}
	for id, n := range s.ok {
		items[s.item[id]] = append(items[s.item[id]], id)
		repeats += n - 1
	}
	return items, repeats
}

// procSample is the running binary at one moment.
type procSample struct {
	label      string
	at         time.Duration // since the outage began (negative before)
	rss, hwm   float64       // MiB: resident now, and its peak so far
	anon, file float64       // MiB: of rss, anonymous (Go heap, stacks) and mapped files (Badger's tables and logs)
	heap       float64       // MiB: go_memstats_heap_alloc_bytes, live and garbage
	goal       float64       // MiB: the GC's heap goal, twice the heap live after the last GC (GOGC 100) unless the memory limit caps it
	held       float64       // MiB: what the Go runtime holds from the OS and has not returned (sys − heap released)
	goroutines float64
	retrying   float64 // deliveries waiting for a retry
	attempts   float64 // attempts so far, every outcome
}

// sampleProc reads RSS from /proc and the rest from /metrics.
func sampleProc(pid int, addr, label string, since time.Time) procSample {
	s := procSample{label: label, at: time.Since(since).Round(time.Second)}
	if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			f := strings.Fields(l)
			if len(f) < 2 {
				continue
			}
			kb, _ := strconv.ParseFloat(f[1], 64)
			switch f[0] {
			case "VmRSS:":
				s.rss = kb / 1024
			case "VmHWM:":
				s.hwm = kb / 1024
			case "RssAnon:":
				s.anon = kb / 1024
			case "RssFile:":
				s.file = kb / 1024
			}
		}
	}
	var sys, released float64
	sc := bufio.NewScanner(strings.NewReader(harness.Metrics(addr)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := sc.Text()
		i := strings.LastIndexByte(l, ' ')
		if i < 0 || strings.HasPrefix(l, "#") {
			continue
		}
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			continue
		}
		name := l[:i]
		switch {
		case name == "go_goroutines":
			s.goroutines = v
		case name == "go_memstats_heap_alloc_bytes":
			s.heap = v / (1 << 20)
		case name == "go_memstats_next_gc_bytes":
			s.goal = v / (1 << 20)
		case name == "go_memstats_sys_bytes":
			sys = v / (1 << 20)
		case name == "go_memstats_heap_released_bytes":
			released = v / (1 << 20)
		case strings.HasPrefix(name, "pollrelay_delivery_queue{") && strings.Contains(name, `state="retrying"`):
			s.retrying += v
		case strings.HasPrefix(name, "pollrelay_deliveries_total{"):
			s.attempts += v
		}
	}
	s.held = sys - released
	return s
}

// outageFor is how long BenchmarkReceiverOutage keeps the receiver down.
var outageFor = flag.Duration("outage", 3*time.Minute, "how long BenchmarkReceiverOutage keeps the receiver down")

// BenchmarkReceiverOutage runs the real binary while its receiver is down
// for -outage (3 minutes unless set): the first half refusing connections
// (its listener closed), the second half answering 503. A listing source
// polled every second has 20 tasks move per second before, during and for
// 30 s after the outage. It reports the binary's RSS (VmRSS, split into
// anonymous and file-backed, and the peak VmHWM), Go heap and goroutines
// before, in the middle and at the end of the outage and after the backlog
// is delivered; then delivered and lost transitions, and the attempts
// each event got against what its retry schedule allows (read back through
// /v1). It is one run of a few minutes whatever b.N, so the framework,
// finding one run longer than -benchtime, runs it once:
//
//	go test -run '^$' -bench ReceiverOutage -v ./e2e -args -outage 3m
func BenchmarkReceiverOutage(b *testing.B) {
	if testing.Short() {
		b.Skip("builds and runs the real binary")
	}
	const (
		perSecond = 20
		warmUp    = 20 * time.Second
		after     = 30 * time.Second
	)
	outage := *outageFor

	// A compressed schedule, so minutes of outage make many retries: short
	// steps, then every 30 s, with enough entries that nothing is
	// dead-lettered before the receiver is back (an attempt at least
	// every 24 s with the jitter).
	schedule := []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 20 * time.Second}
	for range int(outage/(24*time.Second)) + 2 {
		schedule = append(schedule, 30*time.Second)
	}
	if len(schedule) > 100 {
		b.Fatalf("a %s outage needs %d retries; a schedule has at most 100", outage, len(schedule))
	}
	var steps []string
	for _, d := range schedule {
		steps = append(steps, d.String())
	}

	bin := binary(b)
	total := int((warmUp + outage + after) / time.Second * perSecond)
	up := &outageUpstream{}
	for i := range total {
		up.ids = append(up.ids, fmt.Sprintf("t%06d", i))
	}
	upSrv := httptest.NewServer(up)
	b.Cleanup(upSrv.Close)
	upURL := upSrv.URL
	secret := signature.NewSecret()
	sink := newOutageSink(b, secret)
	addr := harness.FreeAddr(b)
	const token = "outage-bench-token"
	dir := b.TempDir()
	cfgPath := filepath.Join(dir, "pollrelay.yaml")
	cfg := fmt.Sprintf(`
listen: %s
api_token: %s
storage: {path: %q}
log: {level: error, format: text}
sources:
  - {name: tasks, url: "%s/v1/tasks", interval: 1s, timeout: 900ms, items: '.data[]'}
subscriptions:
  - name: app
    url: http://%s/hook
    secret: %s
    timeout: 2s
    retry: {schedule: [%s]}
`, addr, token, filepath.Join(dir, "data"), upURL, sink.addr, secret, strings.Join(steps, ", "))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	logPath := filepath.Join(dir, "pollrelay.log")
	logf, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		logf.Close()
		if b.Failed() {
			if out, err := os.ReadFile(logPath); err == nil {
				b.Logf("pollrelay output (last 8 KiB):\n%s", tail(out, 8<<10))
			}
		}
	})
	pid := cmd.Process.Pid

	// The second poll means the baseline (the first) is committed: moves
	// before it would be part of the baseline and fire nothing.
	harness.WaitFor(b, 30*time.Second, func() bool { return up.pollCount() >= 2 })

	var samples []procSample
	var outageStart time.Time
	sample := func(label string) {
		s := sampleProc(pid, addr, label, outageStart)
		samples = append(samples, s)
		b.Logf("%-13s t=%-6s RSS %5.1f MiB (anon %5.1f, files %5.1f; peak %5.1f)  Go holds %5.1f MiB  heap %5.1f MiB (GC goal %5.1f)  goroutines %3.0f  retrying %4.0f  attempts %5.0f",
			s.label, s.at, s.rss, s.anon, s.file, s.hwm, s.held, s.heap, s.goal, s.goroutines, s.retrying, s.attempts)
	}

	// One move of perSecond tasks a second, on the second, through every
	// phase; phase changes happen between moves.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	moveFor := func(d time.Duration) {
		for range d / time.Second {
			up.move(perSecond)
			<-tick.C
		}
	}
	moveFor(warmUp)
	outageStart = time.Now()
	sample("start")
	b.ResetTimer()

	sink.refuse()
	half := outage / 2
	for done := time.Duration(0); done < half; {
		step := min(30*time.Second, half-done)
		moveFor(step)
		done += step
		if done < half {
			sample("refusing")
		}
	}
	sample("mid")
	sink.listen(b, true)
	for done := half; done < outage; {
		step := min(30*time.Second, outage-done)
		moveFor(step)
		done += step
		if done < outage {
			sample("503")
		}
	}
	outageEnd := time.Now()
	sample("end")
	sink.listen(b, false)
	moveFor(after)
	moved := up.move(0)

	// Every retry is due within 1.2 × the longest step; polls lag a
	// second or two behind the last move.
	harness.WaitFor(b, schedule[len(schedule)-1]*12/10+time.Minute, func() bool {
		items, _ := sink.delivered()
		return len(items) >= moved
	})
	b.StopTimer()
	recovered := time.Since(outageEnd)
	sample("all delivered")
	// Settled: the backlog's garbage collected, idle connections kept.
	time.Sleep(30 * time.Second)
	sample("after +30s")

	items, repeats := sink.delivered()
	lost, invented := 0, 0
	for _, id := range up.ids[:moved] {
		if len(items[id]) == 0 {
			lost++
		}
	}
	for id, evs := range items {
		if id < up.ids[0] || id > up.ids[moved-1] {
			invented++
		}
		if len(evs) > 1 {
			b.Errorf("task %s delivered under %d webhook-ids: %v", id, len(evs), evs)
		}
	}
	sink.mu.Lock()
	bad, answered := sink.bad, sink.answered
	sink.mu.Unlock()
	if lost+invented+bad > 0 {
		b.Errorf("lost %d, invented %d, %d requests failed signature verification", lost, invented, bad)
	}

	// Attempts against the schedule, read back from the attempt log.
	// Early (before 80% of the step) would be a hot loop and fails the
	// benchmark; late (past 120% and a second of slack) is the machine
	// being slow, and only reported.
	var attempts, failed, allowed, early, late, refused, unavailable int
	client := &http.Client{Timeout: 10 * time.Second}
	for _, evs := range items {
		for _, id := range evs {
			as, err := fetchAttempts(client, addr, token, id)
			if err != nil {
				b.Fatal(err)
			}
			attempts += len(as)
			if len(as) == 0 {
				continue
			}
			for j, a := range as {
				if j < len(as)-1 {
					failed++
					switch {
					case a.Outcome == "connection_error" && strings.Contains(a.Error, "connection refused"):
						refused++
					case a.Status == http.StatusServiceUnavailable:
						unavailable++
					}
				}
				if j == 0 {
					continue
				}
				gap, step := a.At.Sub(as[j-1].At), schedule[j-1]
				switch {
				case gap < step*8/10-10*time.Millisecond:
					early++
					if early <= 5 {
						b.Errorf("event %s: attempt %d came %s after attempt %d; the schedule says %s ±20%%", id, j+1, gap, j, step)
					}
				case gap > step*12/10+time.Second:
					late++
				}
			}
			// How many attempts the schedule allows between the event's
			// first attempt and the end of the outage, every wait 20%
			// short.
			first := as[0].At
			if first.Before(outageEnd) && !first.Before(outageStart) {
				var sum time.Duration
				for k := 0; k <= len(schedule) && !first.Add(sum*8/10).After(outageEnd); k++ {
					allowed++
					if k < len(schedule) {
						sum += schedule[k]
					}
				}
			}
		}
	}
	b.Logf("moved %d tasks: delivered %d (2xx), repeats %d (same webhook-id), lost %d, invented %d; all delivered %s after the receiver came back",
		moved, len(items), repeats, lost, invented, recovered.Round(time.Second))
	b.Logf("attempts %d: failed %d (connection refused %d, 503 %d; the receiver answered %d 503s); the schedule allows at most %d failed attempts during the outage; early %d, late %d",
		attempts, failed, refused, unavailable, answered, allowed, early, late)

	find := func(label string) procSample {
		for _, s := range samples {
			if s.label == label {
				return s
			}
		}
		return procSample{}
	}
	for _, m := range []struct {
		label, unit string
	}{{"start", "start"}, {"mid", "mid"}, {"end", "end"}, {"after +30s", "after"}} {
		s := find(m.label)
		b.ReportMetric(s.rss, "rss-"+m.unit+"-MiB")
		b.ReportMetric(s.anon, "rss-anon-"+m.unit+"-MiB")
		b.ReportMetric(s.goroutines, "goroutines-"+m.unit)
	}
	b.ReportMetric(samples[len(samples)-1].hwm, "rss-peak-MiB")
	b.ReportMetric(float64(len(items)), "delivered")
	b.ReportMetric(float64(lost), "lost")
	b.ReportMetric(float64(failed), "failed-attempts")
	b.ReportMetric(float64(allowed), "allowed-failed-attempts")
	b.ReportMetric(float64(early), "early-retries")
	b.ReportMetric(0, "ns/op") // per-op time means nothing here
}

// attempt is one entry of GET /v1/events/{id}/attempts.
type attempt struct {
	At      time.Time `json:"at"`
	Status  int       `json:"status"`
	Outcome string    `json:"outcome"`
	Error   string    `json:"error"`
}

func fetchAttempts(c *http.Client, addr, token, id string) ([]attempt, error) {
	req, err := http.NewRequest("GET", "http://"+addr+"/v1/events/"+id+"/attempts", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("attempts of %s: %s: %s", id, resp.Status, b)
	}
	var page struct {
		Data []attempt `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return nil, fmt.Errorf("attempts of %s: %w", id, err)
	}
	return page.Data, nil
}
