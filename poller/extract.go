package poller

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"

	"github.com/pollrelay/pollrelay/diff"
	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/jqexpr"
)

// decode parses a response body, failing with the first bytes quoted so the
// log shows what the upstream sent instead of JSON (an HTML error page, say).
func decode(body []byte, status int) (any, error) {
	v, err := jqexpr.Decode(body)
	if err != nil {
		return nil, &PollError{Outcome: OutcomeDecode, Status: status,
			Err: fmt.Errorf("response is not JSON (%v): %s", err, Snippet(body))}
	}
	return v, nil
}

// extract runs the source's items/id/state/object expressions over a decoded
// page. Any item whose id or state can't be extracted fails the whole page:
// a poll that can't read everything decides nothing.
func extract(ctx context.Context, src *compiled, doc any) ([]diff.Observation, error) {
	items := []any{doc}
	if src.items != nil {
		var err error
		if items, err = src.items.All(ctx, doc); err != nil {
			return nil, pollErr(OutcomeExtract, "items: %w", err)
		}
	}
	out := make([]diff.Observation, 0, len(items))
	for i, it := range items {
		o, err := extractOne(ctx, src, it)
		if err != nil {
			return nil, pollErr(OutcomeExtract, "item %d: %w", i, err)
		}
		out = append(out, o)
	}
	return out, nil
}

func extractOne(ctx context.Context, src *compiled, it any) (diff.Observation, error) {
	idv, err := src.id.First(ctx, it)
	if err != nil {
		return diff.Observation{}, fmt.Errorf("id: %w", err)
	}
	id, err := idString(idv)
	if err != nil {
		return diff.Observation{}, fmt.Errorf("id %s: %w", src.id, err)
	}
	return extractState(ctx, src, it, id)
}

// extractWatch reads the one item of a watch request. The item is keyed by
// the watched id, so the watch, its item and its events always agree: the
// id expression may yield nothing (a status endpoint often omits the id)
// and a different spelling of the id (a number for "42") changes nothing.
func extractWatch(ctx context.Context, src *compiled, doc any, watched string) (diff.Observation, error) {
	o, err := extractState(ctx, src, doc, watched)
	if err != nil {
		return o, pollErr(OutcomeExtract, "%w", err)
	}
	return o, nil
}

// extractState reads an item's state and object.
func extractState(ctx context.Context, src *compiled, it any, id string) (diff.Observation, error) {
	o := diff.Observation{ID: id}
	sv, err := src.state.First(ctx, it)
	if err != nil {
		return o, fmt.Errorf("item %s: state: %w", o.ID, err)
	}
	if o.State, err = event.Canonical(sv); err != nil {
		return o, fmt.Errorf("item %s: state: %w", o.ID, err)
	}
	if src.object == nil {
		// The object is the item as decoded, which always encodes again:
		// defer the encoding to the few items that change.
		o.ObjectFunc = func() json.RawMessage {
			c, err := event.Canonical(it)
			if err != nil {
				return event.Null
			}
			return c
		}
		return o, nil
	}
	obj, err := src.object.First(ctx, it)
	if err != nil {
		return o, fmt.Errorf("item %s: object: %w", o.ID, err)
	}
	if o.Object, err = event.Canonical(obj); err != nil {
		return o, fmt.Errorf("item %s: object: %w", o.ID, err)
	}
	return o, nil
}

// idString turns an extracted id into the item's key. Strings and numbers
// are accepted; null, objects and arrays are not ids.
func idString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		if x == "" {
			return "", fmt.Errorf("is empty")
		}
		return x, nil
	case int:
		return strconv.Itoa(x), nil
	case *big.Int:
		return x.String(), nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return strconv.FormatInt(int64(x), 10), nil
		}
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case nil:
		return "", fmt.Errorf("is null")
	default:
		return "", fmt.Errorf("must be a string or a number, got %T", v)
	}
}
