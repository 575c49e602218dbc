package poller

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/internal/syncbuf"
	"github.com/pollrelay/pollrelay/store"
	"github.com/pollrelay/pollrelay/store/badger"
)

// sources parses a config made of the given `sources:` YAML (indented as
// list items) and returns its sources.
func sources(t *testing.T, yaml string) []config.Source {
	t.Helper()
	cfg, err := config.ParseWith([]byte("storage: {in_memory: true}\nsources:\n"+yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg.Sources
}

func source(t *testing.T, yaml string) *config.Source {
	t.Helper()
	return &sources(t, yaml)[0]
}

// openStore opens a real Badger in dir. Under synctest it must be opened
// (and closed) inside the bubble, since Badger starts goroutines.
func openStore(t *testing.T, dir string) store.Store {
	t.Helper()
	st, err := badger.Open(badger.Options{Path: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// harness is a Manager on a real store, with a fresh registry.
type harness struct {
	t   *testing.T
	dir string
	st  store.Store
	m   *Manager
	reg *prometheus.Registry
	rt  http.RoundTripper
	log *slog.Logger
	// closed makes close idempotent: tests close explicitly (to restart or
	// to read what was written) and in cleanup.
	closed bool
}

// newHarness opens a store in a fresh directory and a manager whose
// requests go to rt (nil: the network, for httptest servers).
func newHarness(t *testing.T, rt http.RoundTripper) *harness {
	return newHarnessLog(t, rt, testLogger(t))
}

func newHarnessLog(t *testing.T, rt http.RoundTripper, log *slog.Logger) *harness {
	h := &harness{t: t, dir: t.TempDir(), rt: rt, log: log}
	h.open()
	// Under synctest a failed test must still stop its goroutines.
	t.Cleanup(h.close)
	return h
}

func (h *harness) open() {
	h.st = openStore(h.t, h.dir)
	h.closed = false
	h.reg = prometheus.NewRegistry()
	h.m = NewManager(h.st, NewMetrics(h.reg), h.log)
	h.m.transport = h.rt
}

// start runs the sources; close (or restart) must follow.
func (h *harness) start(srcs []config.Source) {
	h.m.Start(context.Background(), srcs)
}

// untilFirstPoll, called under synctest right after a list source
// started, sleeps until its first poll (its slot on the grid) and lets the
// poll run until it blocks or ends. It returns the time of the poll.
func untilFirstPoll(src *config.Source) time.Time {
	at := nextSlot(time.Now(), src.Interval, offset(src.Name, src.Interval))
	time.Sleep(time.Until(at))
	synctest.Wait()
	return at
}

// close stops polling and closes the store.
func (h *harness) close() {
	if h.closed {
		return
	}
	h.closed = true
	h.m.Stop()
	if err := h.st.Close(); err != nil {
		h.t.Fatal(err)
	}
}

// restart is a process restart: everything in memory is gone, the store
// directory stays.
func (h *harness) restart(srcs []config.Source) {
	h.close()
	h.open()
	h.start(srcs)
}

func (h *harness) pollNow(name string) error {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	return h.m.PollNow(ctx, name)
}

func (h *harness) mustPoll(name string) {
	h.t.Helper()
	if err := h.pollNow(name); err != nil {
		h.t.Fatalf("poll %s: %v", name, err)
	}
}

// events returns the logged events of the given sources (of every source
// when none is given), oldest first.
func (h *harness) events(only ...string) []*event.Event {
	h.t.Helper()
	var out []*event.Event
	err := h.st.View(func(t store.Txn) error {
		return t.Events("", func(e *event.Event) bool {
			if len(only) == 0 || slices.Contains(only, e.Source) {
				out = append([]*event.Event{e}, out...)
			}
			return true
		})
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// types lists event types as "type:item" for compact assertions.
func types(evs []*event.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type + ":" + e.ItemID
	}
	return out
}

func (h *harness) watch(source, id string) *store.Watch {
	h.t.Helper()
	var w *store.Watch
	err := h.st.View(func(t store.Txn) error {
		var err error
		w, err = t.Watch(source, id)
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return w
}

func (h *harness) item(source, id string) *store.Item {
	h.t.Helper()
	var it *store.Item
	err := h.st.View(func(t store.Txn) error {
		var err error
		it, err = t.Item(source, id)
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return it
}

func (h *harness) status(name string) Status {
	h.t.Helper()
	for _, s := range h.m.Status() {
		if s.Name == name {
			return s
		}
	}
	h.t.Fatalf("no status for %s", name)
	return Status{}
}

// counter reads one series of a counter or gauge vector.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// handlerTransport serves requests with an in-process handler: no sockets,
// so it works inside a synctest bubble, where time only moves when every
// goroutine is blocked on something the bubble controls.
type handlerTransport struct{ h http.Handler }

func (ht handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	rec := httptest.NewRecorder()
	ht.h.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

// tasks is an upstream of tasks whose statuses a test changes: GET /tasks
// lists them, GET /tasks/{id} returns one.
type tasks struct {
	mu     sync.Mutex
	status map[string]string
	hits   map[string]int // path → requests
	// fail, when set, answers a request instead of the normal handler.
	fail func(w http.ResponseWriter, r *http.Request) bool
}

func newTasks(status map[string]string) *tasks {
	return &tasks{status: status, hits: map[string]int{}}
}

func (u *tasks) set(id, status string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if status == "" {
		delete(u.status, id)
		return
	}
	u.status[id] = status
}

func (u *tasks) count(path string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits[path]
}

func (u *tasks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.hits[r.URL.Path]++
	if u.fail != nil && u.fail(w, r) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if id, ok := strings.CutPrefix(r.URL.Path, "/tasks/"); ok {
		st, found := u.status[id]
		if !found {
			http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"task_id": id, "status": st})
		return
	}
	var data []map[string]any
	for _, id := range sortedIDs(u.status) {
		data = append(data, map[string]any{"id": id, "status": u.status[id]})
	}
	json.NewEncoder(w).Encode(map[string]any{"data": data})
}

func sortedIDs(m map[string]string) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// testLogger logs to the test's log; lines written after the test ended
// are dropped rather than panicking.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(&testWriter{t: t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	t *testing.T
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// quietLogger leaves out debug lines: a test of 10,000 requests would
// log each.
func quietLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(&testWriter{t: t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// captureLogger logs into a buffer, for asserting what logs contain.
func captureLogger() (*slog.Logger, *syncbuf.Buffer) {
	b := &syncbuf.Buffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}
