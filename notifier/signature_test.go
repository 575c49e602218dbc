package notifier

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/pollrelay/pollrelay/store"
)

// Every signature scheme, sent through the notifier to a real receiver and
// checked by an implementation independent of pollrelay's signature
// package: the official Standard Webhooks library for v1, crypto/ed25519
// for v1a, crypto/hmac for hmac-sha256.
func TestSignatureSchemes(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	signingKey := "whsk_" + base64.StdEncoding.EncodeToString(priv)
	raw := make([]byte, 32)
	rand.Read(raw)
	rotated := "whsec_" + base64.StdEncoding.EncodeToString(raw)
	rand.Read(raw)
	stranger := "whsec_" + base64.StdEncoding.EncodeToString(raw)

	officialAccepts := func(t *testing.T, secret string, h hit) bool {
		t.Helper()
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		return wh.Verify(h.Body, h.Header) == nil
	}
	mac := func(key string, body []byte) []byte {
		m := hmac.New(sha256.New, []byte(key))
		m.Write(body)
		return m.Sum(nil)
	}

	cases := []struct {
		name   string
		config string
		check  func(t *testing.T, h hit)
	}{
		{
			name:   "standard",
			config: "secret: " + testSecret,
			check: func(t *testing.T, h hit) {
				if !officialAccepts(t, testSecret, h) {
					t.Errorf("official library rejected %q", h.Header.Get("webhook-signature"))
				}
				if officialAccepts(t, stranger, h) {
					t.Error("official library accepted a signature made with another secret")
				}
			},
		},
		{
			name:   "standard, two secrets during rotation",
			config: "secret: [" + testSecret + ", " + rotated + "]",
			check: func(t *testing.T, h hit) {
				sigs := strings.Split(h.Header.Get("webhook-signature"), " ")
				if len(sigs) != 2 || !strings.HasPrefix(sigs[0], "v1,") || !strings.HasPrefix(sigs[1], "v1,") {
					t.Errorf("webhook-signature %q: want two space-separated v1 signatures", h.Header.Get("webhook-signature"))
				}
				if !officialAccepts(t, testSecret, h) || !officialAccepts(t, rotated, h) {
					t.Error("a receiver holding either secret must accept the webhook")
				}
			},
		},
		{
			name:   "standard v1a (ed25519)",
			config: "secret: " + signingKey,
			check: func(t *testing.T, h hit) {
				v, sig, ok := strings.Cut(h.Header.Get("webhook-signature"), ",")
				b, err := base64.StdEncoding.DecodeString(sig)
				if !ok || v != "v1a" || err != nil {
					t.Fatalf("webhook-signature %q: want v1a,<base64>", h.Header.Get("webhook-signature"))
				}
				signed := h.ID + "." + h.Header.Get("webhook-timestamp") + "." + string(h.Body)
				if !ed25519.Verify(pub, []byte(signed), b) {
					t.Error("ed25519 signature does not verify with the public key")
				}
			},
		},
		{
			name:   "hmac-sha256 hex (Glossi)",
			config: "secret: glossi-webhook-secret\nsignature: {scheme: hmac-sha256, header: X-Glossi-Signature, encoding: hex}",
			check: func(t *testing.T, h hit) {
				got, err := hex.DecodeString(h.Header.Get("X-Glossi-Signature"))
				if err != nil || !hmac.Equal(got, mac("glossi-webhook-secret", h.Body)) {
					t.Errorf("X-Glossi-Signature %q is not the hex HMAC-SHA256 of the body", h.Header.Get("X-Glossi-Signature"))
				}
				if h.Header.Get("webhook-signature") != "" {
					t.Error("hmac-sha256 also sent webhook-signature")
				}
			},
		},
		{
			name:   "hmac-sha256 base64",
			config: "secret: another-secret\nsignature: {scheme: hmac-sha256, header: X-Signature, encoding: base64}",
			check: func(t *testing.T, h hit) {
				got, err := base64.StdEncoding.DecodeString(h.Header.Get("X-Signature"))
				if err != nil || !hmac.Equal(got, mac("another-secret", h.Body)) {
					t.Errorf("X-Signature %q is not the base64 HMAC-SHA256 of the body", h.Header.Get("X-Signature"))
				}
			},
		},
		{
			name:   "token (Gumlet)",
			config: "secret: gumlet-token-123\nsignature: {scheme: token, header: x-gumlet-token}",
			check: func(t *testing.T, h hit) {
				if got := h.Header.Get("x-gumlet-token"); got != "gumlet-token-123" {
					t.Errorf("x-gumlet-token %q", got)
				}
			},
		},
		{
			name:   "static headers and PUT",
			config: "secret: " + testSecret + "\nmethod: PUT\nheaders: {X-Env: prod, X-Api-Key: k-123}",
			check: func(t *testing.T, h hit) {
				if h.Method != http.MethodPut || h.Header.Get("X-Env") != "prod" || h.Header.Get("X-Api-Key") != "k-123" {
					t.Errorf("method %s, headers %v", h.Method, h.Header)
				}
				if !officialAccepts(t, testSecret, h) {
					t.Error("official library rejected a PUT")
				}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver()
			srv := httptest.NewServer(rc)
			defer srv.Close()
			subs := parseSubs(t, "name: app\nurl: "+srv.URL+"/hook\n"+c.config)
			e := start(t, t.TempDir(), subs, Options{})
			ev := e.emit("task.ready", "a")
			h := rc.next(t)
			e.waitState("app", ev.ID, store.Delivered)

			// What every scheme sends.
			if h.ID != ev.ID || h.Header.Get("Content-Type") != "application/json" ||
				!strings.HasPrefix(h.Header.Get("User-Agent"), "pollrelay/") {
				t.Errorf("headers: %v", h.Header)
			}
			if ts, err := strconv.ParseInt(h.Header.Get("webhook-timestamp"), 10, 64); err != nil || ts <= 0 {
				t.Errorf("webhook-timestamp %q", h.Header.Get("webhook-timestamp"))
			}
			if h.Method != http.MethodPost && !strings.Contains(c.name, "PUT") {
				t.Errorf("method %s, want the default POST", h.Method)
			}
			c.check(t, h)
		})
	}
}
