package badger

import (
	"bytes"
	"sync"
)

// The outbox and each subscription's schedule are queues kept in key order:
// written at one end, deleted from the other. Badger keeps a delete as a
// tombstone until compaction reaches the last level, and an iterator has to
// step over every tombstone of its prefix, so a scan from the start of the
// outbox or of a schedule walks every entry ever finished. Profiling the
// delivery benchmark found two thirds of the CPU doing exactly that, and the
// cost grows with uptime.
//
// floors remembers, per such range, a key below which nothing is live, and
// scans start there. A scan raises its floor to the first live key it saw;
// every commit that writes into a range lowers that range's floor to the
// lowest key it wrote. The two race when a commit lands between a scan's
// snapshot and its raise, so a raise only counts if no commit has lowered
// any floor since the scanning transaction was created (seq): a floor may
// be too low (a longer scan), never too high (an entry skipped).
type floors struct {
	mu  sync.Mutex
	seq uint64
	low map[string][]byte // range prefix → floor; absent = the prefix itself
}

// current returns the lowering count, taken when a transaction is created,
// before its snapshot.
func (f *floors) current() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seq
}

// from returns where a scan of prefix may start.
func (f *floors) from(prefix []byte) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	if k, ok := f.low[string(prefix)]; ok {
		return k
	}
	return prefix
}

// raise records that, in the snapshot of a transaction created at seq, no
// live key of prefix sorts before key.
func (f *floors) raise(prefix, key []byte, seq uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.seq != seq {
		return
	}
	if cur, ok := f.low[string(prefix)]; ok && bytes.Compare(key, cur) <= 0 {
		return
	}
	if f.low == nil {
		f.low = map[string][]byte{}
	}
	f.low[string(prefix)] = bytes.Clone(key)
}

// lower applies the lowest keys a committed transaction wrote per range.
func (f *floors) lower(written map[string][]byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	for p, k := range written {
		if cur, ok := f.low[p]; ok && bytes.Compare(k, cur) < 0 {
			f.low[p] = k
		}
	}
}

// floorRange returns the range a key belongs to: the outbox, or its
// subscription's schedule; nil for any other key.
func floorRange(key []byte) []byte {
	switch {
	case bytes.HasPrefix(key, outboxPrefix):
		return outboxPrefix
	case bytes.HasPrefix(key, duePrefix):
		if i := bytes.IndexByte(key[len(duePrefix):], 0); i >= 0 {
			return key[:len(duePrefix)+i+1]
		}
	}
	return nil
}

// track remembers the lowest key t writes in each range.
func (t *Txn) track(key []byte) {
	p := floorRange(key)
	if p == nil {
		return
	}
	if t.written == nil {
		t.written = map[string][]byte{}
	}
	if cur, ok := t.written[string(p)]; !ok || bytes.Compare(key, cur) < 0 {
		t.written[string(p)] = bytes.Clone(key)
	}
}

// committed lowers the floors after t's writes are durable and visible.
func (s *Store) committed(t *Txn) {
	if t.written != nil {
		s.floors.lower(t.written)
	}
	for kind, n := range t.quarantined {
		s.quarantined.WithLabelValues(kind).Add(float64(n))
	}
	for _, fn := range t.onCommit {
		fn()
	}
	if t.events > 0 {
		s.notifyEvent()
	}
}

// newTxn starts a transaction. The floor count is read before Badger takes
// the snapshot; see floors.
func (s *Store) newTxn(update bool) *Txn {
	seq := s.floors.current()
	return &Txn{
		txn: s.db.NewTransaction(update), fl: &s.floors, seq: seq,
		maxSize: s.db.MaxBatchSize() / 2, maxCount: s.db.MaxBatchCount() / 2,
	}
}

// full reports whether t holds about half of what Badger allows in one
// transaction, where a batch starts the next.
func (t *Txn) full() bool { return t.size >= t.maxSize || t.count >= t.maxCount }

// scanFloor is scan over a floored range: it starts at the range's floor and
// raises the floor to the first live key it sees (past the range when it
// sees none).
func (t *Txn) scanFloor(prefix []byte, fn func(key, val []byte) (bool, error)) error {
	var first []byte
	err := t.scan(prefix, t.fl.from(prefix), false, func(k, v []byte) (bool, error) {
		if first == nil {
			first = bytes.Clone(k)
		}
		return fn(k, v)
	})
	if err != nil {
		return err
	}
	if first == nil {
		first = append(bytes.Clone(prefix), 0xff)
	}
	t.fl.raise(prefix, first, t.seq)
	return nil
}

// NextOutbox is Outbox for the notifier's fan-out: up to limit event ids
// waiting for fan-out, oldest first, starting past the entries already
// fanned out rather than stepping over their tombstones.
func (t *Txn) NextOutbox(limit int) ([]string, error) {
	var ids []string
	err := t.scanFloor(outboxPrefix, func(k, _ []byte) (bool, error) {
		ids = append(ids, string(k[len(outboxPrefix):]))
		return len(ids) < limit, nil
	})
	return ids, err
}
