package poller

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// logLines returns the captured lines at level (e.g. "WARN").
func logLines(s, level string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "level="+level+" ") {
			out = append(out, l)
		}
	}
	return out
}

// TestFailedPollsLogOnce: with the upstream down, the HTTP client's
// retries within each poll stay quiet, a run of identical failures is one
// WARN, and the recovery one INFO.
func TestFailedPollsLogOnce(t *testing.T) {
	up := newTasks(map[string]string{"a": "queued"})
	srv := httptest.NewServer(up)
	defer srv.Close()
	log, logs := captureLogger()
	h := newHarnessLog(t, nil, log)
	h.start(sources(t, faultSource(srv, "")))
	h.mustPoll("l")
	up.mu.Lock()
	up.fail = func(w http.ResponseWriter, _ *http.Request) bool {
		// A connection dropped without an answer: the transport fails,
		// which is what the HTTP client logs on each of its retries.
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return true
	}
	up.mu.Unlock()
	for range 2 {
		if err := h.pollNow("l"); err == nil {
			t.Fatal("a poll of an upstream that drops every connection succeeded")
		}
	}
	if n := up.count("/tasks"); n < 1+2*3 {
		t.Fatalf("the upstream saw %d requests; the client's retries did not run", n)
	}
	up.mu.Lock()
	up.fail = nil
	up.mu.Unlock()
	h.mustPoll("l")

	s := logs.String()
	warns := logLines(s, "WARN")
	if len(warns) != 1 || !strings.Contains(warns[0], `msg="poll failed"`) {
		t.Errorf("want one WARN (poll failed) for two failed polls of three requests each, got %d:\n%s", len(warns), strings.Join(warns, "\n"))
	}
	if errs := logLines(s, "ERROR"); len(errs) != 0 {
		t.Errorf("a failed poll logged at ERROR:\n%s", strings.Join(errs, "\n"))
	}
	if n := strings.Count(s, `msg="poll recovered"`); n != 1 || !strings.Contains(strings.Join(logLines(s, "INFO"), "\n"), "poll recovered") {
		t.Errorf("want one INFO poll recovered, got %d:\n%s", n, s)
	}
}
