package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/internal/harness"
	"github.com/pollrelay/pollrelay/signature"
)

// TestSignals drives the real binary: SIGHUP with a valid file adds a
// source, SIGHUP with an invalid file keeps the running config and says
// so in a metric, SIGTERM shuts down cleanly with exit status 0.
const signalsToken = "signals-test-token-0123456789"

func TestSignals(t *testing.T) {
	bin := binary(t)
	up := harness.NewUpstream(t, map[string]string{"a": "queued"})
	addr := harness.FreeAddr(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "pollrelay.yaml")
	base := fmt.Sprintf(`
listen: %s
api_token: %s
storage: {path: %q}
log: {level: info, format: text}
sources:
  - {name: one, url: "%s/v1/tasks", interval: 1h, items: '.data[]'}
subscriptions:
  - {name: app, url: "http://127.0.0.1:9/", secret: %s}
`, addr, signalsToken, filepath.Join(dir, "data"), up.URL, signature.NewSecret())
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(base)
	p := startProcess(t, bin, "run", "--config", path)
	// A source's first poll waits for its slot in the hour; ask for it.
	pollNow := func(name string) {
		t.Helper()
		harness.WaitFor(t, 20*time.Second, func() bool { return strings.Contains(harness.Metrics(addr), `pollrelay_source_up{source="`+name+`"}`) })
		c := harness.APIClient{T: t, Base: "http://" + addr, Token: signalsToken}
		if code := c.Do("POST", "/v1/sources/"+name+"/poll", nil, nil); code/100 != 2 {
			t.Fatalf("poll %s: status %d", name, code)
		}
	}
	pollNow("one")
	harness.WaitFor(t, 20*time.Second, func() bool { return strings.Contains(harness.Metrics(addr), `pollrelay_source_up{source="one"} 1`) })

	added := strings.Replace(base, "subscriptions:", fmt.Sprintf("  - {name: two, url: \"%s/v1/tasks\", interval: 1h, items: '.data[]'}\nsubscriptions:", up.URL), 1)
	write(added)
	p.cmd.Process.Signal(syscall.SIGHUP)
	pollNow("two")
	harness.WaitFor(t, 20*time.Second, func() bool { return strings.Contains(harness.Metrics(addr), `pollrelay_source_up{source="two"} 1`) })

	write(strings.Replace(added, "interval: 1h", "interval: 1ms", 1))
	p.cmd.Process.Signal(syscall.SIGHUP)
	harness.WaitFor(t, 20*time.Second, func() bool {
		return strings.Contains(harness.Metrics(addr), "pollrelay_config_last_reload_successful 0")
	})
	if m := harness.Metrics(addr); !strings.Contains(m, `pollrelay_source_up{source="two"} 1`) {
		t.Error("a failed reload dropped the running config")
	}

	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exit:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
		p.cmd = nil
	case <-time.After(20 * time.Second):
		t.Fatal("no exit within 20 s of SIGTERM")
	}
	log, _ := os.ReadFile(p.log.Name())
	for _, want := range []string{"config reloaded", "config reload failed", "shutting down", "stopped"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// everyKindNames are the sources of testdata/config/every-kind.yaml.
var everyKindNames = []string{"cursor", "next-url", "links", "pages", "offsets", "single", "status", "adaptive"}

// TestSIGHUPUnchangedRestartsNoSource drives the real binary: a SIGHUP
// with the file unchanged restarts no source loop, for sources using
// every rule kind, watch sources and every pagination style
// (testdata/config/every-kind.yaml). A loop that restarted would show: a
// list source's last poll is forgotten, a watch source starts a round at
// once. Changing one source's members rule then restarts that source
// alone.
func TestSIGHUPUnchangedRestartsNoSource(t *testing.T) {
	bin := binary(t)
	up := harness.NewUpstream(t, map[string]string{"a": "queued"})
	addr := harness.FreeAddr(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "pollrelay.yaml")
	fixture, err := os.ReadFile("../testdata/config/every-kind.yaml")
	if err != nil {
		t.Fatal(err)
	}
	file := fmt.Sprintf("listen: %s\napi_token: %s\nstorage: {path: %q}\nlog: {level: info, format: text}\n",
		addr, signalsToken, filepath.Join(dir, "data")) + strings.ReplaceAll(string(fixture), "${UPSTREAM}", up.URL)
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(file)
	p := startProcess(t, bin, "run", "--config", path)
	c := harness.APIClient{T: t, Base: "http://" + addr, Token: signalsToken}
	harness.WaitFor(t, 20*time.Second, func() bool { return strings.Contains(harness.Metrics(addr), `pollrelay_source_up{source="adaptive"}`) })
	for _, name := range everyKindNames {
		if code := c.Do("POST", "/v1/sources/"+name+"/poll", nil, nil); code/100 != 2 {
			t.Fatalf("poll %s: status %d", name, code)
		}
	}
	lastPolls := func() map[string]string {
		t.Helper()
		var srcs struct {
			Data []struct {
				Name       string `json:"name"`
				LastPollAt string `json:"last_poll_at"`
			} `json:"data"`
		}
		if code := c.Do("GET", "/v1/sources", nil, &srcs); code != 200 {
			t.Fatalf("GET /v1/sources: %d", code)
		}
		out := map[string]string{}
		for _, s := range srcs.Data {
			out[s.Name] = s.LastPollAt
		}
		return out
	}
	before := lastPolls()
	for _, name := range everyKindNames {
		if before[name] == "" {
			t.Fatalf("%s has not polled: %v", name, before)
		}
	}
	reloads := 0
	sighup := func() {
		t.Helper()
		reloads++
		p.cmd.Process.Signal(syscall.SIGHUP)
		harness.WaitFor(t, 20*time.Second, func() bool {
			log, _ := os.ReadFile(p.log.Name())
			return strings.Count(string(log), "config reloaded") == reloads
		})
	}

	sighup()
	sighup()
	after := lastPolls()
	for _, name := range everyKindNames {
		if after[name] != before[name] {
			t.Errorf("%s restarted by a SIGHUP with the file unchanged: last poll %q, was %q", name, after[name], before[name])
		}
	}
	log, _ := os.ReadFile(p.log.Name())
	_, sinceReload, _ := strings.Cut(string(log), "SIGHUP: reloading config")
	if strings.Contains(sinceReload, "first poll") {
		t.Error("a SIGHUP with the file unchanged scheduled a first poll")
	}

	write(strings.Replace(file, "members: '.tags |", "members: '.labels |", 1))
	sighup()
	after = lastPolls()
	for _, name := range everyKindNames {
		if restarted := after[name] != before[name]; restarted != (name == "cursor") {
			t.Errorf("%s: restarted %v after a change to cursor's members rule (last poll %q, was %q)", name, restarted, after[name], before[name])
		}
	}
}
