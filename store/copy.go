package store

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/pollrelay/pollrelay/event"
)

// Counts is how many records of each kind a store holds, as Copy moves and
// verifies them.
type Counts struct {
	Subscriptions, SubStates, Sources, Items, Histograms int
	Watches, EndedWatches, Events, Outbox, Deliveries    int
	Attempts, Quarantined, Sequences                     int
}

func (c Counts) String() string {
	return fmt.Sprintf("%d subscriptions, %d endpoint states, %d sources, %d items, %d histograms, %d watches, %d ended watches, %d events (%d in the outbox), %d deliveries, %d attempts, %d quarantined, %d sequences",
		c.Subscriptions, c.SubStates, c.Sources, c.Items, c.Histograms, c.Watches, c.EndedWatches, c.Events, c.Outbox, c.Deliveries, c.Attempts, c.Quarantined, c.Sequences)
}

// Copy moves everything src holds into dst, which should be empty: the
// subscriptions with their secrets, endpoint states, each source's state,
// items (with baselines and history), histograms, watches and ended
// marks, the event log with the outbox, deliveries with their schedule and
// order, attempts, the quarantine, and the named counters at their last
// values, so dst never hands out an id src gave. Events and deliveries go
// in their creation order, so dst's per-resource order is src's. progress,
// when set, is called now and then with what has been copied so far.
//
// Neither store may be in use: Copy reads src in several transactions.
func Copy(dst, src Store, progress func(Counts)) (Counts, error) {
	c := &copier{dst: dst, src: src, progress: progress, b: dst.NewBatch()}
	defer c.b.Discard()
	steps := []func() error{c.subscriptions, c.sequences, c.sources, c.events, c.deliveries, c.quarantine}
	for _, step := range steps {
		if err := step(); err != nil {
			return c.n, err
		}
	}
	if err := c.b.Commit(); err != nil {
		return c.n, fmt.Errorf("copy: %w", err)
	}
	c.report()
	return c.n, nil
}

type copier struct {
	dst, src Store
	progress func(Counts)
	b        Batch
	n        Counts
	last     time.Time
}

// put adds one write to dst's batch, reporting progress about every second.
func (c *copier) put(fn func(Txn) error) error {
	if err := c.b.Group(fn); err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	if time.Since(c.last) >= time.Second {
		c.report()
	}
	return nil
}

func (c *copier) report() {
	c.last = time.Now()
	if c.progress != nil {
		c.progress(c.n)
	}
}

func (c *copier) subscriptions() error {
	return c.src.View(func(t Txn) error {
		err := t.APISubscriptions(func(r *SubscriptionRecord) error {
			c.n.Subscriptions++
			return c.put(func(d Txn) error { return d.PutAPISubscription(r) })
		})
		if err != nil {
			return err
		}
		return t.SubStates(func(sub string, s *SubState, err error) error {
			if err != nil {
				return err
			}
			c.n.SubStates++
			return c.put(func(d Txn) error { return d.PutSubState(sub, s) })
		})
	})
}

func (c *copier) sequences() error {
	return c.src.View(func(t Txn) error {
		return t.Sequences(func(name string, last uint64) error {
			c.n.Sequences++
			return c.put(func(d Txn) error { return d.PutSequence(name, last) })
		})
	})
}

func (c *copier) sources() error {
	var names []string
	if err := c.src.View(func(t Txn) error {
		return t.Sources(func(name string) error { names = append(names, name); return nil })
	}); err != nil {
		return err
	}
	for _, name := range names {
		c.n.Sources++
		if err := c.src.View(func(t Txn) error { return c.source(t, name) }); err != nil {
			return fmt.Errorf("copy source %s: %w", name, err)
		}
	}
	return nil
}

func (c *copier) source(t Txn, name string) error {
	ss, err := t.SourceState(name)
	if err != nil {
		return err
	}
	if err := c.put(func(d Txn) error { return d.PutSourceState(name, ss) }); err != nil {
		return err
	}
	err = t.Items(name, func(id string, it *Item) error {
		c.n.Items++
		return c.put(func(d Txn) error { return d.PutItem(name, id, it) })
	})
	if err != nil {
		return err
	}
	err = t.Histograms(name, func(state string, v []byte) error {
		c.n.Histograms++
		v = append([]byte(nil), v...)
		return c.put(func(d Txn) error { return d.PutHistogram(name, state, v) })
	})
	if err != nil {
		return err
	}
	var werr error
	err = t.Watches(name, "", "", func(w *Watch) bool {
		c.n.Watches++
		werr = c.put(func(d Txn) error { return d.PutWatch(w) })
		return werr == nil
	})
	if err = errors.Join(err, werr); err != nil {
		return err
	}
	return t.EndedWatches(name, func(id string, at time.Time) error {
		c.n.EndedWatches++
		return c.put(func(d Txn) error { return d.MarkWatchEnded(name, id, at) })
	})
}

// events copies the log oldest first, each event with its attempts; an
// event in src's outbox goes into dst's.
func (c *copier) events() error {
	outbox := map[string]bool{}
	return c.src.View(func(t Txn) error {
		ids, err := t.Outbox(math.MaxInt32)
		if err != nil {
			return err
		}
		for _, id := range ids {
			outbox[id] = true
		}
		return t.EventsBetween(time.Time{}, time.Time{}, func(e *event.Event) (bool, error) {
			c.n.Events++
			add := (Txn).LogEvent
			if outbox[e.ID] {
				c.n.Outbox++
				add = (Txn).AddEvent
			}
			if err := c.put(func(d Txn) error { return add(d, e) }); err != nil {
				return false, err
			}
			as, err := t.Attempts(e.ID)
			if err != nil {
				return false, err
			}
			for _, a := range as {
				c.n.Attempts++
				if err := c.put(func(d Txn) error { return d.AddAttempt(e.ID, a) }); err != nil {
					return false, err
				}
			}
			return true, nil
		})
	})
}

// deliveries copies every delivery in event order within its
// subscription, which is the order of each resource's deliveries.
func (c *copier) deliveries() error {
	return c.src.View(func(t Txn) error {
		return t.Deliveries(func(d *Delivery) error {
			c.n.Deliveries++
			return c.put(func(dt Txn) error { return dt.PutDelivery(d, nil) })
		})
	})
}

func (c *copier) quarantine() error {
	return c.src.View(func(t Txn) error {
		var qerr error
		err := t.QuarantineRecords("", func(q *Quarantined) bool {
			c.n.Quarantined++
			qerr = c.put(func(d Txn) error { return d.PutQuarantined(q) })
			return qerr == nil
		})
		return errors.Join(err, qerr)
	})
}

// Count counts what st holds, as Copy does, to verify a copy.
func Count(st Store) (Counts, error) {
	var n Counts
	err := st.View(func(t Txn) error {
		if err := t.APISubscriptions(func(*SubscriptionRecord) error { n.Subscriptions++; return nil }); err != nil {
			return err
		}
		if err := t.SubStates(func(string, *SubState, error) error { n.SubStates++; return nil }); err != nil {
			return err
		}
		var names []string
		if err := t.Sources(func(name string) error { names = append(names, name); return nil }); err != nil {
			return err
		}
		n.Sources = len(names)
		for _, name := range names {
			if err := countSource(t, name, &n); err != nil {
				return err
			}
		}
		ids, err := t.Outbox(math.MaxInt32)
		if err != nil {
			return err
		}
		n.Outbox = len(ids)
		err = t.EventsBetween(time.Time{}, time.Time{}, func(e *event.Event) (bool, error) {
			n.Events++
			as, err := t.Attempts(e.ID)
			n.Attempts += len(as)
			return true, err
		})
		if err != nil {
			return err
		}
		if err := t.Deliveries(func(*Delivery) error { n.Deliveries++; return nil }); err != nil {
			return err
		}
		if err := t.Sequences(func(string, uint64) error { n.Sequences++; return nil }); err != nil {
			return err
		}
		return t.QuarantineRecords("", func(*Quarantined) bool { n.Quarantined++; return true })
	})
	return n, err
}

func countSource(t Txn, name string, n *Counts) error {
	items, err := t.CountItems(name)
	if err != nil {
		return err
	}
	n.Items += items
	watches, err := t.CountWatches(name)
	if err != nil {
		return err
	}
	n.Watches += watches
	if err := t.Histograms(name, func(string, []byte) error { n.Histograms++; return nil }); err != nil {
		return err
	}
	return t.EndedWatches(name, func(string, time.Time) error { n.EndedWatches++; return nil })
}
