package notifier

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pollrelay/pollrelay/internal/syncbuf"
	"github.com/pollrelay/pollrelay/store"
)

// TestDeliveryLogLevels: an alert on WARN and ERROR sees a receiver that is
// down. A failed attempt is a WARN, a dead letter an ERROR, and a delivery
// that succeeds after failing an INFO.
func TestDeliveryLogLevels(t *testing.T) {
	rc := newReceiver()
	rc.setAnswer(func(h *hit, _ http.ResponseWriter, _ *http.Request) int {
		if h.Env.Data.ID == "recovers" && h.N > 1 {
			return 0
		}
		return http.StatusInternalServerError
	})
	srv := httptest.NewServer(rc)
	defer srv.Close()
	buf := &syncbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	subs := parseSubs(t, "name: app\nurl: "+srv.URL+"\nsecret: "+testSecret+"\nretry: {schedule: [10ms]}")
	e := startWithLogger(t, t.TempDir(), subs, Options{}, log)
	recovers := e.emit("task.ready", "recovers")
	dies := e.emit("task.ready", "dies")
	e.waitState("app", recovers.ID, store.Delivered)
	e.waitState("app", dies.ID, store.Dead)
	e.stop()

	lines := strings.Split(buf.String(), "\n")
	find := func(level, msg, id string) int {
		n := 0
		for _, l := range lines {
			if strings.Contains(l, "level="+level+" ") && strings.Contains(l, `msg="`+msg+`"`) && strings.Contains(l, id) {
				n++
			}
		}
		return n
	}
	for _, c := range []struct {
		level, msg, id string
	}{
		{"WARN", "delivery failed, will retry", recovers.ID},
		{"INFO", "delivered after failed attempts", recovers.ID},
		{"WARN", "delivery failed, will retry", dies.ID},
		{"ERROR", "delivery dead-lettered", dies.ID},
	} {
		if n := find(c.level, c.msg, c.id); n != 1 {
			t.Errorf("%s %q for %s logged %d times, want once:\n%s", c.level, c.msg, c.id, n, buf.String())
		}
	}
}
