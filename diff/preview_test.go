package diff

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/event"
)

// TestPreviewIsApplyWithoutTheWrite: on each poll of a sequence (baseline,
// a change, a mass delete held, the same held again, an ordinary delete,
// an unchanged listing) Preview reports what Apply then does, held deletes
// included, and leaves the store as it was.
func TestPreviewIsApplyWithoutTheWrite(t *testing.T) {
	const yaml = "  - {name: s, url: 'https://x.test/s', items: '.data[]', confirm_polls: 2}\n"
	src := parseSource(t, yaml)
	d := newDB(t)
	ten := listing(10, "queued")
	changed := slices.Clone(ten)
	changed[3] = ob("i03", "ready")
	polls := []struct {
		name string
		obs  []Observation
		held int
	}{
		{"baseline", ten, 0},
		{"a change", changed, 0},
		{"mass delete", changed[:2], 8},
		{"mass delete confirmed", changed[:2], 0},
		{"back, then an ordinary delete", nil, 0},
		{"unchanged", nil, 0},
	}
	polls[4].obs = append(slices.Clone(changed[:2]), ob("i10", "queued"))
	polls[5].obs = polls[4].obs
	for i, p := range polls {
		poll := Poll{Observations: p.obs, Complete: true, Now: t0.Add(time.Duration(i) * time.Minute)}
		beforeEvents, beforeSS, beforeN := d.events(), d.sourceState("s"), d.count("s")
		pre, err := Preview(context.Background(), d.st, src, poll)
		if err != nil {
			t.Fatalf("%s: preview: %v", p.name, err)
		}
		if !slices.Equal(d.events(), beforeEvents) || d.sourceState("s") != beforeSS || d.count("s") != beforeN {
			t.Fatalf("%s: preview wrote to the store", p.name)
		}
		got, err := Apply(context.Background(), d.st, src, poll)
		if err != nil {
			t.Fatalf("%s: apply: %v", p.name, err)
		}
		if pre.HeldDeletes != p.held || got.HeldDeletes != p.held {
			t.Errorf("%s: held %d by preview, %d by apply, want %d", p.name, pre.HeldDeletes, got.HeldDeletes, p.held)
		}
		if pre.Baseline != got.Baseline || pre.Tracked != got.Tracked || !slices.Equal(kinds(pre.Events), kinds(got.Events)) ||
			len(pre.Transitions) != len(got.Transitions) {
			t.Errorf("%s: preview %+v\napply %+v", p.name, pre, got)
		}
	}
	if got := d.events(); len(got) == 0 {
		t.Error("the sequence fired nothing; it is meant to")
	}
}

// kinds names events by type and item.
func kinds(evs []*event.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type+":"+e.ItemID)
	}
	return out
}
