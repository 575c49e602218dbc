package diff

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/jqexpr"
)

// Events turns a transition into the events its source's rules ask for.
// Without rules every transition becomes `{source}.{kind}`. A `when` that
// fails to evaluate counts as false and is returned as an error beside the
// events that did match, so one bad item can't block a poll.
func Events(ctx context.Context, src *config.Source, t Transition, watch *event.Watch, now time.Time) ([]*event.Event, error) {
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
	if len(src.Events) == 0 {
		return []*event.Event{mk(src.Name + "." + t.Kind)}, nil
	}
	var out []*event.Event
	var errs []error
	for i := range src.Events {
		r := &src.Events[i]
		if !Matches(r, i, t) {
			continue
		}
		e := mk(Render(r.Type, src.Name, t))
		if r.WhenExpr != nil {
			ok, err := when(ctx, r.WhenExpr, e)
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
func Matches(r *config.Rule, i int, t Transition) bool {
	if r.On != t.Kind {
		return false
	}
	if t.Kind == event.Stalled {
		return t.Rule == i
	}
	return r.FromMatch.Match(t.Previous) && r.ToMatch.Match(t.Current)
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
