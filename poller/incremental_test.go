package poller

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// changelog is an upstream that lists only what changed since
// ?updated_since= (a `_gte` filter: updated_at at or after it), two items
// a page, cursor-paginated, and whose items a test changes. Its clock is
// the test's.
type changelog struct {
	mu    sync.Mutex
	rows  map[string]row
	asked []string // updated_since of each first page ("" = none)
	// hold, when set, keeps page 2 of the next listing until closed or
	// until the request is cancelled.
	hold chan struct{}
}

type row struct {
	Status  string    `json:"status"`
	Updated time.Time `json:"updated_at"`
}

func (c *changelog) set(id, status string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if status == "" {
		delete(c.rows, id)
		return
	}
	c.rows[id] = row{status, at}
}

func (c *changelog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	cursor, _ := strconv.Atoi(q.Get("cursor"))
	c.mu.Lock()
	if cursor == 0 {
		c.asked = append(c.asked, q.Get("updated_since"))
	}
	hold := c.hold
	var since time.Time
	if s := q.Get("updated_since"); s != "" {
		var err error
		if since, err = time.Parse(time.RFC3339Nano, s); err != nil {
			c.mu.Unlock()
			http.Error(w, "bad updated_since", http.StatusBadRequest)
			return
		}
	}
	var ids []string
	for id, rw := range c.rows {
		if !rw.Updated.Before(since) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	type item struct {
		ID string `json:"id"`
		row
	}
	page := struct {
		Items []item `json:"items"`
		Next  *int   `json:"next"`
	}{Items: []item{}}
	for _, id := range ids[min(cursor, len(ids)):min(cursor+2, len(ids))] {
		page.Items = append(page.Items, item{id, c.rows[id]})
	}
	if cursor+2 < len(ids) {
		n := cursor + 2
		page.Next = &n
	}
	c.mu.Unlock()
	if cursor > 0 && hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(page)
}

func (c *changelog) requests() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.asked)
}

const incrementalSource = `  - name: s
    url: 'http://upstream.test/items'
    interval: 1h
    items: '.items[]'
    pagination: {next: '.next', param: cursor}
    incremental: {param: updated_since, from: '.updated_at', lookback: 10s, full_every: 6h}
    events:
      - {type: 'item.{current}', on: changed}
      - {type: item.created, on: created}
      - {type: item.deleted, on: deleted}
`

// TestIncrementalAsksOnlyForChanges: after a full first poll, each poll
// asks for what changed since the largest updated_at it has applied, less
// the lookback; an item an incremental listing leaves out is unchanged,
// and only the full listing full_every brings decides that one is gone. A
// watermark that goes backwards (an item stamped by a clock behind) is
// followed, and a poll cut off between its pages moves nothing: the next
// asks again from where the last complete one left.
func TestIncrementalAsksOnlyForChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		up := &changelog{rows: map[string]row{}}
		for _, id := range []string{"a", "b", "c"} {
			up.set(id, "queued", t0.Add(-time.Hour))
		}
		h := newHarness(t, handlerTransport{up})
		srcs := sources(t, incrementalSource)
		h.start(srcs)
		defer func() { h.close() }()
		stamp := func(d time.Duration) string { return t0.Add(d).UTC().Format(time.RFC3339Nano) }

		h.mustPoll("s") // full: the baseline
		up.set("b", "ready", t0)
		up.set("c", "", time.Time{})
		h.mustPoll("s")
		if got := up.requests(); !slices.Equal(got, []string{"", stamp(-time.Hour - 10*time.Second)}) {
			t.Fatalf("updated_since sent: %q", got)
		}
		if got := types(h.events()); !slices.Equal(got, []string{"item.ready:b"}) {
			t.Fatalf("events after an incremental poll: %v (c is left out, not deleted)", got)
		}

		// An item stamped 5s before the watermark, by a clock behind: the
		// lookback still asks for it.
		up.set("d", "queued", t0.Add(-5*time.Second))
		h.mustPoll("s")
		// b is stamped again by that clock, before d: the largest
		// updated_at seen is now d's, and the watermark moves back to it,
		// which can only ask for more.
		up.set("b", "done", t0.Add(-8*time.Second))
		h.mustPoll("s")
		h.mustPoll("s")
		if got := up.requests()[2:]; !slices.Equal(got, []string{stamp(-10 * time.Second), stamp(-10 * time.Second), stamp(-15 * time.Second)}) {
			t.Fatalf("updated_since after the clock went back: %q", got)
		}

		// Three changes make two pages; the process stops while page 2 is
		// being fetched. Page 1's changes may be stored already; the
		// watermark is not moved, so nothing is skipped.
		for _, id := range []string{"a", "e", "f"} {
			up.set(id, "ready", t0.Add(time.Minute))
		}
		up.hold = make(chan struct{})
		done := make(chan error, 1)
		go func() { done <- h.pollNow("s") }()
		synctest.Wait() // page 2 is held
		h.restart(srcs)
		<-done
		up.hold = nil
		h.mustPoll("s")
		asked := up.requests()
		if n := len(asked); asked[n-1] != asked[n-2] || asked[n-1] != stamp(-15*time.Second) {
			t.Fatalf("after the cut-off poll the next asked from %q, want %q as the cut-off one did", asked[n-1], asked[n-2])
		}
		want := []string{"item.ready:b", "item.created:d", "item.done:b", "item.ready:a", "item.created:e", "item.created:f"}
		got := types(h.events())
		slices.Sort(got[3:])
		slices.Sort(want[3:])
		if !slices.Equal(got, want) {
			t.Fatalf("events = %v, want %v, each once", got, want)
		}

		// full_every: a full listing, which finds c gone.
		time.Sleep(6 * time.Hour)
		h.mustPoll("s")
		if asked := up.requests(); asked[len(asked)-1] != "" {
			t.Errorf("after full_every the poll sent updated_since=%q, want a full listing", asked[len(asked)-1])
		}
		if evs := types(h.events()); evs[len(evs)-1] != "item.deleted:c" {
			t.Errorf("the full listing fired %v, want c deleted last", evs)
		}
		if st := h.status("s"); st.LastOutcome != OutcomeSuccess || st.Listing != "full" || st.Watermark != "" {
			t.Errorf("status %+v", st)
		}
		h.mustPoll("s")
		if st := h.status("s"); st.Listing != "changes" || st.Watermark == "" {
			t.Errorf("status after an incremental poll: listing %q, watermark %q", st.Listing, st.Watermark)
		}
	})
}

// The watermark's forms: an RFC 3339 time less the lookback, epoch
// seconds and milliseconds less it, a cursor as it came; in a query
// parameter or a field of the JSON body; and a listing cut short by
// max_pages moves none.
func TestWatermarkForms(t *testing.T) {
	inc := &incremental{lookback: 90 * time.Second}
	for stored, want := range map[string]string{
		`"2026-03-01T10:00:00+01:00"`: `"2026-03-01T09:58:30+01:00"`,
		`1767225600`:                  `1767225510`,
		`1767225600000`:               `1767225510000`,
		`1767225600.5`:                `1767225510.5`,
	} {
		if got, err := lookedBack(stored, inc); err != nil || got != want {
			t.Errorf("%s less 90s = %s (%v), want %s", stored, got, err, want)
		}
	}
	if _, err := parseMark(json.RawMessage(`"yesterday"`)); err == nil {
		t.Error(`"yesterday" read as a watermark`)
	}
	older, _ := parseMark(json.RawMessage(`"2026-03-01T10:00:00Z"`))
	newer, _ := parseMark(json.RawMessage(`"2026-03-01T11:00:00+01:00"`))
	if newer.after(older) || older.after(newer) || !older.after(mark{}) {
		t.Error("times compare by instant, not by text")
	}

	src, err := compile(source(t, "  - {name: s, url: 'http://up.test/items?kind=a', method: POST, body: {limit: 10}, items: '.items[]', incremental: {body_field: since, cursor: '.sync'}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := requestFor(src, plan{sent: `"tok-7"`})
	if err != nil || r.url != "http://up.test/items?kind=a" || string(r.body) != `{"limit":10,"since":"tok-7"}` {
		t.Errorf("body_field request: %s %s (%v)", r.url, r.body, err)
	}
	m, err := pageMark(t.Context(), src, []byte(`{"items": [], "sync": "tok-8"}`), mark{})
	if err != nil || m.raw != `"tok-8"` {
		t.Errorf("cursor = %q (%v)", m.raw, err)
	}
	src, err = compile(source(t, "  - {name: s, url: 'http://up.test/items?kind=a', items: '.items[]', incremental: {param: since, from: .ts}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := requestFor(src, plan{sent: `1767225600`}); r.url != "http://up.test/items?kind=a&since=1767225600" {
		t.Errorf("param request: %s", r.url)
	}
	if got := withQuery("http://up.test/i?z=1&filter=a;b&flag&since=old&a=%7E#top", "since", "2026-01-01T00:00:00+01:00"); got != "http://up.test/i?z=1&filter=a;b&flag&a=%7E&since=2026-01-01T00%3A00%3A00%2B01%3A00#top" {
		t.Errorf("the query is not kept as written: %s", got)
	}
	big, err := compile(source(t, "  - {name: s, url: 'http://up.test/i', method: POST, body: {account: 12345678901234567890, q: 'a<b'}, items: '.items[]', incremental: {body_field: since, from: .ts}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := requestFor(big, plan{sent: `5`}); string(r.body) != `{"account":12345678901234567890,"q":"a<b","since":5}` {
		t.Errorf("the body's values changed: %s", r.body)
	}
	// One item whose from is no time: the page still counts, its largest
	// readable value is kept aside, and the stored watermark stays.
	src, err = compile(source(t, "  - {name: s, url: 'http://up.test/items', items: '.items[]', incremental: {param: since, from: .ts}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	m, bad := pageMark(t.Context(), src, []byte(`{"items": [{"ts": "2026-01-01T00:00:00Z"}, {"ts": ""}, {"ts": "1767225600"}]}`), mark{})
	if bad == nil || m.raw != `"2026-01-01T00:00:00Z"` {
		t.Errorf("mark %q, bad %v", m.raw, bad)
	}
	if mk := markFor(plan{}, listing{complete: true, mark: m, markErr: bad}, "k"); mk.Watermark != "" {
		t.Errorf("a listing with an unreadable from left watermark %q", mk.Watermark)
	}
	if got, _ := lookedBack(`1767225600000000`, &incremental{lookback: time.Minute}); got != `1767225540000000` {
		t.Errorf("epoch µs less a minute = %s", got)
	}
	cut := markFor(plan{sent: "1"}, listing{complete: false, mark: mark{raw: "9"}}, "k")
	if cut.Watermark != "" || cut.Full {
		t.Errorf("a listing cut short left %+v", cut)
	}
	if m := markFor(plan{full: true}, listing{complete: true, mark: mark{raw: "9"}}, "k"); m.Watermark != "9" || !m.Full {
		t.Errorf("a complete full listing left %+v", m)
	}
}

// An incremental listing leaves out what did not change, and that still
// counts: an item settling is seen again in its pending state, a stalled
// rule fires on time, and deletes held by the mass-delete guard are
// confirmed by the full listings that follow (the next polls stay full
// until they are).
func TestIncrementalSettleStallAndHeldDeletes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		up := &changelog{rows: map[string]row{}}
		for _, id := range []string{"a", "b", "c", "d"} {
			up.set(id, "queued", t0.Add(-time.Hour))
		}
		h := newHarness(t, handlerTransport{up})
		h.start(sources(t, `  - name: s
    url: 'http://upstream.test/items'
    interval: 5m
    items: '.items[]'
    settle: 2
    confirm_polls: 2
    pagination: {next: '.next', param: cursor}
    incremental: {param: updated_since, from: '.updated_at', full_every: 1h}
    events:
      - {type: 'item.{current}', on: changed}
      - {type: item.deleted, on: deleted}
      - {type: item.stuck, on: stalled, state: queued, after: 80m}
`))
		defer h.close()
		h.mustPoll("s") // the baseline
		up.set("a", "ready", t0.Add(time.Minute))
		up.set("b", "ready", t0.Add(2*time.Minute))
		h.mustPoll("s") // a and b listed once, settling
		h.mustPoll("s") // from b's updated_at: a is left out, still ready upstream
		got := types(h.events())
		slices.Sort(got)
		if !slices.Equal(got, []string{"item.ready:a", "item.ready:b"}) {
			t.Fatalf("after a and b settle: %v", got)
		}
		// c and d stay queued: 80 minutes after they were first seen the
		// stalled rule fires, though no listing names them since.
		time.Sleep(81 * time.Minute)
		h.mustPoll("s")
		stuck := 0
		for _, e := range types(h.events()) {
			if e == "item.stuck:c" || e == "item.stuck:d" {
				stuck++
			}
		}
		if stuck != 2 {
			t.Fatalf("stalled events: %v", types(h.events()))
		}
		// Three of four gone: held, then confirmed by the next full
		// listing, although full_every has not passed again.
		for _, id := range []string{"b", "c", "d"} {
			up.set(id, "", time.Time{})
		}
		time.Sleep(61 * time.Minute)
		h.mustPoll("s") // full: holds the deletes
		h.mustPoll("s") // full again: confirms them
		var deleted []string
		for _, e := range types(h.events()) {
			if strings.HasPrefix(e, "item.deleted:") {
				deleted = append(deleted, e)
			}
		}
		slices.Sort(deleted)
		if !slices.Equal(deleted, []string{"item.deleted:b", "item.deleted:c", "item.deleted:d"}) {
			t.Errorf("deletes after two full listings: %v; requests %q", deleted, up.requests())
		}
	})
}
