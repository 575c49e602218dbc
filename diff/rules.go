package diff

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/jqexpr"
)

// Events turns a transition into the events its source's rules ask for.
// Without rules every transition becomes `{source}.{kind}`. A `when` that
// fails to evaluate counts as false and is returned as an error beside the
// events that did match, so one bad item can't block a poll.
func Events(ctx context.Context, src *Source, t Transition, watch *event.Watch, now time.Time) ([]*event.Event, error) {
	mk := func(typ string) *event.Event {
		return &event.Event{
			ID:        event.NewID(now),
			Type:      typ,
			Kind:      t.Kind,
			Source:    src.Name,
			ItemID:    t.ID,
			Previous:  t.Previous,
			Current:   t.Current,
			Object:    t.Object,
			Watch:     watch,
			CreatedAt: now,
		}
	}
	if len(src.rules) == 0 {
		return []*event.Event{mk(src.Name + "." + t.Kind)}, nil
	}
	var out []*event.Event
	var errs []error
	for i := range src.rules {
		r := &src.rules[i]
		if !Matches(r, i, t) {
			continue
		}
		if r.On.Members() {
			for _, kind := range []string{event.MemberAdded, event.MemberRemoved} {
				if !r.On.Has(kind) {
					continue
				}
				tk := t
				tk.Kind = kind // {kind} names the member event, not the change it came from
				evs, err := memberEvents(ctx, r, kind, t, func(member json.RawMessage) *event.Event {
					e := mk(strings.ReplaceAll(Render(r.Type, src.Name, tk), "{member}", event.Text(member)))
					e.Kind, e.Member = kind, member
					return e
				})
				if err != nil {
					errs = append(errs, fmt.Errorf("events[%d]: %w", i, err))
				}
				out = append(out, evs...)
			}
			continue
		}
		e := mk(Render(r.Type, src.Name, t))
		if r.when != nil {
			ok, err := when(ctx, r.when, e)
			if err != nil {
				errs = append(errs, fmt.Errorf("events[%d].when: %w", i, err))
				continue
			}
			if !ok {
				continue
			}
		}
		out = append(out, e)
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("item %s: %w", t.ID, errs[0])
	}
	return out, nil
}

// Matches reports whether rule r (at index i of its source) applies to t.
func Matches(r *Rule, i int, t Transition) bool {
	if r.On.Members() {
		// Membership is read from a changed state: an item's first state
		// is in its created event, its last in its deleted one.
		return t.Kind == event.Changed && r.from.Match(t.Previous) && r.to.Match(t.Current)
	}
	if !r.On.Has(t.Kind) {
		return false
	}
	if t.Kind == event.Stalled {
		return t.Rule == i
	}
	return r.from.Match(t.Previous) && r.to.Match(t.Current)
}

// Render fills a type template's placeholders.
func Render(tmpl, source string, t Transition) string {
	if !strings.Contains(tmpl, "{") {
		return tmpl
	}
	return strings.NewReplacer(
		"{source}", source,
		"{previous}", event.Text(t.Previous),
		"{current}", event.Text(t.Current),
		"{kind}", t.Kind,
	).Replace(tmpl)
}

func when(ctx context.Context, expr *jqexpr.Expr, e *event.Event) (bool, error) {
	raw, err := json.Marshal(e.Data())
	if err != nil {
		return false, err
	}
	v, err := jqexpr.Decode(raw)
	if err != nil {
		return false, err
	}
	return expr.Truthy(ctx, v)
}

// memberEvents makes one event per element of the rule's members list that
// joined (member_added) or left (member_removed) between the previous and
// the current state, in list order. Elements compare as canonical JSON.
func memberEvents(ctx context.Context, r *Rule, kind string, t Transition, mk func(json.RawMessage) *event.Event) ([]*event.Event, error) {
	prev, err := members(ctx, r.members, t.Previous)
	if err != nil {
		return nil, fmt.Errorf("members (previous state): %w", err)
	}
	cur, err := members(ctx, r.members, t.Current)
	if err != nil {
		return nil, fmt.Errorf("members (current state): %w", err)
	}
	from, to := prev, cur
	if kind == event.MemberRemoved {
		from, to = cur, prev
	}
	had := make(map[string]bool, len(from))
	for _, m := range from {
		had[string(m)] = true
	}
	var out []*event.Event
	var errs []error
	for _, m := range to {
		if had[string(m)] {
			continue
		}
		had[string(m)] = true // a repeated element fires once
		e := mk(m)
		if r.when != nil {
			ok, err := when(ctx, r.when, e)
			if err != nil {
				errs = append(errs, fmt.Errorf("when: %w", err))
				continue
			}
			if !ok {
				continue
			}
		}
		out = append(out, e)
	}
	if len(errs) > 0 {
		return out, errs[0]
	}
	return out, nil
}

// members evaluates the members expression over a state; null (no state,
// or no list) is the empty list.
func members(ctx context.Context, expr *jqexpr.Expr, state json.RawMessage) ([]json.RawMessage, error) {
	if len(state) == 0 || string(state) == "null" {
		return nil, nil
	}
	v, err := jqexpr.Decode(state)
	if err != nil {
		return nil, err
	}
	l, err := expr.First(ctx, v)
	if err != nil || l == nil {
		return nil, err
	}
	arr, ok := l.([]any)
	if !ok {
		return nil, fmt.Errorf("%s must yield a list, got %T", expr, l)
	}
	out := make([]json.RawMessage, 0, len(arr))
	for _, e := range arr {
		c, err := event.Canonical(e)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}
