package diff

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/event"
)

// parseSource builds a source from the YAML of one `sources:` element.
func parseSource(t *testing.T, yaml string) *Source {
	t.Helper()
	cfg, err := config.ParseWith([]byte("storage: {in_memory: true}\nsources:\n"+yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	src, err := Compile(&cfg.Sources[0])
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func tr(kind, id string, prev, cur json.RawMessage) Transition {
	return Transition{Kind: kind, ID: id, Previous: prev, Current: cur,
		Object: json.RawMessage(`{"id":"` + id + `","priority":2}`)}
}

func TestEvents(t *testing.T) {
	videos := parseSource(t, `  - name: videos
    url: https://api.example.test/v1/videos
    items: '.data[]'
    events:
      - {type: 'video.status.{current}', on: changed, from: '*', to: [ready, errored]}
      - {type: 'video.left.{previous}', on: changed, from: 'proc*', to: '*'}
      - {type: video.restarted, on: changed, from: [failed, errored], to: queued}
      - {type: video.urgent_ready, on: changed, to: ready, when: '.object.priority > 1'}
      - {type: video.new, on: created}
      - {type: '{source}.gone.{previous}', on: deleted}
      - {type: video.stuck, on: stalled, state: queued, after: 10m}
      - {type: 'video.{kind}.{current}', on: changed, from: 1, to: 2}
      - {type: video.broken_when, on: changed, to: broken, when: '.object.priority.x'}
`)
	plain := parseSource(t, "  - {name: plain, url: 'https://api.example.test/p', items: '.data[]'}\n")
	tests := []struct {
		name string
		src  *Source
		t    Transition
		want []string
		err  bool
	}{
		{"no rules: {source}.{kind}", plain, tr(event.Changed, "a", js("queued"), js("ready")), []string{"plain.changed"}, false},
		{"no rules: deleted", plain, tr(event.Deleted, "a", js("queued"), event.Null), []string{"plain.deleted"}, false},
		{"to list, placeholder, when true, from glob", videos, tr(event.Changed, "a", js("processing"), js("ready")),
			[]string{"video.status.ready", "video.left.processing", "video.urgent_ready"}, false},
		{"to list excludes", videos, tr(event.Changed, "a", js("queued"), js("processing")), nil, false},
		{"from list", videos, tr(event.Changed, "a", js("errored"), js("queued")), []string{"video.restarted"}, false},
		{"from list excludes", videos, tr(event.Changed, "a", js("ready"), js("queued")), nil, false},
		{"created rule only for created", videos, tr(event.Created, "a", event.Null, js("queued")), []string{"video.new"}, false},
		{"deleted with {source} and {previous}", videos, tr(event.Deleted, "a", js("ready"), event.Null), []string{"videos.gone.ready"}, false},
		{"stalled matches its own rule only", videos, Transition{Kind: event.Stalled, ID: "a", Previous: js("queued"), Current: js("queued"), Rule: 6},
			[]string{"video.stuck"}, false},
		{"stalled of another rule index", videos, Transition{Kind: event.Stalled, ID: "a", Previous: js("queued"), Current: js("queued"), Rule: 2}, nil, false},
		{"non-string states and {kind}", videos, tr(event.Changed, "a", json.RawMessage("1"), json.RawMessage("2")),
			[]string{"video.changed.2"}, false},
		{"a failing when counts as false, others still fire", videos, tr(event.Changed, "a", js("processing"), js("broken")),
			[]string{"video.left.processing"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := &event.Watch{Metadata: json.RawMessage(`{"k":1}`)}
			evs, err := Events(context.Background(), tc.src, tc.t, w, t0)
			if (err != nil) != tc.err {
				t.Errorf("err = %v, want error %v", err, tc.err)
			}
			var got []string
			for _, e := range evs {
				got = append(got, e.Type)
				if e.Kind != tc.t.Kind || e.ItemID != tc.t.ID || e.Source != tc.src.Name || e.Watch != w ||
					!e.CreatedAt.Equal(t0) || !strings.HasPrefix(e.ID, "evt_") {
					t.Errorf("event fields: %+v", e)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("types = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestWhenSeesTheEnvelopeData(t *testing.T) {
	src := parseSource(t, `  - name: s
    url: https://api.example.test/s
    events:
      - {type: ok, on: changed, when: '.source == "s" and .id == "a" and .previous == "x" and .current == "y" and .watch.metadata.team == "red"'}
`)
	evs, err := Events(context.Background(), src, tr(event.Changed, "a", js("x"), js("y")),
		&event.Watch{Metadata: json.RawMessage(`{"team":"red"}`)}, t0)
	if err != nil || len(evs) != 1 {
		t.Fatalf("events %v, err %v", evs, err)
	}
}

func TestMemberEvents(t *testing.T) {
	src := parseSource(t, `  - name: albums
    url: https://api.example.test/albums
    items: '.data[]'
    state: '{name, asset_ids}'
    events:
      - {type: album.asset_added, on: member_added, members: '.asset_ids'}
      - {type: 'album.asset_removed.{member}', on: member_removed, members: '.asset_ids'}
      - {type: album.updated, on: changed, when: '.previous.name != .current.name'}`)
	chg := Transition{Kind: event.Changed, ID: "alb_1",
		Previous: json.RawMessage(`{"asset_ids":["a","b"],"name":"x"}`),
		Current:  json.RawMessage(`{"asset_ids":["b","c","d","c"],"name":"x"}`)}
	evs, err := Events(context.Background(), src, chg, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	ids := map[string]bool{}
	for _, e := range evs {
		got = append(got, e.Type+"="+string(e.Member)+"/"+e.Kind)
		ids[e.ID] = true
	}
	want := []string{`album.asset_added="c"/member_added`, `album.asset_added="d"/member_added`, `album.asset_removed.a="a"/member_removed`}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if len(ids) != len(evs) {
		t.Error("member events share an id")
	}
	env, _ := evs[0].EnvelopeJSON()
	if !strings.Contains(string(env), `"member":"c"`) {
		t.Errorf("envelope lacks data.member: %s", env)
	}
	// A created item fires no member events; a non-list is an error.
	if evs, _ := Events(context.Background(), src, Transition{Kind: event.Created, ID: "n", Previous: event.Null, Current: chg.Current}, nil, time.Now()); len(evs) != 0 {
		t.Errorf("created fired %d events", len(evs))
	}
	bad := chg
	bad.Current = json.RawMessage(`{"asset_ids":"oops","name":"x"}`)
	if _, err := Events(context.Background(), src, bad, nil, time.Now()); err == nil {
		t.Error("a members expression yielding a string did not fail")
	}
}

// TestOnList checks that one rule with on: [created, changed] announces an
// item that first appears in its final state as well as one that moves
// into it, and that a list of member kinds fires both directions.
func TestOnList(t *testing.T) {
	src := parseSource(t, `  - name: videos
    url: https://api.example.test/v1/videos
    items: '.data[]'
    events:
      - {type: 'video.{current}', on: [created, changed], to: [ready, errored]}`)
	tags := parseSource(t, `  - name: tags
    url: https://api.example.test/v1/tags
    items: '.data[]'
    state: '{tags}'
    events:
      - {type: 'tag.{kind}', on: [member_added, member_removed], members: '.tags'}`)
	cases := []struct {
		src  *Source
		t    Transition
		want []string
	}{
		{src, tr(event.Created, "born-done", event.Null, js("errored")), []string{"video.errored"}},
		{src, tr(event.Changed, "a", js("processing"), js("ready")), []string{"video.ready"}},
		{src, tr(event.Created, "born-queued", event.Null, js("queued")), nil},
		{src, tr(event.Deleted, "a", js("ready"), event.Null), nil},
		{tags, Transition{Kind: event.Changed, ID: "t", Previous: json.RawMessage(`{"tags":["x"]}`), Current: json.RawMessage(`{"tags":["y"]}`)},
			[]string{"tag.member_added", "tag.member_removed"}},
	}
	for _, c := range cases {
		evs, err := Events(context.Background(), c.src, c.t, nil, t0)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range evs {
			got = append(got, e.Type)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s %s: types %q, want %q", c.t.Kind, c.t.ID, got, c.want)
		}
	}
}
