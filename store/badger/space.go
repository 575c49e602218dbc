package badger

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

// MinFreeSpace is the free space the store directory needs at start, and
// below which a running store stops taking new data (polls, API writes).
// Badger maps its memtables and value log into memory as sparse files; on
// a full disk it would open fine and then die of SIGBUS at the first write,
// so a full disk is refused up front with a message that says so. Using the
// same figure while running means a pollrelay that refuses new data would
// also refuse to start, and one that would start also takes new data: there
// is no band where a restart changes the behaviour.
const MinFreeSpace = 64 << 20

// ReserveSpace is the part of MinFreeSpace kept for finishing what is
// already stored: delivery records, their schedule and attempt log keep
// being written until free space falls below it, so stored events still
// reach their receivers while new polls are refused. Below it nothing is
// written. 32 MiB is what Badger needs to write no further than it has
// already mapped: the rest of one memtable's log (16 MiB plus one batch)
// and that memtable's flush to a level-0 table (at most 16 MiB before
// Snappy). A compaction may need more on a large store; that headroom is
// the other half of MinFreeSpace, which only deliveries can eat into.
const ReserveSpace = MinFreeSpace / 2

// Space levels: what the store still writes.
const (
	spaceOK       = iota
	spaceLow      // below MinFreeSpace: delivery bookkeeping only
	spaceCritical // below ReserveSpace: nothing
	spaceUnknown  // statfs failed: writes are let through to Badger
)

// space guards a running store's writes against the disk filling up.
type space struct {
	path string
	log  *slog.Logger

	refused *prometheus.CounterVec
	free    prometheus.GaugeFunc

	mu    sync.Mutex // orders the level changes, and so their log lines
	level int
}

func newSpace(path string, log *slog.Logger) *space {
	sp := &space{path: path, log: log}
	sp.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pollrelay_store_writes_refused_total",
		Help: "Store commits refused because the disk is nearly full, by what they wrote (new_data: polls and API writes; delivery: delivery records).",
	}, []string{"kind"})
	sp.refused.WithLabelValues("new_data")
	sp.refused.WithLabelValues("delivery")
	sp.free = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "pollrelay_store_free_bytes",
		Help: "Free bytes on the store's device (new data is refused below 64 MiB, everything below 32 MiB).",
	}, func() float64 {
		// A scrape looks afresh, so an alert sees a filling disk even
		// while nothing writes, and a recovery is noticed and logged.
		free, _ := sp.check()
		return float64(free)
	})
	return sp
}

// admit decides whether a commit may go ahead. One that adds new data
// needs MinFreeSpace; delivery bookkeeping ReserveSpace. A refusal wraps
// ENOSPC, so it reads and matches like a full disk and the callers' usual
// write-error handling (poll not acknowledged, delivery outcome kept for
// later) applies.
//
// Every commit that writes looks afresh. statfs measured 1.3 µs here, a
// synced commit costs milliseconds, and an idle pollrelay commits nothing.
// A figure cached for even a second let a poll's write through onto a
// device filled to its last byte in that second (TestStoreFullAtShutdown
// caught it), and such a write is a SIGBUS when it lands on a new page.
func (sp *space) admit(newData bool) error {
	if sp == nil {
		return nil
	}
	free, level := sp.check()
	if level == spaceUnknown {
		return nil
	}
	floor, kind, what := uint64(ReserveSpace), "delivery", "no writes are made, deliveries included,"
	if newData {
		floor, kind, what = MinFreeSpace, "new_data", "new polls are not stored (stored events are still delivered)"
	}
	if free >= floor {
		return nil
	}
	sp.refused.WithLabelValues(kind).Inc()
	// The message is the same every time: callers log a failure again only
	// when its message changes.
	return fmt.Errorf("store %s: less than %d MiB free on its device; %s until space is freed: %w",
		sp.path, floor>>20, what, unix.ENOSPC)
}

// check returns the free bytes and what the store still writes, logging a
// change of the latter.
func (sp *space) check() (uint64, int) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	free, err := freeBytes(sp.path)
	level := spaceOK
	switch {
	case err != nil:
		level = spaceUnknown
	case free < ReserveSpace:
		level = spaceCritical
	case free < MinFreeSpace:
		level = spaceLow
	}
	if level != sp.level {
		sp.logLevel(level, free, err)
	}
	sp.level = level
	return free, level
}

// logLevel says, once per change, what the store does about free space.
func (sp *space) logLevel(level int, free uint64, err error) {
	switch level {
	case spaceOK:
		sp.log.Info("store: free space is back; writing again", "path", sp.path, "free_bytes", free)
	case spaceLow:
		sp.log.Warn("store: disk nearly full; new polls are not stored and are retried until space is freed, stored events are still delivered",
			"path", sp.path, "free_bytes", free, "min_free_bytes", MinFreeSpace)
	case spaceCritical:
		sp.log.Error("store: disk full; pollrelay writes nothing, deliveries included, until space is freed",
			"path", sp.path, "free_bytes", free, "reserve_bytes", ReserveSpace)
	case spaceUnknown:
		sp.log.Warn("store: cannot read the free space of its device; writes are not guarded", "path", sp.path, "error", err.Error())
	}
}

func freeBytes(path string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}

func checkSpace(path string) error {
	free, err := freeBytes(path)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	if free < MinFreeSpace {
		return fmt.Errorf("open store: only %d KiB free on the device of %s; pollrelay needs at least %d MiB: no space left on device",
			free>>10, path, MinFreeSpace>>20)
	}
	return nil
}

// spaceToClose refuses to close the database when the device has less than
// ReserveSpace free. Badger's Close flushes the memtable into a new table
// through a mapped file, and on a full device that is a SIGBUS in the
// middle of shutdown. Nothing needs the flush: every commit is already
// synced to Badger's log, which the next Open replays, as it does after a
// crash (the SIGKILL tests cover that). So the database is left open and
// the process, which is exiting, lets it go.
func (s *Store) spaceToClose() error {
	if s.space == nil || s.db.IsClosed() {
		return nil
	}
	free, level := s.space.check()
	if level != spaceCritical {
		return nil
	}
	s.log.Error("store: disk full at shutdown; the store is not flushed, its log is replayed at the next start",
		"path", s.space.path, "free_bytes", free, "reserve_bytes", ReserveSpace)
	return fmt.Errorf("close store %s: less than %d MiB free on its device, too little to flush; left for the next start to recover: %w",
		s.space.path, ReserveSpace>>20, unix.ENOSPC)
}

// Collectors are the store's metrics, for the caller to register:
// pollrelay_store_free_bytes and pollrelay_store_writes_refused_total,
// which an in-memory store has not, and pollrelay_quarantined_total.
func (s *Store) Collectors() []prometheus.Collector {
	if s.space == nil {
		return []prometheus.Collector{s.quarantined}
	}
	return []prometheus.Collector{s.space.free, s.space.refused, s.quarantined}
}
