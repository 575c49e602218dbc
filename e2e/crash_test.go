package e2e

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/internal/harness"
	"github.com/pollrelay/pollrelay/signature"
)

// TestCrashLosesNothing SIGKILLs the real binary again and again while the
// upstream changes. The upstream only moves on once every transition of a
// step has been received, so the expected set is exact: each must arrive,
// nothing else may, and repeats must carry the original webhook-id.
func TestCrashLosesNothing(t *testing.T) {
	crashTorture(t, torture{items: 30, steps: 25, perStep: 6, failPct: 10, minKills: 10})
}

// TestCrashTorture is the same at a larger scale: 500 items, a receiver
// failing a fifth of its requests, and at least 20 SIGKILLs.
func TestCrashTorture(t *testing.T) {
	crashTorture(t, torture{items: 500, steps: 40, perStep: 50, failPct: 20, minKills: 20})
}

type torture struct {
	items, steps, perStep int
	failPct               int // share of webhook requests the receiver fails
	minKills              int
}

func crashTorture(t *testing.T, tc torture) {
	bin := binary(t)
	nItems, steps, perStep := tc.items, tc.steps, tc.perStep
	items := map[string]string{}
	for i := range nItems {
		items[fmt.Sprintf("t%03d", i)] = "s0"
	}
	up := harness.NewUpstream(t, items)
	secret := signature.NewSecret()
	rc := harness.NewReceiver(t, secret)
	rng := rand.New(rand.NewPCG(1, 2))   // the receiver's failures, under rngMu
	mover := rand.New(rand.NewPCG(5, 6)) // which items move, in the test goroutine only
	var rngMu sync.Mutex
	rc.Fail = func(harness.Delivery, int) int {
		rngMu.Lock()
		defer rngMu.Unlock()
		if rng.IntN(100) < tc.failPct {
			return http.StatusServiceUnavailable
		}
		return 0
	}
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	cfg := fmt.Sprintf(`
listen: 127.0.0.1:0
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
    timeout: 2s
    retry: {schedule: [50ms, 100ms, 200ms, 400ms, 800ms, 1s, 1s, 1s, 1s, 1s]}
`, filepath.Join(t.TempDir(), "data"), up.URL, rc.URL, secret)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, bin, "run", "--config", cfgPath)
	// A second request means the first poll, the baseline, was committed:
	// polls of one source never overlap. Changes before that would be
	// part of the baseline and fire nothing.
	harness.WaitFor(t, 20*time.Second, func() bool { return up.Requests() >= 2 })

	// The killer SIGKILLs and restarts pollrelay at random instants.
	stopKiller := make(chan struct{})
	killerDone := make(chan int, 1)
	var stopOnce sync.Once
	stop := func() int {
		stopOnce.Do(func() { close(stopKiller) })
		return <-killerDone
	}
	t.Cleanup(func() { stop() })
	go func() {
		kills := 0
		r := rand.New(rand.NewPCG(3, 4))
		for {
			select {
			case <-stopKiller:
				killerDone <- kills
				return
			case <-time.After(time.Duration(100+r.IntN(500)) * time.Millisecond):
			}
			p.kill()
			kills++
			p.start()
		}
	}()

	type transition struct{ id, from, to string }
	expected := map[transition]bool{}
	received := map[transition]map[string]int{} // → webhook-ids seen, with counts
	total := 0
	record := func(d harness.Delivery) {
		if d.Status >= 300 {
			return
		}
		total++
		tr := transition{d.Env.Data.ID, harness.Text(d.Env.Data.Previous), harness.Text(d.Env.Data.Current)}
		if received[tr] == nil {
			received[tr] = map[string]int{}
		}
		received[tr][d.ID]++
	}
	for step := 1; step <= steps; step++ {
		var want []transition
		up.Set(func(m map[string]string) {
			for _, i := range mover.Perm(nItems)[:perStep] {
				id := fmt.Sprintf("t%03d", i)
				var n int
				fmt.Sscanf(m[id], "s%d", &n)
				next := fmt.Sprintf("s%d", n+1)
				want = append(want, transition{id, m[id], next})
				m[id] = next
			}
		})
		for _, tr := range want {
			expected[tr] = true
		}
		deadline := time.After(60 * time.Second)
		for !allReceived(want, received) {
			select {
			case d := <-rc.Got:
				record(d)
			case <-deadline:
				t.Fatalf("step %d: transitions not delivered within 60s: %v", step, missing(want, received))
			}
		}
	}
	kills := stop()
	killerDone <- kills
	// Drain what is still in flight so late duplicates are checked too.
	for quiet := false; !quiet; {
		select {
		case d := <-rc.Got:
			record(d)
		case <-time.After(500 * time.Millisecond):
			quiet = true
		}
	}

	dups := 0
	for tr, ids := range received {
		if !expected[tr] {
			t.Errorf("invented transition %v (webhook-ids %v)", tr, ids)
		}
		if len(ids) > 1 {
			t.Errorf("transition %v delivered under %d webhook-ids: %v", tr, len(ids), ids)
		}
		for _, n := range ids {
			dups += n - 1
		}
	}
	t.Logf("kills=%d expected=%d delivered=%d (2xx) duplicates=%d (same webhook-id) invented=0 lost=0", kills, len(expected), total, dups)
	if kills < tc.minKills {
		t.Errorf("only %d kills; the test should crash pollrelay at least %d times", kills, tc.minKills)
	}
}

func allReceived[T comparable](want []T, got map[T]map[string]int) bool {
	for _, w := range want {
		if len(got[w]) == 0 {
			return false
		}
	}
	return true
}

func missing[T comparable](want []T, got map[T]map[string]int) []T {
	var out []T
	for _, w := range want {
		if len(got[w]) == 0 {
			out = append(out, w)
		}
	}
	return out
}
