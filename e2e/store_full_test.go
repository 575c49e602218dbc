package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/internal/tmpfs"
	"github.com/pollrelay/pollrelay/signature"
)

// TestStoreDiskFull starts the real binary on a 64 KiB tmpfs: it must exit
// 1 with an error naming the store and the cause, not hang or crash.
// Mounting needs root; elsewhere the test is skipped.
func TestStoreDiskFull(t *testing.T) {
	bin := binary(t)
	mnt := tmpfs.Mount(t, "64k")
	cfg := filepath.Join(t.TempDir(), "pollrelay.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
listen: 127.0.0.1:0
storage: {path: %q}
sources: [{name: s, url: "http://127.0.0.1:9/", interval: 1h}]
subscriptions: [{name: app, url: "http://127.0.0.1:9/", secret: %s}]
`, filepath.Join(mnt, "data"), signature.NewSecret())), 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "run", "--config", cfg).CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want status 1; output:\n%s", err, out)
	}
	if !strings.Contains(string(out), "open store") || !strings.Contains(string(out), "no space left on device") || !strings.Contains(string(out), mnt) {
		t.Errorf("the error does not say what and why:\n%s", out)
	}
}
