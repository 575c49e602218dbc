package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/internal/harness"
	"github.com/pollrelay/pollrelay/signature"
)

// TestReadmeWalkthroughAnnouncesBornFinishedItems runs the README's
// walkthrough config with the real binary, only its addresses pointed at
// loopback, and the environment the README exports. A video that appears
// already `ready` after the baseline must reach the app.
func TestReadmeWalkthroughAnnouncesBornFinishedItems(t *testing.T) {
	bin := binary(t)
	yaml := harness.ReadmeWalkthrough(t, "../README.md")
	const upstreamToken = "upstream-token"
	var mu sync.Mutex
	videos := []map[string]any{{"id": "v_1", "status": "processing", "embedding": []float64{1}}}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/videos" || r.Header.Get("Authorization") != "Bearer "+upstreamToken {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"data": videos})
	}))
	defer up.Close()
	secret := signature.NewSecret()
	rc := harness.NewReceiver(t, secret)
	addr := harness.FreeAddr(t)
	for old, repl := range map[string]string{
		"https://api.example.com": up.URL,
		"http://127.0.0.1:3000":   rc.URL,
		"127.0.0.1:8787":          addr,
		"./pollrelay-data":        filepath.Join(t.TempDir(), "data"),
	} {
		if !strings.Contains(yaml, old) {
			t.Fatalf("the README's walkthrough no longer contains %q", old)
		}
		yaml = strings.ReplaceAll(yaml, old, repl)
	}
	path := filepath.Join(t.TempDir(), "pollrelay.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("UPSTREAM_TOKEN", upstreamToken)
	t.Setenv("WEBHOOK_SECRET", secret)
	t.Setenv("POLLRELAY_API_TOKEN", "test-token-6d7e8f9a0b") // to poll now instead of waiting 15 s
	if code, out, errOut := runBinary(t, bin, "validate", "--config", path); code != 0 {
		t.Fatalf("validate: exit %d\n%s%s", code, out, errOut)
	}
	startProcess(t, bin, "run", "--config", path)
	poll := func() {
		t.Helper()
		harness.WaitFor(t, 20*time.Second, func() bool {
			resp, err := http.DefaultClient.Do(mustRequest(t, "POST", "http://"+addr+"/v1/sources/videos/poll", "test-token-6d7e8f9a0b"))
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 200
		})
	}
	poll() // the baseline: v_1 is recorded silently
	mu.Lock()
	videos = append(videos, map[string]any{"id": "v_2", "status": "ready"})
	mu.Unlock()
	poll()
	d := rc.Next(t)
	if d.Env.Type != "video.status.ready" || d.Env.Data.ID != "v_2" || string(d.Env.Data.Previous) != "null" {
		t.Errorf("got %s for %s (previous %s), want video.status.ready for v_2 from null", d.Env.Type, d.Env.Data.ID, d.Env.Data.Previous)
	}
}

func mustRequest(t *testing.T, method, url, token string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return req
}
