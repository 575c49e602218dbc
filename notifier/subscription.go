package notifier

import (
	"time"

	"github.com/pollrelay/pollrelay/glob"
	"github.com/pollrelay/pollrelay/internal/redact"
	"github.com/pollrelay/pollrelay/jqexpr"
	"github.com/pollrelay/pollrelay/signature"
	"github.com/pollrelay/pollrelay/subscription"
)

// Subscription is an endpoint events are delivered to, ready to use.
type Subscription struct {
	ID          string
	URL         string
	Method      string
	Events      []string
	Signer      signature.Signer
	Headers     map[string]string
	Payload     *jqexpr.Expr // nil = the default envelope
	Timeout     time.Duration
	Schedule    []time.Duration
	Jitter      float64 // ± fraction of each scheduled delay
	Ordered     bool    // ordering: resource
	MaxInFlight int
	// DisableAfter disables the subscription after this long of nothing
	// but failed attempts; 0 = never.
	DisableAfter time.Duration
	// ManagedBy is subscription.ManagedByConfig or ManagedByAPI.
	ManagedBy          string
	InsecureSkipVerify bool
	// TestEvent is the type a ping goes out under, reshaped by Payload;
	// empty: pollrelay.ping in the default envelope.
	TestEvent string
	// AllowPrivate lets an API-created subscription reach private and
	// loopback addresses (delivery.allow_private_networks); config ones
	// always may, since a sidecar usually delivers to localhost.
	AllowPrivate bool
	// RequireHTTPS refuses to send anywhere but https:// URLs
	// (delivery.require_https).
	RequireHTTPS bool
	// secrets are the credentials in URL and Headers, cut from what a
	// receiver answers before it is stored as an attempt: the API hides
	// them in the subscription, and an echo must not show them.
	secrets *redact.Set
}

// FromSubscription builds what the notifier runs from a registry entry,
// signing with the secrets active at now.
func FromSubscription(s *subscription.Subscription, now time.Time) (*Subscription, error) {
	signer, err := s.Signer(now)
	if err != nil {
		return nil, err
	}
	c := &s.Spec
	return &Subscription{
		ID:                 c.Name,
		URL:                c.URL,
		Method:             c.Method,
		Events:             c.Events,
		Signer:             signer,
		Headers:            c.Headers,
		Payload:            s.Payload,
		Timeout:            c.Timeout,
		Schedule:           c.Retry.Schedule,
		Jitter:             jitterOf(c.Retry),
		Ordered:            c.Ordering != "none",
		MaxInFlight:        max(c.MaxInFlight, 1),
		DisableAfter:       c.DisableAfter,
		ManagedBy:          s.ManagedBy,
		InsecureSkipVerify: c.InsecureSkipVerify,
		TestEvent:          c.TestEvent,
		secrets:            redact.FromRequest(c.URL, c.Headers),
	}, nil
}

// jitterOf is a retry policy's jitter; a spec built without normalisation
// gets the default.
func jitterOf(r subscription.Retry) float64 {
	if r.Jitter == nil {
		return subscription.DefaultRetryJitter
	}
	return *r.Jitter
}

// Wants reports whether the subscription receives events of type typ.
func (s *Subscription) Wants(typ string) bool {
	return glob.MatchAny(s.Events, typ)
}
