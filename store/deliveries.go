package store

import "time"

// Delivery states.
const (
	Pending   = "pending"   // due at NextAt, never tried or tried again by request
	Retrying  = "retrying"  // failed at least once, due at NextAt
	Waiting   = "waiting"   // an earlier delivery of the same resource is still open
	Delivered = "delivered" // a 2xx was received
	Dead      = "dead"      // every scheduled attempt failed
)

// Delivery is one event on its way to one subscription.
type Delivery struct {
	EventID      string `json:"event_id"`
	Subscription string `json:"subscription"`
	// Resource orders deliveries: empty with `ordering: none`, else
	// event.Resource of the event as the log returns it (text, like the
	// event's fields), at most MaxResource bytes.
	Resource string `json:"resource,omitempty"`
	State    string `json:"state"`
	Attempts int    `json:"attempts"`
	// Round counts attempts since the delivery was (re)queued; it indexes
	// the retry schedule, which a redelivery starts again.
	Round      int       `json:"round"`
	NextAt     time.Time `json:"next_at"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	LastStatus int       `json:"last_status,omitempty"`
	LastError  string    `json:"last_error,omitempty"`
	// EventAt is when the event was written, for the delivery-lag metric.
	EventAt time.Time `json:"event_at"`
}

// Queued reports whether the delivery sits in the schedule index.
func (d *Delivery) Queued() bool { return d.State == Pending || d.State == Retrying }

// NextAtOrZero is when a queued delivery is due, the key of its schedule
// entry; zero when d is nil or not queued.
func (d *Delivery) NextAtOrZero() time.Time {
	if d == nil || !d.Queued() {
		return time.Time{}
	}
	return d.NextAt
}

// Open reports whether the delivery still blocks later ones of its resource.
func (d *Delivery) Open() bool { return d.State != Delivered && d.State != Dead }

// Attempt is one try at a delivery.
type Attempt struct {
	N            int       `json:"n"`
	Subscription string    `json:"subscription"`
	At           time.Time `json:"at"`
	Status       int       `json:"status,omitempty"`
	LatencyMS    float64   `json:"latency_ms"`
	Outcome      string    `json:"outcome"`
	Error        string    `json:"error,omitempty"`
	Body         string    `json:"response_body,omitempty"`
}

// DueRef names a queued delivery by its schedule key.
type DueRef struct {
	Subscription string
	EventID      string
	At           time.Time
}

// Current reports whether the key still matches d, the delivery as stored:
// a key that doesn't is stale and must not cause a send.
func (r DueRef) Current(d *Delivery) bool {
	return d != nil && d.Queued() && DueNanos(d.NextAt) == DueNanos(r.At)
}

// DueNanos is a due time as a schedule orders it: nanoseconds since the
// epoch, with times before it as zero.
func DueNanos(at time.Time) uint64 { return uint64(max(at.UnixNano(), 0)) }
