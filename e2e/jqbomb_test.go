package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/internal/harness"
	"github.com/pollrelay/pollrelay/signature"
)

// rssOf reads a process's resident set size from /proc.
func rssOf(pid int) (int64, bool) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

// rssPeak samples a process's RSS until stop is called, which returns the
// largest value seen.
func rssPeak(pid int) (stop func() int64) {
	var mu sync.Mutex
	var peak int64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if rss, ok := rssOf(pid); ok {
					mu.Lock()
					peak = max(peak, rss)
					mu.Unlock()
				}
			}
		}
	}()
	return func() int64 {
		close(done)
		<-finished
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// bombToken is the api_token the bomb test asks /v1 with.
const bombToken = "jqbomb-test-token-4e5f6a7b8c"

const bombConfig = `
listen: %s
api_token: %s
storage: {path: %q}
log: {level: info, format: text}
delivery: {allow_private_networks: true}
sources:
  - name: tasks
    url: %s/v1/tasks
    interval: 1h
    items: '.data[]'
    events:
      - {type: 'task.{current}', on: changed}
  - name: spin
    url: %s/v1/tasks
    interval: 1h
    items: 'def f: f; f'
subscriptions:
  - name: app
    url: %s/hook
    secret: %s
    retry: {schedule: [100ms]}
`

// maxBombRSS is a safety bound, not a figure: the process idles near
// 30 MiB and may grow by the heap bound (128 MiB), twice over with the
// garbage collector's headroom, while a bomb runs; on a loaded machine the
// watchdog's 2 ms look comes late and a bomb gets further (403 MiB seen
// beside the rest of the suite under -race). Unbounded, the same bombs
// pass several GiB within seconds.
const maxBombRSS = 1 << 30

// TestJqBombsInTheRealBinary: hostile jq in a config source and in API
// subscriptions fails only its own poll or delivery. The process stays up
// with its memory bounded, other sources and subscriptions keep flowing,
// POST /v1/sources/NAME/poll answers, and a restart finds the bomb's
// delivery dead instead of due again.
func TestJqBombsInTheRealBinary(t *testing.T) {
	bin := binary(t)
	up := harness.NewUpstream(t, map[string]string{"a": "queued"})
	secret := signature.NewSecret()
	rc := harness.NewReceiver(t, secret)
	other := harness.NewReceiver(t, secret)
	bombed := harness.NewReceiver(t, secret)
	addr := harness.FreeAddr(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "pollrelay.yaml")
	cfg := fmt.Sprintf(bombConfig, addr, bombToken, filepath.Join(dir, "data"), up.URL, up.URL, rc.URL, secret)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, bin, "run", "--config", path)
	c := harness.APIClient{T: t, Base: "http://" + addr, Token: bombToken}
	// A source's first poll waits for its slot in its interval; ask for it.
	harness.WaitFor(t, 20*time.Second, func() bool { return strings.Contains(harness.Metrics(addr), `pollrelay_source_up{source="tasks"}`) })
	if code := c.Do("POST", "/v1/sources/tasks/poll", nil, nil); code/100 != 2 {
		t.Fatalf("poll tasks: status %d", code)
	}
	harness.WaitFor(t, 20*time.Second, func() bool { return strings.Contains(harness.Metrics(addr), `pollrelay_source_up{source="tasks"} 1`) })
	peak := rssPeak(p.cmd.Process.Pid)

	// A config source whose items never finish: the poll answers, failed.
	var polled map[string]any
	if code := c.Do("POST", "/v1/sources/spin/poll", nil, &polled); code != http.StatusBadGateway ||
		!strings.Contains(fmt.Sprint(polled["error"]), "limit") {
		t.Errorf("poll of the spinning source: %d %v", code, polled)
	}
	if m := harness.Metrics(addr); !strings.Contains(m, `pollrelay_polls_total{outcome="extract_error",source="spin"} `) {
		t.Errorf("no extract_error counted for the spinning source")
	}

	// Refused on create: the program runs away on a sample envelope.
	var refused map[string]any
	if code := c.Do("POST", "/v1/subscriptions", map[string]any{"name": "direct", "url": rc.URL + "/direct",
		"secret": secret, "payload": "def f: [f]; f"}, &refused); code != http.StatusUnprocessableEntity ||
		!strings.HasPrefix(fmt.Sprint(refused["error"]), "payload: ") {
		t.Errorf("create with a bomb payload: %d %v", code, refused)
	}
	// These run away only on events of the source "tasks", which the
	// samples they are tried on at create time are not.
	bombs := map[string]string{
		"memory": `if .data.source == "tasks" then (def f: [f]; f) else . end`,
		"cpu":    `if .data.source == "tasks" then (def f: f; f) else . end`,
	}
	for name, payload := range bombs {
		if code := c.Do("POST", "/v1/subscriptions", map[string]any{"name": name, "url": bombed.URL + "/" + name,
			"secret": secret, "payload": payload}, nil); code != http.StatusCreated {
			t.Fatalf("create %s: %d", name, code)
		}
	}
	if code := c.Do("POST", "/v1/subscriptions", map[string]any{"name": "other", "url": other.URL + "/other",
		"secret": secret}, nil); code != http.StatusCreated {
		t.Fatalf("create other: %d", code)
	}

	// A transition: the bombs go off, the config and the other API
	// subscription get it.
	up.Set(func(items map[string]string) { items["a"] = "ready" })
	c.Do("POST", "/v1/sources/tasks/poll", nil, nil)
	var eventID string
	for _, r := range []*harness.Receiver{rc, other} {
		d := r.Next(t)
		if d.Env.Type != "task.ready" {
			t.Errorf("got %s, want task.ready", d.Env.Type)
		}
		eventID = d.ID
	}
	harness.WaitFor(t, 30*time.Second, func() bool {
		var as struct{ Data []map[string]any }
		c.Do("GET", "/v1/events/"+eventID+"/attempts", nil, &as)
		failed := map[string]bool{}
		for _, a := range as.Data {
			if a["outcome"] == "payload_error" && strings.Contains(fmt.Sprint(a["error"]), "limit") {
				failed[fmt.Sprint(a["subscription"])] = true
			}
		}
		return failed["memory"] && failed["cpu"]
	})
	if rss := peak(); rss > maxBombRSS {
		t.Errorf("peak RSS %d MiB, bound %d MiB", rss>>20, maxBombRSS>>20)
	} else {
		t.Logf("peak RSS while the bombs ran: %d MiB", rss>>20)
	}

	// A restart does not start the bombs again: their deliveries are dead.
	p.kill()
	p.start()
	harness.WaitFor(t, 20*time.Second, func() bool { return strings.Contains(harness.Metrics(addr), `pollrelay_source_up{source="tasks"}`) })
	for _, name := range []string{"memory", "cpu"} {
		if m := harness.Metrics(addr); !strings.Contains(m, `pollrelay_delivery_queue{state="dead",subscription="`+name+`"} 1`) {
			t.Errorf("the %s bomb's delivery is not dead after the restart", name)
		}
	}
	up.Set(func(items map[string]string) { items["a"] = "errored" })
	c.Do("POST", "/v1/sources/tasks/poll", nil, nil)
	for _, r := range []*harness.Receiver{rc, other} {
		if d := r.Next(t); d.Env.Type != "task.errored" {
			t.Errorf("got %s, want task.errored", d.Env.Type)
		}
	}
	select {
	case err := <-p.exit:
		t.Fatalf("the process exited after the restart: %v", err)
	default:
	}
}

// TestValidateRefusesABombPayload: `pollrelay validate` tries payloads on
// sample events and ends (exit 1, the problem named); an items expression
// that never ends cannot be judged without an upstream and passes.
func TestValidateRefusesABombPayload(t *testing.T) {
	bin := binary(t)
	path := filepath.Join(t.TempDir(), "pollrelay.yaml")
	cfg := fmt.Sprintf(`
storage: {in_memory: true}
sources:
  - {name: spin, url: "http://127.0.0.1:9/", items: 'def f: f; f'}
subscriptions:
  - {name: app, url: "http://127.0.0.1:9/", secret: %s, payload: 'def f: [f]; f'}
`, signature.NewSecret())
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "validate", "--config", path).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("validate: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "subscriptions[0].payload: ") || !strings.Contains(string(out), "limit") {
		t.Errorf("validate output does not name the payload's problem:\n%s", out)
	}
}
