package poller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/store"
)

// watchSetup runs a list source "tasks" and a watch source "task" against
// one upstream. extra is appended to the watch source's settings.
func watchSetup(t *testing.T, up *tasks, extra string) (*harness, []config.Source, *httptest.Server) {
	srv := httptest.NewServer(up)
	t.Cleanup(srv.Close)
	srcs := sources(t, fmt.Sprintf(`  - {name: tasks, url: '%[1]s/tasks', items: '.data[]', interval: 1h}
  - {name: task, url: '%[1]s/tasks/{id}', id: .task_id, terminal: [ready, errored], interval: 1h%[2]s}
`, srv.URL, extra))
	h := newHarness(t, nil)
	h.start(srcs)
	return h, srcs, srv
}

func TestWatchLifecycleThroughTheAPI(t *testing.T) {
	up := newTasks(map[string]string{"a": "queued"})
	h, srcs, _ := watchSetup(t, up, "")
	defer func() { h.close() }()
	ctx := context.Background()

	w, err := h.m.PutWatch(ctx, "task", "a", 2*time.Hour, json.RawMessage(`{ "order": 7 }`))
	if err != nil {
		t.Fatal(err)
	}
	if w.Origin != store.OriginAPI || string(w.Metadata) != `{"order":7}` || w.ExpiresAt.Sub(w.CreatedAt) != 2*time.Hour {
		t.Errorf("PutWatch returned %+v", w)
	}
	if got := h.status("task").WatchesActive; got != 1 {
		t.Errorf("watches active = %d, want 1", got)
	}

	// First observation of a non-terminal state: recorded, silent.
	h.mustPoll("task")
	if evs := h.events("task"); len(evs) != 0 {
		t.Fatalf("first observation fired %v", types(evs))
	}
	if it := h.item("task", "a"); it == nil || string(it.State) != `"queued"` {
		t.Fatalf("item after first observation = %+v", it)
	}

	up.set("a", "processing")
	h.mustPoll("task")
	evs := h.events("task")
	if got := types(evs); !slices.Equal(got, []string{"task.changed:a"}) {
		t.Fatalf("events = %v", got)
	}
	if e := evs[0]; e.Watch == nil || string(e.Watch.Metadata) != `{"order":7}` || string(e.Previous) != `"queued"` || string(e.Current) != `"processing"` {
		t.Errorf("event = %+v, watch %+v", e, e.Watch)
	}

	// A restart in the middle keeps the watch and what it saw.
	h.restart(srcs)
	if h.watch("task", "a") == nil {
		t.Fatal("watch lost across a restart")
	}
	h.mustPoll("task")
	if got := len(h.events("task")); got != 1 {
		t.Fatalf("restart fired %d more events", got-1)
	}

	// The terminal transition fires once and ends the watch with it.
	up.set("a", "ready")
	h.mustPoll("task")
	evs = h.events("task")
	if got := types(evs); !slices.Equal(got, []string{"task.changed:a", "task.changed:a"}) || string(evs[1].Current) != `"ready"` {
		t.Fatalf("events = %v", got)
	}
	if h.watch("task", "a") != nil {
		t.Error("watch still active after its terminal event")
	}
	if got := h.status("task").WatchesActive; got != 0 {
		t.Errorf("watches active = %d, want 0", got)
	}
	before := up.count("/tasks/a")
	h.mustPoll("task")
	if up.count("/tasks/a") != before || len(h.events("task")) != 2 {
		t.Error("an ended watch was polled again")
	}

	// Watching it again: its first observation is terminal, so it fires at
	// once and ends (every watch ends with exactly one terminal event).
	if _, err := h.m.PutWatch(ctx, "task", "a", 0, nil); err != nil {
		t.Fatal(err)
	}
	h.mustPoll("task")
	evs = h.events("task")
	if len(evs) != 3 || string(evs[2].Previous) != `"ready"` || string(evs[2].Current) != `"ready"` || string(evs[2].Watch.Metadata) != `{}` {
		t.Fatalf("re-watch of a finished task: events %v, last %+v", types(evs), evs[len(evs)-1])
	}
	if h.watch("task", "a") != nil {
		t.Error("re-watch did not end")
	}
}

func TestWatchFirstObservationAlreadyTerminal(t *testing.T) {
	up := newTasks(map[string]string{"done": "errored"})
	h, _, _ := watchSetup(t, up, "")
	defer h.close()
	if _, err := h.m.PutWatch(context.Background(), "task", "done", 0, json.RawMessage(`{"k":"v"}`)); err != nil {
		t.Fatal(err)
	}
	h.mustPoll("task")
	evs := h.events("task")
	if len(evs) != 1 || evs[0].Type != "task.changed" || string(evs[0].Previous) != "null" || string(evs[0].Current) != `"errored"` {
		t.Fatalf("events = %v", evs)
	}
	if h.watch("task", "done") != nil {
		t.Error("watch did not end")
	}
}

func TestWatchFrom(t *testing.T) {
	up := newTasks(map[string]string{"a": "queued", "b": "ready"})
	h, _, _ := watchSetup(t, up, ", watch_from: tasks, watch_ttl: 1h")
	defer h.close()

	h.mustPoll("tasks") // baseline: a is watched, b (terminal) is not
	if w := h.watch("task", "a"); w == nil || w.Origin != store.OriginWatchFrom || w.ExpiresAt.IsZero() {
		t.Fatalf("watch of a = %+v", w)
	}
	if h.watch("task", "b") != nil {
		t.Error("terminal item b was watched")
	}

	// A new list item is watched in the poll that records it.
	up.set("c", "queued")
	h.mustPoll("tasks")
	if h.watch("task", "c") == nil {
		t.Fatal("new item c not watched")
	}
	h.mustPoll("task") // first observations: silent
	up.set("a", "ready")
	h.mustPoll("task")
	h.mustPoll("tasks")
	if got := types(h.events()); !slices.Equal(got, []string{"tasks.created:c", "task.changed:a", "tasks.changed:a"}) {
		t.Fatalf("events = %v", got)
	}
	if h.watch("task", "a") != nil {
		t.Fatal("a still watched after its terminal event")
	}
	// The list flips a back to a non-terminal state: its watch ended, so
	// watch_from does not start it (and fire "ready" again) a second time.
	up.set("a", "processing")
	h.mustPoll("tasks")
	if h.watch("task", "a") != nil {
		t.Error("watch_from restarted an ended watch")
	}
	// A list item that disappears keeps its watch until it ends.
	up.set("c", "")
	h.mustPoll("tasks")
	if h.watch("task", "c") == nil {
		t.Error("c's watch ended when c left the list")
	}
	if got := h.status("task").WatchesActive; got != 1 {
		t.Errorf("watches active = %d, want 1 (c)", got)
	}
}

func TestConfigIDs(t *testing.T) {
	up := newTasks(map[string]string{"x": "queued", "y": "queued"})
	srv := httptest.NewServer(up)
	defer srv.Close()
	cfg := func(ids string) []config.Source {
		return sources(t, fmt.Sprintf("  - {name: task, url: '%s/tasks/{id}', id: .task_id, terminal: [ready], interval: 1h, ids: %s}\n", srv.URL, ids))
	}
	h := newHarness(t, nil)
	h.start(cfg("[x, y]"))
	defer func() { h.close() }()
	h.mustPoll("task")
	up.set("x", "ready")
	h.mustPoll("task")
	if got := types(h.events()); !slices.Equal(got, []string{"task.changed:x"}) {
		t.Fatalf("events = %v", got)
	}
	if w := h.watch("task", "y"); w == nil || w.Origin != store.OriginConfig {
		t.Fatalf("watch of y = %+v", w)
	}

	// x ended: a restart with the same ids must not watch it again.
	h.restart(cfg("[x, y]"))
	h.mustPoll("task")
	if h.watch("task", "x") != nil || len(h.events()) != 1 {
		t.Fatal("restart re-watched an ended config id")
	}
	// Removing y from the config stops its watch; putting it back restarts it.
	h.restart(cfg("[x]"))
	h.mustPoll("task")
	if h.watch("task", "y") != nil {
		t.Fatal("y still watched after leaving ids")
	}
	h.restart(cfg("[x, y]"))
	h.mustPoll("task")
	if h.watch("task", "y") == nil {
		t.Fatal("y not watched after coming back to ids")
	}
	if got := len(h.events()); got != 1 {
		t.Errorf("events = %d, want still 1", got)
	}
}

func TestWatchAPIErrorsAndListing(t *testing.T) {
	up := newTasks(map[string]string{})
	h, _, _ := watchSetup(t, up, "")
	defer h.close()
	ctx := context.Background()
	bad := []struct {
		source, id string
		ttl        time.Duration
		meta       string
		want       error
	}{
		{"nope", "a", 0, "", ErrUnknownSource},
		{"tasks", "a", 0, "", ErrNotWatchSource},
		{"task", "", 0, "", ErrInvalidWatch},
		{"task", "..", 0, "", ErrInvalidWatch},
		{"task", "a\x00b", 0, "", ErrInvalidWatch},
		{"task", "a", -time.Second, "", ErrInvalidWatch},
		{"task", "a", 0, `[1]`, ErrInvalidWatch},
		{"task", "a", 0, `{"a":`, ErrInvalidWatch},
	}
	for _, b := range bad {
		if _, err := h.m.PutWatch(ctx, b.source, b.id, b.ttl, json.RawMessage(b.meta)); !errors.Is(err, b.want) {
			t.Errorf("PutWatch(%q, %q, %v, %q) = %v, want %v", b.source, b.id, b.ttl, b.meta, err, b.want)
		}
	}
	if err := h.m.DeleteWatch(ctx, "task", "zz"); !errors.Is(err, ErrWatchNotFound) {
		t.Errorf("DeleteWatch of an unknown id = %v", err)
	}

	for _, id := range []string{"e", "a", "d", "b", "c"} {
		if _, err := h.m.PutWatch(ctx, "task", id, 0, nil); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	cursor, pages := "", 0
	for {
		ws, next, err := h.m.Watches(ctx, "task", cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, w := range ws {
			got = append(got, w.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if !slices.Equal(got, []string{"a", "b", "c", "d", "e"}) || pages != 3 {
		t.Errorf("paged listing = %v in %d pages", got, pages)
	}
	if all, _, err := h.m.Watches(ctx, "", "", 0); err != nil || len(all) != 5 {
		t.Errorf("all watches = %d, %v", len(all), err)
	}
	if _, _, err := h.m.Watches(ctx, "task", "!!", 2); !errors.Is(err, ErrInvalidWatch) {
		t.Errorf("bad cursor: %v", err)
	}

	if err := h.m.DeleteWatch(ctx, "task", "c"); err != nil {
		t.Fatal(err)
	}
	if h.watch("task", "c") != nil || len(h.events("task")) != 0 {
		t.Error("DeleteWatch left the watch or fired an event")
	}
	if got := h.status("task").WatchesActive; got != 4 {
		t.Errorf("watches active = %d, want 4", got)
	}
}

func TestWatchEventKindsAndExpiry(t *testing.T) {
	// Expiry through the real schedule is in TestWatchTTLExpiry (synctest);
	// this checks the event's shape.
	up := newTasks(map[string]string{"a": "queued"})
	srv := httptest.NewServer(up)
	defer srv.Close()
	h := newHarness(t, nil)
	var mu sync.Mutex
	clock := time.Now()
	h.m.now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return clock
	}
	h.start(sources(t, fmt.Sprintf("  - {name: task, url: '%s/tasks/{id}', id: .task_id, terminal: [ready], interval: 1h}\n", srv.URL)))
	defer h.close()
	if _, err := h.m.PutWatch(context.Background(), "task", "a", time.Minute, json.RawMessage(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	h.mustPoll("task")
	mu.Lock()
	clock = clock.Add(time.Minute)
	mu.Unlock()
	h.mustPoll("task")
	evs := h.events("task")
	if len(evs) != 1 {
		t.Fatalf("events = %v", types(evs))
	}
	e := evs[0]
	if e.Type != "task.watch_expired" || e.Kind != event.WatchExpired || string(e.Current) != `"queued"` || string(e.Watch.Metadata) != `{"n":1}` {
		t.Errorf("expiry event = %+v", e)
	}
	if h.watch("task", "a") != nil {
		t.Error("expired watch still there")
	}
}

// TestReloadChangesWatchSources: a reload that changes a watch source
// restarts its loop, which syncs the new ids; watch_from follows a reload
// that adds it, without restarting the list source.
func TestReloadChangesWatchSources(t *testing.T) {
	up := newTasks(map[string]string{"x": "queued", "y": "queued"})
	srv := httptest.NewServer(up)
	defer srv.Close()
	cfg := func(watch string) []config.Source {
		return sources(t, fmt.Sprintf(`  - {name: tasks, url: '%[1]s/tasks', items: '.data[]', interval: 1h}
  - {name: task, url: '%[1]s/tasks/{id}', id: .task_id, terminal: [ready], interval: 1h, %[2]s}
`, srv.URL, watch))
	}
	h := newHarness(t, nil)
	h.start(cfg("ids: [x]"))
	defer h.close()
	h.mustPoll("tasks")
	h.mustPoll("task")
	list := h.m.loop("tasks")

	h.m.Apply(cfg("ids: [x, y]"))
	h.mustPoll("task")
	if h.watch("task", "y") == nil || h.item("task", "y") == nil {
		t.Fatal("reloaded ids not watched")
	}
	h.m.Apply(cfg("ids: [x, y], watch_from: tasks"))
	if h.m.loop("tasks") != list {
		t.Error("the unchanged list source was restarted")
	}
	if got := h.status("task").WatchesActive; got != 2 {
		t.Errorf("watches active after the restart = %d, want 2 carried over", got)
	}
	up.set("z", "queued")
	h.mustPoll("tasks")
	if h.watch("task", "z") == nil {
		t.Error("watch_from added by a reload is not applied")
	}
	if got := h.status("task").WatchesActive; got != 3 {
		t.Errorf("watches active = %d, want 3", got)
	}
}

// TestReloadWatchIntoListDropsItsWatchCount: a watch source that a reload
// turns into a list source of the same name keeps its item count, and
// shows no watches.
func TestReloadWatchIntoListDropsItsWatchCount(t *testing.T) {
	up := newTasks(map[string]string{"x": "queued", "y": "queued"})
	srv := httptest.NewServer(up)
	defer srv.Close()
	h := newHarness(t, nil)
	h.start(sources(t, fmt.Sprintf("  - {name: task, url: '%s/tasks/{id}', id: .task_id, terminal: [ready], interval: 1h, ids: [x, y]}\n", srv.URL)))
	defer h.close()
	h.mustPoll("task")
	if got := h.status("task").WatchesActive; got != 2 {
		t.Fatalf("watches active = %d, want 2", got)
	}
	h.m.Apply(sources(t, fmt.Sprintf("  - {name: task, url: '%s/tasks', items: '.data[]', interval: 1h}\n", srv.URL)))
	st := h.status("task")
	if st.Kind != KindList || st.WatchesActive != 0 || st.ItemsTracked != 2 {
		t.Errorf("after the reload: kind %s, %d watches, %d items; want a list with none and 2", st.Kind, st.WatchesActive, st.ItemsTracked)
	}
	if got := counter(t, h.reg, "pollrelay_watches_active", map[string]string{"source": "task"}); got != 0 {
		t.Errorf("pollrelay_watches_active{source=task} = %v after the reload, want none", got)
	}
}

// A store that keeps refusing a watch round's writes is logged once, not
// every round, and its recovery once.
func TestWatchStoreErrorsLoggedOnce(t *testing.T) {
	log, buf := captureLogger()
	h := newHarnessLog(t, nil, log)
	l, _ := newLoop(h.m, compiledSource(t, "  - {name: w, url: 'http://127.0.0.1:1/t/{id}', ids: [a]}\n")).watchKind()
	full := errors.New("store /data: less than 64 MiB free: no space left on device")
	for range 5 {
		l.noteStoreErr("write watch results", full)
		l.noteStoreErr("write watch results", full)
		l.noteStoreErr("save histograms", full)
	}
	l.noteStoreErr("write watch results", nil)
	l.noteStoreErr("write watch results", nil)
	out := buf.String()
	if n := strings.Count(out, `msg="write watch results"`); n != 1 {
		t.Errorf("the refusal was logged %d times:\n%s", n, out)
	}
	if n := strings.Count(out, `msg="save histograms"`); n != 1 {
		t.Errorf("the histograms' refusal was logged %d times:\n%s", n, out)
	}
	if n := strings.Count(out, "write watch results works again"); n != 1 {
		t.Errorf("the recovery was logged %d times:\n%s", n, out)
	}
}
