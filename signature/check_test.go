package signature_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pollrelay/pollrelay/signature"
)

// TestCheckSecretsNamesEachBadOne: every secret a scheme cannot sign with
// is reported, by its index and never by its value, and every secret it
// reports is one NewSigner would refuse or a standard one without its
// prefix.
func TestCheckSecretsNamesEachBadOne(t *testing.T) {
	good := signature.NewSecret()
	key, pub := signature.NewSigningKey()
	short := "whsk_" + base64.StdEncoding.EncodeToString(make([]byte, 16))
	standard := signature.Scheme{Name: signature.SchemeStandard}
	cases := []struct {
		name    string
		scheme  signature.Scheme
		secrets []string
		want    []string
	}{
		{"all good", standard, []string{good, key}, nil},
		{"each bad one", standard, []string{good, "", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not*base64", "whsec_", pub, short}, []string{
			"secret[1]: must not be empty",
			"secret[2]: must be whsec_<base64> or whsk_<base64>: a Standard Webhooks secret is whsec_ followed by the base64 of 24 to 64 random bytes",
			"secret[3]: must be whsec_<base64> or whsk_<base64>: what follows whsec_ is not standard base64 (A-Z, a-z, 0-9, + and /, padded with =)",
			"secret[4]: must be whsec_<base64> or whsk_<base64>: nothing follows whsec_",
			"secret[5]: must be whsec_<base64> or whsk_<base64>: a Standard Webhooks secret is whsec_ followed by the base64 of 24 to 64 random bytes",
			"secret[6]: signing key has 16 bytes, want 64 (private key) or 32 (seed)",
		}},
		{"the default scheme is standard", signature.Scheme{}, []string{"plain"}, []string{
			"secret[0]: must be whsec_<base64> or whsk_<base64>: a Standard Webhooks secret is whsec_ followed by the base64 of 24 to 64 random bytes",
		}},
		{"hmac takes any string", signature.Scheme{Name: signature.SchemeHMACSHA256, Header: "X-Sig"}, []string{"raw", ""}, []string{"secret[1]: must not be empty"}},
		{"a token goes in a header", signature.Scheme{Name: signature.SchemeToken, Header: "x-t"}, []string{"tok\r\nX-Evil: 1", "tab\tok"}, []string{
			"secret[0]: must not contain control characters such as CR, LF or NUL",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := signature.CheckSecrets(tc.scheme, tc.secrets)
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
				if sec := tc.secrets[e.Index]; len(sec) > len("whsec_") && strings.Contains(e.Error(), sec) {
					t.Errorf("%q quotes the secret", e)
				}
				if strings.Contains(e.Error(), "must be whsec_") != errors.Is(e, signature.ErrSecretForm) {
					t.Errorf("%q: errors.Is(ErrSecretForm) = %t", e, errors.Is(e, signature.ErrSecretForm))
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got\n  %q\nwant\n  %q", got, tc.want)
			}
		})
	}
}

// TestSchemeCheckIsNewSignersRule: Scheme.Check refuses what NewSigner
// refuses of a scheme, in the same words.
func TestSchemeCheckIsNewSignersRule(t *testing.T) {
	for _, s := range []signature.Scheme{
		{}, {Name: "standard", Header: "X-Sig"}, {Name: "hmac-sha256"}, {Name: "hmac-sha256", Header: "X Sig"},
		{Name: "hmac-sha256", Header: "X-Sig", Encoding: "base32"}, {Name: "token", Header: "x-t", Encoding: "hex"}, {Name: "rsa"},
		{Name: "token", Header: "x-t"},
	} {
		_, serr := signature.NewSigner(s, []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
		cerr := s.Check()
		if (serr == nil) != (cerr == nil) || (cerr != nil && serr.Error() != "signature: "+cerr.Error()) {
			t.Errorf("%+v: NewSigner %v, Check %v", s, serr, cerr)
		}
	}
}
