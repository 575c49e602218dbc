package signature_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/pollrelay/pollrelay/signature"
)

// The test vector published in the Standard Webhooks spec.
const (
	specSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTS     = 1614265330
	specBody   = `{"test": 2432232314}`
	specSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func mustSigner(t testing.TB, s signature.Scheme, secrets ...string) signature.Signer {
	t.Helper()
	sg, err := signature.NewSigner(s, secrets)
	if err != nil {
		t.Fatalf("NewSigner: %v", err)
	}
	return sg
}

func mustVerifier(t testing.TB, now time.Time, secrets ...string) *signature.Verifier {
	t.Helper()
	v, err := signature.NewVerifier(secrets...)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	v.Now = func() time.Time { return now }
	return v
}

func sign(sg signature.Signer, id string, ts time.Time, body string) http.Header {
	h := http.Header{}
	sg.Sign(h, id, ts, []byte(body))
	return h
}

func TestSpecVector(t *testing.T) {
	ts := time.Unix(specTS, 0)
	for _, secret := range []string{specSecret, strings.TrimPrefix(specSecret, "whsec_")} {
		h := sign(mustSigner(t, signature.Scheme{Name: "standard"}, secret), specID, ts, specBody)
		if got := h.Get("webhook-signature"); got != specSig {
			t.Errorf("secret %d chars: webhook-signature = %q, want %q", len(secret), got, specSig)
		}
		if got := h.Get("webhook-id"); got != specID {
			t.Errorf("webhook-id = %q, want %q", got, specID)
		}
		if got := h.Get("webhook-timestamp"); got != "1614265330" {
			t.Errorf("webhook-timestamp = %q, want 1614265330", got)
		}
	}

	// And our verifier accepts the spec's own headers.
	h := http.Header{}
	h.Set("webhook-id", specID)
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", specSig)
	if err := mustVerifier(t, ts, specSecret).Verify([]byte(specBody), h); err != nil {
		t.Fatalf("Verify(spec vector): %v", err)
	}
}

func TestZeroSchemeIsStandard(t *testing.T) {
	h := sign(mustSigner(t, signature.Scheme{}, specSecret), specID, time.Unix(specTS, 0), specBody)
	if got := h.Get("webhook-signature"); got != specSig {
		t.Fatalf("webhook-signature = %q, want %q", got, specSig)
	}
}

// The official library must accept what we send, including during rotation
// when the receiver may know either the old or the new secret.
func TestOfficialLibraryVerifiesOurs(t *testing.T) {
	oldSecret, newSecret := signature.NewSecret(), signature.NewSecret()
	body := `{"type":"video.status.ready","data":{"id":"v_123"}}`
	cases := []struct {
		name         string
		signWith     []string
		receiverKeys []string
	}{
		{"single secret", []string{oldSecret}, []string{oldSecret}},
		{"rotation, receiver has old", []string{oldSecret, newSecret}, []string{oldSecret}},
		{"rotation, receiver has new", []string{oldSecret, newSecret}, []string{newSecret}},
		{"spec secret", []string{specSecret}, []string{specSecret}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := sign(mustSigner(t, signature.Scheme{Name: "standard"}, tc.signWith...), "evt_1", time.Now(), body)
			if n := len(strings.Split(h.Get("webhook-signature"), " ")); n != len(tc.signWith) {
				t.Fatalf("got %d signatures, want %d: %q", n, len(tc.signWith), h.Get("webhook-signature"))
			}
			for _, k := range tc.receiverKeys {
				wh, err := standardwebhooks.NewWebhook(k)
				if err != nil {
					t.Fatal(err)
				}
				if err := wh.Verify([]byte(body), h); err != nil {
					t.Errorf("official Verify: %v", err)
				}
				// A wrong body must not slip through, so the test above
				// is not vacuous.
				if err := wh.Verify([]byte(body+" "), h); err == nil {
					t.Error("official Verify accepted a modified body")
				}
			}
		})
	}
}

func TestOfficialLibraryIgnoresOurV1a(t *testing.T) {
	// A subscription may mix a whsec_ and a whsk_ key; official v1-only
	// verifiers must skip the v1a entry and still accept the v1 one.
	sk, _ := signature.NewSigningKey()
	secret := signature.NewSecret()
	h := sign(mustSigner(t, signature.Scheme{}, sk, secret), "evt_1", time.Now(), "{}")
	if got := h.Get("webhook-signature"); !strings.HasPrefix(got, "v1a,") || !strings.Contains(got, " v1,") {
		t.Fatalf("webhook-signature = %q, want a v1a then a v1 entry", got)
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify([]byte("{}"), h); err != nil {
		t.Fatalf("official Verify: %v", err)
	}
}

func TestWeVerifyOfficialLibrary(t *testing.T) {
	secret := signature.NewSecret()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"hello":"world"}`)
	sig, err := wh.Sign("msg_42", now, body)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(standardwebhooks.HeaderWebhookID, "msg_42")
	h.Set(standardwebhooks.HeaderWebhookTimestamp, "1700000000")
	h.Set(standardwebhooks.HeaderWebhookSignature, sig)

	v := mustVerifier(t, now, signature.NewSecret(), secret) // second key matches
	if err := v.Verify(body, h); err != nil {
		t.Fatalf("Verify(official signature): %v", err)
	}
	if err := v.Verify([]byte(`{"hello":"World"}`), h); !errors.Is(err, signature.ErrNoMatchingSignature) {
		t.Fatalf("Verify(modified body) = %v, want ErrNoMatchingSignature", err)
	}
}

func TestAsymmetric(t *testing.T) {
	sk, pk := signature.NewSigningKey()
	if !strings.HasPrefix(sk, "whsk_") || !strings.HasPrefix(pk, "whpk_") {
		t.Fatalf("NewSigningKey() = %q…, %q…, want whsk_/whpk_ prefixes", sk[:5], pk[:5])
	}
	derived, err := signature.PublicKey(sk)
	if err != nil || derived != pk {
		t.Fatalf("PublicKey(signing key) = %q, %v; want %q", derived, err, pk)
	}

	now := time.Unix(1_700_000_000, 0)
	const id, body = "evt_9", `{"a":1}`
	h := sign(mustSigner(t, signature.Scheme{}, sk), id, now, body)
	sig := h.Get("webhook-signature")
	if !strings.HasPrefix(sig, "v1a,") || strings.Contains(sig, " ") {
		t.Fatalf("webhook-signature = %q, want one v1a entry", sig)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sig, "v1a,"))
	if err != nil || len(raw) != ed25519.SignatureSize {
		t.Fatalf("v1a value: %d bytes, %v", len(raw), err)
	}

	v := mustVerifier(t, now, pk)
	if err := v.Verify([]byte(body), h); err != nil {
		t.Fatalf("Verify(v1a): %v", err)
	}

	tamper := []struct {
		name string
		edit func(h http.Header) []byte
	}{
		{"body", func(http.Header) []byte { return []byte(`{"a":2}`) }},
		{"id", func(h http.Header) []byte { h.Set("webhook-id", "evt_10"); return []byte(body) }},
		{"timestamp", func(h http.Header) []byte { h.Set("webhook-timestamp", "1700000001"); return []byte(body) }},
		{"signature", func(h http.Header) []byte {
			bad := bytes.Clone(raw)
			bad[0] ^= 1
			h.Set("webhook-signature", "v1a,"+base64.StdEncoding.EncodeToString(bad))
			return []byte(body)
		}},
		{"version", func(h http.Header) []byte {
			// The same bytes presented as v1 must not verify as an HMAC.
			h.Set("webhook-signature", "v1,"+strings.TrimPrefix(sig, "v1a,"))
			return []byte(body)
		}},
	}
	for _, tc := range tamper {
		t.Run("tampered "+tc.name, func(t *testing.T) {
			h2 := h.Clone()
			b := tc.edit(h2)
			if err := v.Verify(b, h2); !errors.Is(err, signature.ErrNoMatchingSignature) {
				t.Fatalf("Verify = %v, want ErrNoMatchingSignature", err)
			}
		})
	}

	// Another key pair's public key must not verify.
	_, otherPK := signature.NewSigningKey()
	if err := mustVerifier(t, now, otherPK).Verify([]byte(body), h); !errors.Is(err, signature.ErrNoMatchingSignature) {
		t.Fatalf("Verify(other public key) = %v, want ErrNoMatchingSignature", err)
	}
	// A whsec_ secret never verifies a v1a signature.
	if err := mustVerifier(t, now, signature.NewSecret()).Verify([]byte(body), h); !errors.Is(err, signature.ErrNoMatchingSignature) {
		t.Fatalf("Verify(symmetric key vs v1a) = %v, want ErrNoMatchingSignature", err)
	}
	// The verifier may be given the signing key itself (demo convenience).
	if err := mustVerifier(t, now, sk).Verify([]byte(body), h); err != nil {
		t.Fatalf("Verify with whsk_: %v", err)
	}
}

func TestPublicKeyCannotSign(t *testing.T) {
	_, pk := signature.NewSigningKey()
	_, err := signature.NewSigner(signature.Scheme{Name: "standard"}, []string{pk})
	if err == nil || !strings.Contains(err.Error(), "can only verify") {
		t.Fatalf("NewSigner(whpk_) error = %v, want a 'can only verify' error", err)
	}
	if _, err := signature.PublicKey(pk); err == nil {
		t.Fatal("PublicKey(whpk_) succeeded, want an error")
	}
}

func TestSigningKeySeedForm(t *testing.T) {
	sk, pk := signature.NewSigningKey()
	full, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(sk, "whsk_"))
	seedKey := "whsk_" + base64.StdEncoding.EncodeToString(full[:ed25519.SeedSize])

	got, err := signature.PublicKey(seedKey)
	if err != nil || got != pk {
		t.Fatalf("PublicKey(seed) = %q, %v; want %q", got, err, pk)
	}
	// ed25519 is deterministic: seed and full key give identical headers.
	ts := time.Unix(1_700_000_000, 0)
	a := sign(mustSigner(t, signature.Scheme{}, sk), "m", ts, "x")
	b := sign(mustSigner(t, signature.Scheme{}, seedKey), "m", ts, "x")
	if a.Get("webhook-signature") != b.Get("webhook-signature") {
		t.Fatal("seed and full private key sign differently")
	}

	// A 64-byte key whose public half belongs to another seed is refused.
	_, other := signature.NewSigningKey()
	otherPub, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(other, "whpk_"))
	spliced := append(bytes.Clone(full[:ed25519.SeedSize]), otherPub...)
	_, err = signature.NewSigner(signature.Scheme{}, []string{"whsk_" + base64.StdEncoding.EncodeToString(spliced)})
	if err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("NewSigner(spliced key) error = %v, want a mismatch error", err)
	}
}

func TestRotationHeaderShape(t *testing.T) {
	a, b := signature.NewSecret(), signature.NewSecret()
	ts := time.Unix(specTS, 0)
	both := sign(mustSigner(t, signature.Scheme{}, a, b), specID, ts, specBody).Get("webhook-signature")
	onlyA := sign(mustSigner(t, signature.Scheme{}, a), specID, ts, specBody).Get("webhook-signature")
	onlyB := sign(mustSigner(t, signature.Scheme{}, b), specID, ts, specBody).Get("webhook-signature")
	if want := onlyA + " " + onlyB; both != want {
		t.Fatalf("rotation header = %q, want %q (one entry per secret, in order)", both, want)
	}
	// Our verifier, knowing only one of them, accepts it.
	for _, k := range []string{a, b} {
		h := http.Header{}
		h.Set("webhook-id", specID)
		h.Set("webhook-timestamp", "1614265330")
		h.Set("webhook-signature", both)
		if err := mustVerifier(t, ts, k).Verify([]byte(specBody), h); err != nil {
			t.Errorf("Verify with one rotated key: %v", err)
		}
	}
}

func BenchmarkSignStandard(b *testing.B) {
	sg := mustSigner(b, signature.Scheme{Name: "standard"}, signature.NewSecret())
	body := bytes.Repeat([]byte("x"), 1024)
	ts := time.Unix(1_700_000_000, 0)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		sg.Sign(http.Header{}, "evt_01JH8X3Z9K2M4N6P8Q0R2S4T6V", ts, body)
	}
}
