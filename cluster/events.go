package cluster

import "sync"

// Event tells a subscriber that this member gained or lost a lease.
type Event struct {
	Lease string
	// Held is set when the lease was acquired, with its Token.
	Held  bool
	Token int64
	// Reason says why a lease was lost: ReasonExpired (it could not be
	// renewed in time, or another member holds it now), ReasonReleased or
	// ReasonRebalanced.
	Reason string
	done   func()
}

// Done tells the coordinator that the subscriber stopped using a lease it
// lost. A lease handed over (released or rebalanced) stays held, and its
// token valid, until every subscriber said Done, so a poll in progress
// commits under its own token instead of being fenced; for other events
// Done does nothing.
func (e Event) Done() {
	if e.done != nil {
		e.done()
	}
}

// subscriber receives events in order in a goroutine of its own, so a
// slow subscriber never holds up the coordinator's renewals.
type subscriber struct {
	fn     func(Event)
	signal chan struct{}
	stop   chan struct{}
	exited chan struct{}

	mu    sync.Mutex
	queue []Event
	// open are the Done functions of handovers delivered or queued and not
	// yet done: called when the subscriber is cancelled.
	open map[*handover]func()
}

func newSubscriber(fn func(Event)) *subscriber {
	s := &subscriber{fn: fn, signal: make(chan struct{}, 1), stop: make(chan struct{}), exited: make(chan struct{}),
		open: map[*handover]func(){}}
	go s.run()
	return s
}

func (s *subscriber) send(e Event) {
	s.mu.Lock()
	s.queue = append(s.queue, e)
	s.mu.Unlock()
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

func (s *subscriber) run() {
	defer close(s.exited)
	for {
		select {
		case <-s.stop:
			return
		case <-s.signal:
		}
		for {
			s.mu.Lock()
			if len(s.queue) == 0 {
				s.mu.Unlock()
				break
			}
			e := s.queue[0]
			s.queue = s.queue[1:]
			s.mu.Unlock()
			s.fn(e)
			select {
			case <-s.stop:
				return
			default:
			}
		}
	}
}

// cancel stops the subscriber and answers Done for every handover it was
// told of, delivered or not.
func (s *subscriber) cancel() {
	close(s.stop)
	<-s.exited
	s.mu.Lock()
	open := s.open
	s.open = map[*handover]func(){}
	s.queue = nil
	s.mu.Unlock()
	for _, done := range open {
		done()
	}
}

// handover is a lease being let go: released in the backend once every
// subscriber told of it said Done.
type handover struct {
	reason  string
	pending int
}
