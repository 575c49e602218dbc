package signature_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/signature"
)

func TestTolerance(t *testing.T) {
	secret := signature.NewSecret()
	signedAt := time.Unix(1_700_000_000, 0)
	h := sign(mustSigner(t, signature.Scheme{}, secret), "evt_1", signedAt, "{}")

	cases := []struct {
		name      string
		now       time.Time
		tolerance time.Duration
		want      error
	}{
		{"same second", signedAt, 0, nil},
		{"4m59s later", signedAt.Add(4*time.Minute + 59*time.Second), 0, nil},
		{"exactly 5m later", signedAt.Add(5 * time.Minute), 0, nil},
		{"5m1s later: replay", signedAt.Add(5*time.Minute + time.Second), 0, signature.ErrTimestampTooOld},
		{"a day later", signedAt.Add(24 * time.Hour), 0, signature.ErrTimestampTooOld},
		{"receiver 5m behind", signedAt.Add(-5 * time.Minute), 0, nil},
		{"receiver 5m1s behind", signedAt.Add(-5*time.Minute - time.Second), 0, signature.ErrTimestampTooNew},
		{"custom tolerance ok", signedAt.Add(time.Minute), time.Minute, nil},
		{"custom tolerance old", signedAt.Add(61 * time.Second), time.Minute, signature.ErrTimestampTooOld},
		{"custom tolerance new", signedAt.Add(-61 * time.Second), time.Minute, signature.ErrTimestampTooNew},
		{"negative tolerance means default", signedAt.Add(4 * time.Minute), -time.Second, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := mustVerifier(t, tc.now, secret)
			v.Tolerance = tc.tolerance
			checkErr(t, v.Verify([]byte("{}"), h), tc.want)
		})
	}

	// The timestamp check comes before the signature check, and a forged
	// timestamp cannot be used to pass it: the timestamp is signed.
	h2 := h.Clone()
	h2.Set("webhook-timestamp", strconv.FormatInt(signedAt.Add(time.Hour).Unix(), 10))
	checkErr(t, mustVerifier(t, signedAt.Add(time.Hour), secret).Verify([]byte("{}"), h2), signature.ErrNoMatchingSignature)
}

func TestNilNowUsesClock(t *testing.T) {
	secret := signature.NewSecret()
	v, err := signature.NewVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	checkErr(t, v.Verify([]byte("x"), sign(mustSigner(t, signature.Scheme{}, secret), "e", time.Now(), "x")), nil)
	checkErr(t, v.Verify([]byte("x"), sign(mustSigner(t, signature.Scheme{}, secret), "e", time.Now().Add(-time.Hour), "x")), signature.ErrTimestampTooOld)
}

func TestVerifyHeaders(t *testing.T) {
	secret := signature.NewSecret()
	now := time.Unix(1_700_000_000, 0)
	v := mustVerifier(t, now, secret)
	good := sign(mustSigner(t, signature.Scheme{}, secret), "evt_1", now, "{}")
	goodSig := good.Get("webhook-signature")

	cases := []struct {
		name string
		edit func(h http.Header)
		want error
	}{
		{"valid", func(http.Header) {}, nil},
		{"no id", func(h http.Header) { h.Del("webhook-id") }, signature.ErrMissingHeaders},
		{"no timestamp", func(h http.Header) { h.Del("webhook-timestamp") }, signature.ErrMissingHeaders},
		{"no signature", func(h http.Header) { h.Del("webhook-signature") }, signature.ErrMissingHeaders},
		{"empty signature", func(h http.Header) { h.Set("webhook-signature", "") }, signature.ErrMissingHeaders},
		{"timestamp not a number", func(h http.Header) { h.Set("webhook-timestamp", "2023-11-14") }, signature.ErrInvalidTimestamp},
		{"timestamp far future", func(h http.Header) { h.Set("webhook-timestamp", "9223372036854775807") }, signature.ErrTimestampTooNew},
		{"timestamp far past", func(h http.Header) { h.Set("webhook-timestamp", "-9223372036854775808") }, signature.ErrTimestampTooOld},
		{"unknown versions skipped", func(h http.Header) {
			h.Set("webhook-signature", "v2,abc v1b,"+strings.TrimPrefix(goodSig, "v1,")+" nocomma "+goodSig)
		}, nil},
		{"only unknown versions", func(h http.Header) {
			h.Set("webhook-signature", "v2,"+strings.TrimPrefix(goodSig, "v1,"))
		}, signature.ErrNoMatchingSignature},
		{"extra spaces", func(h http.Header) { h.Set("webhook-signature", "  v1,AAAA   "+goodSig+" ") }, nil},
		{"bad base64", func(h http.Header) { h.Set("webhook-signature", "v1,!!!") }, signature.ErrNoMatchingSignature},
		{"truncated signature", func(h http.Header) { h.Set("webhook-signature", goodSig[:len(goodSig)-4]) }, signature.ErrNoMatchingSignature},
		{"valid one after the cap", func(h http.Header) {
			h.Set("webhook-signature", strings.Repeat("v1,AAAA ", 40)+goodSig)
		}, signature.ErrNoMatchingSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := good.Clone()
			tc.edit(h)
			checkErr(t, v.Verify([]byte("{}"), h), tc.want)
		})
	}

	// A zero Verifier has no keys and so accepts nothing.
	checkErr(t, (&signature.Verifier{Now: func() time.Time { return now }}).Verify([]byte("{}"), good), signature.ErrNoMatchingSignature)
}

// FuzzVerify feeds arbitrary bodies and header values to Verify. It must
// never panic, must only accept timestamps inside the tolerance, must accept
// what our signer produced for the same inputs, and must reject that
// signature for any other body.
func FuzzVerify(f *testing.F) {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	signingKey := "whsk_" + strings.Repeat("A", 43) + "=" // a fixed 32-byte (all-zero) seed
	publicKey, err := signature.PublicKey(signingKey)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Unix(specTS, 0)
	signer := mustSigner(f, signature.Scheme{}, secret, signingKey)
	v := mustVerifier(f, now, secret, publicKey)

	seed := func(id string, ts time.Time, body string) {
		h := sign(signer, id, ts, body)
		f.Add([]byte(body), id, h.Get("webhook-timestamp"), h.Get("webhook-signature"))
	}
	seed(specID, now, specBody)
	seed("evt_1", now.Add(-4*time.Minute), `{"type":"video.status.ready"}`)
	seed("evt_2", now.Add(time.Hour), "")
	seed("a.b", now, ".c")
	f.Add([]byte(specBody), specID, "1614265330", specSig)
	f.Add([]byte("x"), "id", "+1614265330", "v1,AAAA v1a,AAAA v2,zz")
	f.Add([]byte{}, "", "", "")
	f.Add([]byte("\x00\xff"), "\n", "-0", ",,, v1, v1a,")

	f.Fuzz(func(t *testing.T, body []byte, id, ts, sig string) {
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", sig)
		if err := v.Verify(body, h); err == nil {
			sec, perr := strconv.ParseInt(ts, 10, 64)
			if perr != nil {
				t.Fatalf("accepted unparsable timestamp %q", ts)
			}
			if d := now.Sub(time.Unix(sec, 0)); d > signature.DefaultTolerance || d < -signature.DefaultTolerance {
				t.Fatalf("accepted timestamp %q outside the tolerance", ts)
			}
		}

		if id == "" {
			return // Sign would produce a header Verify rightly calls missing
		}
		signed := sign(signer, id, now, string(body))
		if err := v.Verify(body, signed); err != nil {
			t.Fatalf("round trip: Verify(own signature) = %v", err)
		}
		other := append(bytes.Clone(body), 'x')
		if err := v.Verify(other, signed); !errors.Is(err, signature.ErrNoMatchingSignature) {
			t.Fatalf("Verify(other body) = %v, want ErrNoMatchingSignature", err)
		}
	})
}

// TestSchemeVerifier: what NewSigner signs under each scheme, the
// SchemeVerifier of the same scheme and secrets accepts; a changed body or
// another secret it refuses, and it never prints the secret.
func TestSchemeVerifier(t *testing.T) {
	secret, other := signature.NewSecret(), signature.NewSecret()
	at := time.Now()
	for _, s := range []signature.Scheme{
		{},
		{Name: signature.SchemeHMACSHA256, Header: "X-Sig", Encoding: signature.EncodingBase64},
		{Name: signature.SchemeHMACSHA256, Header: "X-Sig"},
		{Name: signature.SchemeToken, Header: "X-Token"},
	} {
		h := sign(mustSigner(t, s, secret), "evt_1", at, `{"a":1}`)
		v, err := signature.NewSchemeVerifier(s, secret)
		if err != nil {
			t.Fatalf("%+v: %v", s, err)
		}
		if err := v.Verify([]byte(`{"a":1}`), h); err != nil {
			t.Errorf("%+v: a signed request refused: %v", s, err)
		}
		if s.Name != signature.SchemeToken {
			if err := v.Verify([]byte(`{"a":2}`), h); err == nil {
				t.Errorf("%+v: a changed body accepted", s)
			}
		}
		wrong, err := signature.NewSchemeVerifier(s, other)
		if err != nil {
			t.Fatal(err)
		}
		if err := wrong.Verify([]byte(`{"a":1}`), h); err == nil {
			t.Errorf("%+v: another secret accepted", s)
		}
		for _, shown := range []string{fmt.Sprint(v), fmt.Sprintf("%#v", v)} {
			if strings.Contains(shown, strings.TrimPrefix(secret, signature.PrefixSecret)) {
				t.Errorf("%+v: the verifier prints its secret: %s", s, shown)
			}
		}
	}
	for _, s := range []signature.Scheme{{Name: "rot13"}, {Name: signature.SchemeToken}} {
		if _, err := signature.NewSchemeVerifier(s, secret); err == nil {
			t.Errorf("%+v: accepted", s)
		}
	}
	if _, err := signature.NewSchemeVerifier(signature.Scheme{}); err == nil {
		t.Error("no secret accepted")
	}
}
