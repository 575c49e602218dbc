// Package store holds what pollrelay keeps durably, in the terms of the
// packages that use it: the record types (items, source state, events,
// deliveries, attempts, watches, subscriptions, quarantine), the
// interfaces every backend implements, and the limits all of them share.
//
// A backend (store/badger, the embedded default) implements Store. main
// chooses one; everything else speaks to these interfaces, so a backend
// may batch, retry on conflicts and lay out its records as it needs to
// without that showing here. The conformance suite in store/storetest
// says what a backend must do.
//
// Names of sources and subscriptions are [a-z0-9_-]+ (config validates
// them); ids (of items and watches, and the item id in a resource) may
// hold any bytes, NUL and invalid UTF-8 included, and come back from
// every read and scan exactly as written. Other string fields of events
// and records are text: a backend may store them as JSON, which replaces
// invalid UTF-8.
package store

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pollrelay/pollrelay/event"
)

// Store is a durable home for pollrelay's state.
type Store interface {
	// Update runs fn in a read-write transaction and commits it durably.
	// After a conflict with a concurrent writer the backend runs fn again
	// on a fresh transaction, so fn must leave nothing behind outside the
	// transaction except through Txn.OnCommit. A conflict that persists
	// is returned wrapping ErrConflict.
	Update(fn func(Txn) error) error
	// View runs fn in a read-only transaction: a consistent snapshot, in
	// which nothing committed after it began shows, and which does not
	// hold writers back.
	View(fn func(Txn) error) error
	// NewBatch starts a batch of atomic groups; see Batch.
	NewBatch() Batch
	// OnEvent registers fn to run after every commit that added events
	// to the outbox (AddEvent, ReturnToOutbox), possibly later than the
	// commit and possibly after others too: a wake-up, not a count.
	OnEvent(fn func())
	// Prune removes events created before cutoff with their finished
	// deliveries and attempts, never anything still open or in the
	// outbox.
	Prune(cutoff time.Time) (PruneResult, error)
	// LoadDeliveries calls fn for every stored delivery in one pass,
	// repairing what it finds inconsistent, and reports how many it
	// repaired.
	LoadDeliveries(fn func(*Delivery) error) (int, error)
	// Collectors are the backend's own metrics.
	Collectors() []prometheus.Collector
	Close() error
}

// Batch writes groups of changes in as few transactions as the backend
// allows. Each group is committed whole, so a group that holds an item's
// new state and the events it causes is atomic whatever crashes. Groups
// are committed by Commit, or earlier when those held reach what one of
// the backend's transactions takes, so a batch of any size commits; a
// group reads what the batch's earlier groups wrote, committed or not. A
// group may run more than once (after a conflict the backend redoes the
// groups of the transaction that lost), so like Update's fn it reports
// what it did through Txn.OnCommit.
type Batch interface {
	// Group runs fn as the next group. When fn fails, Group returns its
	// error and the batch is discarded: nothing of the failed group is
	// written, nor of the groups not yet committed (those committed
	// earlier stay).
	Group(fn func(Txn) error) error
	// Commit commits the groups not yet committed.
	Commit() error
	// Discard drops the groups not yet committed.
	Discard()
}

// Txn is one transaction: everything a consumer reads or writes.
type Txn interface {
	ItemTxn
	EventTxn
	DeliveryTxn
	WatchTxn
	SubscriptionTxn
	QuarantineTxn
	HistogramTxn
	// OnCommit runs fn once the transaction that holds the current work
	// is committed, before Update (or the Batch call that committed it)
	// returns, in the order registered; it is dropped with work that is
	// redone, discarded or fails.
	OnCommit(fn func())
}

// ItemTxn is the tracked items of the sources and each source's own state.
type ItemTxn interface {
	// Item returns the stored item with its object, or nil.
	Item(source, id string) (*Item, error)
	// PutItem stores it whole, replacing what was stored (an object or a
	// Pending it lacks is gone). A source or id over MaxKeyPart is
	// refused as a bad record, with nothing written and the transaction
	// still usable.
	PutItem(source, id string, it *Item) error
	DeleteItem(source, id string) error
	// Items calls fn for every item of source in bytewise id order, with
	// its object.
	Items(source string, fn func(id string, it *Item) error) error
	// ItemHeads is Items without the objects (Object is nil).
	ItemHeads(source string, fn func(id string, it *Item) error) error
	// ScanItemHeads is ItemHeads with the id's bytes as stored, valid
	// only during fn, and a record that cannot be decoded passed to
	// broken instead of failing the scan.
	ScanItemHeads(source string, fn func(id []byte, it *Item) error, broken func(id []byte, err error) error) error
	CountItems(source string) (int, error)
	// Sources calls fn, in order, for every source name the store holds
	// anything of: state, items, watches or histograms.
	Sources(fn func(name string) error) error
	SourceState(name string) (SourceState, error)
	PutSourceState(name string, st SourceState) error
}

// EventTxn is the event log and the outbox of events not yet fanned out.
// Event ids are event.NewID's of the event's CreatedAt, so they sort as
// the events were created: the log and the outbox are in id order, and a
// backend may seek by the time in an id.
type EventTxn interface {
	// AddEvent logs e and puts it in the outbox.
	AddEvent(e *event.Event) error
	// LogEvent logs e without putting it in the outbox (a replay).
	LogEvent(e *event.Event) error
	// Event returns a logged event, or nil.
	Event(id string) (*event.Event, error)
	// EventMeta is Event with at least ID, Type, Kind, Source, ItemID
	// and CreatedAt, without the payload's body where the backend can
	// skip reading it.
	EventMeta(id string) (*event.Event, error)
	// Events calls fn for events before the id before (all when empty),
	// newest first, until fn returns false.
	Events(before string, fn func(*event.Event) bool) error
	// EventsBetween calls fn for events created in [since, until), oldest
	// first, until fn returns false.
	EventsBetween(since, until time.Time, fn func(*event.Event) (bool, error)) error
	// Outbox returns up to limit outbox event ids, oldest first.
	Outbox(limit int) ([]string, error)
	// NextOutbox returns what Outbox does, for a reader that removes
	// what it takes, so the backend may skip what earlier readers removed
	// (never an event returned or added since, nor one committed after
	// an older transaction read the outbox).
	NextOutbox(limit int) ([]string, error)
	// ReturnToOutbox puts a logged event (back) in the outbox, in its
	// place by id.
	ReturnToOutbox(id string) error
	// RemoveFromOutbox takes an event out of the outbox; the log keeps it.
	RemoveFromOutbox(id string) error
}

// DeliveryTxn is the deliveries, their schedule, the per-resource order
// and the attempt log.
type DeliveryTxn interface {
	Delivery(sub, eventID string) (*Delivery, error)
	// PutDelivery stores d; prev is d as stored before (nil when new), so
	// the schedule and order entries it had are replaced: a queued
	// delivery has one schedule entry, at NextAt to the nanosecond, and
	// an open one with a Resource one place in its resource's order. A
	// wrong prev leaves the old entries, stale (see DueRef.Current and
	// LoadDeliveries). A subscription or event id over MaxKeyPart, or a
	// Resource over MaxResource, is refused as a bad record, with nothing
	// of d written and the transaction still usable.
	PutDelivery(d *Delivery, prev *Delivery) error
	// Due returns up to limit of sub's schedule entries due at or before
	// now, by due time (ties in no given order).
	Due(sub string, now time.Time, limit int) ([]DueRef, error)
	// DropDue removes a schedule entry; an absent one is no error.
	DropDue(r DueRef) error
	// NextDueAfter is when sub's next queued delivery strictly after now
	// is due.
	NextDueAfter(sub string, now time.Time) (time.Time, bool, error)
	// NextDue is the earliest due time of any queued delivery.
	NextDue() (next time.Time, found bool, err error)
	// ResourceHead is the event id of the oldest open delivery of
	// (sub, resource), or "".
	ResourceHead(sub, resource string) (string, error)
	// NextInResource is the open delivery of (sub, resource) after
	// eventID, or "": eventID need not be in the order.
	NextInResource(sub, resource, eventID string) (string, error)
	// DropResource removes one entry of a resource's order, whatever its
	// delivery is.
	DropResource(sub, resource, eventID string) error
	AddAttempt(eventID string, a Attempt) error
	// Attempts returns the attempts at an event's deliveries, by
	// subscription, then attempt number.
	Attempts(eventID string) ([]Attempt, error)
	// Deliveries calls fn for every delivery, in no given order.
	Deliveries(fn func(*Delivery) error) error
}

// WatchTxn is the watched ids of watch sources.
type WatchTxn interface {
	Watch(source, id string) (*Watch, error)
	PutWatch(w *Watch) error
	DeleteWatch(source, id string) error
	// Watches calls fn for the watches of source (all sources when
	// empty) after (afterSource, afterID), in (source, id) bytewise
	// order, until fn returns false. PutWatch refuses a source or id over
	// MaxKeyPart as a bad record.
	Watches(source, afterSource, afterID string, fn func(*Watch) bool) error
	CountWatches(source string) (int, error)
	// WatchEnded reports whether the watch of id ended, so watch_from
	// does not add it again.
	WatchEnded(source, id string) (bool, error)
	// MarkWatchEnded records an end apart from the watch record: it
	// outlives DeleteWatch, and only ClearWatchEnded removes it.
	MarkWatchEnded(source, id string, at time.Time) error
	// EndedWatches calls fn for every ended mark of source, in id order.
	EndedWatches(source string, fn func(id string, at time.Time) error) error
	ClearWatchEnded(source, id string) error
}

// SubscriptionTxn is the subscriptions created through the API, every
// subscription's endpoint state, and the named counters that hand out ids
// never given before (a vendor-shaped API's integer ids). A value taken
// in a transaction that does not commit is rolled back with it and given
// again, so an id is handed out once its transaction commits. A counter's
// name may hold any bytes; one over MaxKeyPart is refused as a bad
// record. A counter goes up to math.MaxInt64, what PostgreSQL's bigint
// holds, so counters move between backends: past it NextSequence fails,
// and PutSequence refuses a value over it as a bad record.
type SubscriptionTxn interface {
	APISubscription(id string) (*SubscriptionRecord, error)
	PutAPISubscription(r *SubscriptionRecord) error
	DeleteAPISubscription(id string) error
	// APISubscriptions calls fn for every record, in no given order.
	APISubscriptions(fn func(*SubscriptionRecord) error) error
	SubState(sub string) (*SubState, error)
	PutSubState(sub string, s *SubState) error
	DeleteSubState(sub string) error
	SubStates(fn func(sub string, s *SubState, err error) error) error
	// NextSequence returns the next value of the counter name: 1 first,
	// then one more each time. A value is never returned twice: not after
	// a crash, and not to two transactions racing (one's commit conflicts
	// and is redone, or waits for the other).
	NextSequence(name string) (uint64, error)
	// Sequences calls fn for every counter with the last value it gave,
	// by name (for Copy).
	Sequences(fn func(name string, last uint64) error) error
	// PutSequence sets a counter's last value (a counter moved from
	// another store).
	PutSequence(name string, last uint64) error
}

// QuarantineTxn is the records set aside.
type QuarantineTxn interface {
	// Quarantine sets q aside under QuarantineID(&q) at now, ItemID cut
	// to MaxQuotedID bytes: a new record, or one more sighting (Count,
	// LastAt) of the one there. It counts one in
	// pollrelay_quarantined_total{kind} once the transaction commits.
	Quarantine(q Quarantined, now time.Time) error
	// NoteQuarantined counts n quarantine records of kind written by this
	// transaction, in pollrelay_quarantined_total once it commits.
	NoteQuarantined(kind string, n int)
	// PutQuarantined stores q as it is, under q.ID (a record moved from
	// another store); Quarantine is for records set aside now.
	PutQuarantined(q *Quarantined) error
	QuarantineRecord(id string) (*Quarantined, error)
	// QuarantineRecords calls fn for the records after the id after, in
	// id order, until fn returns false.
	QuarantineRecords(after string, fn func(*Quarantined) bool) error
	DeleteQuarantine(id string) error
	// QuarantineDelivery moves a stored delivery into the quarantine: its
	// record goes whole into Raw, its schedule entry (due at at, when not
	// zero) and its place in its order go, and the delivery waiting
	// behind it is pending at now. A delivery not stored is no error.
	QuarantineDelivery(sub, eventID string, at time.Time, reason string, now time.Time) error
}

// HistogramTxn is the adaptive schedule's learned durations.
type HistogramTxn interface {
	// PutHistogram refuses a state over MaxKeyPart as a bad record.
	PutHistogram(source, state string, v []byte) error
	Histograms(source string, fn func(state string, v []byte) error) error
}
