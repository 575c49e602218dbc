package badger

import "github.com/pollrelay/pollrelay/store"

// The records are store's; these names let the implementation read as
// the domain does.
type (
	Item               = store.Item
	HistoryEntry       = store.HistoryEntry
	SourceState        = store.SourceState
	Delivery           = store.Delivery
	Attempt            = store.Attempt
	DueRef             = store.DueRef
	Watch              = store.Watch
	SubscriptionRecord = store.SubscriptionRecord
	StoredSecret       = store.StoredSecret
	SubState           = store.SubState
	Quarantined        = store.Quarantined
	PruneResult        = store.PruneResult
)

const (
	MaxKeyPart = store.MaxKeyPart
	maxValue   = store.MaxValue
	HistoryLen = store.HistoryLen

	Pending   = store.Pending
	Retrying  = store.Retrying
	Waiting   = store.Waiting
	Delivered = store.Delivered
	Dead      = store.Dead

	OriginConfig    = store.OriginConfig
	OriginAPI       = store.OriginAPI
	OriginWatchFrom = store.OriginWatchFrom

	QuarantineItem     = store.QuarantineItem
	QuarantineEvent    = store.QuarantineEvent
	QuarantineDelivery = store.QuarantineDelivery
)

var (
	bad          = store.Bad
	CheckKeyPart = store.CheckKeyPart
	appendPart   = store.AppendPart
	dueNanos     = store.DueNanos
)

var (
	_ store.Store = (*Store)(nil)
	_ store.Txn   = (*Txn)(nil)
	_ store.Batch = (*Batch)(nil)
)
