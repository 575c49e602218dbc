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
