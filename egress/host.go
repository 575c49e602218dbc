package egress

import (
	"fmt"
	"net/netip"
	"strings"

	"golang.org/x/net/idna"
)

// HostAddr returns the address a URL's host (url.URL.Hostname, or the same
// in brackets) denotes when it is an IP literal in any form a dialer
// accepts, so it can be judged before anything is dialled:
//   - IPv6 with a zone ("::1%lo"), IPv4-mapped and every other IPv6 form;
//   - the forms inet_aton and so getaddrinfo take ("2130706433", "127.1",
//     "0x7f.1", "0177.0.0.1"), with a trailing dot or not;
//   - non-ASCII hosts after the IDNA mapping net/http applies before it
//     dials (full-width digits and dots become "127.0.0.1");
//   - localhost and *.localhost, loopback by definition (RFC 6761).
//
// Any other name reports false: it is judged on the addresses it resolves
// to, when dialled.
func HostAddr(host string) (netip.Addr, bool) {
	h := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if a, err := netip.ParseAddr(h); err == nil {
		return a, true
	}
	if !isASCII(h) {
		if m, err := idna.Lookup.ToASCII(h); err == nil {
			h = m
		}
		if a, err := netip.ParseAddr(h); err == nil {
			return a, true
		}
	}
	h = strings.TrimSuffix(h, ".")
	if a, ok := parseInetAton(h); ok {
		return a, true
	}
	if l := strings.ToLower(h); l == "localhost" || strings.HasSuffix(l, ".localhost") {
		return netip.AddrFrom4([4]byte{127, 0, 0, 1}), true
	}
	return netip.Addr{}, false
}

// CheckHost judges a URL's host the way it will be dialled: an address
// literal in any form (see HostAddr) as that address; an empty host is
// refused. A name passes here and is checked on every address it resolves
// to when dialled (DialContext), which also covers DNS rebinding.
func CheckHost(host string, allowPrivate bool) error {
	if host == "" {
		return fmt.Errorf("%w: no host", ErrForbidden)
	}
	a, ok := HostAddr(host)
	if !ok {
		return nil
	}
	err := CheckAddr(a, allowPrivate)
	if err != nil && host != a.String() {
		return fmt.Errorf("host %q is the address %s: %w", host, a.WithZone(""), err)
	}
	return err
}

// parseInetAton parses IPv4 the way inet_aton(3) does: one to four parts,
// each decimal, octal (leading 0) or hex (0x), the last filling the bytes
// that remain ("127.1" is 127.0.0.1, "2130706433" the same).
func parseInetAton(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var vals []uint64
	for _, p := range parts {
		v, ok := parseAtonPart(p)
		if !ok {
			return netip.Addr{}, false
		}
		vals = append(vals, v)
	}
	last := len(vals) - 1
	var n uint64
	for i, v := range vals[:last] {
		if v > 0xff {
			return netip.Addr{}, false
		}
		n |= v << (24 - 8*i)
	}
	if vals[last] >= 1<<(8*(4-last)) {
		return netip.Addr{}, false
	}
	n |= vals[last]
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}

// parseAtonPart reads one part of an inet_aton address; values above
// 32 bits fail, as they do there.
func parseAtonPart(p string) (uint64, bool) {
	if p == "" || p[0] < '0' || p[0] > '9' {
		return 0, false
	}
	base, digits := uint64(10), p
	switch {
	case len(p) > 1 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'):
		base, digits = 16, p[2:]
	case p[0] == '0':
		base, digits = 8, p[1:]
	}
	var v uint64
	for i := 0; i < len(digits); i++ {
		d, ok := digitValue(digits[i])
		if !ok || d >= base {
			return 0, false
		}
		if v = v*base + d; v > 0xffffffff {
			return 0, false
		}
	}
	return v, true
}

func digitValue(c byte) (uint64, bool) {
	switch {
	case c >= '0' && c <= '9':
		return uint64(c - '0'), true
	case c >= 'a' && c <= 'f':
		return uint64(c-'a') + 10, true
	case c >= 'A' && c <= 'F':
		return uint64(c-'A') + 10, true
	}
	return 0, false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
