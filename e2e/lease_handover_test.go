package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/internal/harness"
	"github.com/pollrelay/pollrelay/internal/pgtest"
)

const handoverToken = "handover-test-token-0123456789"

// TestSIGTERMHandsTheLeasesOver: a member stopped with SIGTERM releases
// its sources' leases on the way out, so the next member on the schema
// holds them at once rather than after cluster.lease (a minute here).
func TestSIGTERMHandsTheLeasesOver(t *testing.T) {
	bin := binary(t)
	pgURL, schema := pgtest.URL(t), pgtest.Schema(t)
	up := harness.NewUpstream(t, map[string]string{"a": "queued"})
	dir := t.TempDir()
	start := func(member string) (*process, harness.APIClient) {
		addr := harness.FreeAddr(t)
		path := filepath.Join(dir, member+".yaml")
		cfg := fmt.Sprintf(`
listen: %s
api_token: %s
storage: {postgres: {url: %q, schema: %s}}
cluster: {member: %s, lease: 60s}
log: {level: info, format: text}
sources:
  - {name: tasks, url: "%s/v1/tasks", interval: 1h, items: '.data[]'}
`, addr, handoverToken, pgURL, schema, member, up.URL)
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return startProcess(t, bin, "run", "--config", path), harness.APIClient{T: t, Base: "http://" + addr, Token: handoverToken}
	}
	a, ca := start("member-a")
	harness.WaitFor(t, 30*time.Second, func() bool { return harness.Metrics(ca.Base[len("http://"):]) != "" && holderOf(t, ca) == "member-a" })
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-a.exit:
		if err != nil {
			t.Fatalf("member-a after SIGTERM: %v", err)
		}
		a.cmd = nil
	case <-time.After(30 * time.Second):
		t.Fatal("member-a did not exit within 30 s of SIGTERM")
	}
	t0 := time.Now()
	_, cb := start("member-b")
	harness.WaitFor(t, 30*time.Second, func() bool { return harness.Metrics(cb.Base[len("http://"):]) != "" && holderOf(t, cb) == "member-b" })
	took := time.Since(t0)
	t.Logf("member-b held the source %s after it started", took.Round(time.Millisecond))
	if code := cb.Do("POST", "/v1/sources/tasks/poll", nil, nil); code != 200 {
		t.Errorf("member-b's poll: status %d", code)
	}
}

// holderOf is the member GET /v1/sources shows holding the one source the
// config has; "" also while the API answers before the source started.
func holderOf(t *testing.T, c harness.APIClient) string {
	t.Helper()
	var body struct {
		Data []struct{ Holder string }
	}
	if code := c.Do("GET", "/v1/sources", nil, &body); code != 200 || len(body.Data) > 1 {
		t.Fatalf("GET /v1/sources: %d, %d sources", code, len(body.Data))
	}
	if len(body.Data) == 0 {
		return ""
	}
	return body.Data[0].Holder
}
