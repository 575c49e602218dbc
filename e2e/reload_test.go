package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/internal/harness"
)

// apiStatus sends one request to the running binary's /v1 with token.
func apiStatus(t *testing.T, method, url, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// TestReloadAppliesToken drives the real binary: a reload through
// POST /v1/reload revokes the old api_token at once and names the changed
// key it cannot apply; a SIGHUP turns /v1 off, and another turns it on.
func TestReloadAppliesToken(t *testing.T) {
	bin := binary(t)
	up := harness.NewUpstream(t, map[string]string{"a": "queued"})
	addr := harness.FreeAddr(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "pollrelay.yaml")
	conf := func(listen, token string) {
		y := fmt.Sprintf(`
listen: %s
api_token: %q
storage: {path: %q}
log: {level: info, format: text}
sources:
  - {name: one, url: "%s/v1/tasks", interval: 1h, items: '.data[]'}
`, listen, token, filepath.Join(dir, "data"), up.URL)
		if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	conf(addr, "old-token-0a1b2c3d4e")
	p := startProcess(t, bin, "run", "--config", path)
	base := "http://" + addr
	// A source's first poll waits for its slot in the hour; ask for it.
	harness.WaitFor(t, 20*time.Second, func() bool { return strings.Contains(harness.Metrics(addr), `pollrelay_source_up{source="one"}`) })
	if code, body := apiStatus(t, "POST", base+"/v1/sources/one/poll", "old-token-0a1b2c3d4e"); code/100 != 2 {
		t.Fatalf("poll now: %d %s", code, body)
	}
	harness.WaitFor(t, 20*time.Second, func() bool { return strings.Contains(harness.Metrics(addr), `pollrelay_source_up{source="one"} 1`) })
	if code, _ := apiStatus(t, "GET", base+"/v1/sources", "old-token-0a1b2c3d4e"); code != 200 {
		t.Fatalf("old token before the reload: %d", code)
	}

	conf(harness.FreeAddr(t), "new-token-5f6a7b8c9d")
	code, body := apiStatus(t, "POST", base+"/v1/reload", "old-token-0a1b2c3d4e")
	if code != 200 {
		t.Fatalf("POST /v1/reload: %d %s", code, body)
	}
	var ans struct {
		Status          string   `json:"status"`
		RestartRequired []string `json:"restart_required"`
	}
	if err := json.Unmarshal(body, &ans); err != nil || ans.Status != "reloaded" || strings.Join(ans.RestartRequired, ",") != "listen" {
		t.Errorf("reload answer %s, want status reloaded and restart_required [listen]", body)
	}
	if code, _ := apiStatus(t, "GET", base+"/v1/sources", "old-token-0a1b2c3d4e"); code != 401 {
		t.Errorf("old token right after the reload: %d, want 401", code)
	}
	if code, _ := apiStatus(t, "GET", base+"/v1/sources", "new-token-5f6a7b8c9d"); code != 200 {
		t.Errorf("new token right after the reload: %d, want 200", code)
	}
	if m := harness.Metrics(addr); !strings.Contains(m, `pollrelay_config_restart_required{key="listen"} 1`) {
		t.Error(`metrics lack pollrelay_config_restart_required{key="listen"} 1`)
	}

	conf(addr, "")
	p.cmd.Process.Signal(syscall.SIGHUP)
	harness.WaitFor(t, 20*time.Second, func() bool {
		code, _ := apiStatus(t, "GET", base+"/v1/sources", "new-token-5f6a7b8c9d")
		return code == 404
	})
	if m := harness.Metrics(addr); strings.Contains(m, `pollrelay_config_restart_required{key="listen"}`) {
		t.Error("listen is back at its running value but still reported as waiting for a restart")
	}
	conf(addr, "third-token-1e2f3a4b5c")
	p.cmd.Process.Signal(syscall.SIGHUP)
	harness.WaitFor(t, 20*time.Second, func() bool {
		code, _ := apiStatus(t, "GET", base+"/v1/sources", "third-token-1e2f3a4b5c")
		return code == 200
	})
	log, _ := os.ReadFile(p.log.Name())
	if !strings.Contains(string(log), "level=WARN") || !strings.Contains(string(log), "keys=listen") {
		t.Errorf("the log does not warn about listen waiting for a restart:\n%s", log)
	}
}
