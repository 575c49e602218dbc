package e2e

import (
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/internal/harness"
)

// TestProbeBesideRunningBinary: while pollrelay run holds the store, probe
// cannot read the stored state. It must say so on stdout, where its answer
// is, claim no baseline or transitions, and exit non-zero.
func TestProbeBesideRunningBinary(t *testing.T) {
	bin := binary(t)
	up := harness.NewProbeUpstream(map[string]string{"a": "queued", "b": "processing", "c": "ready"})
	srv := httptest.NewServer(up)
	defer srv.Close()
	data := filepath.Join(t.TempDir(), "data")
	f := harness.WriteProbeConfig(t, data, srv.URL)
	raw, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	addr := harness.FreeAddr(t)
	if err := os.WriteFile(f, append([]byte(fmt.Sprintf("listen: %s\n", addr)), raw...), 0o600); err != nil {
		t.Fatal(err)
	}
	startProcess(t, bin, "run", "--config", f)
	harness.WaitFor(t, 20*time.Second, func() bool { return strings.Contains(harness.Metrics(addr), `pollrelay_source_up{source="tasks"} 1`) })

	code, out, errOut := runBinary(t, bin, "probe", "--config", f)
	if code == 0 {
		t.Errorf("probe exited 0 without reading the stored state\nstdout:\n%s", out)
	}
	for _, want := range []string{"cannot read the stored state at " + data, "stored state unreadable: cannot say which transitions would fire", "If pollrelay run holds the store"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	for _, lie := range []string{"would record a baseline", "no transitions would fire", "would fire "} {
		if strings.Contains(out, lie) {
			t.Errorf("stdout claims %q about a state it could not read:\n%s", lie, out)
		}
	}
	if !strings.Contains(errOut, "pollrelay probe:") {
		t.Errorf("stderr = %q", errOut)
	}
}
