package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/internal/harness"
	"github.com/pollrelay/pollrelay/signature"
)

// storeConfig is a minimal config with storage at path; nothing is
// listening at the source's URL, and nothing needs to: these runs end
// before or regardless of polling.
const storeConfig = `
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
    retry: {schedule: [100ms, 100ms]}
`

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestStoreUnwritable: a storage.path pollrelay cannot write must stop it
// at start with exit status 1 and an error naming the path, not leave it
// running with deliveries that could never be made durable.
func TestStoreUnwritable(t *testing.T) {
	bin := binary(t)
	cases := []struct {
		name string
		// path prepares and returns storage.path; it skips when the
		// fault can't be made on this machine.
		path func(t *testing.T) string
	}{
		{"directory without write permission", func(t *testing.T) string {
			dir := filepath.Join(t.TempDir(), "data")
			if err := os.Mkdir(dir, 0o500); err != nil {
				t.Fatal(err)
			}
			// Root (and CAP_DAC_OVERRIDE) writes through mode bits.
			if f, err := os.CreateTemp(dir, "probe"); err == nil {
				f.Close()
				os.Remove(f.Name())
				t.Skip("this user can write to a 0500 directory (root?); the next case covers an unwritable path")
			}
			return dir
		}},
		{"path below a regular file", func(t *testing.T) string {
			file := filepath.Join(t.TempDir(), "not-a-dir")
			if err := os.WriteFile(file, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(file, "data")
		}},
		{"path is a regular file", func(t *testing.T) string {
			file := filepath.Join(t.TempDir(), "data")
			if err := os.WriteFile(file, []byte("not badger"), 0o600); err != nil {
				t.Fatal(err)
			}
			return file
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := c.path(t)
			cfg := writeConfig(t, fmt.Sprintf(storeConfig, path, "http://127.0.0.1:9", "http://127.0.0.1:9", signature.NewSecret()))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, bin, "run", "--config", cfg).CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("exit: %v, want status 1; output:\n%s", err, out)
			}
			if s := string(out); !strings.Contains(s, "cannot start") || !strings.Contains(s, "open store") || !strings.Contains(s, path) {
				t.Errorf("the error does not name the store and its path:\n%s", s)
			}
		})
	}
}

// TestStoreRecoversAfterKill: pollrelay SIGKILLed right after its baseline
// poll, and again right after a restart, must open the Badger directory it
// left behind with the baseline intact: a change made while it was down
// arrives exactly once (a lost baseline would swallow it as a new baseline),
// and nothing else is invented.
func TestStoreRecoversAfterKill(t *testing.T) {
	bin := binary(t)
	up := harness.NewUpstream(t, map[string]string{"t1": "queued", "t2": "queued"})
	secret := signature.NewSecret()
	rc := harness.NewReceiver(t, secret)
	data := filepath.Join(t.TempDir(), "data")
	cfg := writeConfig(t, fmt.Sprintf(storeConfig, data, up.URL, rc.URL, secret))

	p := startProcess(t, bin, "run", "--config", cfg)
	// A second request means the first poll, the baseline, was committed:
	// polls of one source never overlap.
	harness.WaitFor(t, 20*time.Second, func() bool { return up.Requests() >= 2 })
	p.kill()
	up.Set(func(items map[string]string) { items["t1"] = "ready" })

	// Killed again before it can have done much: Badger's own recovery
	// must cope with a directory that was never closed twice over.
	p.start()
	p.kill()
	p.start()

	d := rc.Next(t)
	if d.Env.Data.ID != "t1" || harness.Text(d.Env.Data.Previous) != "queued" || harness.Text(d.Env.Data.Current) != "ready" {
		t.Fatalf("delivered %s %s→%s, want t1 queued→ready", d.Env.Data.ID, harness.Text(d.Env.Data.Previous), harness.Text(d.Env.Data.Current))
	}
	// Two more polls with nothing changed must deliver nothing.
	n := up.Requests()
	harness.WaitFor(t, 20*time.Second, func() bool { return up.Requests() >= n+2 })
	select {
	case extra := <-rc.Got:
		t.Errorf("invented a delivery: %s %s→%s", extra.Env.Data.ID, harness.Text(extra.Env.Data.Previous), harness.Text(extra.Env.Data.Current))
	default:
	}
}
