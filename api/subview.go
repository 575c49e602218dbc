package api

import (
	"bytes"
	"encoding/json"
	"maps"
	"reflect"
	"strings"
	"time"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/internal/redact"
	"github.com/pollrelay/pollrelay/notifier"
	"github.com/pollrelay/pollrelay/subscription"
)

// subscriptionView is a subscription as the API shows it: its spec in the
// form PATCH takes back, where it comes from, and its delivery health. The
// secret is only ever set in the answer to create and rotate-secret.
type subscriptionView struct {
	sub    *subscription.Subscription
	secret string
	stats  notifier.SubscriptionStats
}

// subscriptionState is what a view adds to the spec. Every key of it is
// read-only: PATCH ignores them, so a GET answer can be sent back.
type subscriptionState struct {
	ManagedBy string    `json:"managed_by"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	Secret    string    `json:"secret,omitempty"`
	notifier.SubscriptionStats
}

func (s *Server) view(sub *subscription.Subscription) subscriptionView {
	v := subscriptionView{sub: sub}
	if st, ok := s.opts.Notifier.Stats(sub.ID()); ok {
		v.stats = st
	}
	return v
}

// MarshalJSON writes the id, the spec with its credentials hidden, then
// the state, as one object.
func (v subscriptionView) MarshalJSON() ([]byte, error) {
	head, err := event.Canonical(struct {
		ID string `json:"id"`
	}{v.sub.ID()})
	if err != nil {
		return nil, err
	}
	spec, err := shown(v.sub.Spec).MarshalJSON()
	if err != nil {
		return nil, err
	}
	st := subscriptionState{ManagedBy: v.sub.ManagedBy, Secret: v.secret, SubscriptionStats: v.stats}
	if rec := v.sub.Record; rec != nil {
		st.CreatedAt, st.UpdatedAt = rec.CreatedAt, rec.UpdatedAt
	}
	tail, err := event.Canonical(st)
	if err != nil {
		return nil, err
	}
	return joinObjects(head, spec, tail), nil
}

// shown is spec as the API shows it: a URL's password and the values of
// credential headers hidden.
func shown(spec subscription.Spec) subscription.Spec {
	spec.URL = redact.Userinfo(spec.URL)
	spec.Headers = redact.Headers(spec.Headers)
	return spec
}

// joinObjects merges the encodings of JSON objects whose keys differ into
// one object, keeping their order.
func joinObjects(objs ...[]byte) []byte {
	out := []byte{'{'}
	for _, o := range objs {
		inner := bytes.TrimSpace(o)
		inner = bytes.TrimSpace(inner[1 : len(inner)-1])
		if len(inner) == 0 {
			continue
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, inner...)
	}
	return append(out, '}')
}

// readOnlyKeys are the keys of a view that no request sets: PATCH drops
// them, so an answer sent back changes nothing. disabled is not one.
var readOnlyKeys = func() map[string]bool {
	keys := map[string]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Anonymous {
				walk(f.Type)
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			keys[name] = true
		}
	}
	walk(reflect.TypeFor[subscriptionState]())
	delete(keys, "disabled")
	delete(keys, "secret")
	return keys
}()

// changes is what a PATCH body asks to change in cur: its keys minus the
// read-only ones and those that hold what cur shows already. A hidden
// credential sent back as shown stands for the one stored.
func changes(cur *subscription.Subscription, patch map[string]any) (map[string]any, error) {
	now, err := specTree(cur.Spec)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	for k, v := range patch {
		if readOnlyKeys[k] {
			continue
		}
		v = unredacted(cur.Spec, k, v)
		if old, has := now[k]; (has && reflect.DeepEqual(old, v)) || (!has && v == nil) {
			continue
		}
		out[k] = v
	}
	return out, nil
}

// unredacted puts back a credential a view hid, when v is it as shown:
// the URL with its password hidden, or a credential header's "redacted".
func unredacted(spec subscription.Spec, key string, v any) any {
	switch key {
	case "url":
		if s, ok := v.(string); ok && spec.URL != s && s == redact.Userinfo(spec.URL) {
			return spec.URL
		}
	case "headers":
		h, ok := v.(map[string]any)
		if !ok {
			return v
		}
		hidden := redact.Headers(spec.Headers)
		out := maps.Clone(h)
		for k, val := range h {
			if stored, has := spec.Headers[k]; has && val == hidden[k] && hidden[k] != stored {
				out[k] = stored
			}
		}
		return out
	}
	return v
}

// specTree is spec as JSON values, for a PATCH to change keys of.
func specTree(spec subscription.Spec) (map[string]any, error) {
	raw, err := spec.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var tree map[string]any
	err = json.Unmarshal(raw, &tree)
	return tree, err
}
