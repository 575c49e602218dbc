package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/internal/harness"
	"github.com/pollrelay/pollrelay/internal/tmpfs"
	"github.com/pollrelay/pollrelay/signature"
	"github.com/pollrelay/pollrelay/store/badger"
)

// TestStoreFillsWhileRunning runs the real binary with its store on a
// 96 MiB tmpfs and fills the device while it works:
//
//   - below 32 MiB free (badger.ReserveSpace) nothing is written: a delivery
//     whose outcome can't be recorded is not sent again and again, and
//     polls are refused;
//   - below 64 MiB (badger.MinFreeSpace) polls are still refused, but stored
//     events are delivered;
//   - once the filler is gone, the transitions the upstream made meanwhile
//     are found and delivered.
//
// Throughout it must stay up, say so in its log and metrics, and in the end
// every stateChange must have reached the receiver under one webhook-id,
// none invented. Mounting needs root; elsewhere the test is skipped.
func TestStoreFillsWhileRunning(t *testing.T) {
	bin := binary(t)
	mnt := tmpfs.Mount(t, "96m") // unmounted after the process is killed
	data := filepath.Join(mnt, "data")

	items := map[string]string{}
	for i := range 12 {
		items[fmt.Sprintf("t%02d", i)] = "s0"
	}
	up := harness.NewUpstream(t, items)
	secret := signature.NewSecret()
	rc := harness.NewReceiver(t, secret)
	var refusing atomic.Bool
	rc.Fail = func(harness.Delivery, int) int {
		if refusing.Load() {
			return http.StatusServiceUnavailable
		}
		return 0
	}
	addr := harness.FreeAddr(t)
	cfg := writeConfig(t, fmt.Sprintf(`
listen: %s
storage: {path: %q}
log: {level: info, format: text}
sources:
  - name: tasks
    url: %s/v1/tasks
    interval: 1s
    timeout: 900ms
    items: '.data[]'
subscriptions:
  - name: app
    url: %s/hook
    secret: %s
    retry: {schedule: [%s]}
`, addr, data, up.URL, rc.URL, secret, strings.TrimSuffix(strings.Repeat("200ms, ", 60), ", ")))
	p := startProcess(t, bin, "run", "--config", cfg)
	logs := func() string { b, _ := os.ReadFile(p.log.Name()); return string(b) }
	tl := &fillTally{rc: rc, attempts: map[stateChange]int{}, ok: map[stateChange]map[string]int{}}

	// polls waits for n more requests to the upstream: n polls, each of
	// which has seen the upstream as it is now.
	polls := func(n int) {
		t.Helper()
		from := up.Requests()
		harness.WaitFor(t, 15*time.Second, func() bool { return up.Requests() >= from+n })
	}
	move := func(ids ...string) []stateChange {
		var out []stateChange
		up.Set(func(m map[string]string) {
			for _, id := range ids {
				next := "s" + strconv.Itoa(int(m[id][1]-'0')+1)
				out = append(out, stateChange{id, m[id], next})
				m[id] = next
			}
		})
		return out
	}
	metric := func(name string) float64 {
		t.Helper()
		v, ok := harness.MetricValue(harness.Metrics(addr), name)
		if !ok {
			t.Fatalf("metric %s not exposed:\n%s", name, harness.Metrics(addr))
		}
		return v
	}
	alive := func(when string) {
		t.Helper()
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			t.Fatalf("%s: pollrelay is not answering: %v", when, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: /healthz answered %d", when, resp.StatusCode)
		}
	}
	const freeGauge = "pollrelay_store_free_bytes"
	const refusedNew = `pollrelay_store_writes_refused_total{kind="new_data"}`
	const refusedDelivery = `pollrelay_store_writes_refused_total{kind="delivery"}`

	harness.WaitFor(t, 20*time.Second, func() bool { return up.Requests() >= 2 }) // the baseline is stored
	start := time.Now()

	// Deliveries flow.
	a := move("t00", "t01", "t02")
	harness.WaitFor(t, 15*time.Second, func() bool { tl.pump(); return tl.delivered(a) })

	// Three events are stored, and their receiver is failing them.
	refusing.Store(true)
	b := move("t03", "t04", "t05")
	harness.WaitFor(t, 15*time.Second, func() bool { tl.pump(); return tl.tried(b) })

	// The disk fills past the reserve: pollrelay writes nothing at all.
	removeLow := tmpfs.Fill(t, mnt, 48<<20)
	removeFull := tmpfs.Fill(t, mnt, 16<<20)
	if free := metric(freeGauge); free >= badger.ReserveSpace {
		t.Fatalf("filled to %.1f MiB free, want below 32", free/(1<<20))
	}
	tl.pump()
	before := tl.attemptsOf(b)
	c1 := move("t06", "t07")
	polls(3)
	tl.pump()
	alive("disk full")
	// Each of b's deliveries may have been sent once more (the attempt out
	// when the disk filled, or the next retry); with its outcome refused
	// it must not be sent again until it can be recorded: without that,
	// a 200 ms schedule gives 10 attempts each in these 2 s, and a
	// notifier that forgets the outcome sends them in a tight loop.
	for i, tr := range b {
		if n := tl.attempts[tr] - before[i]; n > 1 {
			t.Errorf("%v attempted %d times while no outcome could be recorded, want at most once", tr, n)
		}
	}
	if got := tl.deliveredOf(c1); got > 0 {
		t.Errorf("%d transitions delivered from polls that could not be stored", got)
	}
	for _, want := range []string{
		`level=ERROR msg="store: disk full; pollrelay writes nothing, deliveries included, until space is freed" path=` + data + " free_bytes=",
		`level=WARN msg="poll failed" source=tasks outcome=store_error error="write tasks: commit: store ` + data + `: less than 64 MiB free on its device; new polls are not stored (stored events are still delivered) until space is freed: no space left on device"`,
		`msg="recording delivery outcomes failed; they are kept and recorded when the store takes writes again`,
	} {
		if !strings.Contains(logs(), want) {
			t.Errorf("the log does not say %s", want)
		}
	}
	if metric(refusedNew) < 1 || metric(refusedDelivery) < 1 {
		t.Errorf("refusals not counted: new_data %v, delivery %v", metric(refusedNew), metric(refusedDelivery))
	}

	// Some space back, still under 64 MiB: stored events are delivered,
	// polls still refused. Nothing reads the metrics here: the store
	// notices the space by itself.
	removeFull()
	refusing.Store(false)
	harness.WaitFor(t, 15*time.Second, func() bool { tl.pump(); return tl.delivered(b) })
	c2 := move("t08", "t09", "t10")
	polls(2)
	tl.pump()
	alive("disk nearly full")
	if got := tl.deliveredOf(c1) + tl.deliveredOf(c2); got > 0 {
		t.Errorf("%d transitions delivered from polls that could not be stored", got)
	}
	if free := metric(freeGauge); free < badger.ReserveSpace || free >= badger.MinFreeSpace {
		t.Errorf("%s = %.1f MiB, want between 32 and 64", freeGauge, free/(1<<20))
	}
	if !strings.Contains(logs(), `level=WARN msg="store: disk nearly full; new polls are not stored and are retried until space is freed, stored events are still delivered" path=`+data+" free_bytes=") {
		t.Errorf("no warning naming the path and free bytes when deliveries resumed")
	}
	refusedWhileFull := metric(refusedNew)

	// The filler is gone: what changed meanwhile is found and delivered.
	removeLow()
	freed := time.Now()
	harness.WaitFor(t, 15*time.Second, func() bool { tl.pump(); return tl.delivered(c1) && tl.delivered(c2) })
	resumed := time.Since(freed)
	if !strings.Contains(logs(), `msg="store: free space is back; writing again" path=`+data) {
		t.Errorf("the recovery is not logged")
	}
	// Two more polls and a quiet receiver: nothing else may arrive.
	polls(2)
	for quiet := false; !quiet; {
		select {
		case d := <-rc.Got:
			tl.record(d)
		case <-time.After(500 * time.Millisecond):
			quiet = true
		}
	}
	alive("after the disk was freed")
	if s := logs(); strings.Contains(s, "SIGBUS") || strings.Contains(s, "panic") {
		t.Errorf("pollrelay crashed:\n%s", s)
	}

	expected := map[stateChange]bool{}
	for _, tr := range joinChanges(a, b, c1, c2) {
		expected[tr] = true
	}
	delivered, dups := 0, 0
	for tr, ids := range tl.ok {
		if !expected[tr] {
			t.Errorf("invented stateChange %v (webhook-ids %v)", tr, ids)
		}
		if len(ids) > 1 {
			t.Errorf("stateChange %v delivered under %d webhook-ids: %v", tr, len(ids), ids)
		}
		for _, n := range ids {
			delivered += n
			dups += n - 1
		}
	}
	lost := 0
	for tr := range expected {
		if len(tl.ok[tr]) == 0 {
			lost++
			t.Errorf("lost stateChange %v", tr)
		}
	}
	t.Logf("expected=%d (during the full disk: %d) delivered=%d (2xx) duplicates=%d (same webhook-id) lost=%d; polls refused=%v; delivered %s after the space was freed; %s in all",
		len(expected), len(c1)+len(c2), delivered, dups, lost, refusedWhileFull, resumed.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

type stateChange struct{ id, from, to string }

// fillTally is what the receiver got, by stateChange.
type fillTally struct {
	rc       *harness.Receiver
	attempts map[stateChange]int            // requests, whatever the answer
	ok       map[stateChange]map[string]int // 2xx, by webhook-id
}

// pump records every request the receiver has got so far.
func (tl *fillTally) pump() {
	for {
		select {
		case d := <-tl.rc.Got:
			tl.record(d)
		default:
			return
		}
	}
}

func (tl *fillTally) record(d harness.Delivery) {
	tr := stateChange{d.Env.Data.ID, harness.Text(d.Env.Data.Previous), harness.Text(d.Env.Data.Current)}
	tl.attempts[tr]++
	if d.Status < 300 {
		if tl.ok[tr] == nil {
			tl.ok[tr] = map[string]int{}
		}
		tl.ok[tr][d.ID]++
	}
}

func (tl *fillTally) tried(trs []stateChange) bool {
	for _, tr := range trs {
		if tl.attempts[tr] == 0 {
			return false
		}
	}
	return true
}

func (tl *fillTally) delivered(trs []stateChange) bool { return tl.deliveredOf(trs) == len(trs) }

func (tl *fillTally) deliveredOf(trs []stateChange) int {
	n := 0
	for _, tr := range trs {
		if len(tl.ok[tr]) > 0 {
			n++
		}
	}
	return n
}

func (tl *fillTally) attemptsOf(trs []stateChange) []int {
	out := make([]int, len(trs))
	for i, tr := range trs {
		out[i] = tl.attempts[tr]
	}
	return out
}

func joinChanges[T any](parts ...[]T) []T {
	var out []T
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// TestStoreFullAtShutdown stops the real binary (SIGTERM) while its device
// is full to the last byte. Badger's Close would flush the memtable through
// a mapped file and die of SIGBUS; pollrelay must instead exit 1 saying
// why, and after the space is freed a restart must recover the store from
// Badger's log: what was delivered is not delivered again, the change made
// while full is delivered once.
func TestStoreFullAtShutdown(t *testing.T) {
	bin := binary(t)
	mnt := tmpfs.Mount(t, "96m")
	up := harness.NewUpstream(t, map[string]string{"a": "queued", "b": "queued"})
	secret := signature.NewSecret()
	rc := harness.NewReceiver(t, secret)
	addr := harness.FreeAddr(t)
	cfg := writeConfig(t, strings.Replace(fmt.Sprintf(storeConfig, filepath.Join(mnt, "data"), up.URL, rc.URL, secret),
		"listen: 127.0.0.1:0", "listen: "+addr, 1))

	logPath := filepath.Join(t.TempDir(), "pollrelay.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "run", "--config", cfg)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("first run's output:\n%s", tail(out, 8<<10))
		}
	}()

	harness.WaitFor(t, 20*time.Second, func() bool { return up.Requests() >= 2 })
	up.Set(func(m map[string]string) { m["a"] = "ready" })
	if d := rc.Next(t); d.Env.Data.ID != "a" {
		t.Fatalf("delivered %s, want a", d.Env.Data.ID)
	}
	// Recorded as delivered, so that it is not sent again after the
	// restart (which would be a repeat with the same webhook-id: allowed,
	// but not what this test is about).
	harness.WaitFor(t, 15*time.Second, func() bool {
		v, _ := harness.MetricValue(harness.Metrics(addr), `pollrelay_deliveries_total{outcome="success",subscription="app"}`)
		return v == 1
	})

	// Every byte taken, then a change pollrelay can't store.
	filler, err := os.Create(filepath.Join(mnt, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for chunk := make([]byte, 1<<20); ; {
		if _, err := filler.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	filler.Close()
	up.Set(func(m map[string]string) { m["b"] = "ready" })
	from := up.Requests()
	harness.WaitFor(t, 15*time.Second, func() bool { return up.Requests() >= from+2 })

	cmd.Process.Signal(syscall.SIGTERM)
	var exitErr error
	select {
	case exitErr = <-exited:
		exited <- exitErr // for the deferred Kill
	case <-time.After(15 * time.Second):
		t.Fatal("no exit within 15s of SIGTERM")
	}
	out, _ := os.ReadFile(logPath)
	var ee *exec.ExitError
	if !errors.As(exitErr, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want status 1 (2 is a Go crash: SIGBUS)", exitErr)
	}
	if !strings.Contains(string(out), `msg="store: disk full at shutdown; the store is not flushed, its log is replayed at the next start"`) ||
		strings.Contains(string(out), "SIGBUS") {
		t.Fatalf("the shutdown does not say why it left the store unflushed:\n%s", out)
	}

	// Space back: the store recovers from its log.
	if err := os.Remove(filepath.Join(mnt, "filler")); err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, bin, "run", "--config", cfg)
	defer p.kill()
	d := rc.Next(t)
	if d.Env.Data.ID != "b" || harness.Text(d.Env.Data.Previous) != "queued" || harness.Text(d.Env.Data.Current) != "ready" {
		t.Fatalf("after the restart delivered %s %s→%s, want b queued→ready", d.Env.Data.ID, harness.Text(d.Env.Data.Previous), harness.Text(d.Env.Data.Current))
	}
	from = up.Requests()
	harness.WaitFor(t, 15*time.Second, func() bool { return up.Requests() >= from+2 })
	select {
	case extra := <-rc.Got:
		t.Errorf("after the restart also delivered %s %s→%s", extra.Env.Data.ID, harness.Text(extra.Env.Data.Previous), harness.Text(extra.Env.Data.Current))
	default:
	}
}
