package signature_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/signature"
)

func TestNewSignerValidation(t *testing.T) {
	secret := signature.NewSecret()
	_, pk := signature.NewSigningKey()
	cases := []struct {
		name    string
		scheme  signature.Scheme
		secrets []string
		wantErr string // "" = success
	}{
		{"standard", signature.Scheme{Name: "standard"}, []string{secret}, ""},
		{"standard explicit header", signature.Scheme{Name: "standard", Header: "Webhook-Signature"}, []string{secret}, ""},
		{"standard other header", signature.Scheme{Name: "standard", Header: "X-Sig"}, []string{secret}, `always uses the webhook-signature header, not "X-Sig"`},
		{"standard with encoding", signature.Scheme{Name: "standard", Encoding: "hex"}, []string{secret}, "encoding applies to hmac-sha256 only"},
		{"no secrets", signature.Scheme{}, nil, "no secret configured"},
		{"empty secret", signature.Scheme{}, []string{secret, ""}, "secret[1] is empty"},
		{"bad base64", signature.Scheme{}, []string{"whsec_not base64"}, "secret[0]: secret is not valid base64 after whsec_"},
		{"unpadded base64", signature.Scheme{}, []string{"whsec_" + strings.TrimRight(base64.StdEncoding.EncodeToString([]byte("abcd")), "=")}, "not valid base64"},
		{"empty after prefix", signature.Scheme{}, []string{"whsec_"}, "secret is empty after whsec_"},
		{"public key", signature.Scheme{}, []string{pk}, "secret[0]: a whpk_ public key can only verify"},
		{"short signing key", signature.Scheme{}, []string{"whsk_" + base64.StdEncoding.EncodeToString(make([]byte, 16))}, "signing key has 16 bytes, want 64 (private key) or 32 (seed)"},
		{"hmac", signature.Scheme{Name: "hmac-sha256", Header: "X-Glossi-Signature"}, []string{"raw"}, ""},
		{"hmac base64", signature.Scheme{Name: "hmac-sha256", Header: "X-Sig", Encoding: "base64"}, []string{"raw"}, ""},
		{"hmac no header", signature.Scheme{Name: "hmac-sha256"}, []string{"raw"}, "scheme hmac-sha256: header is required"},
		{"hmac bad header", signature.Scheme{Name: "hmac-sha256", Header: "X Sig"}, []string{"raw"}, `header "X Sig": invalid character ' '`},
		{"hmac bad encoding", signature.Scheme{Name: "hmac-sha256", Header: "X-Sig", Encoding: "base32"}, []string{"raw"}, `unknown encoding "base32" (want hex or base64)`},
		{"token", signature.Scheme{Name: "token", Header: "x-gumlet-token"}, []string{"tok"}, ""},
		{"token no header", signature.Scheme{Name: "token"}, []string{"tok"}, "scheme token: header is required"},
		{"token with encoding", signature.Scheme{Name: "token", Header: "x-t", Encoding: "hex"}, []string{"tok"}, "encoding applies to hmac-sha256 only"},
		{"unknown scheme", signature.Scheme{Name: "hmac-sha1"}, []string{"x"}, `unknown scheme "hmac-sha1" (want standard, hmac-sha256 or token)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sg, err := signature.NewSigner(tc.scheme, tc.secrets)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("NewSigner: %v", err)
			case tc.wantErr == "" && sg == nil:
				t.Fatal("NewSigner returned a nil Signer")
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("NewSigner error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestNewVerifierValidation(t *testing.T) {
	for _, secrets := range [][]string{
		nil,
		{""},
		{"whsec_%%%"},
		{"whpk_" + base64.StdEncoding.EncodeToString(make([]byte, 31))},
		{"whpk_not-base64"},
		{"whsk_" + base64.StdEncoding.EncodeToString(make([]byte, 63))},
	} {
		if _, err := signature.NewVerifier(secrets...); err == nil {
			t.Errorf("NewVerifier(%q) succeeded, want an error", secrets)
		}
	}
}

func TestNewSecret(t *testing.T) {
	a, b := signature.NewSecret(), signature.NewSecret()
	if a == b {
		t.Fatal("NewSecret returned the same secret twice")
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(a, "whsec_"))
	if !strings.HasPrefix(a, "whsec_") || err != nil || len(raw) != 32 {
		t.Fatalf("NewSecret() = whsec_? %v, decode err %v, %d bytes; want whsec_ + base64 of 32 bytes",
			strings.HasPrefix(a, "whsec_"), err, len(raw))
	}
	sk, pk := signature.NewSigningKey()
	rawSK, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(sk, "whsk_"))
	rawPK, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(pk, "whpk_"))
	if len(rawSK) != 64 || len(rawPK) != 32 {
		t.Fatalf("NewSigningKey: %d and %d bytes, want 64 and 32", len(rawSK), len(rawPK))
	}
}

// TestNoSecretInOutput checks the package's promise that neither errors nor
// String/GoString output reveal secret material, in any of the forms a
// secret takes (as configured, its base64 part, its decoded bytes).
func TestNoSecretInOutput(t *testing.T) {
	secret := signature.NewSecret()
	sk, pk := signature.NewSigningKey()
	const token = "tok-SUPERSECRETVALUE"
	// Malformed secrets built around a recognisable marker.
	const marker = "LEAKMARKERxyz"
	malformed := []string{
		"whsec_" + marker + "!!",
		"whsec_" + marker, // valid alphabet, bad length
		"whsk_" + marker + "==",
		"whsk_" + base64.StdEncoding.EncodeToString([]byte(marker)),
		"whpk_" + marker,
		"whpk_" + base64.StdEncoding.EncodeToString([]byte(marker)),
		marker + "%",
	}

	var outputs []string
	addErr := func(err error) {
		if err == nil {
			t.Fatal("expected an error")
		}
		outputs = append(outputs, err.Error(), fmt.Sprintf("%+v", err))
	}

	for _, m := range malformed {
		_, err := signature.NewSigner(signature.Scheme{}, []string{m})
		addErr(err)
		_, err = signature.NewVerifier(m)
		addErr(err)
		_, err = signature.PublicKey(m)
		addErr(err)
	}
	_, err := signature.NewSigner(signature.Scheme{}, []string{secret, pk})
	addErr(err)
	_, err = signature.NewSigner(signature.Scheme{Name: "hmac-sha256", Header: "bad header"}, []string{token})
	addErr(err)
	_, err = signature.NewSigner(signature.Scheme{Name: "token", Header: ""}, []string{token})
	addErr(err)
	_, err = signature.NewSigner(signature.Scheme{Name: "nope"}, []string{token})
	addErr(err)

	now := time.Unix(1_700_000_000, 0)
	v := mustVerifier(t, now, secret, pk)
	h := sign(mustSigner(t, signature.Scheme{}, secret, sk), "evt_1", now, "{}")
	addErr(v.Verify([]byte("{}!"), h))
	addErr(mustVerifier(t, now.Add(time.Hour), secret).Verify([]byte("{}"), h))
	addErr(mustVerifier(t, now.Add(-time.Hour), secret).Verify([]byte("{}"), h))
	addErr(mustVerifier(t, now, secret).Verify([]byte("{}"), http.Header{}))
	addErr(signature.VerifyHMAC(token, []byte("{}"), "00", "hex"))
	addErr(signature.VerifyHMAC(token, []byte("{}"), "00", "rot13"))
	addErr(signature.VerifyToken(token, "guess"))
	addErr(signature.VerifyToken(token, ""))

	for _, x := range []any{
		v,
		mustSigner(t, signature.Scheme{}, secret, sk),
		mustSigner(t, signature.Scheme{Name: "hmac-sha256", Header: "X-Sig"}, token),
		mustSigner(t, signature.Scheme{Name: "token", Header: "X-Token"}, token),
	} {
		outputs = append(outputs, fmt.Sprint(x), fmt.Sprintf("%+v", x), fmt.Sprintf("%#v", x))
	}

	var forbidden []string
	for _, s := range []string{secret, sk} {
		b64 := s[strings.IndexByte(s, '_')+1:]
		raw, _ := base64.StdEncoding.DecodeString(b64)
		forbidden = append(forbidden, b64, string(raw), fmt.Sprintf("%x", raw[:8]), fmt.Sprintf("%v", raw[:8])[1:20])
	}
	forbidden = append(forbidden, token, "SUPERSECRET", marker)

	for _, out := range outputs {
		for _, f := range forbidden {
			if strings.Contains(out, f) {
				t.Errorf("output %q contains secret material %q", out, f)
			}
		}
	}
}
