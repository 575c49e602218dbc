package signature

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// ErrSecretForm is what a SecretError wraps for a standard-scheme secret
// that is not whsec_ or whsk_ followed by standard base64.
var ErrSecretForm = errors.New("must be whsec_<base64> or whsk_<base64>")

// SecretError is one secret a scheme cannot sign with, named by its
// position in the list, never by its value.
type SecretError struct {
	Index int
	Err   error
}

// Error names the secret by its index.
func (e *SecretError) Error() string { return fmt.Sprintf("secret[%d]: %v", e.Index, e.Err) }

// Unwrap returns what is wrong with the secret.
func (e *SecretError) Unwrap() error { return e.Err }

// CheckSecrets reports, in order, every secret of the list that scheme s
// would not sign with, so a configuration can name each bad one. A secret
// the scheme s itself refuses is not judged: see Scheme.Check. For the
// standard scheme it is stricter than NewSigner, which also takes bare
// base64 as the official libraries do: a configured secret says its kind
// by its prefix, so a whpk_ public key or a pasted fragment is caught
// before the first webhook.
func CheckSecrets(s Scheme, secrets []string) []*SecretError {
	var out []*SecretError
	for i, sec := range secrets {
		if err := checkSecret(s, sec); err != nil {
			out = append(out, &SecretError{Index: i, Err: err})
		}
	}
	return out
}

func checkSecret(s Scheme, sec string) error {
	if sec == "" {
		return errors.New("must not be empty")
	}
	switch s.Name {
	case "", SchemeStandard:
		if reason := standardForm(sec); reason != "" {
			return fmt.Errorf("%w: %s", ErrSecretForm, reason)
		}
		if strings.HasPrefix(sec, PrefixSigningKey) {
			_, err := parseSigningKey(sec)
			return err
		}
	case SchemeToken:
		// The token is sent as it is, in a header.
		if strings.ContainsFunc(sec, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
			return errors.New("must not contain control characters such as CR, LF or NUL")
		}
	}
	return nil
}

// standardForm says what keeps sec from being whsec_ or whsk_ followed by
// non-empty padded standard base64, as Standard Webhooks libraries expect,
// without quoting it; "" when nothing does.
func standardForm(sec string) string {
	for _, prefix := range []string{PrefixSecret, PrefixSigningKey} {
		b64, ok := strings.CutPrefix(sec, prefix)
		if !ok {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(b64)
		switch {
		case err == nil && len(raw) > 0:
			return ""
		case b64 == "":
			return "nothing follows " + prefix
		default:
			return "what follows " + prefix + " is not standard base64 (A-Z, a-z, 0-9, + and /, padded with =)"
		}
	}
	return "a Standard Webhooks secret is whsec_ followed by the base64 of 24 to 64 random bytes"
}
