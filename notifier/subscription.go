package notifier

import (
	"fmt"
	"time"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/glob"
	"github.com/pollrelay/pollrelay/internal/redact"
	"github.com/pollrelay/pollrelay/jqexpr"
	"github.com/pollrelay/pollrelay/signature"
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
	// ManagedBy is "config" or "api".
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

// FromConfig builds a subscription from a validated config entry.
func FromConfig(c *config.Subscription) (*Subscription, error) {
	signer, err := signature.NewSigner(signature.Scheme{
		Name: c.SigScheme.Scheme, Header: c.SigScheme.Header, Encoding: c.SigScheme.Encoding,
	}, c.Secrets)
	if err != nil {
		return nil, fmt.Errorf("subscription %s: %w", c.Name, err)
	}
	return &Subscription{
		ID:                 c.Name,
		URL:                c.URL,
		Method:             c.Method,
		Events:             c.Events,
		Signer:             signer,
		Headers:            c.Headers,
		Payload:            c.PayloadExpr,
		Timeout:            c.Timeout,
		Schedule:           c.Retry.Schedule,
		Jitter:             jitterOf(c.Retry),
		Ordered:            c.Ordering != "none",
		MaxInFlight:        max(c.MaxInFlight, 1),
		DisableAfter:       c.DisableAfter,
		ManagedBy:          "config",
		InsecureSkipVerify: c.InsecureSkipVerify,
		TestEvent:          c.TestEvent,
		secrets:            redact.FromRequest(c.URL, c.Headers),
	}, nil
}

// jitterOf is a retry policy's jitter; an entry built without
// normalisation gets the default.
func jitterOf(r config.Retry) float64 {
	if r.Jitter == nil {
		return config.DefaultRetryJitter
	}
	return *r.Jitter
}

// Wants reports whether the subscription receives events of type typ.
func (s *Subscription) Wants(typ string) bool {
	return glob.MatchAny(s.Events, typ)
}
