package poller

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// A long listing shows how far it has come while it runs, in the status
// (so /v1/sources and the console show it) and, past 10 s, in the log;
// a finished poll shows no progress.
func TestLongPollShowsProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(4 * time.Second) // a slow upstream: 4 s a page
			page, _ := strconv.Atoi(r.URL.Query().Get("page"))
			var items []string
			for i := range 10 {
				if page < 5 { // pages 1 to 4 full, then an empty one
					items = append(items, fmt.Sprintf(`{"id":"p%d-%d","status":"ok"}`, page, i))
				}
			}
			fmt.Fprintf(w, `{"data":[%s]}`, strings.Join(items, ","))
		})
		log, logs := captureLogger()
		h := newHarnessLog(t, handlerTransport{up}, log)
		h.start(sources(t, `  - name: big
    url: http://upstream.test/items
    interval: 1h
    timeout: 30s
    items: '.data[]'
    pagination: {page_param: page, limit_param: per_page, limit: 10}
`))
		done := make(chan error, 1)
		go func() { done <- h.pollNow("big") }()

		time.Sleep(13 * time.Second) // three pages served, the fourth on its way
		synctest.Wait()
		p := h.status("big").Progress
		if p == nil || p.Pages != 3 || p.Items != 30 || p.StartedAt.IsZero() {
			t.Fatalf("progress 13 s into the poll: %+v, want 3 pages and 30 items", p)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		st := h.status("big")
		h.close()
		if st.Progress != nil || st.ItemsTracked != 40 {
			t.Errorf("after the poll: progress %+v, %d items", st.Progress, st.ItemsTracked)
		}
		if n := strings.Count(logs.String(), "poll in progress"); n < 1 || n > 3 {
			t.Errorf("%d progress lines in a 20 s poll, want one about every 10 s:\n%s", n, logs.String())
		}
		if !strings.Contains(logs.String(), "pages=3 items=30") {
			t.Errorf("no progress line with the pages and items so far:\n%s", logs.String())
		}
	})
}
