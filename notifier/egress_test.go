package notifier

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pollrelay/pollrelay/store"
)

// API-created subscriptions dial through the SSRF guard: the policy is
// checked on the IP being connected to, so a loopback receiver is refused
// unless delivery.allow_private_networks is on, and link-local (cloud
// metadata) is refused even then. Config subscriptions are not guarded.
func TestAPISubscriptionEgressPolicy(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	cases := []struct {
		name         string
		url          string
		managedBy    string
		allowPrivate bool
		// errText is in the attempt's error when the policy refuses; ""
		// means the delivery must succeed.
		errText string
	}{
		{"api, loopback refused", srv.URL + "/hook", "api", false, "allow_private_networks"},
		{"api, loopback allowed", srv.URL + "/hook", "api", true, ""},
		{"api, metadata always refused", "http://169.254.169.254/latest/meta-data", "api", true, "link-local"},
		{"config, loopback", srv.URL + "/hook", "config", false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := hits.Load()
			subs := parseSubs(t, `name: app
				url: `+c.url+`
				secret: `+testSecret+`
				timeout: 2s
				retry: {schedule: [1h]}`)
			subs[0].ManagedBy, subs[0].AllowPrivate = c.managedBy, c.allowPrivate
			e := start(t, t.TempDir(), subs, Options{})
			ev := e.emit("task.ready", "a")
			if c.errText == "" {
				e.waitState("app", ev.ID, store.Delivered)
				if hits.Load() == before {
					t.Fatal("delivered without reaching the receiver")
				}
				return
			}
			e.waitState("app", ev.ID, store.Retrying)
			as := e.attempts(ev.ID)
			if len(as) != 1 {
				t.Fatalf("%d attempts, want 1", len(as))
			}
			a := as[0]
			if a.Outcome != OutcomeConnection || !strings.Contains(a.Error, "destination not allowed") || !strings.Contains(a.Error, c.errText) {
				t.Errorf("attempt: outcome %q error %q; want %q naming the policy (%q)", a.Outcome, a.Error, OutcomeConnection, c.errText)
			}
			if n := hits.Load() - before; n != 0 {
				t.Errorf("the receiver got %d requests through a refused policy", n)
			}
		})
	}
}

// Changing a subscription's egress policy in place (PATCH, reload) must
// rebuild its client: a kept transport would keep the old rules.
func TestEgressPolicyChangeRebuildsClient(t *testing.T) {
	subs := parseSubs(t, `name: app
		url: http://127.0.0.1:9/hook
		secret: `+testSecret)
	subs[0].ManagedBy, subs[0].AllowPrivate = "api", true
	e := start(t, t.TempDir(), subs, Options{})
	before := e.n.sub("app").client

	strict := *subs[0]
	strict.AllowPrivate = false
	e.n.SetSubscriptions([]*Subscription{&strict})
	if e.n.sub("app").client == before {
		t.Fatal("client kept after allow_private_networks was turned off")
	}
}

// delivery.require_https also holds at send time, for a subscription
// stored before it was set: the attempt fails saying why and nothing
// leaves in plain text; an https:// receiver is reached.
func TestRequireHTTPSAtSend(t *testing.T) {
	var hits atomic.Int32
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	})
	plain, tls := httptest.NewServer(h), httptest.NewTLSServer(h)
	defer plain.Close()
	defer tls.Close()

	subs := parseSubs(t, "name: plain\nurl: "+plain.URL+"\nsecret: "+testSecret+"\nretry: {schedule: [1h]}",
		"name: tls\nurl: "+tls.URL+"\nsecret: "+testSecret+"\ninsecure_skip_verify: true")
	for _, s := range subs {
		s.RequireHTTPS = true
	}
	e := start(t, t.TempDir(), subs, Options{})
	ev := e.emit("task.ready", "a")
	e.waitState("tls", ev.ID, store.Delivered)
	e.waitState("plain", ev.ID, store.Retrying)
	var plainAttempts []string
	for _, a := range e.attempts(ev.ID) {
		if a.Subscription == "plain" {
			plainAttempts = append(plainAttempts, a.Outcome+": "+a.Error)
		}
	}
	if len(plainAttempts) != 1 || !strings.Contains(plainAttempts[0], "delivery.require_https") {
		t.Errorf("attempts of the http:// subscription: %v", plainAttempts)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("%d requests arrived, want 1 (the https:// one)", n)
	}
}
