package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/internal/harness"
	"github.com/pollrelay/pollrelay/internal/pgtest"
	"github.com/pollrelay/pollrelay/signature"
	"github.com/pollrelay/pollrelay/store/postgres"
)

const outageToken = "outage-test-token-0123456789"

// TestDatabaseOutage runs the real binary on PostgreSQL through a proxy
// that the test cuts: /readyz fails while the database is unreachable,
// the source's lease runs out and polling stops; once the database is
// back, /readyz passes, the lease is taken again and the transition the
// upstream made during the outage is delivered — once, nothing lost. A
// second outage in which another copy takes the schema stops the first.
func TestDatabaseOutage(t *testing.T) {
	bin := binary(t)
	pgURL, schema := pgtest.URL(t), pgtest.Schema(t)
	u, err := url.Parse(pgURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := harness.NewProxy(t, u.Host)
	u.Host = proxy.Addr
	secret := signature.NewSecret()
	recv := harness.NewReceiver(t, secret)
	up := harness.NewUpstream(t, map[string]string{"a": "queued", "b": "queued"})
	addr := harness.FreeAddr(t)
	path := filepath.Join(t.TempDir(), "pollrelay.yaml")
	cfg := fmt.Sprintf(`
listen: %s
api_token: %s
storage: {postgres: {url: %q, schema: %s}}
cluster: {member: solo-1, lease: 4s}
log: {level: debug, format: text}
sources:
  - {name: tasks, url: "%s/v1/tasks", interval: 1s, items: '.data[]'}
subscriptions:
  - {name: app, url: %q, secret: %s, retry: {schedule: [1s], jitter: 0}}
`, addr, outageToken, u.String(), schema, up.URL, recv.URL, secret)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, bin, "run", "--config", path)
	c := harness.APIClient{T: t, Base: "http://" + addr, Token: outageToken}
	ready := func() string {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return "" // not listening yet
		}
		defer resp.Body.Close()
		var body struct{ Status string }
		json.NewDecoder(resp.Body).Decode(&body)
		return body.Status
	}
	harness.WaitFor(t, 30*time.Second, func() bool { return ready() == "ready" && holderOf(t, c) == "solo-1" })
	harness.WaitFor(t, 30*time.Second, func() bool {
		return harness.Metrics(addr) != "" && up.Requests() > 0
	})
	harness.WaitFor(t, 30*time.Second, func() bool {
		v, _ := harness.MetricValue(harness.Metrics(addr), `pollrelay_polls_total{outcome="success",source="tasks"}`)
		return v >= 1
	})
	up.Set(func(items map[string]string) { items["a"] = "ready" })
	first := recv.Next(t)
	if first.Env.Data.ID != "a" || string(first.Env.Data.Current) != `"ready"` {
		t.Fatalf("before the outage: got %s %s %s", first.Env.Type, first.Env.Data.ID, first.Env.Data.Current)
	}
	repeat := func(d harness.Delivery) bool {
		if d.Env.Data.ID != "a" {
			return false
		}
		// The outcome of a's delivery may have been cut off: a repeat
		// keeps its webhook-id.
		if d.ID != first.ID {
			t.Errorf("a's transition delivered again under another webhook-id: %s, first %s", d.ID, first.ID)
		}
		return true
	}

	proxy.Cut()
	harness.WaitFor(t, 30*time.Second, func() bool { return ready() == "store_unreachable" })
	up.Set(func(items map[string]string) { items["b"] = "ready" })
	harness.WaitFor(t, 30*time.Second, func() bool { return holderOf(t, c) == "" })
	t.Log("the database is unreachable and the lease ran out")
	proxy.Restore()
	harness.WaitFor(t, 60*time.Second, func() bool { return ready() == "ready" && holderOf(t, c) == "solo-1" })

	seen := map[string]string{}
	for len(seen) < 1 {
		d := recv.Next(t)
		if repeat(d) {
			continue
		}
		seen[d.ID] = d.Env.Data.ID + "=" + string(d.Env.Data.Current)
	}
	for _, v := range seen {
		if v != `b="ready"` {
			t.Errorf("after the outage: %s; want b's transition", v)
		}
	}
	// Another poll after b's transition was delivered invents nothing.
	n := up.Requests()
	harness.WaitFor(t, 30*time.Second, func() bool { return up.Requests() > n+1 })
	select {
	case d := <-recv.Got:
		if _, ok := seen[d.ID]; !ok && !repeat(d) {
			t.Errorf("an extra delivery: %s %s", d.Env.Data.ID, d.Env.Data.Current)
		}
	default:
	}

	// While the database is away again a second copy takes the schema,
	// which the server let go with the cut session: the first stops once
	// the database is back, rather than poll and deliver beside it.
	proxy.Cut()
	var second *postgres.Store
	harness.WaitFor(t, 30*time.Second, func() bool {
		second, err = postgres.Open(postgres.Options{URL: pgURL, Schema: schema, Exclusive: true, Logger: slog.New(slog.DiscardHandler)})
		return err == nil
	})
	defer second.Close()
	proxy.Restore()
	select {
	case err := <-p.exit:
		p.cmd = nil
		if ee, ok := errors.AsType[*exec.ExitError](err); !ok || ee.ExitCode() != 1 {
			t.Errorf("the first copy ended with %v, want exit status 1", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the first copy still runs beside the one that took its schema")
	}
	out, err := os.ReadFile(p.log.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "taken by another pollrelay") {
		t.Errorf("the first copy's log does not say why it stopped:\n%s", tail(out, 2<<10))
	}
}
