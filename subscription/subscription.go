package subscription

import (
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/pollrelay/pollrelay/internal/check"
	"github.com/pollrelay/pollrelay/jqexpr"
	"github.com/pollrelay/pollrelay/signature"
	"github.com/pollrelay/pollrelay/store"
)

// Where a subscription comes from, which decides who may change it.
const (
	ManagedByConfig = "config"
	ManagedByAPI    = "api"
)

// Subscription is a subscription ready to deliver to: a normalised,
// validated Spec, where it comes from, and what running it needs. It is
// not changed once built; a change builds a new one.
type Subscription struct {
	// Spec is what the user wrote, normalised. An API subscription's Spec
	// has no Secret: its secrets are in Record.
	Spec      Spec
	ManagedBy string // ManagedByConfig or ManagedByAPI
	// Record is an API subscription as stored (secrets, times, version);
	// nil for a config one.
	Record *store.SubscriptionRecord
	// Payload is Spec.Payload compiled; nil for the default envelope.
	Payload *jqexpr.Expr
}

// ID is the subscription's id, its name.
func (s *Subscription) ID() string { return s.Spec.Name }

// Secrets returns the secrets signing at now, newest first: the config
// file's, or those of the stored record still in their rotation overlap.
func (s *Subscription) Secrets(now time.Time) []string {
	if s.Record != nil {
		return s.Record.Active(now)
	}
	return s.Spec.Secrets()
}

// Signer builds the signer for the secrets signing at now.
func (s *Subscription) Signer(now time.Time) (signature.Signer, error) {
	signer, err := signature.NewSigner(s.Spec.Scheme(), s.Secrets(now))
	if err != nil {
		return nil, fmt.Errorf("subscription %s: %w", s.ID(), err)
	}
	return signer, nil
}

// WithRecord is s stored as rec: the same spec with, say, rotated secrets.
func (s *Subscription) WithRecord(rec *store.SubscriptionRecord) *Subscription {
	next := *s
	next.Record = rec
	return &next
}

// FromConfig builds a config file's subscription from a Spec config has
// normalised and validated; only its payload program is compiled here.
func FromConfig(spec Spec) (*Subscription, error) {
	sub := &Subscription{Spec: spec, ManagedBy: ManagedByConfig}
	if !defaultPayload(spec.Payload) {
		e, err := jqexpr.Compile(spec.Payload)
		if err != nil {
			return nil, fmt.Errorf("subscription %s: payload: %w", spec.Name, err)
		}
		sub.Payload = e
	}
	return sub, nil
}

// Parse reads an API subscription from JSON values (a request body, or
// the spec the store keeps) by the rules a config file's entry gets, and
// validates it signing with secrets. Every problem is returned at once, in
// a *check.ValidationError, each with its path in the body: `url: must be
// an absolute http or https URL`. Values are taken literally: `${NAME}` is
// not expanded, so an API caller can't read the sidecar's environment. A
// secret in body is ignored; the caller says what signs.
func Parse(body map[string]any, secrets []string) (*Subscription, error) {
	p := &check.Problems{}
	tree := copyTree(body)
	delete(tree, "secret")
	spec := decode(tree, p)
	if len(secrets) == 1 {
		spec.Secret = secrets[0]
	} else if secrets != nil {
		list := make([]any, len(secrets))
		for i, s := range secrets {
			list[i] = s
		}
		spec.Secret = list
	}
	payload := spec.check("", p)
	if spec.Template {
		p.Add("template", "only a config file's subscription can be a template")
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	spec.Secret = nil
	return &Subscription{Spec: spec, ManagedBy: ManagedByAPI, Payload: payload}, nil
}

// FromRecord builds a stored API subscription, validating its spec with
// the secrets signing at now. This is the one validation a record gets
// after it is written: when it is loaded.
func FromRecord(rec *store.SubscriptionRecord, now time.Time) (*Subscription, error) {
	var tree map[string]any
	if err := json.Unmarshal(rec.Spec, &tree); err != nil {
		return nil, fmt.Errorf("subscription %s: decode stored spec: %w", rec.ID, err)
	}
	if tree == nil {
		tree = map[string]any{}
	}
	tree["name"] = rec.ID
	sub, err := Parse(tree, rec.Active(now))
	if err != nil {
		return nil, fmt.Errorf("subscription %s: %w", rec.ID, err)
	}
	sub.Record = rec
	return sub, nil
}

// decode reads a JSON tree onto the defaults, reporting unknown keys and
// values of the wrong type to p. check.Tree changes tree in place.
func decode(tree map[string]any, p *check.Problems) Spec {
	spec := Default()
	check.Tree(p, "", reflect.TypeFor[Spec](), tree)
	check.Decode(p, tree, &spec)
	return spec
}

// copyTree copies the maps and lists of a JSON tree, which check.Tree
// changes in place.
func copyTree(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = copyValue(v)
	}
	return out
}

func copyValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return copyTree(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = copyValue(e)
		}
		return out
	}
	return v
}
