package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/pollrelay/pollrelay/internal/harness"
	"github.com/pollrelay/pollrelay/store"
)

// capture is one webhook request as a hook server got it.
type capture struct {
	header http.Header
	body   []byte
}

// newHook serves a receiver that records every request unverified, so a
// test can check which secrets its signatures verify with.
func newHook(t *testing.T) (string, <-chan capture) {
	got := make(chan capture, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- capture{header: r.Header.Clone(), body: b}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, got
}

// pingAndCapture sends a ping to sub and returns the webhook it caused.
func pingAndCapture(t *testing.T, c harness.APIClient, sub string, got <-chan capture) capture {
	t.Helper()
	var ping map[string]string
	if code := c.Do("POST", "/v1/subscriptions/"+sub+"/ping", nil, &ping); code != 202 {
		t.Fatalf("ping: %d %v", code, ping)
	}
	for {
		select {
		case cp := <-got:
			if cp.header.Get("webhook-id") == ping["event_id"] {
				return cp
			}
		case <-time.After(15 * time.Second):
			t.Fatal("ping not delivered")
		}
	}
}

func verifies(secret string, cp capture) bool {
	wh, err := standardwebhooks.NewWebhook(secret)
	return err == nil && wh.Verify(cp.body, cp.header) == nil
}

// storedSub reads the record of an API subscription straight from the
// store, or nil.
func storedSub(t *testing.T, b *Bridge, id string) *store.SubscriptionRecord {
	t.Helper()
	var rec *store.SubscriptionRecord
	if err := b.st.View(func(tx store.Txn) error {
		var err error
		rec, err = tx.APISubscription(id)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestAPIConcurrentCreate: of five creates of one name at once exactly one
// is a 201, the others 409, and the secret of the 201 is the one the
// webhooks are signed with.
func TestAPIConcurrentCreate(t *testing.T) {
	e := newAPIEnv(t)
	hook, got := newHook(t)
	const n = 5
	codes := make([]int, n)
	secrets := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var sub map[string]any
			codes[i] = e.c.Do("POST", "/v1/subscriptions", map[string]any{"name": "same", "url": hook}, &sub)
			secrets[i], _ = sub["secret"].(string)
		})
	}
	wg.Wait()
	winner := -1
	for i, code := range codes {
		switch {
		case code == 201 && winner < 0:
			winner = i
		case code == 201:
			t.Errorf("creates %d and %d both answered 201", winner, i)
		case code != 409:
			t.Errorf("create %d: %d, want 409 for the losers", i, code)
		}
	}
	if winner < 0 {
		t.Fatalf("no create succeeded: %v", codes)
	}
	cp := pingAndCapture(t, e.c, "same", got)
	if !verifies(secrets[winner], cp) {
		t.Errorf("the secret of the 201 does not verify the ping")
	}
	for i, s := range secrets {
		if i != winner && s != "" {
			t.Errorf("create %d answered %d with a secret", i, codes[i])
		}
	}
}

// TestAPIConcurrentRotate: fifty rotations at once, beside config
// reloads, each answer 200 with a secret that is stored and signs the
// next webhook; the newest stored secret signs first.
func TestAPIConcurrentRotate(t *testing.T) {
	e := newAPIEnv(t)
	hook, got := newHook(t)
	var sub map[string]any
	if code := e.c.Do("POST", "/v1/subscriptions", map[string]any{"name": "rot", "url": hook}, &sub); code != 201 {
		t.Fatalf("create: %d %v", code, sub)
	}
	first := sub["secret"].(string)
	const n = 50
	secrets := make([]string, n)
	stop := make(chan struct{})
	var reloads sync.WaitGroup
	reloads.Go(func() {
		// A reload rebuilds the notifier's subscriptions from the store
		// too; one that read the store before a rotation must not replace
		// the rotation's rebuild.
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := e.b.Reload(e.b.Config()); err != nil {
				t.Errorf("reload: %v", err)
				return
			}
		}
	})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var rot map[string]any
			if code := e.c.Do("POST", "/v1/subscriptions/rot/rotate-secret", nil, &rot); code != 200 {
				t.Errorf("rotate %d: %d %v", i, code, rot)
			}
			secrets[i], _ = rot["secret"].(string)
		})
	}
	wg.Wait()
	close(stop)
	reloads.Wait()

	rec := storedSub(t, e.b, "rot")
	var stored []string
	for _, s := range rec.Secrets {
		stored = append(stored, s.Value)
	}
	if len(stored) != n+1 || stored[n] != first {
		t.Errorf("stored %d secrets, want %d with the first one last", len(stored), n+1)
	}
	for i, s := range secrets {
		if !slices.Contains(stored, s) {
			t.Errorf("rotate %d answered 200 with a secret that was never stored", i)
		}
	}
	if !slices.Contains(secrets, stored[0]) {
		t.Fatalf("the newest stored secret is not one a rotation returned")
	}
	cp := pingAndCapture(t, e.c, "rot", got)
	sigs := strings.Fields(cp.header.Get("webhook-signature"))
	if len(sigs) != n+1 {
		t.Errorf("ping carries %d signatures, want %d (one per secret in the overlap)", len(sigs), n+1)
	}
	if len(sigs) > 0 && sigs[0] != standardSig(t, stored[0], cp) {
		t.Errorf("the first signature is not by the newest stored secret")
	}
	for i, s := range append(secrets, first) {
		if !verifies(s, cp) {
			t.Errorf("secret %d does not verify the ping", i)
		}
	}
}

// standardSig computes the v1 signature of a captured webhook with secret,
// independently of pollrelay's signer.
func standardSig(t *testing.T, secret string, cp capture) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(cp.header.Get("webhook-id") + "." + cp.header.Get("webhook-timestamp") + "." + string(cp.body)))
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// TestAPIDeleteRacesChange: a DELETE racing a PATCH or a rotation leaves
// the subscription deleted every time: the change answers 404 when it came
// second, and nothing brings the record, its health or its deliveries back.
func TestAPIDeleteRacesChange(t *testing.T) {
	e := newAPIEnv(t)
	hook, _ := newHook(t)
	for round := range 100 {
		var sub map[string]any
		if code := e.c.Do("POST", "/v1/subscriptions", map[string]any{"name": "race", "url": hook}, &sub); code != 201 {
			t.Fatalf("round %d: create: %d %v", round, code, sub)
		}
		if sub["disabled"] != false {
			t.Fatalf("round %d: a new subscription starts disabled: %v", round, sub)
		}
		var delCode, chCode int
		var chBody map[string]any
		var wg sync.WaitGroup
		wg.Go(func() { delCode = e.c.Do("DELETE", "/v1/subscriptions/race", nil, nil) })
		wg.Go(func() {
			if round%2 == 0 {
				chCode = e.c.Do("POST", "/v1/subscriptions/race/rotate-secret", nil, &chBody)
			} else {
				chCode = e.c.Do("PATCH", "/v1/subscriptions/race", map[string]any{"disabled": true, "events": []string{"x.*"}}, &chBody)
			}
		})
		wg.Wait()
		if delCode != 204 {
			t.Fatalf("round %d: delete: %d", round, delCode)
		}
		if chCode != 200 && chCode != 404 {
			t.Fatalf("round %d: change: %d %v, want 200 (before the delete) or 404 (after)", round, chCode, chBody)
		}
		if code := e.c.Do("GET", "/v1/subscriptions/race", nil, nil); code != 404 {
			t.Fatalf("round %d: GET after delete: %d (change answered %d): resurrected", round, code, chCode)
		}
		if storedSub(t, e.b, "race") != nil {
			t.Fatalf("round %d: the record is back in the store (change answered %d)", round, chCode)
		}
		if _, ok := e.b.notifier.Subscription("race"); ok {
			t.Fatalf("round %d: the notifier still delivers to it (change answered %d)", round, chCode)
		}
		if code := e.c.Do("POST", "/v1/subscriptions/race/ping", nil, nil); code != 404 {
			t.Fatalf("round %d: ping after delete: %d", round, code)
		}
	}
}
