package jqexpr

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// watchEvery is how often the watchdog looks at the deadlines and the heap.
// An expression that allocates as fast as Go can (about a GiB a second
// here) gets a few MiB past its bound between two looks.
const watchEvery = 2 * time.Millisecond

// running is one evaluation under watch.
type running struct {
	cancel   context.CancelCauseFunc
	deadline time.Time
	heapAt   uint64
	limits   Limits
	src      string
}

// watchdog cancels evaluations past their deadline or whose process heap
// grew past their bound. One goroutine serves every evaluation and runs
// only while there are some, so an idle process does not wake for it.
type watchdog struct {
	mu      sync.Mutex
	evals   map[*running]struct{}
	active  bool
	wake    chan struct{}
	samples [2]metrics.Sample
	// stopped counts evaluations stopped for memory; a stop also hands
	// the garbage back to the OS, which a sidecar's memory limit counts.
	stopped atomic.Int64
	// last is the heap at the latest look: an evaluation starting while
	// the watchdog runs counts from it instead of reading the heap itself,
	// which would cost more than most evaluations.
	last uint64
}

var dog = &watchdog{
	evals: map[*running]struct{}{},
	wake:  make(chan struct{}, 1),
	samples: [2]metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/stacks:bytes"},
	},
}

// heap reads the bytes of heap objects (live, or dead and not yet swept)
// and goroutine stacks. Callers hold mu.
func (w *watchdog) heap() uint64 {
	metrics.Read(w.samples[:])
	var n uint64
	for _, s := range w.samples {
		if s.Value.Kind() == metrics.KindUint64 {
			n += s.Value.Uint64()
		}
	}
	return n
}

// start puts an evaluation under watch and returns its context and the
// function that ends the watch.
func (w *watchdog) start(parent context.Context, l Limits, src string) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	r := &running{cancel: cancel, limits: l, src: src}
	w.mu.Lock()
	if !w.active {
		w.active = true
		w.last = w.heap()
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	r.heapAt = w.last
	w.evals[r] = struct{}{}
	w.mu.Unlock()
	return ctx, func() {
		w.mu.Lock()
		delete(w.evals, r)
		w.mu.Unlock()
		cancel(nil)
	}
}

// loop runs for the life of the process, started from init so that it
// belongs to no testing/synctest bubble and its clock is the real one
// whatever the evaluating goroutine's; it sleeps on wake while nothing runs.
func (w *watchdog) loop() {
	for range w.wake {
		t := time.NewTicker(watchEvery)
		for range t.C {
			if !w.tick() {
				break
			}
		}
		t.Stop()
	}
}

// tick cancels what is over a limit and reports whether to keep watching.
func (w *watchdog) tick() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.evals) == 0 {
		w.active = false
		return false
	}
	now, heap := time.Now(), w.heap()
	w.last = heap
	var freed bool
	for r := range w.evals {
		if r.deadline.IsZero() {
			// Set here rather than at start, by this goroutine's clock.
			r.deadline = now.Add(r.limits.Timeout)
		}
		switch {
		case now.After(r.deadline):
			r.cancel(limitErr("did not finish within %s (the limit on one evaluation)", r.limits.Timeout))
			delete(w.evals, r)
		case heap > r.heapAt && heap-r.heapAt > r.limits.MaxHeapGrowth:
			r.cancel(limitErr("stopped after building more than %s (the limit on what one evaluation may allocate)",
				bytesText(r.limits.MaxHeapGrowth)))
			delete(w.evals, r)
			freed = true
		}
	}
	if freed {
		w.stopped.Add(1)
		// The evaluation stops at its next instruction; what it built is
		// garbage then. Returning it now keeps the resident size near
		// what it was instead of at the peak.
		time.AfterFunc(10*watchEvery, debug.FreeOSMemory)
	}
	return true
}

func init() { go dog.loop() }

// Running is how many evaluations are under way now.
func Running() int {
	dog.mu.Lock()
	defer dog.mu.Unlock()
	return len(dog.evals)
}
