package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/diff"
	"github.com/pollrelay/pollrelay/internal/harness"
	"github.com/pollrelay/pollrelay/internal/pgtest"
	"github.com/pollrelay/pollrelay/signature"
)

// postgresSchema is a fresh schema on the test server, dropped when t
// ends, and the server's URL.
func postgresSchema(t *testing.T) (url, schema string) {
	t.Helper()
	return pgtest.URL(t), pgtest.Schema(t)
}

// With storage.postgres.url set, pollrelay keeps everything in the
// database: a poll's transitions are delivered (a failed attempt retried
// under its webhook-id), and a restart on the same schema remembers what
// was seen, so an unchanged listing fires nothing.
func TestEndToEndOnPostgres(t *testing.T) {
	url, schema := postgresSchema(t)
	secret := signature.NewSecret()
	up := harness.NewUpstream(t, map[string]string{"a": "queued", "b": "queued"})
	rc := harness.NewReceiver(t, secret)
	rc.Fail = func(d harness.Delivery, attempt int) int {
		if d.Env.Data.ID == "a" && attempt == 1 {
			return http.StatusInternalServerError
		}
		return 0
	}
	storage := fmt.Sprintf("{postgres: {url: %q, schema: %s, max_conns: 4}}", url, schema)
	yaml := strings.Replace(fmt.Sprintf(e2eConfig, "unused", up.URL, rc.URL, secret), `storage: {path: "unused"}`, "storage: "+storage, 1)
	if !strings.Contains(yaml, schema) {
		t.Fatal("the config does not name the schema")
	}
	b, stop := startBridge(t, yaml)
	pollNow(t, b, "tasks")
	up.Set(func(m map[string]string) {
		m["a"] = "ready"
		m["c"] = "queued"
		delete(m, "b")
	})
	pollNow(t, b, "tasks")
	byItem := map[string][]harness.Delivery{}
	for range 4 {
		d := rc.Next(t)
		byItem[d.Env.Data.ID] = append(byItem[d.Env.Data.ID], d)
	}
	if a := byItem["a"]; len(a) != 2 || a[0].Status != 500 || a[1].Status != 204 || a[0].ID != a[1].ID {
		t.Errorf("a: want a failed attempt, then a retry under the same webhook-id; got %+v", a)
	}
	if len(byItem["b"]) != 1 || byItem["b"][0].Env.Type != "task.deleted" || len(byItem["c"]) != 1 || byItem["c"][0].Env.Type != "task.created" {
		t.Errorf("b and c: want task.deleted and task.created once each, got %+v", byItem)
	}
	waitDelivered(t, b)
	stop()

	b2, _ := startBridge(t, yaml)
	pollNow(t, b2, "tasks")
	select {
	case d := <-rc.Got:
		t.Fatalf("an unchanged poll after a restart fired %s for %s", d.Env.Type, d.Env.Data.ID)
	case <-time.After(300 * time.Millisecond):
	}
}

// probe reads a PostgreSQL store read-only: a schema not created yet is
// an empty state (and is still not created after), an existing one is
// compared against and left as it was.
func TestProbeOnPostgres(t *testing.T) {
	url, schema := postgresSchema(t)
	up := harness.NewProbeUpstream(map[string]string{"a": "queued", "b": "processing", "c": "processing"})
	srv := httptest.NewServer(up)
	defer srv.Close()
	f := harness.WriteProbeConfig(t, "unused", srv.URL)
	file, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	yaml := strings.Replace(string(file), `storage: {path: "unused"}`,
		fmt.Sprintf("storage: {postgres: {url: %q, schema: %s}}", url, schema), 1)
	if err := os.WriteFile(f, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runProbe(t, "--config", f, "--source", "tasks")
	if code != 0 || !strings.Contains(out, "no store at schema "+schema+" of storage.postgres.url yet") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if schemaExists(t, url, schema) {
		t.Fatal("probe created the schema")
	}

	cfg, err := config.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	st, err := openStore(cfg, false, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	obs := []diff.Observation{
		{ID: "a", State: json.RawMessage(`"queued"`)},
		{ID: "b", State: json.RawMessage(`"processing"`)},
		{ID: "c", State: json.RawMessage(`"processing"`)},
	}
	src, err := diff.Compile(&cfg.Sources[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := diff.Apply(context.Background(), st, src, diff.Poll{Observations: obs, Complete: true, Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	up.Set(func(status map[string]string) { status["b"] = "ready" })
	code, out, errOut = runProbe(t, "--config", f, "--source", "tasks")
	if code != 0 || !strings.Contains(out, "would fire task.ready  (b: processing → ready)") || !strings.Contains(out, "1 event(s) would fire") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

func schemaExists(t *testing.T, url, schema string) bool {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// Members do not divide the work yet: a second pollrelay on a schema one
// already runs on is refused at start, with a reason, instead of polling
// and delivering beside it.
func TestSecondCopyOnASchemaIsRefused(t *testing.T) {
	url, schema := postgresSchema(t)
	up := harness.NewUpstream(t, map[string]string{"a": "queued"})
	rc := harness.NewReceiver(t, signature.NewSecret())
	storage := fmt.Sprintf("{postgres: {url: %q, schema: %s, max_conns: 4}}", url, schema)
	yaml := strings.Replace(fmt.Sprintf(e2eConfig, "unused", up.URL, rc.URL, signature.NewSecret()), `storage: {path: "unused"}`, "storage: "+storage, 1)
	startBridge(t, yaml)
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if _, err = NewBridge(cfg, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("a second bridge opened the schema the first runs on")
	}
	if !strings.Contains(err.Error(), "held by a running pollrelay") {
		t.Fatalf("second bridge: %v", err)
	}
}
