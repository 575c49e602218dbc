// Package badger is pollrelay's embedded store, the default for one copy:
// store's interfaces over a Badger database in a local directory. It
// holds the tracked items, the event log and outbox, deliveries with their
// schedule, and attempts.
//
// Keys are prefixed by kind:
//
//	i/<source>\x00<id>          item state and history
//	s/<source>                  per-source state (baseline, validators)
//	e/<event id>                event log
//	o/<event id>                outbox: events not yet fanned out
//	d/<sub>\x00<event id>       delivery
//	q/<sub>\x00<due unix ns><event id>  per-subscription schedule of queued deliveries
//	r/<sub part><resource part><event id>  per-resource order of open deliveries
//	a/<event id>\x00<sub>\x00<n>         attempt log
//	u/<sub>                             subscription state (disabled, failures)
//	w/<source>\x00<id>          watch of a watch source (see watches.go)
//	wx/<source>\x00<id>         a watch that ended, so it is not re-added
//	c/<id>                      subscription created through the API
//	x/<quarantine id>           a record set aside (see quarantine.go)
//	n/<name>                    a named counter's last value (see sequences.go)
//	m/format                    the key layout's version (see migrate.go)
//
// Event ids are ULIDs, so every index that ends in one is in creation order.
//
// Source and subscription names are [a-z0-9_-]+ (config validates them),
// so a NUL ends one unambiguously; an id that is the last part of its key
// (i/, b/, w/, wx/, n/) is the whole rest of the key, whatever bytes it holds.
// A part that is followed by another and may hold any bytes (the resource
// in r/, which holds an item id) is encoded with appendPart, so ids with
// NUL never mix up two resources and no id is a prefix of another. Every
// part is at most MaxKeyPart bytes (keys.go).
package badger

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	bdg "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/pollrelay/pollrelay/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configures Open.
type Options struct {
	Path     string
	InMemory bool
	Logger   *slog.Logger
	// NoSync turns off fsync per commit. Only for benchmarks that measure
	// the cost of everything else.
	NoSync bool
}

// Store is pollrelay's Badger database.
type Store struct {
	db  *bdg.DB
	log *slog.Logger

	onEvent store.Hooks // run after a commit that added events to the outbox

	floors floors // where queue scans may start; see floors.go
	space  *space // refuses writes as the disk fills; nil in memory

	// quarantined counts committed quarantine records by kind.
	quarantined *prometheus.CounterVec
}

func newStore(db *bdg.DB, log *slog.Logger) *Store {
	s := &Store{db: db, log: log}
	s.quarantined = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pollrelay_quarantined_total",
		Help: "Records set aside because they cannot be processed (item: an upstream item over a limit; event, delivery: a record the notifier cannot read or store), so the rest keeps flowing. See GET /v1/quarantine.",
	}, []string{"kind"})
	for _, k := range store.QuarantineKinds {
		s.quarantined.WithLabelValues(k)
	}
	return s
}

// Open opens (or creates) the database. Badger replays its log on open, so a
// directory left by a crashed run is recovered here.
func Open(opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	bo := bdg.DefaultOptions(opts.Path).
		WithInMemory(opts.InMemory).
		WithSyncWrites(!opts.NoSync && !opts.InMemory).
		WithLogger(badgerLogger{log.With("component", "badger")}).
		// A sidecar's footprint matters more than peak write throughput:
		// Badger's defaults (64 MiB memtables × 5, 256 MiB block cache) use
		// hundreds of MiB; these keep it small while batches stay large
		// enough for a poll's changes.
		WithMemTableSize(16 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(6).
		WithBlockCacheSize(8 << 20).
		WithIndexCacheSize(8 << 20).
		WithValueLogFileSize(64 << 20).
		WithBaseTableSize(4 << 20).
		WithNumCompactors(2).
		// Snappy: an item record is mostly the item's JSON object, which
		// compresses ~3.5×. 1,000,000 tracked items take ~106 MiB on disk
		// instead of ~380 MiB, and iterating them got faster, not slower
		// (fewer bytes to read). Tables keep the compression they were
		// written with (it is in the manifest), so older directories open.
		WithCompression(options.Snappy).
		WithNumVersionsToKeep(1)
	if opts.InMemory {
		bo.Dir, bo.ValueDir = "", ""
	} else {
		if opts.Path == "" {
			return nil, errors.New("open store: storage.path is empty")
		}
		if err := checkDir(opts.Path); err != nil {
			return nil, err
		}
	}
	db, err := bdg.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", opts.Path, err)
	}
	s := newStore(db, log)
	if !opts.InMemory {
		s.space = newSpace(opts.Path, log)
	}
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// checkDir gives a clear error for a directory that can't be used, before
// Badger reports something more cryptic.
func checkDir(path string) error {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return fmt.Errorf("open store: create %s: %w", path, err)
	}
	probe := filepath.Join(path, ".pollrelay-write-test")
	f, err := os.Create(probe)
	if err != nil {
		return fmt.Errorf("open store: directory %s is not writable: %w", path, err)
	}
	_, werr := f.Write(make([]byte, 4096))
	serr := f.Sync()
	cerr := f.Close()
	os.Remove(probe)
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("open store: cannot write to %s: %w", path, err)
	}
	return checkSpace(path)
}

// Close flushes and closes the database. On a device too full for the
// flush, or a directory that cannot take a new file, it leaves the
// database as a killed process would; see spaceToClose and dirToClose.
func (s *Store) Close() error {
	if err := s.spaceToClose(); err != nil {
		return err
	}
	if err := s.dirToClose(); err != nil {
		return err
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// dirToClose refuses to close the database when its directory cannot take
// a new file (removed, or on a device remounted read-only). Badger's Close
// flushes the memtable into a new table file and, when it cannot create
// one, retries every second forever: shutdown never ended. As with a full
// device, nothing needs the flush; the database is left open for the
// exiting process to let go.
func (s *Store) dirToClose() error {
	if s.space == nil || s.db.IsClosed() {
		return nil
	}
	f, err := os.CreateTemp(s.space.path, ".pollrelay-close-test-*")
	if err == nil {
		f.Close()
		os.Remove(f.Name())
		return nil
	}
	s.log.Error("store: its directory cannot be written at shutdown; the store is not flushed, what its directory holds is recovered at the next start",
		"path", s.space.path, "error", err.Error())
	return fmt.Errorf("close store %s: its directory cannot be written, so the store cannot be flushed; left as after a crash: %w", s.space.path, err)
}

// DB exposes Badger for maintenance tasks such as value-log GC.
func (s *Store) DB() *bdg.DB { return s.db }

// OnEvent registers fn to run after every commit that added events; the
// notifier uses it to wake without polling the outbox.
func (s *Store) OnEvent(fn func()) { s.onEvent.Add(fn) }

func (s *Store) notifyEvent() { s.onEvent.Run() }

// Txn is a read-write or read-only transaction.
type Txn struct {
	txn    *bdg.Txn
	events int
	size   int64
	count  int64

	fl      *floors           // see floors.go
	seq     uint64            // fl's lowering count when the txn began
	written map[string][]byte // lowest key written per floored range
	// maxSize and maxCount are where full says stop: half Badger's limits.
	maxSize, maxCount int64
	// newData is set by a write that is not delivery bookkeeping: such a
	// commit is refused sooner as the disk fills (see ReserveSpace).
	newData bool
	// quarantined counts the quarantine records written, by kind.
	quarantined map[string]int
	// onCommit runs once the transaction commits.
	onCommit []func()
}

// maxConflicts is how many times a transaction that lost to a concurrent
// writer is redone before the conflict is returned.
const maxConflicts = 10

// Update runs fn in a read-write transaction and commits it, redoing it on
// a conflict with a concurrent writer. Commits are synced to disk.
func (s *Store) Update(fn func(store.Txn) error) error {
	return s.update(func(t *Txn) error { return fn(t) })
}

func (s *Store) update(fn func(*Txn) error) error {
	for attempt := 0; ; attempt++ {
		t := s.newTxn(true)
		err := fn(t)
		if err == nil {
			err = s.admit(t)
		}
		if err == nil {
			err = t.txn.Commit()
		}
		t.txn.Discard()
		if errors.Is(err, bdg.ErrConflict) && attempt < maxConflicts {
			continue
		}
		if err != nil {
			return domainError(err)
		}
		s.committed(t)
		return nil
	}
}

// domainError marks Badger's conflict and size refusals with store's
// errors, which callers test for.
func domainError(err error) error {
	switch {
	case errors.Is(err, bdg.ErrConflict):
		return fmt.Errorf("%w: %w", store.ErrConflict, err)
	case errors.Is(err, bdg.ErrTxnTooBig):
		return fmt.Errorf("%w: %w", store.ErrTooBig, err)
	}
	return err
}

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(store.Txn) error) error {
	return s.view(func(t *Txn) error { return fn(t) })
}

func (s *Store) view(fn func(*Txn) error) error {
	if s.db.IsClosed() {
		return bdg.ErrDBClosed
	}
	t := s.newTxn(false)
	defer t.txn.Discard()
	return fn(t)
}

// OnCommit runs fn after the transaction commits.
func (t *Txn) OnCommit(fn func()) { t.onCommit = append(t.onCommit, fn) }

// Batch writes groups of changes in as few transactions as Badger allows.
// Each group is committed whole in one transaction, so a group that holds an
// item's new state and the events it causes is atomic, whatever crashes.
type Batch struct {
	s     *Store
	t     *Txn
	limit int64
	count int64
	// groups are those in t, run again on a fresh transaction when t's
	// commit loses to a concurrent writer.
	groups []func(*Txn) error
}

// NewBatch starts a batch.
func (s *Store) NewBatch() store.Batch { return s.newBatch() }

func (s *Store) newBatch() *Batch {
	return &Batch{s: s, limit: s.db.MaxBatchSize() / 2, count: s.db.MaxBatchCount() / 2}
}

// Group adds one atomic group of writes. When the open transaction is near
// Badger's size limit it is committed first.
func (b *Batch) Group(fn func(store.Txn) error) error {
	return b.group(func(t *Txn) error { return fn(t) })
}

func (b *Batch) group(fn func(*Txn) error) error {
	if b.t != nil && b.t.full() {
		if err := b.commit(); err != nil {
			return err
		}
	}
	if b.t == nil {
		b.t = b.s.newTxn(true)
	}
	if err := fn(b.t); err != nil {
		b.Discard()
		return err
	}
	b.groups = append(b.groups, fn)
	return nil
}

// Commit commits what is left.
func (b *Batch) Commit() error { return b.commit() }

func (b *Batch) commit() error {
	if b.t == nil {
		return nil
	}
	for attempt := 0; ; attempt++ {
		t := b.t
		b.t = nil
		err := b.s.admit(t)
		if err == nil {
			err = t.txn.Commit()
		}
		t.txn.Discard()
		if errors.Is(err, bdg.ErrConflict) && attempt < maxConflicts {
			if err = b.redo(); err == nil {
				continue
			}
		}
		if err != nil {
			b.groups = nil
			return fmt.Errorf("commit: %w", domainError(err))
		}
		b.groups = nil
		b.s.committed(t)
		return nil
	}
}

// redo runs the groups of a transaction that lost a conflict again on a
// fresh one; each re-reads what it checks.
func (b *Batch) redo() error {
	b.t = b.s.newTxn(true)
	for _, g := range b.groups {
		if err := g(b.t); err != nil {
			b.t.txn.Discard()
			b.t = nil
			return err
		}
	}
	return nil
}

// Discard drops uncommitted groups.
func (b *Batch) Discard() {
	b.groups = nil
	if b.t != nil {
		b.t.txn.Discard()
		b.t = nil
	}
}

// admit checks a commit against the free space before Badger writes it
// into its mapped files, where a full disk is a SIGBUS, not an error. A
// transaction that wrote nothing (the notifier fans out an empty outbox on
// every turn of its loop) commits nothing, so it is neither checked nor
// refused, and an idle pollrelay makes no statfs calls.
func (s *Store) admit(t *Txn) error {
	if t.count == 0 {
		return nil
	}
	return s.space.admit(t.newData)
}

func (t *Txn) set(key, val []byte) error {
	if err := checkKV(key, val); err != nil {
		return err
	}
	t.size += int64(len(key) + len(val) + 32)
	t.count++
	t.track(key)
	if !deliveryRecord(key) {
		t.newData = true
	}
	return t.txn.Set(key, val)
}

// deliveryRecord reports whether key is part of delivering events already
// stored (a delivery, its schedule and resource order, its attempts, its
// subscription's health, a record set aside in quarantine), which may still be written while the disk is
// too full for new data: finishing deliveries is what a full disk should
// not stop. Deletes never count as new data.
func deliveryRecord(key []byte) bool {
	if len(key) < 2 || key[1] != '/' {
		return false
	}
	switch key[0] {
	case 'd', 'q', 'r', 'a', 'u', 'x':
		return true
	}
	return false
}

func (t *Txn) del(key []byte) error {
	if len(key) > badgerMaxKey {
		return nil // Badger could never have stored it
	}
	t.size += int64(len(key) + 32)
	t.count++
	return t.txn.Delete(key)
}

// get returns a copy of the value, or nil when the key is absent.
func (t *Txn) get(key []byte) ([]byte, error) {
	it, err := t.txn.Get(key)
	if errors.Is(err, bdg.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return it.ValueCopy(nil)
}

// scan calls fn for each key with prefix, from start (inclusive; nil = the
// prefix itself) in key order, until fn returns false. Values are only
// valid during fn.
func (t *Txn) scan(prefix, start []byte, reverse bool, fn func(key, val []byte) (bool, error)) error {
	opts := bdg.DefaultIteratorOptions
	opts.Prefix = prefix
	opts.Reverse = reverse
	opts.PrefetchValues = false
	it := t.txn.NewIterator(opts)
	defer it.Close()
	if start == nil {
		start = prefix
		if reverse {
			start = append(append([]byte{}, prefix...), 0xff)
		}
	}
	for it.Seek(start); it.ValidForPrefix(prefix); it.Next() {
		item := it.Item()
		var cont bool
		err := item.Value(func(v []byte) error {
			var err error
			cont, err = fn(item.Key(), v)
			return err
		})
		if err != nil {
			return err
		}
		if !cont {
			return nil
		}
	}
	return nil
}

type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any)   { b.l.Error(line(f, a)) }
func (b badgerLogger) Warningf(f string, a ...any) { b.l.Warn(line(f, a)) }
func (b badgerLogger) Infof(f string, a ...any)    {}
func (b badgerLogger) Debugf(f string, a ...any)   {}

func line(f string, a []any) string { return strings.TrimSpace(fmt.Sprintf(f, a...)) }

// OpenReadOnly opens an existing database for reading only, as `probe`
// does beside a running pollrelay's copy or a stopped one.
func OpenReadOnly(path string, log *slog.Logger) (*Store, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	bo := bdg.DefaultOptions(path).WithReadOnly(true).
		WithLogger(badgerLogger{log.With("component", "badger")}).
		WithBlockCacheSize(8 << 20).WithIndexCacheSize(8 << 20)
	db, err := bdg.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("open store %s read-only: %w", path, err)
	}
	return newStore(db, log), nil
}
