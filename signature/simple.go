package signature

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"time"
)

// hmacSigner puts HMAC-SHA256(secret, body) in one vendor-named header, the
// shape of vendors such as Glossi (X-Glossi-Signature: <hex>). The key is the
// secret string's raw bytes, not a decoded whsec_ value, because that is what
// such vendors do and what receivers written for them expect.
type hmacSigner struct {
	header   string
	encoding string // EncodingHex or EncodingBase64
	key      []byte
}

// newHMACSigner keys the signer with the first (newest) secret only:
// receivers of this shape read the header as one MAC (Glossi's sample
// compares it with timingSafeEqual, which throws on two), so rotation
// happens on the receiver's side, which accepts the old and the new
// secret while the first one listed changes.
func newHMACSigner(header, encoding string, secrets []string) *hmacSigner {
	return &hmacSigner{header: header, encoding: encoding, key: []byte(secrets[0])}
}

// Sign sets the configured header to the encoded MAC. It sets no other
// header: the vendor shape has none, and the notifier adds webhook-id
// itself for deduplication.
func (s *hmacSigner) Sign(h http.Header, _ string, _ time.Time, body []byte) {
	h.Set(s.header, encodeMAC(s.encoding, macSHA256(s.key, body)))
}

// String describes the signer without key material, so it is safe to log.
func (s *hmacSigner) String() string {
	return fmt.Sprintf("signature.Signer{scheme: hmac-sha256, header: %s, encoding: %s}", s.header, s.encoding)
}

// GoString keeps %#v from dumping the keys.
func (s *hmacSigner) GoString() string { return s.String() }

// encodeMAC encodes a MAC for the hmac-sha256 scheme; enc is already
// normalised.
func encodeMAC(enc string, mac []byte) string {
	if enc == EncodingBase64 {
		return base64.StdEncoding.EncodeToString(mac)
	}
	return hex.EncodeToString(mac)
}

// tokenSigner sends a static shared secret verbatim, the shape of vendors
// such as Gumlet (x-gumlet-token). It proves only that the sender knows the
// token, not that the body is intact; the scheme exists so an app written
// for the vendor's real webhooks works unchanged.
type tokenSigner struct {
	header string
	token  string
}

func newTokenSigner(header, token string) *tokenSigner {
	return &tokenSigner{header: header, token: token}
}

// Sign sets the configured header to the token.
func (s *tokenSigner) Sign(h http.Header, _ string, _ time.Time, _ []byte) {
	h.Set(s.header, s.token)
}

// String describes the signer without the token, so it is safe to log.
func (s *tokenSigner) String() string {
	return fmt.Sprintf("signature.Signer{scheme: token, header: %s}", s.header)
}

// GoString keeps %#v from dumping the token.
func (s *tokenSigner) GoString() string { return s.String() }
