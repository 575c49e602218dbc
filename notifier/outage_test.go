package notifier

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/store"
)

// Receiver modes of outageReceiver.
const (
	receiverUp int32 = iota
	receiverRefusing
	receiverUnavailable
)

// outageReceiver is a receiver that can be down: refusing connections (its
// process is gone) or answering 503 (a proxy in front of it is up). It
// keeps counters only, not requests: the test measures the heap, and a
// receiver that kept every attempt would grow with attempts itself.
type outageReceiver struct {
	mode     atomic.Int32
	refused  atomic.Int64 // dials refused
	answered atomic.Int64 // 503s answered
	// strays counts requests that reached the handler while it was
	// refusing connections: a connection pooled from before the outage.
	strays atomic.Int64

	mu   sync.Mutex
	ok   map[string]int // 2xx answered, by webhook-id
	want int
	all  chan struct{} // closed once want distinct ids got a 2xx
}

// unavailablePage is what a proxy answers while the app behind it is down;
// about 1 KiB, so each attempt logs a full response body.
var unavailablePage = []byte("<html><head><title>503 Service Unavailable</title></head><body><h1>503 Service Unavailable</h1><p>" +
	strings.Repeat("The upstream is not available. ", 30) + "</p></body></html>")

func (o *outageReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	switch o.mode.Load() {
	case receiverRefusing:
		o.strays.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	case receiverUnavailable:
		o.answered.Add(1)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write(unavailablePage)
		return
	}
	o.mu.Lock()
	o.ok[r.Header.Get("webhook-id")]++
	o.check()
	o.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// check closes all once want ids are delivered; o.mu must be held.
func (o *outageReceiver) check() {
	if o.want > 0 && len(o.ok) >= o.want {
		select {
		case <-o.all:
		default:
			close(o.all)
		}
	}
}

// expect returns a channel closed once n distinct webhook-ids got a 2xx.
func (o *outageReceiver) expect(n int) <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.want = n
	o.check()
	return o.all
}

// dial refuses while the receiver is down the way a host without a
// listener does.
func (o *outageReceiver) dial(pn *pipeNet) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if o.mode.Load() == receiverRefusing {
			o.refused.Add(1)
			return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
		}
		return pn.dial(ctx, network, addr)
	}
}

// memSample is the process's memory at one point of the outage, after
// garbage collection.
type memSample struct {
	label      string
	at         time.Duration // since the outage began
	heap       uint64        // live heap (HeapAlloc right after GC)
	stack      uint64        // goroutine stacks in use
	goroutines int
	attempts   int // attempts recorded so far, all outcomes
}

// The receiver is down for 30 fake minutes (15 refusing connections, then
// 15 answering 503) while a poll writes 30 new events every 10 s, then
// comes back. Every event must get exactly one 2xx, every attempt must
// keep to the retry schedule (no hot loop, no stall), and the heap and the
// goroutine count must not grow with the outage.
//
// Not parallel: the heap is the process's, and another test running beside
// this one would be measured with it.
func TestReceiverOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("tens of thousands of attempts: minutes with -race (see README, Development)")
	}
	synctest.Test(t, func(t *testing.T) {
		const (
			pollEvery = 10 * time.Second
			perPoll   = 30
			phase     = 5 * time.Minute
		)
		schedule := []time.Duration{
			10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute,
			8 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour,
		}
		var sched []string
		for _, d := range schedule {
			sched = append(sched, d.String())
		}

		// Five minutes each: a warm-up, the outage, and five minutes back
		// up; the phases of the outage are samples of memory.
		stages := []int32{receiverUp}
		for range 3 {
			stages = append(stages, receiverRefusing)
		}
		for range 3 {
			stages = append(stages, receiverUnavailable)
		}
		stages = append(stages, receiverUp)

		// The test's own records are sized for every event up front, so
		// they don't grow during the outage and get counted as its heap.
		total := len(stages) * int(phase/pollEvery) * perPoll
		rx := &outageReceiver{ok: make(map[string]int, total), all: make(chan struct{})}
		pn := newPipeNet()
		srv := &http.Server{Handler: rx}
		// MaxIdleConnsPerHost as newHTTPClient sets it: with Go's default
		// of 2, most connections would be closed after every burst.
		tr := &http.Transport{DialContext: rx.dial(pn), MaxIdleConnsPerHost: 64}
		go srv.Serve(pn)
		t.Cleanup(func() {
			srv.Close()
			pn.Close()
			tr.CloseIdleConnections()
		})
		subs := parseSubs(t, `name: app
			url: `+bubbleURL+`
			secret: `+testSecret+`
			retry: {schedule: [`+strings.Join(sched, ", ")+`]}`)
		maxInFlight := subs[0].MaxInFlight
		// Errors only: the outage makes tens of thousands of "will retry"
		// lines, and t.Log keeps every line in memory, which would be
		// measured as pollrelay's heap.
		e := startLogging(t, t.TempDir(), subs, Options{Transport: tr}, slog.LevelError)

		// ~1 KiB objects, so a body is the size of a typical item's.
		pad := strings.Repeat("x", 900)
		created := make(map[string]time.Time, total)
		ids := make([]string, 0, total)
		poll := func() {
			now := time.Now()
			evs := make([]*event.Event, perPoll)
			for i := range evs {
				item := fmt.Sprintf("item-%05d", len(ids)+i)
				evs[i] = &event.Event{
					ID: event.NewID(now), Type: "task.ready", Kind: event.Changed, Source: "tasks", ItemID: item,
					Previous: json.RawMessage(`"queued"`), Current: json.RawMessage(`"ready"`),
					Object:    json.RawMessage(fmt.Sprintf(`{"id":%q,"status":"ready","blob":%q}`, item, pad)),
					CreatedAt: now,
				}
			}
			// One transaction per poll, as the diff writes a poll's changes.
			if err := e.st.Update(func(t store.Txn) error {
				for _, ev := range evs {
					if err := t.AddEvent(ev); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			for _, ev := range evs {
				ids = append(ids, ev.ID)
				created[ev.ID] = now
			}
		}
		attempts := func() int {
			n := 0
			for _, o := range outcomes {
				n += int(e.outcomes("app", o))
			}
			return n
		}

		var outageStart, outageEnd time.Time
		var samples []memSample
		sample := func(label string) {
			// Two collections: sync.Pool keeps objects through one.
			runtime.GC()
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			s := memSample{label: label, at: time.Since(outageStart), heap: ms.HeapAlloc, stack: ms.StackInuse,
				goroutines: runtime.NumGoroutine(), attempts: attempts()}
			samples = append(samples, s)
			t.Logf("%-22s t=%-6s heap %6.1f MiB  stacks %5.2f MiB  goroutines %4d  attempts %6d  events %5d",
				s.label, s.at, mib(s.heap), mib(s.stack), s.goroutines, s.attempts, len(ids))
		}

		tick := time.NewTicker(pollEvery)
		defer tick.Stop()
		for i, mode := range stages {
			// Attempts due at this instant run under the mode that is
			// ending, so each attempt's outcome is known from its time.
			synctest.Wait()
			switch {
			case i == 1:
				outageStart = time.Now()
				sample("outage start")
			case mode == receiverUp && i > 0:
				outageEnd = time.Now()
				sample("outage end")
			case i > 1:
				sample(fmt.Sprintf("outage +%s", time.Since(outageStart)))
			}
			rx.mode.Store(mode)
			if mode == receiverRefusing {
				// The receiver's process is gone, and its connections
				// with it.
				tr.CloseIdleConnections()
			}
			for range phase / pollEvery {
				poll()
				<-tick.C
			}
		}
		sample("back up +5m")

		select {
		case <-rx.expect(len(ids)):
		case <-time.After(3 * time.Hour): // fake time: only stops a broken test
			rx.mu.Lock()
			defer rx.mu.Unlock()
			t.Fatalf("%d of %d events delivered 3 h after the receiver came back", len(rx.ok), len(ids))
		}
		synctest.Wait()
		sample("all delivered")

		// Nothing lost, nothing twice.
		rx.mu.Lock()
		for _, id := range ids {
			if n := rx.ok[id]; n != 1 {
				t.Errorf("event %s got %d 2xx, want exactly 1", id, n)
			}
		}
		if len(rx.ok) != len(ids) {
			t.Errorf("%d webhook-ids got a 2xx, %d events were written", len(rx.ok), len(ids))
		}
		rx.mu.Unlock()
		if n := rx.strays.Load(); n != 0 {
			t.Errorf("%d requests reached the receiver while it refused connections", n)
		}

		// Every attempt keeps to the schedule: the first at once, each
		// retry within the jitter (±20%) of its step. Too early would be a
		// hot loop, too late a stall; in fake time nothing else moves them.
		var failed, allowed, least, refusedSeen, unavailableSeen int
		for _, id := range ids {
			c := created[id]
			as := e.attempts(id)
			if len(as) == 0 {
				t.Errorf("event %s: no attempt logged", id)
				continue
			}
			if !as[0].At.Equal(c) {
				t.Errorf("event %s: first attempt at %s, written at %s", id, as[0].At, c)
			}
			for j := 1; j < len(as); j++ {
				if gap := as[j].At.Sub(as[j-1].At); !within(gap, schedule[j-1]) {
					t.Errorf("event %s: attempt %d came %s after attempt %d, want %s ±20%%", id, j+1, gap, j, schedule[j-1])
				}
			}
			last := as[len(as)-1]
			if last.Outcome != OutcomeSuccess || last.Status != http.StatusNoContent {
				t.Errorf("event %s: last attempt %+v, want a 204", id, last)
			}
			down := !c.Before(outageStart) && c.Before(outageEnd)
			for _, a := range as[:len(as)-1] {
				failed++
				switch {
				case !down || a.At.After(outageEnd):
					t.Errorf("event %s: attempt %d failed outside the outage: %+v", id, a.N, a)
				case a.Outcome == OutcomeConnection && strings.Contains(a.Error, "connection refused"):
					refusedSeen++
				case a.Outcome == OutcomeHTTPError && a.Status == http.StatusServiceUnavailable && len(a.Body) == maxResponseBody:
					unavailableSeen++
				default:
					t.Errorf("event %s: attempt %d: %+v, want connection refused or a logged 503", id, a.N, a)
				}
			}
			if down && !last.At.After(outageEnd) {
				t.Errorf("event %s: delivered at %s, before the receiver came back at %s", id, last.At, outageEnd)
			}
			if down {
				// How many attempts fit between the event and the end of
				// the outage if every wait were 20% short (the most the
				// schedule allows) or 20% long (the fewest).
				var sum time.Duration
				for k := 0; k <= len(schedule); k++ {
					if c.Add(sum * 8 / 10).After(outageEnd) {
						break
					}
					allowed++
					if k < len(schedule) {
						sum += schedule[k]
					}
				}
				sum = 0
				for k := 0; k <= len(schedule); k++ {
					if c.Add(sum * 12 / 10).After(outageEnd) {
						break
					}
					least++
					if k < len(schedule) {
						sum += schedule[k]
					}
				}
			}
		}
		if failed < least || failed > allowed {
			t.Errorf("%d failed attempts during the outage; the schedule allows %d to %d", failed, least, allowed)
		}
		// Each refused dial and each 503 is one logged attempt: none is
		// retried out of sight (a client retry would be a second request
		// per attempt).
		if int64(refusedSeen) != rx.refused.Load() || int64(unavailableSeen) != rx.answered.Load() {
			t.Errorf("logged %d refused and %d 503 attempts; the receiver saw %d refused dials and answered %d 503s",
				refusedSeen, unavailableSeen, rx.refused.Load(), rx.answered.Load())
		}
		t.Logf("events %d, delivered %d (once each), lost 0; failed attempts %d (refused %d, 503 %d), schedule allows %d..%d",
			len(ids), len(rx.ok), failed, refusedSeen, unavailableSeen, least, allowed)

		// Memory: every sample of the outage and after it against the one
		// at its start.
		//
		// The heap bound is 20 MiB. What may legitimately grow is Badger's
		// block and index caches, filling up to the 8 + 8 MiB store.Open
		// caps them at as retries read deliveries back from tables; 4 MiB
		// more covers the caches' bookkeeping and this test's own event
		// ids. (A heap profile of a run showed the growth to be Badger's
		// block cache and nothing of the notifier's.) The memtable's arena
		// is allocated whole when it is created, so its filling doesn't
		// show, and synctest.Wait lets a pending flush finish before each
		// sample. Proportional to attempts would be much more: the outage
		// makes ~32,000 failed attempts, each building a ~1.3 KiB signed
		// body and logging a 1 KiB answer; keeping even 1 KiB per attempt
		// would be ~32 MiB, and a goroutine, a request or an attempt
		// record kept per retry costs more than that.
		//
		// Goroutines and their stacks may differ by the keep-alive
		// connections open at the moment of the sample: three goroutines
		// each (the transport's two and the server's), at most
		// max_in_flight connections, with up to 64 KiB of stack each. One
		// per waiting retry would be
		// thousands.
		const heapBound = 20 << 20
		base := samples[0]
		for _, s := range samples[1:] {
			if s.heap > base.heap && s.heap-base.heap > heapBound {
				t.Errorf("%s: live heap %.1f MiB, %.1f MiB more than at the outage's start (bound %.0f MiB) after %d more attempts",
					s.label, mib(s.heap), mib(s.heap-base.heap), mib(heapBound), s.attempts-base.attempts)
			}
			if s.goroutines > base.goroutines+3*maxInFlight {
				t.Errorf("%s: %d goroutines, %d at the outage's start", s.label, s.goroutines, base.goroutines)
			}
			if s.stack > base.stack+uint64(3*maxInFlight)*64<<10 {
				t.Errorf("%s: goroutine stacks %.2f MiB, %.2f MiB at the outage's start", s.label, mib(s.stack), mib(base.stack))
			}
		}

		if st, _ := e.n.Stats("app"); st.QueueLength+st.RetryQueueLength+st.DeadCount != 0 || st.FailureCount != 0 || st.Disabled {
			t.Errorf("after recovery: %+v", st)
		}
	})
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
