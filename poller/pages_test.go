package poller

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/diff"
)

// pagedAPI lists n items ("t00"…) in pages of 10, in every pagination
// style, by path. failAt makes the request of one page (by first item
// index) answer 500.
type pagedAPI struct {
	mu     sync.Mutex
	items  []pagedItem
	failAt int
	seen   []string // request URIs
	srv    *httptest.Server
}

func newPagedAPI(t *testing.T, n int) *pagedAPI {
	a := &pagedAPI{failAt: -1}
	for i := range n {
		a.items = append(a.items, pagedItem{fmt.Sprintf("t%02d", i), "queued"})
	}
	a.srv = httptest.NewServer(a)
	t.Cleanup(a.srv.Close)
	return a
}

func (a *pagedAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seen = append(a.seen, r.URL.RequestURI())
	q := r.URL.Query()
	num := func(k string, def int) int {
		if v, err := strconv.Atoi(q.Get(k)); err == nil {
			return v
		}
		return def
	}
	from, size := 0, 10
	switch r.URL.Path {
	case "/cursor":
		from = num("cursor", 0)
	case "/nexturl", "/link":
		from = num("from", 0)
	case "/pages":
		size = num("per_page", 10)
		from = (num("page", 1) - 1) * size
	case "/offset":
		size = num("limit", 10)
		from = num("offset", 0)
	}
	if from == a.failAt {
		http.Error(w, "upstream broke", http.StatusInternalServerError)
		return
	}
	data := []map[string]any{}
	for _, it := range a.items[min(from, len(a.items)):min(from+size, len(a.items))] {
		data = append(data, map[string]any{"id": it.id, "status": it.status})
	}
	more := from+size < len(a.items)
	body := map[string]any{"data": data}
	switch r.URL.Path {
	case "/cursor":
		body["next_cursor"] = nil
		if more {
			body["next_cursor"] = strconv.Itoa(from + size)
		}
	case "/nexturl":
		body["links"] = map[string]any{"next": nil}
		if more {
			body["links"] = map[string]any{"next": fmt.Sprintf("/nexturl?from=%d", from+size)}
		}
	case "/link":
		links := fmt.Sprintf(`<%s/link?from=0>; rel="first"`, a.srv.URL)
		if more {
			// A comma inside the target and several rels, as RFC 8288 allows.
			links += fmt.Sprintf(`, <%s/link?from=%d&x=a,b>; rel="next last"`, a.srv.URL, from+size)
		}
		w.Header().Set("Link", links)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(body)
}

type pagedItem struct{ id, status string }

func (a *pagedAPI) requests() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.seen)
}

func (a *pagedAPI) reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seen = nil
}

func ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("t%02d", i)
	}
	return out
}

func TestPaginationStyles(t *testing.T) {
	tests := []struct {
		name, path, pagination string
		items                  int
		want                   []string // request URIs
	}{
		{"next cursor", "/cursor", `{next: .next_cursor, param: cursor}`, 25,
			[]string{"/cursor", "/cursor?cursor=10", "/cursor?cursor=20"}},
		{"next_url", "/nexturl", `{next_url: .links.next}`, 25,
			[]string{"/nexturl", "/nexturl?from=10", "/nexturl?from=20"}},
		{"link header", "/link", `{link_header: true}`, 25,
			[]string{"/link", "/link?from=10&x=a,b", "/link?from=20&x=a,b"}},
		{"page numbers, short last page", "/pages", `{page_param: page, limit_param: per_page, limit: 10}`, 25,
			[]string{"/pages?page=1&per_page=10", "/pages?page=2&per_page=10", "/pages?page=3&per_page=10"}},
		{"page numbers, empty last page", "/pages", `{page_param: page, limit_param: per_page, limit: 10}`, 20,
			[]string{"/pages?page=1&per_page=10", "/pages?page=2&per_page=10", "/pages?page=3&per_page=10"}},
		{"offsets", "/offset", `{offset_param: offset, limit_param: limit, limit: 10}`, 25,
			[]string{"/offset?limit=10&offset=0", "/offset?limit=10&offset=10", "/offset?limit=10&offset=20"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := newPagedAPI(t, tc.items)
			src := compiledSource(t, fmt.Sprintf("  - {name: s, url: '%s%s', items: '.data[]', pagination: %s}\n", api.srv.URL, tc.path, tc.pagination))
			f := newFetcher(src, testLogger(t), func(int) {}, nil)
			lst, err := fetchListing(context.Background(), src, f, diff.Validators{}, nil, plainRequest(src))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range lst.obs {
				got = append(got, o.ID)
			}
			if !slices.Equal(got, ids(tc.items)) {
				t.Errorf("ids = %v", got)
			}
			if !lst.complete {
				t.Error("listing should be complete")
			}
			if len(lst.pages) != len(tc.want) {
				t.Errorf("pages = %d, want %d", len(lst.pages), len(tc.want))
			}
			if reqs := api.requests(); !slices.Equal(reqs, tc.want) {
				t.Errorf("requests:\n got %q\nwant %q", reqs, tc.want)
			}
		})
	}
}

func TestPaginationMaxPagesIsIncomplete(t *testing.T) {
	api := newPagedAPI(t, 25)
	srcs := sources(t, fmt.Sprintf(`  - name: s
    url: '%s/cursor'
    items: '.data[]'
    pagination: {next: .next_cursor, param: cursor, max_pages: 2}
`, api.srv.URL))
	h := newHarness(t, nil)
	h.start(srcs)
	defer h.close()

	h.mustPoll("s") // baseline of the 20 items max_pages allows
	if got := h.status("s").ItemsTracked; got != 20 {
		t.Fatalf("tracked %d items, want 20", got)
	}
	// t05 leaves the first two pages; t03 changes. The cut-short listing
	// updates t03 but can't tell that t05 is gone.
	api.mu.Lock()
	api.items = slices.Delete(api.items, 5, 6)
	api.items[3].status = "ready"
	api.mu.Unlock()
	h.mustPoll("s")
	if got := types(h.events()); !slices.Equal(got, []string{"s.changed:t03", "s.created:t20"}) {
		t.Errorf("events = %v, want t03 changed and t20 (now on page 2) created, nothing deleted", got)
	}
	if h.item("s", "t05") == nil {
		t.Error("t05 was deleted by an incomplete listing")
	}
	if got := h.status("s").ItemsTracked; got != 21 { // t20 moved onto page 2
		t.Errorf("tracked %d items, want 21", got)
	}
}

func TestPaginationFailedMiddlePageDecidesNothing(t *testing.T) {
	api := newPagedAPI(t, 25)
	srcs := sources(t, fmt.Sprintf(`  - name: s
    url: '%s/pages'
    items: '.data[]'
    pagination: {page_param: page, limit_param: per_page, limit: 10}
`, api.srv.URL))
	h := newHarness(t, nil)
	h.start(srcs)
	defer h.close()
	h.mustPoll("s")

	// Page 2 breaks; page 1 shows a change and page 3 lost an item. The poll
	// must fail whole: no change applied, nothing deleted.
	api.mu.Lock()
	api.failAt = 10
	api.items[0].status = "ready"
	api.items = api.items[:24]
	api.mu.Unlock()
	api.reset()
	err := h.pollNow("s")
	pe, ok := err.(*PollError)
	if !ok || pe.Outcome != OutcomeHTTPError || pe.Status != 500 {
		t.Fatalf("poll error = %v, want an http_error with status 500", err)
	}
	if got := h.events(); len(got) != 0 {
		t.Errorf("a failed poll fired %v", types(got))
	}
	if it := h.item("s", "t00"); string(it.State) != `"queued"` {
		t.Errorf("t00 state = %s: a failed poll applied page 1", it.State)
	}
	if h.item("s", "t24") == nil {
		t.Error("t24 deleted by a failed poll")
	}
	st := h.status("s")
	if st.LastOutcome != OutcomeHTTPError || st.Failures != 1 || st.ItemsTracked != 25 {
		t.Errorf("status = %+v", st)
	}
	if got := counter(t, h.reg, "pollrelay_polls_total", map[string]string{"source": "s", "outcome": "http_error"}); got != 1 {
		t.Errorf("polls_total{outcome=http_error} = %v, want 1", got)
	}

	// Once page 2 answers again, everything lands in one poll.
	api.mu.Lock()
	api.failAt = -1
	api.mu.Unlock()
	h.mustPoll("s")
	if got := types(h.events()); !slices.Equal(got, []string{"s.changed:t00", "s.deleted:t24"}) {
		t.Errorf("events after recovery = %v", got)
	}
}

func TestPaginationStaysOnTheSourceHost(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("followed a next link to another host, with headers %v", r.Header)
	}))
	defer other.Close()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"data": [{"id": 1, "status": "a"}], "next": %q}`, other.URL+"/steal")
	}))
	defer up.Close()
	src := compiledSource(t, fmt.Sprintf("  - {name: s, url: '%s', items: '.data[]', auth: {bearer: tok}, pagination: {next_url: .next}}\n", up.URL))
	f := newFetcher(src, testLogger(t), func(int) {}, nil)
	_, err := fetchListing(context.Background(), src, f, diff.Validators{}, nil, plainRequest(src))
	if pe, ok := err.(*PollError); !ok || pe.Outcome != OutcomeExtract {
		t.Fatalf("err = %v, want an extract_error refusing the link", err)
	}
}

func TestNextLink(t *testing.T) {
	tests := []struct{ header, want string }{
		{`<https://a/x?page=2>; rel="next"`, "https://a/x?page=2"},
		{`<https://a/1>; rel="prev", <https://a/3>; rel="next"`, "https://a/3"},
		{`<https://a/3>; rel=next`, "https://a/3"},
		{`<https://a/3>; REL="Next"`, "https://a/3"},
		{`<https://a/x?q=a,b>; title="a, b"; rel="last next"`, "https://a/x?q=a,b"},
		{`<https://a/1>; rel="prev"`, ""},
		{`garbage`, ""},
	}
	for _, tc := range tests {
		h := http.Header{"Link": {tc.header}}
		if got := nextLink(h); got != tc.want {
			t.Errorf("nextLink(%q) = %q, want %q", tc.header, got, tc.want)
		}
	}
}

// cursorBaseline runs a cursor-paginated source "s" over n items and
// polls its baseline.
func cursorBaseline(t *testing.T, n int) (*pagedAPI, []config.Source, *harness) {
	t.Helper()
	api := newPagedAPI(t, n)
	srcs := sources(t, fmt.Sprintf(`  - name: s
    url: '%s/cursor'
    items: '.data[]'
    pagination: {next: .next_cursor, param: cursor}
`, api.srv.URL))
	h := newHarness(t, nil)
	h.start(srcs)
	h.mustPoll("s")
	return api, srcs, h
}

// TestLongListingFilteredPageByPage runs a paginated source with every
// page after the first filtered through the stored items' index as it
// arrives, as a listing longer than streamAfter is: changes, a repeated
// id, a new item and a deleted one come out as they do for a listing kept
// whole, across a restart too; and the listing fetched that way holds only
// the items that may change.
func TestLongListingFilteredPageByPage(t *testing.T) {
	defer func(v int) { streamAfter = v }(streamAfter)
	streamAfter = 0
	api, srcs, h := cursorBaseline(t, 45)
	defer h.close()

	api.mu.Lock()
	api.items[3].status = "ready"
	api.items[27].status = "failed"
	api.items = slices.Delete(api.items, 40, 41)
	api.items = append(api.items, pagedItem{"t12", "ready"}, pagedItem{"t99", "queued"})
	api.mu.Unlock()
	h.mustPoll("s")
	want := []string{"s.changed:t03", "s.changed:t27", "s.created:t99", "s.deleted:t40"}
	if got := types(h.events()); !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v (t12's repeat on the last page loses to its first occurrence)", got, want)
	}
	if got := h.status("s").ItemsTracked; got != 45 {
		t.Errorf("tracked %d, want 45", got)
	}

	// After a restart nothing is read in advance: the index is read when
	// the listing grows long.
	h.restart(srcs)
	api.mu.Lock()
	api.items[5].status = "ready"
	api.mu.Unlock()
	h.mustPoll("s")
	if got := types(h.events()); !slices.Equal(got, append(want, "s.changed:t05")) {
		t.Fatalf("events after restart = %v", got)
	}

	api.mu.Lock()
	api.items[30].status = "ready"
	api.mu.Unlock()
	src := compileAll(t, srcs[:1])[0]
	s := &stream{now: time.Now(), load: func() *diff.Index { return diff.LoadIndex(h.st, src.Source, 45) }}
	f := newFetcher(src, testLogger(t), func(int) {}, nil)
	lst, err := fetchListing(context.Background(), src, f, diff.Validators{}, s, plainRequest(src))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ob := range lst.obs {
		got = append(got, ob.ID)
	}
	if !slices.Equal(got, []string{"t30"}) || !lst.complete {
		t.Errorf("filtered listing holds %v (complete %v), want only t30", got, lst.complete)
	}
}

// TestManyChangesWrittenAhead: a long listing in which many items change
// has them written a batch at a time as its pages arrive. A page that
// fails keeps what was written before it; the next poll, after a restart,
// fires the rest and nothing twice, and a delete still waits for a whole
// listing.
func TestManyChangesWrittenAhead(t *testing.T) {
	defer func(v, b int) { streamAfter, aheadBatch = v, b }(streamAfter, aheadBatch)
	streamAfter, aheadBatch = 0, 4
	api, srcs, h := cursorBaseline(t, 45)
	defer h.close()

	api.mu.Lock()
	for i := range api.items {
		api.items[i].status = "ready"
	}
	api.items = slices.Delete(api.items, 44, 45)
	api.failAt = 30
	api.mu.Unlock()
	if err := h.pollNow("s"); err == nil {
		t.Fatal("a poll whose fourth page failed succeeded")
	}
	early := types(h.events())
	if len(early) < 20 || len(early) > 30 {
		t.Fatalf("%d events written ahead of the failed page, want the first pages' (20 to 30): %v", len(early), early)
	}
	for i, e := range early {
		if want := fmt.Sprintf("s.changed:t%02d", i); e != want {
			t.Fatalf("event %d written ahead = %s, want %s", i, e, want)
		}
	}
	if got := counter(t, h.reg, "pollrelay_transitions_total", map[string]string{"source": "s", "type": "changed"}); int(got) != len(early) {
		t.Errorf("transitions counted after the failed poll = %v, want the %d written", got, len(early))
	}

	h.restart(srcs)
	api.mu.Lock()
	api.failAt = -1
	api.mu.Unlock()
	h.mustPoll("s")
	var want []string
	for i := range 44 {
		want = append(want, fmt.Sprintf("s.changed:t%02d", i))
	}
	want = append(want, "s.deleted:t44")
	if got := types(h.events()); !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	if got := h.status("s").ItemsTracked; got != 44 {
		t.Errorf("tracked %d, want 44", got)
	}
	h.mustPoll("s")
	if got := len(h.events()); got != len(want) {
		t.Errorf("an unchanged poll fired %d more events", got-len(want))
	}
}
