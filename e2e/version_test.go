package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestVersionStamped builds the binary with a version in -ldflags: both
// `pollrelay version` and the User-Agent of its requests carry it.
func TestVersionStamped(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the real binary")
	}
	bin := filepath.Join(t.TempDir(), "pollrelay")
	const v = "v9.8.7-test"
	build := exec.Command("go", "build", "-ldflags", "-X github.com/pollrelay/pollrelay/internal/version.stamped="+v, "-o", bin, "github.com/pollrelay/pollrelay")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "pollrelay "+v+" (commit ") {
		t.Errorf("pollrelay version: %q, %v", out, err)
	}
	var mu sync.Mutex
	var agents []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		agents = append(agents, r.UserAgent())
		mu.Unlock()
		fmt.Fprint(w, `{"data":[{"id":"a","status":"queued"}]}`)
	}))
	defer up.Close()
	path := filepath.Join(t.TempDir(), "c.yaml")
	yaml := fmt.Sprintf("storage: {in_memory: true}\nsources: [{name: a, url: '%s/a', items: '.data[]'}]\n", up.URL)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "probe", "--config", path).CombinedOutput(); err != nil {
		t.Fatalf("probe: %v\n%s", err, out)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(agents) == 0 || agents[0] != "pollrelay/"+v {
		t.Errorf("User-Agent %q, want pollrelay/%s", agents, v)
	}
}
