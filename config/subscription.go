package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ParseSubscription validates one subscription given as JSON-like values
// (from the management API) with exactly the rules a config file gets, and
// returns it normalised. Problems are reported without the
// `subscriptions[0].` prefix: `url: must be an absolute http or https URL`.
//
// Values are taken literally: `${NAME}` is not expanded, so an API caller
// can't read the sidecar's environment through a subscription.
func ParseSubscription(spec map[string]any) (*Subscription, error) {
	doc := map[string]any{
		"storage":       map[string]any{"in_memory": true},
		"sources":       []any{map[string]any{"name": "placeholder", "url": "http://127.0.0.1/"}},
		"subscriptions": []any{escapeEnv(spec)},
	}
	data, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode subscription: %w", err)
	}
	cfg, err := ParseWith(data, func(string) (string, bool) { return "", false })
	if err != nil {
		var ve *ValidationError
		if !errors.As(err, &ve) {
			return nil, err
		}
		out := &ValidationError{}
		for _, p := range ve.Problems {
			p = strings.TrimPrefix(p, "subscriptions[0].")
			p = strings.TrimPrefix(p, "subscriptions[0]")
			out.Problems = append(out.Problems, strings.TrimPrefix(p, ": "))
		}
		return nil, out
	}
	return &cfg.Subscriptions[0], nil
}

// escapeEnv doubles `$` before `{` in every string so expansion leaves it.
func escapeEnv(v any) any {
	switch x := v.(type) {
	case string:
		return strings.ReplaceAll(x, "${", "$${")
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = escapeEnv(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = escapeEnv(e)
		}
		return out
	default:
		return v
	}
}
