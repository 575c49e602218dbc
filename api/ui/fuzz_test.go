package ui

import (
	"bytes"
	"encoding/json"
	"html/template"
	"strings"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/notifier"
	"github.com/pollrelay/pollrelay/poller"
	"github.com/pollrelay/pollrelay/store"
)

// pageFixtures fills every page with s wherever an upstream or receiver
// controls the value: ids, states, objects, types, errors, answers.
func pageFixtures(s string) map[string]any {
	state, _ := json.Marshal(s)
	obj, _ := json.Marshal(map[string]string{s: s})
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ev := &event.Event{ID: s, Type: s, Source: s, ItemID: s, Previous: state, Current: state, Object: obj, CreatedAt: at}
	dl := &store.Delivery{EventID: s, Subscription: s, State: store.Dead, LastError: s, LastStatus: 500, UpdatedAt: at}
	return map[string]any{
		"sources": sourcesData{Sources: []poller.Status{{Name: s, URL: s, Kind: s, Interval: s, LastOutcome: s, LastError: s, LastPollAt: at, Failures: 1}}},
		"items":   itemsData{Source: s, ID: s, State: s, Items: []itemRow{{ID: s, State: state, Since: at}}},
		"item": itemData{Source: s, ID: s, Item: &store.Item{State: state, Object: obj, Pending: state, Since: at},
			Timeline: []moment{{At: at, State: state}, {At: at, Event: ev}}},
		"events":        eventsData{Type: s, Source: s, Since: s, Events: []*event.Event{ev}, Next: s},
		"event":         eventData{Event: ev, Deliveries: []*store.Delivery{dl}, Attempts: []store.Attempt{{N: 1, Subscription: s, Outcome: s, Error: s, Body: s}}},
		"subscriptions": []subRow{{ID: s, SubscriptionStats: notifier.SubscriptionStats{Disabled: true, DisabledReason: s, DeadCount: 1}}},
		"dead":          deadData{Subscription: s, Deliveries: []*store.Delivery{dl}},
		"error":         nil,
		"login":         nil,
	}
}

func renderAll(t testing.TB, pages map[string]*template.Template, s string) map[string]string {
	out := map[string]string{}
	for name, data := range pageFixtures(s) {
		var b bytes.Buffer
		d := pageData{Title: s, Nav: name, CSRF: "csrf", Msg: s, Error: s, Data: data}
		if err := pages[name].ExecuteTemplate(&b, "layout.html", d); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = b.String()
	}
	return out
}

// FuzzPagesEscape renders every page with arbitrary text in every
// upstream-controlled place and checks that the text added no markup: the
// page has exactly as many '<' and '"' as with a harmless value, in text,
// attributes and URLs alike.
func FuzzPagesEscape(f *testing.F) {
	for _, s := range []string{`<script>alert(1)</script>`, `"><img src=x onerror=alert(1)>`, `' onmouseover='x`, "javascript:alert(1)", "\u2028</pre><b>", "&lt;", "\x00<"} {
		f.Add(s)
	}
	pages := parsePages()
	plain := renderAll(f, pages, "x")
	f.Fuzz(func(t *testing.T, s string) {
		s = "x" + s // an empty value would take other branches of the templates
		for name, got := range renderAll(t, pages, s) {
			for _, ch := range []string{"<", `"`} {
				if n, want := strings.Count(got, ch), strings.Count(plain[name], ch); n != want {
					t.Fatalf("page %s with %q has %d %q, %d with a plain value:\n%s", name, s, n, ch, want, got)
				}
			}
		}
	})
}
