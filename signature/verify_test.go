package signature_test

import (
	"bytes"
	"errors"
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
