package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/internal/harness"
	"github.com/pollrelay/pollrelay/internal/syncbuf"
	"github.com/pollrelay/pollrelay/internal/tmpfs"
	"github.com/pollrelay/pollrelay/signature"
)

// shutdownBound is the bound shutdown.go promises beyond shutdown_grace.
const shutdownBound = 10 * time.Second

// TestShutdownStoreUnwritable runs the real binary until its store holds
// a baseline, takes the store's directory away (removed, or read-only),
// then sends SIGTERM: the process must end within shutdown_grace plus the
// fixed bound, with status 1 and an error saying what could not close and
// why. Before, Badger retried its flush every second and the process never
// exited. The read-only case mounts (root, as in CI); elsewhere it is
// skipped.
func TestShutdownStoreUnwritable(t *testing.T) {
	bin := binary(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"data":[`)
		for i := range 200 {
			if i > 0 {
				fmt.Fprint(w, ",")
			}
			fmt.Fprintf(w, `{"id":"t%d","status":"queued","title":"task %d"}`, i, i)
		}
		fmt.Fprint(w, `]}`)
	}))
	defer up.Close()
	cases := map[string]struct {
		dir    func(t *testing.T) string
		break_ func(t *testing.T, data string)
		cause  string
	}{
		"removed": {
			dir:    func(t *testing.T) string { return t.TempDir() },
			break_: func(t *testing.T, data string) { os.RemoveAll(data) },
			cause:  "no such file or directory",
		},
		"read-only": {
			dir:    func(t *testing.T) string { return tmpfs.Mount(t, "160m") },
			break_: func(t *testing.T, data string) { tmpfs.ReadOnly(t, filepath.Dir(data)) },
			cause:  "read-only file system",
		},
	}
	const grace = time.Second
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			data := filepath.Join(tc.dir(t), "data")
			cfg := filepath.Join(t.TempDir(), "pollrelay.yaml")
			os.WriteFile(cfg, []byte(fmt.Sprintf(`
listen: 127.0.0.1:0
storage: {path: %q}
delivery: {shutdown_grace: %s}
sources: [{name: s, url: %q, items: '.data[]', id: '.id', state: '.status', interval: 1s}]
subscriptions: [{name: app, url: "http://127.0.0.1:9/", secret: %s}]
`, data, grace, up.URL, signature.NewSecret())), 0o600)
			out := &syncbuf.Buffer{}
			cmd := exec.Command(bin, "run", "--config", cfg)
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var err error
			exited := make(chan struct{})
			go func() {
				err = cmd.Wait()
				close(exited)
			}()
			t.Cleanup(func() {
				cmd.Process.Kill()
				<-exited
			})
			harness.WaitFor(t, 30*time.Second, func() bool { return strings.Contains(out.String(), "baseline recorded") })
			tc.break_(t, data)
			cmd.Process.Signal(syscall.SIGTERM)
			// The bound the process must keep, and a margin for starting
			// and exiting on a busy machine.
			limit := grace + shutdownBound + 10*time.Second
			select {
			case <-exited:
			case <-time.After(limit):
				t.Fatalf("still running %s after SIGTERM:\n%s", limit, tail([]byte(out.String()), 4<<10))
			}
			if ee, ok := errors.AsType[*exec.ExitError](err); !ok || ee.ExitCode() != 1 {
				t.Fatalf("exit %v, want status 1:\n%s", err, out)
			}
			text := out.String()
			for _, want := range []string{"stopped with an error", "close store " + data, "cannot be written", tc.cause} {
				if !strings.Contains(text, want) {
					t.Errorf("the output does not say %q:\n%s", want, tail([]byte(text), 4<<10))
				}
			}
		})
	}
}
