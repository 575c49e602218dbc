package signature

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Verification errors. Callers match them with errors.Is; the returned
// errors may wrap them with detail that never includes key material.
var (
	// ErrMissingHeaders means a required header (webhook-id,
	// webhook-timestamp, webhook-signature, or a scheme's own header) is
	// absent or empty.
	ErrMissingHeaders = errors.New("signature: missing signature header")
	// ErrInvalidTimestamp means webhook-timestamp is not an integer.
	ErrInvalidTimestamp = errors.New("signature: webhook-timestamp is not unix seconds")
	// ErrTimestampTooOld means the message is older than the tolerance,
	// which is what stops a captured request being replayed later.
	ErrTimestampTooOld = errors.New("signature: message timestamp too old")
	// ErrTimestampTooNew means the message is dated further in the future
	// than the tolerance allows.
	ErrTimestampTooNew = errors.New("signature: message timestamp too new")
	// ErrNoMatchingSignature means no signature verified with any key.
	ErrNoMatchingSignature = errors.New("signature: no matching signature")
	// ErrTokenMismatch means a static token did not match.
	ErrTokenMismatch = errors.New("signature: token mismatch")
)

// DefaultTolerance is how far a message timestamp may be from the
// receiver's clock in either direction, the Standard Webhooks default.
const DefaultTolerance = 5 * time.Minute

// maxSignatures caps how many signature entries one request may make us
// check. Real senders send one per rotating key; without a cap an
// unauthenticated request could pack thousands of ed25519 signatures into a
// header and cost a verification each.
const maxSignatures = 32

// Verifier checks Standard Webhooks signatures for Go receivers. Construct
// it with NewVerifier; set Tolerance and Now before first use. It is safe
// for concurrent use once configured.
type Verifier struct {
	hmacKeys [][]byte            // v1
	pubKeys  []ed25519.PublicKey // v1a

	// Tolerance is the allowed clock distance between the message
	// timestamp and Now, both directions. Zero or negative means
	// DefaultTolerance: there is deliberately no way to switch the replay
	// check off.
	Tolerance time.Duration
	// Now returns the current time; nil means time.Now. Tests inject it.
	Now func() time.Time
}

// NewVerifier returns a Verifier that accepts a message signed by any of
// secrets: whsec_ (or bare base64) secrets verify v1 signatures, whpk_
// public keys verify v1a signatures. A whsk_ signing key is accepted too and
// verifies through its public half, so a demo or test can verify with the
// same list it signs with; real receivers should be given only the whpk_.
func NewVerifier(secrets ...string) (*Verifier, error) {
	if len(secrets) == 0 {
		return nil, errors.New("signature: no secret configured")
	}
	v := &Verifier{}
	for i, sec := range secrets {
		switch {
		case sec == "":
			return nil, fmt.Errorf("signature: secret[%d] is empty", i)
		case strings.HasPrefix(sec, PrefixPublicKey):
			pub, err := parsePublicKey(sec)
			if err != nil {
				return nil, fmt.Errorf("signature: secret[%d]: %w", i, err)
			}
			v.pubKeys = append(v.pubKeys, pub)
		case strings.HasPrefix(sec, PrefixSigningKey):
			priv, err := parseSigningKey(sec)
			if err != nil {
				return nil, fmt.Errorf("signature: secret[%d]: %w", i, err)
			}
			v.pubKeys = append(v.pubKeys, priv.Public().(ed25519.PublicKey))
		default:
			key, err := parseSymmetricSecret(sec)
			if err != nil {
				return nil, fmt.Errorf("signature: secret[%d]: %w", i, err)
			}
			v.hmacKeys = append(v.hmacKeys, key)
		}
	}
	return v, nil
}

// Verify checks a Standard Webhooks request: the three headers are present,
// the timestamp is within Tolerance of Now, and at least one of the
// space-separated signatures verifies with at least one key. Unknown
// signature versions are skipped so senders can add new ones. body must be
// the exact bytes received, before any JSON decoding.
func (v *Verifier) Verify(body []byte, h http.Header) error {
	id, tsStr, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsStr == "" || sigs == "" {
		return ErrMissingHeaders
	}
	sec, err := strconv.ParseInt(tsStr, 10, 64)
	if err != nil {
		return ErrInvalidTimestamp
	}
	if err := v.checkTimestamp(sec); err != nil {
		return err
	}
	// Re-format rather than reuse the header text, as the official
	// libraries do, so "+0123" and "123" sign the same content there and here.
	content := signedContent(id, strconv.FormatInt(sec, 10), body)

	var macs [][]byte // computed on the first v1 entry; most requests have one
	n := 0
	for entry := range strings.FieldsSeq(sigs) {
		if n++; n > maxSignatures {
			break
		}
		version, b64, ok := strings.Cut(entry, ",")
		if !ok {
			continue
		}
		switch version {
		case VersionSymmetric:
			got, err := base64.StdEncoding.DecodeString(b64)
			if err != nil || len(got) != sha256.Size {
				continue
			}
			if macs == nil {
				macs = make([][]byte, len(v.hmacKeys))
				for i, k := range v.hmacKeys {
					macs[i] = macSHA256(k, content)
				}
			}
			for _, m := range macs {
				if hmac.Equal(got, m) {
					return nil
				}
			}
		case VersionAsymmetric:
			got, err := base64.StdEncoding.DecodeString(b64)
			if err != nil || len(got) != ed25519.SignatureSize {
				continue
			}
			for _, pub := range v.pubKeys {
				if ed25519.Verify(pub, content, got) {
					return nil
				}
			}
		}
	}
	return ErrNoMatchingSignature
}

// checkTimestamp enforces the tolerance window around Now.
func (v *Verifier) checkTimestamp(sec int64) error {
	// Clamp to ±2^40 s (~35,000 years) so time.Unix cannot overflow and turn
	// a far-future timestamp into a far-past one; order is preserved, so
	// the error still names the right direction.
	const limit = 1 << 40
	sec = min(max(sec, -limit), limit)
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	tol := v.Tolerance
	if tol <= 0 {
		tol = DefaultTolerance
	}
	t, cur := time.Unix(sec, 0), now()
	if d := cur.Sub(t); d > tol {
		return fmt.Errorf("%w: %s old, tolerance %s", ErrTimestampTooOld, d.Round(time.Second), tol)
	}
	if d := t.Sub(cur); d > tol {
		return fmt.Errorf("%w: %s ahead, tolerance %s", ErrTimestampTooNew, d.Round(time.Second), tol)
	}
	return nil
}

// String describes the verifier without key material, so it is safe to log.
func (v *Verifier) String() string {
	return fmt.Sprintf("signature.Verifier{v1 keys: %d, v1a keys: %d, tolerance: %s}",
		len(v.hmacKeys), len(v.pubKeys), v.Tolerance)
}

// GoString keeps %#v from dumping the keys.
func (v *Verifier) GoString() string { return v.String() }

// VerifyHMAC checks got, the value of an hmac-sha256 scheme header, against
// HMAC-SHA256 of the raw body keyed by secret's raw bytes. got may hold
// several comma-separated values (a sender rotating secrets); any match
// passes. encoding is "hex" (the default when empty) or "base64"; hex is
// accepted in either case. Comparison is constant-time.
func VerifyHMAC(secret string, body []byte, got string, encoding string) error {
	if secret == "" {
		return errors.New("signature: no secret configured")
	}
	enc, err := normEncoding(encoding)
	if err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	if strings.TrimSpace(got) == "" {
		return ErrMissingHeaders
	}
	want := macSHA256([]byte(secret), body)
	n := 0
	for part := range strings.SplitSeq(got, ",") {
		if n++; n > maxSignatures {
			break
		}
		part = strings.TrimSpace(part)
		var dec []byte
		if enc == EncodingBase64 {
			dec, err = base64.StdEncoding.DecodeString(part)
		} else {
			dec, err = hex.DecodeString(part)
		}
		if err == nil && hmac.Equal(dec, want) {
			return nil
		}
	}
	return ErrNoMatchingSignature
}

// VerifyToken checks a static token scheme header in constant time. Both
// sides are hashed first because a plain constant-time compare still returns
// early when the lengths differ, which would leak the token's length.
func VerifyToken(secret, got string) error {
	if secret == "" {
		return errors.New("signature: no secret configured")
	}
	if got == "" {
		return ErrMissingHeaders
	}
	a, b := sha256.Sum256([]byte(secret)), sha256.Sum256([]byte(got))
	if !hmac.Equal(a[:], b[:]) {
		return ErrTokenMismatch
	}
	return nil
}

// SchemeVerifier checks a request signed under any Scheme, as the
// receiver of a vendor-shaped subscription does: Standard Webhooks with
// every secret, hmac-sha256 and token with the first (the one NewSigner
// signs with).
type SchemeVerifier struct {
	s      Scheme
	secret string
	std    *Verifier
}

// NewSchemeVerifier returns a SchemeVerifier for scheme s keyed by secrets.
func NewSchemeVerifier(s Scheme, secrets ...string) (*SchemeVerifier, error) {
	if len(secrets) == 0 {
		return nil, errors.New("signature: no secret configured")
	}
	v := &SchemeVerifier{s: s, secret: secrets[0]}
	switch s.Name {
	case "", SchemeStandard:
		std, err := NewVerifier(secrets...)
		if err != nil {
			return nil, err
		}
		v.std = std
	case SchemeHMACSHA256, SchemeToken:
		if err := checkHeaderName(s.Header); err != nil {
			return nil, fmt.Errorf("signature: scheme %s: %w", s.Name, err)
		}
	default:
		return nil, fmt.Errorf("signature: unknown scheme %q (want standard, hmac-sha256 or token)", s.Name)
	}
	return v, nil
}

// Verify checks body and h under the verifier's scheme.
func (v *SchemeVerifier) Verify(body []byte, h http.Header) error {
	switch v.s.Name {
	case SchemeHMACSHA256:
		return VerifyHMAC(v.secret, body, h.Get(v.s.Header), v.s.Encoding)
	case SchemeToken:
		return VerifyToken(v.secret, h.Get(v.s.Header))
	}
	return v.std.Verify(body, h)
}

// String names the scheme without key material, so it is safe to log.
func (v *SchemeVerifier) String() string {
	return fmt.Sprintf("signature.SchemeVerifier{scheme: %q, header: %q}", v.s.Name, v.s.Header)
}

// GoString keeps %#v from dumping the secret.
func (v *SchemeVerifier) GoString() string { return v.String() }
