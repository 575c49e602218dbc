package signature_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/signature"
)

// independentMAC recomputes the hmac-sha256 scheme from crypto/hmac
// directly, so the test does not trust the package's own helper.
func independentMAC(secret, body string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return m.Sum(nil)
}

func TestHMACScheme(t *testing.T) {
	const body = `{"id":"doc_1","status":"complete"}`
	// A whsec_-looking secret is still used as raw bytes, vendor style.
	secrets := []string{"glossi-shared-secret", "whsec_notDecodedHere"}
	cases := []struct {
		encoding string
		encode   func([]byte) string
	}{
		{"", hex.EncodeToString},
		{"hex", hex.EncodeToString},
		{"base64", base64.StdEncoding.EncodeToString},
	}
	for _, tc := range cases {
		t.Run("encoding="+tc.encoding, func(t *testing.T) {
			s := signature.Scheme{Name: "hmac-sha256", Header: "X-Glossi-Signature", Encoding: tc.encoding}

			h := sign(mustSigner(t, s, secrets[0]), "evt_1", time.Now(), body)
			want := tc.encode(independentMAC(secrets[0], body))
			if got := h.Get("X-Glossi-Signature"); got != want {
				t.Fatalf("X-Glossi-Signature = %q, want %q", got, want)
			}
			// The vendor shape carries only its own header.
			if len(h) != 1 {
				t.Errorf("headers = %v, want only X-Glossi-Signature", h)
			}
			if err := signature.VerifyHMAC(secrets[0], []byte(body), want, tc.encoding); err != nil {
				t.Errorf("VerifyHMAC: %v", err)
			}

			// Rotation: one value, from the first (newest) secret, since
			// receivers of this shape compare the header as one MAC.
			h = sign(mustSigner(t, s, secrets...), "evt_1", time.Now(), body)
			if got := h.Get("X-Glossi-Signature"); got != want {
				t.Fatalf("rotated X-Glossi-Signature = %q, want %q (the first secret's MAC alone)", got, want)
			}

			if err := signature.VerifyHMAC("wrong", []byte(body), want, tc.encoding); !errors.Is(err, signature.ErrNoMatchingSignature) {
				t.Errorf("VerifyHMAC(wrong secret) = %v, want ErrNoMatchingSignature", err)
			}
			if err := signature.VerifyHMAC(secrets[0], []byte(body+"\n"), want, tc.encoding); !errors.Is(err, signature.ErrNoMatchingSignature) {
				t.Errorf("VerifyHMAC(modified body) = %v, want ErrNoMatchingSignature", err)
			}
		})
	}
}

func TestVerifyHMACEdges(t *testing.T) {
	const secret, body = "s3cr3t", "payload"
	mac := independentMAC(secret, body)
	cases := []struct {
		name, got, encoding string
		want                error // nil = accepted; errAny = some error
	}{
		{"upper-case hex", strings.ToUpper(hex.EncodeToString(mac)), "hex", nil},
		{"surrounding space", "  " + hex.EncodeToString(mac) + " ", "", nil},
		{"empty", "", "hex", signature.ErrMissingHeaders},
		{"hex sent, base64 expected", hex.EncodeToString(mac), "base64", signature.ErrNoMatchingSignature},
		{"truncated", hex.EncodeToString(mac)[:62], "hex", signature.ErrNoMatchingSignature},
		{"garbage", "zz,,,", "hex", signature.ErrNoMatchingSignature},
		{"unknown encoding", hex.EncodeToString(mac), "base32", errAny},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := signature.VerifyHMAC(secret, []byte(body), tc.got, tc.encoding)
			checkErr(t, err, tc.want)
		})
	}
	if err := signature.VerifyHMAC("", []byte(body), "00", "hex"); err == nil {
		t.Error("VerifyHMAC with an empty secret succeeded")
	}
}

func TestTokenScheme(t *testing.T) {
	s := signature.Scheme{Name: "token", Header: "x-gumlet-token"}
	h := sign(mustSigner(t, s, "tok-new", "tok-old"), "evt_1", time.Now(), "{}")
	if got := h.Get("x-gumlet-token"); got != "tok-new" {
		t.Fatalf("x-gumlet-token = %q, want the first secret", got)
	}
	if len(h) != 1 {
		t.Errorf("headers = %v, want only x-gumlet-token", h)
	}

	checkErr(t, signature.VerifyToken("tok-new", h.Get("x-gumlet-token")), nil)
	checkErr(t, signature.VerifyToken("tok-new", "tok-ne"), signature.ErrTokenMismatch)
	checkErr(t, signature.VerifyToken("tok-new", "tok-new "), signature.ErrTokenMismatch)
	checkErr(t, signature.VerifyToken("tok-new", ""), signature.ErrMissingHeaders)
	if err := signature.VerifyToken("", ""); err == nil {
		t.Error("VerifyToken with an empty secret succeeded")
	}
}

// errAny marks a table case that must fail without naming a sentinel.
var errAny = errors.New("any error")

func checkErr(t *testing.T, got, want error) {
	t.Helper()
	switch {
	case want == nil && got != nil:
		t.Errorf("err = %v, want nil", got)
	case want == errAny && got == nil:
		t.Error("err = nil, want an error")
	case want != nil && want != errAny && !errors.Is(got, want):
		t.Errorf("err = %v, want %v", got, want)
	}
}

func TestSignerDoesNotTouchOtherHeaders(t *testing.T) {
	for _, s := range []signature.Scheme{{}, {Name: "hmac-sha256", Header: "X-Sig"}, {Name: "token", Header: "X-Token"}} {
		h := http.Header{"User-Agent": {"pollrelay/test"}, "Content-Type": {"application/json"}}
		mustSigner(t, s, signature.NewSecret()).Sign(h, "evt_1", time.Now(), nil)
		if h.Get("User-Agent") != "pollrelay/test" || h.Get("Content-Type") != "application/json" {
			t.Errorf("scheme %q changed unrelated headers: %v", s.Name, h)
		}
	}
}
