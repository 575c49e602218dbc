package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/diff"
	"github.com/pollrelay/pollrelay/internal/harness"
	"github.com/pollrelay/pollrelay/signature"
	"github.com/pollrelay/pollrelay/store/badger"
)

// snapshot fingerprints every file under dir: name, size, mode, mtime and
// content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		sum := ""
		if !d.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum = fmt.Sprintf("%x", sha256.Sum256(b))
		}
		out[p] = fmt.Sprintf("%d %v %v %s", info.Size(), info.Mode(), info.ModTime().UnixNano(), sum)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func runProbe(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"probe"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestProbeWithoutAStore(t *testing.T) {
	up := harness.NewProbeUpstream(map[string]string{"a": "queued", "b": "processing", "c": "ready"})
	srv := httptest.NewServer(up)
	defer srv.Close()
	data := filepath.Join(t.TempDir(), "data")
	f := harness.WriteProbeConfig(t, data, srv.URL)

	code, out, errOut := runProbe(t, "--config", f)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	t.Logf("probe output:\n%s", out)
	for _, want := range []string{
		"== tasks: 2 page(s), 3 item(s), complete=true",
		"page " + srv.URL + "/tasks → 200, 2 item(s)",
		"page " + srv.URL + "/tasks?cursor=redacted → 200, 1 item(s)",
		"first poll: would record a baseline of 3 item(s) and fire nothing",
		"== task: watch source, 1 request(s), 0 failed",
		// A watch's first observation of a terminal state fires.
		"would fire task.changed  (c: null → ready)",
		"would end the watch of c",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	table := regexp.MustCompile(`(?m)^\s+ID\s+STATE\n\s+a\s+queued\n\s+b\s+processing\n\s+c\s+ready\n`)
	if !table.MatchString(out) {
		t.Errorf("no id/state table in:\n%s", out)
	}
	if !strings.Contains(out, "no store at "+data+" yet: comparing against an empty state") {
		t.Errorf("stdout does not say the store is not there yet")
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("probe created the store directory (%v)", err)
	}
}

func TestProbeAgainstAStoreWritesNothing(t *testing.T) {
	up := harness.NewProbeUpstream(map[string]string{"a": "queued", "b": "processing", "c": "processing"})
	srv := httptest.NewServer(up)
	defer srv.Close()
	data := filepath.Join(t.TempDir(), "data")
	f := harness.WriteProbeConfig(t, data, srv.URL)

	// A store with a baseline, as a pollrelay that ran and stopped leaves it.
	cfg, err := config.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	st, err := badger.Open(badger.Options{Path: data})
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
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, data)

	up.Set(func(status map[string]string) {
		status["b"] = "ready"
		status["c"] = "errored"
	})
	code, out, errOut := runProbe(t, "--config", f, "--source", "tasks")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"would fire task.ready  (b: processing → ready)",
		"would fire task.errored  (c: processing → errored)",
		"2 event(s) would fire",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "== task:") {
		t.Error("--source tasks probed the watch source too")
	}
	if after := snapshot(t, data); !maps.Equal(before, after) {
		t.Errorf("probe changed the store directory:\nbefore %v\nafter  %v", before, after)
	}
}

func TestProbeErrors(t *testing.T) {
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<html>oops</html>")
	}))
	defer broken.Close()
	f := harness.WriteProbeConfig(t, filepath.Join(t.TempDir(), "data"), broken.URL)
	if code, _, errOut := runProbe(t, "--config", f, "--source", "nope"); code != 1 || !strings.Contains(errOut, `no source named "nope"`) {
		t.Errorf("unknown source: exit %d, %q", code, errOut)
	}
	code, out, _ := runProbe(t, "--config", f, "--source", "tasks")
	if code != 1 || !strings.Contains(out, "error: response is not JSON") {
		t.Errorf("non-JSON upstream: exit %d\n%s", code, out)
	}
}

// TestProbeWarnsAboutTypos: a misspelt state path yields null for every
// item, and probe says so loudly instead of showing a quiet column of nulls.
func TestProbeWarnsAboutTypos(t *testing.T) {
	up := harness.NewProbeUpstream(map[string]string{"a": "queued", "b": "processing", "c": "ready"})
	srv := httptest.NewServer(up)
	defer srv.Close()
	cases := []struct{ state, want string }{
		{`'.stauts'`, "WARNING: every state is null: check state:"},
		{`'"x"'`, `WARNING: all 3 items have the same state x`},
		{`'.status'`, ""},
	}
	for _, c := range cases {
		f := filepath.Join(t.TempDir(), "c.yaml")
		yaml := fmt.Sprintf("storage: {in_memory: true}\nsources:\n  - {name: tasks, url: '%s/tasks', items: '.data[]', state: %s, pagination: {next: .next, param: cursor}}\n", srv.URL, c.state)
		if err := os.WriteFile(f, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		_, out, _ := runProbe(t, "--config", f)
		switch {
		case c.want == "" && strings.Contains(out, "WARNING"):
			t.Errorf("state %s: a warning for a healthy extraction:\n%s", c.state, out)
		case c.want != "" && !strings.Contains(out, c.want):
			t.Errorf("state %s: stdout lacks %q:\n%s", c.state, c.want, out)
		}
	}
}

// TestProbeHoldsAMassDeleteAsRunWould: a listing that drops most of the
// stored items is held back by run's mass-delete guard; probe, through the
// same comparison, says it would hold them and fires no deleted event.
func TestProbeHoldsAMassDeleteAsRunWould(t *testing.T) {
	up := harness.NewUpstream(t, map[string]string{"a": "queued", "b": "queued", "c": "queued", "d": "queued"})
	secret := signature.NewSecret()
	rc := harness.NewReceiver(t, secret)
	// e2eConfig's rules fire task.deleted for an item gone from the listing.
	yaml := fmt.Sprintf(e2eConfig, filepath.Join(t.TempDir(), "data"), up.URL, rc.URL, secret)
	path := filepath.Join(t.TempDir(), "pollrelay.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	b, stop := startBridge(t, yaml)
	pollNow(t, b, "tasks") // the baseline of four items
	stop()

	up.Set(func(items map[string]string) {
		delete(items, "b")
		delete(items, "c")
		delete(items, "d")
	})
	code, out, errOut := runProbe(t, "--config", path)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{"would hold back 3 delete(s): more than max_delete_ratio (0.5)", "confirm_polls (3)", "no transitions would fire"} {
		if !strings.Contains(out, want) {
			t.Errorf("probe's output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "would fire task.") {
		t.Errorf("probe fires deletes run holds back:\n%s", out)
	}

	// run polls the same listing and holds the same deletes.
	b, _ = startBridge(t, yaml)
	pollNow(t, b, "tasks")
	m := harness.Metrics(b.Addr())
	if v, ok := harness.MetricValue(m, `pollrelay_mass_deletes_held_total{source="tasks"}`); !ok || v != 1 {
		t.Errorf("run held %v listings (found %v), want 1", v, ok)
	}
	if v, ok := harness.MetricValue(m, `pollrelay_items_tracked{source="tasks"}`); !ok || v != 4 {
		t.Errorf("run tracks %v items after the held listing (found %v), want 4", v, ok)
	}
}

// TestProbeShowsTheWatermark: probe asks an incremental source for what
// run would ask, from the stored watermark, and says so.
func TestProbeShowsTheWatermark(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	up := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.URL.Query().Get("since"))
		mu.Unlock()
		fmt.Fprint(w, `[{"id": "a", "status": "queued", "ts": 1767225600}, {"id": "b", "status": "ready", "ts": 1767225660}]`)
	}))
	dir := filepath.Join(t.TempDir(), "data")
	yaml := fmt.Sprintf(`
listen: 127.0.0.1:0
storage: {path: %q}
sources:
  - name: tasks
    url: %s/tasks
    items: '.[]'
    incremental: {param: since, from: .ts, lookback: 30s}
    events: [{type: 'task.{current}', on: changed}]
`, dir, up)
	path := filepath.Join(t.TempDir(), "pollrelay.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runProbe(t, "--config", path)
	if code != 0 || !strings.Contains(out, "incremental: full listing (first poll)") {
		t.Fatalf("probe before any poll: exit %d\n%s%s", code, out, errOut)
	}
	b, stop := startBridge(t, yaml)
	pollNow(t, b, "tasks")
	stop()
	code, out, errOut = runProbe(t, "--config", path)
	if code != 0 || !strings.Contains(out, `incremental: changes since "1767225630"`) {
		t.Fatalf("probe after the baseline: exit %d\n%s%s", code, out, errOut)
	}
	mu.Lock()
	defer mu.Unlock()
	if asked[len(asked)-1] != "1767225630" {
		t.Errorf("probe sent since=%q", asked[len(asked)-1])
	}
}
