package diff

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/store"
	"github.com/pollrelay/pollrelay/store/badger"
)

// db is a real Badger in a test directory that can be reopened, as a
// restart would.
type db struct {
	t   *testing.T
	dir string
	st  store.Store
}

func newDB(t *testing.T) *db {
	d := &db{t: t, dir: t.TempDir()}
	d.open()
	t.Cleanup(func() { d.st.Close() })
	return d
}

func (d *db) open() {
	st, err := badger.Open(badger.Options{Path: d.dir})
	if err != nil {
		d.t.Fatal(err)
	}
	d.st = st
}

func (d *db) reopen() {
	if err := d.st.Close(); err != nil {
		d.t.Fatal(err)
	}
	d.open()
}

// events returns the types of logged events ("type:item"), oldest first.
func (d *db) events() []string {
	d.t.Helper()
	var out []string
	err := d.st.View(func(t store.Txn) error {
		return t.Events("", func(e *event.Event) bool {
			out = append([]string{e.Type + ":" + e.ItemID}, out...)
			return true
		})
	})
	if err != nil {
		d.t.Fatal(err)
	}
	return out
}

func (d *db) sourceState(name string) store.SourceState {
	d.t.Helper()
	var ss store.SourceState
	if err := d.st.View(func(t store.Txn) error {
		var err error
		ss, err = t.SourceState(name)
		return err
	}); err != nil {
		d.t.Fatal(err)
	}
	return ss
}

func (d *db) count(name string) int {
	d.t.Helper()
	var n int
	if err := d.st.View(func(t store.Txn) error {
		var err error
		n, err = t.CountItems(name)
		return err
	}); err != nil {
		d.t.Fatal(err)
	}
	return n
}

func listing(n int, state string) []Observation {
	out := make([]Observation, n)
	for i := range out {
		out[i] = ob(fmt.Sprintf("i%02d", i), state)
	}
	return out
}

func mustApply(t *testing.T, d *db, yaml string, p Poll) Result {
	t.Helper()
	res, err := Apply(context.Background(), d.st, parseSource(t, yaml), p)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestMassDeleteGuard: an upstream that answers `{"data": []}` for a poll
// during an outage fires nothing; the same empty listing on confirm_polls
// consecutive polls is believed.
func TestMassDeleteGuard(t *testing.T) {
	const src = "  - {name: s, url: 'https://x.test/s', items: '.data[]', confirm_polls: 3}\n"
	d := newDB(t)
	mustApply(t, d, src, Poll{Observations: listing(10, "queued"), Complete: true, Now: t0})

	// One empty answer, then the listing is back: nothing fired, and the
	// suspicion is forgotten.
	res := mustApply(t, d, src, Poll{Complete: true, Now: t0.Add(time.Minute)})
	if res.HeldDeletes != 10 || len(res.Events) != 0 || d.count("s") != 10 || d.sourceState("s").SuspectPolls != 1 {
		t.Fatalf("first empty listing: held %d, events %d, tracked %d", res.HeldDeletes, len(res.Events), d.count("s"))
	}
	mustApply(t, d, src, Poll{Observations: listing(10, "queued"), Complete: true, Now: t0.Add(2 * time.Minute)})
	if got := d.events(); len(got) != 0 || d.sourceState("s").SuspectPolls != 0 {
		t.Fatalf("after recovery: events %v, suspect polls %d", got, d.sourceState("s").SuspectPolls)
	}

	// Three empty answers in a row: the third is believed.
	for i := range 2 {
		res := mustApply(t, d, src, Poll{Complete: true, Now: t0.Add(time.Duration(3+i) * time.Minute)})
		if res.HeldDeletes != 10 || len(res.Events) != 0 {
			t.Fatalf("empty listing %d: held %d, events %d", i+1, res.HeldDeletes, len(res.Events))
		}
	}
	res = mustApply(t, d, src, Poll{Complete: true, Now: t0.Add(5 * time.Minute)})
	if res.HeldDeletes != 0 || len(res.Events) != 10 || d.count("s") != 0 {
		t.Fatalf("confirmed: held %d, events %d, tracked %d", res.HeldDeletes, len(res.Events), d.count("s"))
	}
}

func TestMassDeleteGuardLetsOrdinaryDeletesThrough(t *testing.T) {
	const src = "  - {name: s, url: 'https://x.test/s', items: '.data[]'}\n"
	d := newDB(t)
	mustApply(t, d, src, Poll{Observations: listing(10, "queued"), Complete: true, Now: t0})
	// 5 of 10 is not more than max_delete_ratio 0.5.
	res := mustApply(t, d, src, Poll{Observations: listing(5, "queued"), Complete: true, Now: t0.Add(time.Minute)})
	if res.HeldDeletes != 0 || len(res.Events) != 5 {
		t.Fatalf("held %d, events %d", res.HeldDeletes, len(res.Events))
	}
}

// TestMassDeleteGuardKeepsOtherChanges: a held listing still applies what
// it shows, and stores no validators (it must be seen again).
func TestMassDeleteGuardKeepsOtherChanges(t *testing.T) {
	const src = "  - {name: s, url: 'https://x.test/s', items: '.data[]'}\n"
	d := newDB(t)
	mustApply(t, d, src, Poll{Observations: listing(10, "queued"), Complete: true, Now: t0, Validators: Validators{ETag: `"1"`, For: "k"}})
	if ss := d.sourceState("s"); ss.ETag != `"1"` || ss.ValidatorsFor != "k" {
		t.Fatalf("validators after a clean poll: %+v", ss)
	}
	res := mustApply(t, d, src, Poll{Observations: []Observation{ob("i00", "ready")}, Complete: true, Now: t0.Add(time.Minute),
		Validators: Validators{ETag: `"2"`, For: "k"}})
	if res.HeldDeletes != 9 || !slices.Equal(d.events(), []string{"s.changed:i00"}) {
		t.Fatalf("held %d, events %v", res.HeldDeletes, d.events())
	}
	if ss := d.sourceState("s"); ss.ETag != "" {
		t.Errorf("validators stored for a held listing: %+v", ss)
	}
}

// TestSettle: a one-poll flicker fires nothing; a state seen on `settle`
// consecutive polls fires once.
func TestSettle(t *testing.T) {
	const src = "  - {name: s, url: 'https://x.test/s', items: '.data[]', settle: 2}\n"
	d := newDB(t)
	states := []string{"processing", "ready", "processing", "processing", "ready", "ready", "ready"}
	for i, s := range states {
		mustApply(t, d, src, Poll{Observations: []Observation{ob("a", s)}, Complete: true, Now: t0.Add(time.Duration(i) * time.Minute)})
	}
	if got := d.events(); !slices.Equal(got, []string{"s.changed:a"}) {
		t.Errorf("events = %v, want one change (processing→ready), the flicker ignored", got)
	}
}

// TestStalledOncePerStayAcrossRestarts: the stay is measured from the
// stored entry time, so a restart neither loses nor repeats the event.
func TestStalledOncePerStayAcrossRestarts(t *testing.T) {
	const src = `  - name: s
    url: https://x.test/s
    items: '.data[]'
    events:
      - {type: job.stuck, on: stalled, state: queued, after: 10m}
      - {type: 'job.{current}', on: changed}
`
	d := newDB(t)
	poll := func(min int, state string) {
		mustApply(t, d, src, Poll{Observations: []Observation{ob("a", state)}, Complete: true, Now: t0.Add(time.Duration(min) * time.Minute)})
	}
	poll(0, "queued")
	poll(5, "queued")
	poll(11, "queued")
	d.reopen()
	poll(12, "queued")
	poll(30, "queued")
	poll(31, "processing")
	poll(32, "queued")
	poll(40, "queued")
	d.reopen()
	poll(43, "queued")
	poll(50, "queued")
	want := []string{"job.stuck:a", "job.processing:a", "job.queued:a", "job.stuck:a"}
	if got := d.events(); !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
}

// TestReplayChecksOnlyStalls: a 304 re-observes the stored items.
func TestReplayChecksOnlyStalls(t *testing.T) {
	const src = `  - name: s
    url: https://x.test/s
    items: '.data[]'
    events: [{type: job.stuck, on: stalled, state: queued, after: 10m}]
`
	d := newDB(t)
	mustApply(t, d, src, Poll{Observations: listing(3, "queued"), Complete: true, Now: t0, Validators: Validators{ETag: `"e"`, For: "k"}})
	res := mustApply(t, d, src, Poll{Replay: true, Now: t0.Add(time.Minute)})
	if len(res.Events) != 0 || res.Changes != 0 {
		t.Fatalf("replay before the stall: %+v", res)
	}
	res = mustApply(t, d, src, Poll{Replay: true, Now: t0.Add(11 * time.Minute)})
	if len(res.Events) != 3 || res.Tracked != 3 {
		t.Fatalf("replay after the stall: %d events, %d tracked", len(res.Events), res.Tracked)
	}
	if ss := d.sourceState("s"); ss.ETag != `"e"` || ss.ValidatorsFor != "k" {
		t.Errorf("replay lost the validators: %+v", ss)
	}
}

// TestIncompleteFirstPollIsTheBaseline: a listing always longer than
// max_pages must still report what appears at its top.
func TestIncompleteFirstPollIsTheBaseline(t *testing.T) {
	const src = "  - {name: s, url: 'https://x.test/s', items: '.data[]'}\n"
	d := newDB(t)
	res := mustApply(t, d, src, Poll{Observations: listing(3, "queued"), Complete: false, Now: t0, Validators: Validators{ETag: `"e"`}})
	if !res.Baseline || len(res.Events) != 0 {
		t.Fatalf("first poll: %+v", res)
	}
	if ss := d.sourceState("s"); !ss.Baselined || ss.ETag != "" {
		t.Errorf("source state = %+v (validators of a partial listing must not be kept)", ss)
	}
	res = mustApply(t, d, src, Poll{Observations: append(listing(2, "queued"), ob("new", "queued")), Complete: false, Now: t0.Add(time.Minute)})
	if !slices.Equal(d.events(), []string{"s.created:new"}) || res.Tracked != 4 {
		t.Errorf("events = %v, tracked %d", d.events(), res.Tracked)
	}
}
