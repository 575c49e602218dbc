// Package egress decides which addresses pollrelay may send webhooks to.
// A sidecar that accepts webhook URLs through an API must not become a way
// to reach the cloud metadata service or the internal network (SSRF). The
// check runs on the IP actually dialled, so a hostname that resolves to a
// public address when validated and to 169.254.169.254 when used (DNS
// rebinding) is still refused.
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// ErrForbidden is returned for a destination that policy refuses.
var ErrForbidden = errors.New("destination not allowed")

var (
	// Always refused: link-local (where cloud metadata services live) and
	// AWS's IPv6 metadata address.
	alwaysBlocked = []netip.Prefix{
		netip.MustParsePrefix("169.254.0.0/16"),
		netip.MustParsePrefix("fe80::/10"),
		netip.MustParsePrefix("fd00:ec2::254/128"),
		netip.MustParsePrefix("0.0.0.0/8"),
	}
	// Refused unless private networks are allowed.
	private = []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"),
		netip.MustParsePrefix("100.64.0.0/10"),
		netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("fc00::/7"),
	}
)

// CheckIP reports whether ip may be sent webhooks.
func CheckIP(ip net.IP, allowPrivate bool) error {
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return fmt.Errorf("%w: bad address", ErrForbidden)
	}
	return CheckAddr(addr, allowPrivate)
}

// CheckAddr is CheckIP for a netip.Addr.
func CheckAddr(addr netip.Addr, allowPrivate bool) error {
	addr = addr.Unmap()
	for _, p := range alwaysBlocked {
		if p.Contains(addr) {
			return fmt.Errorf("%w: %s is link-local or a cloud metadata address", ErrForbidden, addr)
		}
	}
	if addr.IsUnspecified() || addr.IsMulticast() {
		return fmt.Errorf("%w: %s is not a unicast address", ErrForbidden, addr)
	}
	if !allowPrivate {
		for _, p := range private {
			if p.Contains(addr) {
				return fmt.Errorf("%w: %s is a private or loopback address (set delivery.allow_private_networks to allow it)", ErrForbidden, addr)
			}
		}
	}
	return nil
}

// DialContext returns a dial function that checks every address it
// connects to, after DNS resolution.
func DialContext(allowPrivate bool) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{
		Timeout:   30 * time.Second,
		KeepAlive: 30 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: %v", ErrForbidden, err)
			}
			return CheckAddr(ap.Addr(), allowPrivate)
		},
	}
	return d.DialContext
}
