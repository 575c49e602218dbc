package poller

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// scheduler wakes loops when they are due. It is one goroutine and one
// timer for every source, so a source waiting for its next poll costs a
// heap entry rather than a goroutine, a timer and their stack; a poll gets
// a goroutine of its own only while it runs.
type scheduler struct {
	now func() time.Time

	mu sync.Mutex
	q  dueQueue
	// kick wakes run when the earliest due time may have moved earlier.
	kick chan struct{}
}

func newScheduler(now func() time.Time) *scheduler {
	return &scheduler{now: now, kick: make(chan struct{}, 1)}
}

// add (re)schedules l at at. Callers hold l.gate, never s.mu.
func (s *scheduler) add(l *loop, at time.Time) {
	s.mu.Lock()
	l.due = at
	if l.idx >= 0 {
		heap.Fix(&s.q, l.idx)
	} else {
		heap.Push(&s.q, l)
	}
	first := s.q[0] == l
	s.mu.Unlock()
	if first {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// remove takes l off the schedule; a loop not on it is left alone.
func (s *scheduler) remove(l *loop) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l.idx >= 0 {
		heap.Remove(&s.q, l.idx)
	}
}

// run fires each loop when it falls due until ctx ends. A fired loop is off
// the schedule until its poll puts it back.
func (s *scheduler) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var due []*loop
	for {
		s.mu.Lock()
		now := s.now()
		due = due[:0]
		for len(s.q) > 0 && !s.q[0].due.After(now) {
			due = append(due, heap.Pop(&s.q).(*loop))
		}
		wait := time.Hour
		if len(s.q) > 0 {
			wait = min(s.q[0].due.Sub(now), wait)
		}
		s.mu.Unlock()
		for _, l := range due {
			l.fire()
		}
		clear(due)
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-s.kick:
		}
	}
}

// dueQueue is a min-heap of loops by due time.
type dueQueue []*loop

func (q dueQueue) Len() int           { return len(q) }
func (q dueQueue) Less(i, j int) bool { return q[i].due.Before(q[j].due) }
func (q dueQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].idx, q[j].idx = i, j
}
func (q *dueQueue) Push(x any) {
	l := x.(*loop)
	l.idx = len(*q)
	*q = append(*q, l)
}
func (q *dueQueue) Pop() any {
	old := *q
	l := old[len(old)-1]
	old[len(old)-1] = nil
	l.idx = -1
	*q = old[:len(old)-1]
	return l
}
