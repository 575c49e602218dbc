package harness

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// ProbeUpstream lists tasks a, b and c two per page (cursor pagination)
// and serves each at /tasks/{id}.
type ProbeUpstream struct {
	mu     sync.Mutex
	status map[string]string
}

// NewProbeUpstream serves the tasks with the given statuses.
func NewProbeUpstream(status map[string]string) *ProbeUpstream {
	return &ProbeUpstream{status: status}
}

// Set changes the statuses under the upstream's lock.
func (u *ProbeUpstream) Set(f func(status map[string]string)) {
	u.mu.Lock()
	defer u.mu.Unlock()
	f(u.status)
}

func (u *ProbeUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	defer u.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if id, ok := strings.CutPrefix(r.URL.Path, "/tasks/"); ok {
		json.NewEncoder(w).Encode(map[string]string{"task_id": id, "status": u.status[id]})
		return
	}
	ids := []string{"a", "b", "c"}
	from := 0
	if r.URL.Query().Get("cursor") == "2" {
		from = 2
	}
	var data []map[string]string
	for _, id := range ids[from:min(from+2, len(ids))] {
		data = append(data, map[string]string{"id": id, "status": u.status[id]})
	}
	next := any(nil)
	if from == 0 {
		next = "2"
	}
	json.NewEncoder(w).Encode(map[string]any{"data": data, "next": next})
}

const probeConfig = `
storage: {path: %q}
sources:
  - name: tasks
    url: %s/tasks
    items: '.data[]'
    pagination: {next: .next, param: cursor}
    events:
      - {type: 'task.{current}', on: changed, to: [ready, errored]}
  - name: task
    url: %s/tasks/{id}
    id: .task_id
    terminal: [ready, errored]
    ids: [c]
`

// WriteProbeConfig writes a config for a ProbeUpstream at upstream, with
// its store in dataDir, and returns its path.
func WriteProbeConfig(t testing.TB, dataDir, upstream string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "pollrelay.yaml")
	if err := os.WriteFile(f, fmt.Appendf(nil, probeConfig, dataDir, upstream, upstream), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}
