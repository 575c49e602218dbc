package poller

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// An upstream's Retry-After beyond MaxUpstreamPause (years in seconds, a
// value that overflows a Duration, a date in 2099) pauses the source for
// the cap, not for as long as asked, and says so once in a WARN line that
// names the source.
func TestRetryAfterIsCapped(t *testing.T) {
	for _, tc := range []struct {
		name  string
		value func(now time.Time) string
		// waits is set where the test also waits out the pause (a day of
		// the store's timers under synctest, so only once).
		waits bool
	}{
		{"three years in seconds", func(time.Time) string { return "99999999" }, true},
		{"overflows a Duration", func(time.Time) string { return "9300000000" }, false},
		{"beyond int64", func(time.Time) string { return "99999999999999999999999" }, false},
		{"HTTP-date in 2099", func(time.Time) string { return "Thu, 01 Jan 2099 00:00:00 GMT" }, false},
		{"HTTP-date in 9999", func(time.Time) string { return "Fri, 31 Dec 9999 23:59:59 GMT" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rc := &recorder{answer: func(n int, w http.ResponseWriter, _ *http.Request) {
					if n == 0 {
						w.Header().Set("Retry-After", tc.value(time.Now()))
						w.WriteHeader(http.StatusTooManyRequests)
						return
					}
					fmt.Fprint(w, `{"id":1,"status":"ok"}`)
				}}
				log, buf := captureLogger()
				h := newHarnessLog(t, handlerTransport{rc}, log)
				srcs := sources(t, "  - {name: s, url: 'http://upstream.test/s', interval: 10s}\n")
				h.start(srcs)
				start := untilFirstPoll(&srcs[0])
				want := start.Add(MaxUpstreamPause)
				if st := h.status("s"); !st.PausedUntil.Equal(want) || !st.NextPollAt.Equal(want) {
					t.Errorf("paused until %v, next poll %v; want both %v (the cap)", st.PausedUntil, st.NextPollAt, want)
				}
				if tc.waits {
					time.Sleep(MaxUpstreamPause)
					synctest.Wait()
				}
				ts := rc.times()
				h.close()
				if tc.waits && (len(ts) < 2 || ts[1].Sub(ts[0]) != MaxUpstreamPause) {
					t.Fatalf("requests %v apart: want the second %v after the first", gaps(ts), MaxUpstreamPause)
				}
				var warns []string
				for _, l := range strings.Split(buf.String(), "\n") {
					if strings.Contains(l, "level=WARN") && strings.Contains(l, "pause longer") {
						warns = append(warns, l)
					}
				}
				if len(warns) != 1 || !strings.Contains(warns[0], "source=s") || !strings.Contains(warns[0], "cap=24h0m0s") {
					t.Errorf("cap logged as %q; want one WARN line with the source and the cap", warns)
				}
			})
		})
	}
}

// A Retry-After that is negative, not a number or a date in the past
// pauses nothing: the source polls on its interval (after one failure, at
// the next slot).
func TestRetryAfterUnreadableOrPastPausesNothing(t *testing.T) {
	for _, v := range []string{"-5", "soon", "1.5", "Mon, 01 Jan 1990 00:00:00 GMT"} {
		t.Run(v, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rc := &recorder{answer: func(n int, w http.ResponseWriter, _ *http.Request) {
					if n == 0 {
						w.Header().Set("Retry-After", v)
						w.WriteHeader(http.StatusServiceUnavailable)
						return
					}
					fmt.Fprint(w, `{"id":1,"status":"ok"}`)
				}}
				h := newHarness(t, handlerTransport{rc})
				h.start(sources(t, "  - {name: s, url: 'http://upstream.test/s', interval: 10s}\n"))
				time.Sleep(30 * time.Second)
				synctest.Wait()
				st := h.status("s")
				ts := rc.times()
				h.close()
				if !st.PausedUntil.IsZero() {
					t.Errorf("paused until %v", st.PausedUntil)
				}
				if len(ts) < 2 || ts[len(ts)-1].Sub(ts[0]) > 30*time.Second {
					t.Errorf("requests %v apart: want polling on the 10s interval", gaps(ts))
				}
			})
		})
	}
}
