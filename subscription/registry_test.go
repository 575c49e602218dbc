package subscription

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/internal/check"
	"github.com/pollrelay/pollrelay/store"
	"github.com/pollrelay/pollrelay/store/badger"
)

// TestRegistryMergesConfigAndStored: config subscriptions shadow stored
// ones of their name; the API lists stored ones newest first, then the
// config's; a stored record that no longer validates is logged and left
// out; and a stored one is validated when loaded, not when read.
func TestRegistryMergesConfigAndStored(t *testing.T) {
	st, err := badger.Open(badger.Options{Path: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)
	put := func(id string, age time.Duration, spec string) {
		t.Helper()
		rec := &store.SubscriptionRecord{ID: id, Spec: json.RawMessage(spec), Secrets: []store.StoredSecret{{Value: testSecret}},
			CreatedAt: now.Add(-age), UpdatedAt: now.Add(-age), Version: 1}
		if err := st.Update(func(tx store.Txn) error { return tx.PutAPISubscription(rec) }); err != nil {
			t.Fatal(err)
		}
	}
	put("old", 2*time.Hour, `{"url": "https://x/old"}`)
	put("new", time.Hour, `{"url": "https://x/new", "retry": {"every": "1m", "for": "2m"}}`)
	put("app", 0, `{"url": "https://x/shadowed"}`)
	put("broken", 0, `{"url": "ftp://x/"}`)

	var logs bytes.Buffer
	r := NewRegistry(slog.New(slog.NewTextHandler(&logs, nil)))
	var specs []Spec
	for _, name := range []string{"app", "other"} {
		s := Default()
		s.Name, s.URL, s.Secret = name, "https://x/"+name, testSecret
		p := &check.Problems{}
		s.Check("", p)
		if err := p.Err(); err != nil {
			t.Fatal(err)
		}
		specs = append(specs, s)
	}
	if err := r.SetConfig(specs); err != nil {
		t.Fatal(err)
	}
	load := func() {
		t.Helper()
		if err := st.View(func(tx store.Txn) error { return r.Load(tx, now) }); err != nil {
			t.Fatal(err)
		}
	}
	load()

	if s := r.Get("app"); s == nil || s.ManagedBy != ManagedByConfig || s.Spec.URL != "https://x/app" {
		t.Errorf("app: %+v, want the config's", s)
	}
	loaded := r.Get("new")
	if loaded == nil || loaded.ManagedBy != ManagedByAPI || !slices.Equal(loaded.Spec.Retry.Schedule, []time.Duration{time.Minute, time.Minute}) {
		t.Fatalf("new: %+v", loaded)
	}
	if r.Get("broken") != nil || !strings.Contains(logs.String(), "subscription=broken") {
		t.Errorf("an invalid record was loaded, or skipped without a word: %s", logs.String())
	}
	ids := func(subs []*Subscription) []string {
		var out []string
		for _, s := range subs {
			out = append(out, s.ID()+"/"+s.ManagedBy)
		}
		return out
	}
	if got, want := ids(r.List()), []string{"app/api", "new/api", "old/api", "app/config", "other/config"}; !slices.Equal(got, want) {
		t.Errorf("List = %v, want %v", got, want)
	}
	if got, want := ids(r.Active()), []string{"app/config", "other/config", "new/api", "old/api"}; !slices.Equal(got, want) {
		t.Errorf("Active = %v, want %v", got, want)
	}
	if got, want := r.IDs(), []string{"app", "other", "app", "new", "old"}; !slices.Equal(got, want) {
		t.Errorf("IDs = %v, want %v", got, want)
	}

	// Reading and a reload of the config read no record: one rewritten
	// under the registry is seen only at the next load.
	put("new", time.Hour, `{"url": 5}`)
	if err := r.SetConfig(specs); err != nil {
		t.Fatal(err)
	}
	if r.Get("new") != loaded {
		t.Error("a read or a reload validated the stored record again")
	}
	load()
	if r.Get("new") != nil {
		t.Error("a load kept a record that no longer validates")
	}
}

// TestSetConfigIsAllOrNothing: a spec whose payload does not compile
// leaves the running set as it was.
func TestSetConfigIsAllOrNothing(t *testing.T) {
	r := NewRegistry(slog.New(slog.DiscardHandler))
	good := Spec{Name: "good", URL: "https://x/", Secret: testSecret}
	if err := r.SetConfig([]Spec{good}); err != nil {
		t.Fatal(err)
	}
	bad := Spec{Name: "bad", URL: "https://x/", Secret: testSecret, Payload: ".["}
	if err := r.SetConfig([]Spec{bad}); err == nil || !strings.Contains(err.Error(), "subscription bad: payload") {
		t.Fatalf("SetConfig with a broken payload: %v", err)
	}
	if r.Get("good") == nil || r.Get("bad") != nil {
		t.Error("a failed SetConfig changed the set")
	}
}

// TestTemplatesAreNeverDeliveredTo: a template is listed and found, but
// not among the subscriptions events go to; its url may be empty; and an
// API body cannot make one.
func TestTemplatesAreNeverDeliveredTo(t *testing.T) {
	tmpl := Default()
	tmpl.Name, tmpl.Template, tmpl.Secret = "dam-app", true, testSecret
	p := &check.Problems{}
	tmpl.Check("", p)
	if err := p.Err(); err != nil {
		t.Fatalf("a template without url: %v", err)
	}
	app := Default()
	app.Name, app.URL, app.Secret = "app", "https://x/app", testSecret
	app.Check("", p)
	r := NewRegistry(nil)
	if err := r.SetConfig([]Spec{tmpl, app}); err != nil {
		t.Fatal(err)
	}
	var active []string
	for _, s := range r.Active() {
		active = append(active, s.ID())
	}
	if !slices.Equal(active, []string{"app"}) || r.Get("dam-app") == nil || len(r.List()) != 2 {
		t.Errorf("active %v; the template must be found and listed but not delivered to", active)
	}
	_, err := Parse(map[string]any{"name": "x", "url": "https://x/", "template": true}, []string{testSecret})
	if err == nil || !strings.Contains(err.Error(), "template: only a config file's subscription can be a template") {
		t.Errorf("an API template: %v", err)
	}
}
