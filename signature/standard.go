package signature

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Signature version tags of the Standard Webhooks spec.
const (
	// VersionSymmetric tags an HMAC-SHA256 signature keyed by a whsec_ secret.
	VersionSymmetric = "v1"
	// VersionAsymmetric tags an ed25519 signature made with a whsk_ key.
	VersionAsymmetric = "v1a"
)

// standardKey is one entry of a standard signer: exactly one field is set.
type standardKey struct {
	hmac []byte             // v1
	ed   ed25519.PrivateKey // v1a
}

// standardSigner signs per Standard Webhooks, one signature per key in the
// order the secrets were given, so the header is deterministic.
type standardSigner struct {
	keys []standardKey
}

// newStandardSigner parses each secret by its prefix: whsk_ is an ed25519
// signing key, whpk_ is refused (a public key cannot sign), anything else
// is a whsec_ or bare base64 HMAC secret.
func newStandardSigner(secrets []string) (*standardSigner, error) {
	s := &standardSigner{keys: make([]standardKey, 0, len(secrets))}
	for i, sec := range secrets {
		switch {
		case strings.HasPrefix(sec, PrefixSigningKey):
			priv, err := parseSigningKey(sec)
			if err != nil {
				return nil, fmt.Errorf("signature: secret[%d]: %w", i, err)
			}
			s.keys = append(s.keys, standardKey{ed: priv})
		case strings.HasPrefix(sec, PrefixPublicKey):
			return nil, fmt.Errorf("signature: secret[%d]: a %s public key can only verify; sign with its %s signing key",
				i, PrefixPublicKey, PrefixSigningKey)
		default:
			key, err := parseSymmetricSecret(sec)
			if err != nil {
				return nil, fmt.Errorf("signature: secret[%d]: %w", i, err)
			}
			s.keys = append(s.keys, standardKey{hmac: key})
		}
	}
	return s, nil
}

// Sign sets webhook-id, webhook-timestamp and webhook-signature.
func (s *standardSigner) Sign(h http.Header, msgID string, ts time.Time, body []byte) {
	tsStr := strconv.FormatInt(ts.Unix(), 10)
	content := signedContent(msgID, tsStr, body)

	var sig strings.Builder
	for i, k := range s.keys {
		if i > 0 {
			// A single space: the official verifiers split on " " exactly.
			sig.WriteByte(' ')
		}
		if k.ed != nil {
			sig.WriteString(VersionAsymmetric + ",")
			sig.WriteString(base64.StdEncoding.EncodeToString(ed25519.Sign(k.ed, content)))
		} else {
			sig.WriteString(VersionSymmetric + ",")
			sig.WriteString(base64.StdEncoding.EncodeToString(macSHA256(k.hmac, content)))
		}
	}
	h.Set(HeaderID, msgID)
	h.Set(HeaderTimestamp, tsStr)
	h.Set(HeaderSignature, sig.String())
}

// String describes the signer without key material, so it is safe to log.
func (s *standardSigner) String() string {
	var v1, v1a int
	for _, k := range s.keys {
		if k.ed != nil {
			v1a++
		} else {
			v1++
		}
	}
	return fmt.Sprintf("signature.Signer{scheme: standard, v1 keys: %d, v1a keys: %d}", v1, v1a)
}

// GoString keeps %#v from dumping the keys.
func (s *standardSigner) GoString() string { return s.String() }

// signedContent is "{id}.{timestamp}.{body}", the byte string both v1 and
// v1a sign. Built into one exact-size buffer because the body may be large.
func signedContent(msgID, ts string, body []byte) []byte {
	b := make([]byte, 0, len(msgID)+len(ts)+len(body)+2)
	b = append(b, msgID...)
	b = append(b, '.')
	b = append(b, ts...)
	b = append(b, '.')
	return append(b, body...)
}

// macSHA256 returns HMAC-SHA256(key, msg).
func macSHA256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}
