// Package signature signs outgoing webhooks and verifies incoming ones.
//
// The notifier signs with it and the demo receiver, tests and Go receivers
// verify with it, so the two sides share one implementation and cannot drift.
// It is a leaf package: it imports only the standard library.
//
// Three schemes are supported:
//
//   - "standard": Standard Webhooks (https://www.standardwebhooks.com/).
//     Symmetric v1 signatures keyed by whsec_ secrets and asymmetric v1a
//     (ed25519) signatures keyed by whsk_ signing keys, verifiable with the
//     matching whpk_ public key. Several secrets give one signature each, so
//     a receiver keeps working while a secret is rotated.
//   - "hmac-sha256": a vendor-shaped HMAC-SHA256 of the raw body in a header
//     of the subscription's choosing, hex or base64 encoded.
//   - "token": a static shared token sent verbatim in a header.
//
// No error message or String output of this package contains secret
// material: errors name a secret by its position in the list only.
package signature

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Scheme names accepted in Scheme.Name.
const (
	// SchemeStandard is Standard Webhooks signing (v1 and v1a).
	SchemeStandard = "standard"
	// SchemeHMACSHA256 is an HMAC-SHA256 of the raw body in a named header.
	SchemeHMACSHA256 = "hmac-sha256"
	// SchemeToken is a static token in a named header.
	SchemeToken = "token"
)

// Encodings accepted in Scheme.Encoding for SchemeHMACSHA256.
const (
	// EncodingHex is lower-case hexadecimal, the default.
	EncodingHex = "hex"
	// EncodingBase64 is standard, padded base64.
	EncodingBase64 = "base64"
)

// Header names set by the standard scheme, as the Standard Webhooks spec
// spells them. http.Header canonicalises them on Set and Get.
const (
	// HeaderID carries the message id, stable across retries, so receivers
	// can deduplicate.
	HeaderID = "webhook-id"
	// HeaderTimestamp carries the unix seconds of this attempt.
	HeaderTimestamp = "webhook-timestamp"
	// HeaderSignature carries the space-separated versioned signatures.
	HeaderSignature = "webhook-signature"
)

// Key prefixes used by Standard Webhooks. They make a key's kind visible in
// config and let one secrets list mix symmetric and asymmetric keys.
const (
	// PrefixSecret marks a symmetric HMAC secret (base64 after the prefix).
	PrefixSecret = "whsec_"
	// PrefixSigningKey marks an ed25519 private key (base64 after the prefix).
	PrefixSigningKey = "whsk_"
	// PrefixPublicKey marks an ed25519 public key (base64 after the prefix).
	PrefixPublicKey = "whpk_"
)

// Scheme describes how a subscription signs.
type Scheme struct {
	// Name is SchemeStandard, SchemeHMACSHA256 or SchemeToken. Empty means
	// SchemeStandard, the design's default, so a zero Scheme is usable.
	Name string
	// Header is the header the signature or token goes in. It is required
	// for hmac-sha256 and token; standard always uses HeaderSignature.
	Header string
	// Encoding is EncodingHex (default) or EncodingBase64, for hmac-sha256
	// only.
	Encoding string
}

// Signer adds signature headers to an outgoing request. Implementations are
// immutable after construction and safe for concurrent use.
type Signer interface {
	// Sign sets the scheme's headers on h for a message with the given id,
	// attempt timestamp and exact body bytes as they will be sent.
	Sign(h http.Header, msgID string, ts time.Time, body []byte)
}

// NewSigner returns a Signer for scheme s keyed by secrets. Several secrets
// mean rotation: standard emits one signature per secret, in order, as the
// Standard Webhooks spec lets receivers pick theirs; hmac-sha256 and token
// send one value, from the first secret, because receivers of those vendor
// shapes read the header as a single value.
func NewSigner(s Scheme, secrets []string) (Signer, error) {
	if len(secrets) == 0 {
		return nil, errors.New("signature: no secret configured")
	}
	for i, sec := range secrets {
		if sec == "" {
			return nil, fmt.Errorf("signature: secret[%d] is empty", i)
		}
	}
	if err := s.Check(); err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	switch s.Name {
	case SchemeHMACSHA256:
		enc, _ := normEncoding(s.Encoding)
		return newHMACSigner(s.Header, enc, secrets), nil
	case SchemeToken:
		return newTokenSigner(s.Header, secrets[0]), nil
	default:
		return newStandardSigner(secrets)
	}
}

// Check reports what is wrong with the scheme itself, whatever its
// secrets: an unknown name, a header it needs and lacks or cannot send, an
// encoding it does not take.
func (s Scheme) Check() error {
	switch s.Name {
	case "", SchemeStandard:
		if s.Header != "" && !strings.EqualFold(s.Header, HeaderSignature) {
			return fmt.Errorf("scheme standard always uses the %s header, not %q", HeaderSignature, s.Header)
		}
		if s.Encoding != "" {
			return errors.New("encoding applies to hmac-sha256 only")
		}
	case SchemeHMACSHA256:
		if err := checkHeaderName(s.Header); err != nil {
			return fmt.Errorf("scheme hmac-sha256: %w", err)
		}
		if _, err := normEncoding(s.Encoding); err != nil {
			return fmt.Errorf("scheme hmac-sha256: %w", err)
		}
	case SchemeToken:
		if err := checkHeaderName(s.Header); err != nil {
			return fmt.Errorf("scheme token: %w", err)
		}
		if s.Encoding != "" {
			return errors.New("encoding applies to hmac-sha256 only")
		}
	default:
		return fmt.Errorf("unknown scheme %q (want standard, hmac-sha256 or token)", s.Name)
	}
	return nil
}

// checkHeaderName rejects names net/http would refuse to send (RFC 9110
// token characters only), so a config typo fails at load, not per delivery.
func checkHeaderName(name string) error {
	if name == "" {
		return errors.New("header is required")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return fmt.Errorf("header %q: invalid character %q", name, c)
	}
	return nil
}

// normEncoding maps "" to the hex default and rejects anything unknown.
func normEncoding(enc string) (string, error) {
	switch enc {
	case "", EncodingHex:
		return EncodingHex, nil
	case EncodingBase64:
		return EncodingBase64, nil
	default:
		return "", fmt.Errorf("unknown encoding %q (want hex or base64)", enc)
	}
}

// NewSecret returns a fresh symmetric Standard Webhooks secret: "whsec_"
// followed by the base64 of 32 random bytes (the spec asks for 24 to 64).
func NewSecret() string {
	b := make([]byte, 32)
	// crypto/rand.Read never fails since Go 1.24; it crashes the program
	// instead of returning a weak key.
	_, _ = rand.Read(b)
	return PrefixSecret + base64.StdEncoding.EncodeToString(b)
}

// NewSigningKey returns a fresh ed25519 key pair for v1a signatures:
// signingKey is "whsk_" + base64 of the 64-byte private key and publicKey is
// "whpk_" + base64 of the 32-byte public key. The sender keeps the signing
// key; receivers only ever need the public key.
func NewSigningKey() (signingKey, publicKey string) {
	pub, priv, err := ed25519.GenerateKey(nil) // nil = crypto/rand
	if err != nil {
		// Unreachable: crypto/rand does not return errors since Go 1.24.
		panic("signature: generating ed25519 key: " + err.Error())
	}
	return PrefixSigningKey + base64.StdEncoding.EncodeToString(priv),
		PrefixPublicKey + base64.StdEncoding.EncodeToString(pub)
}

// PublicKey returns the whpk_ public key matching a whsk_ signing key, for
// handing to receivers.
func PublicKey(signingKey string) (string, error) {
	priv, err := parseSigningKey(signingKey)
	if err != nil {
		return "", fmt.Errorf("signature: %w", err)
	}
	pub := priv.Public().(ed25519.PublicKey)
	return PrefixPublicKey + base64.StdEncoding.EncodeToString(pub), nil
}

// parseSigningKey decodes a whsk_ key holding either a 64-byte ed25519
// private key or its 32-byte seed. Errors never quote the key.
func parseSigningKey(s string) (ed25519.PrivateKey, error) {
	b64, ok := strings.CutPrefix(s, PrefixSigningKey)
	if !ok {
		return nil, errors.New("signing key must start with " + PrefixSigningKey)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("signing key is not valid base64: %w", err)
	}
	switch len(raw) {
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(raw), nil
	case ed25519.PrivateKeySize:
		// The second half of a private key is its public key; a mismatch
		// (a truncated copy-paste, two keys spliced) would sign happily and
		// never verify, so catch it here.
		priv := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])
		if !priv.Equal(ed25519.PrivateKey(raw)) {
			return nil, errors.New("signing key: public half does not match the seed")
		}
		return priv, nil
	default:
		return nil, fmt.Errorf("signing key has %d bytes, want %d (private key) or %d (seed)",
			len(raw), ed25519.PrivateKeySize, ed25519.SeedSize)
	}
}

// parsePublicKey decodes a whpk_ key holding a 32-byte ed25519 public key.
func parsePublicKey(s string) (ed25519.PublicKey, error) {
	b64, ok := strings.CutPrefix(s, PrefixPublicKey)
	if !ok {
		return nil, errors.New("public key must start with " + PrefixPublicKey)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("public key is not valid base64: %w", err)
	}
	if len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key has %d bytes, want %d", len(raw), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(raw), nil
}

// parseSymmetricSecret decodes a whsec_ secret, or a bare base64 secret as
// the official libraries accept. Padded standard base64 only, like those
// libraries: a secret we accepted but a receiver's library rejected would
// fail every delivery with a confusing "no matching signature".
func parseSymmetricSecret(s string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, PrefixSecret))
	if err != nil {
		return nil, fmt.Errorf("secret is not valid base64 after %s: %w", PrefixSecret, err)
	}
	if len(raw) == 0 {
		return nil, errors.New("secret is empty after " + PrefixSecret)
	}
	return raw, nil
}
