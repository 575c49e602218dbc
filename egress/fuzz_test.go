package egress_test

import (
	"net"
	"net/netip"
	"net/url"
	"testing"

	"github.com/pollrelay/pollrelay/egress"
)

// FuzzEgressNeverAllowsBlocked feeds arbitrary strings as a URL's host and
// as the address a dialer reports, and arbitrary bytes as an address: when
// the guard allows one, what would be dialled must not be in any range the
// reference (reference_test.go) refuses.
func FuzzEgressNeverAllowsBlocked(f *testing.F) {
	for _, s := range []string{
		"127.0.0.1", "[::1%25lo]", "2130706433", "0x7f.1", "127.1", "0177.0.0.1", "localhost.",
		"[::ffff:169.254.169.254]", "[64:ff9b::7f00:1]", "[2002:a9fe:a9fe::]", "[fe80::1%25eth0]",
		"[2001:0:5db8:d822::80ff:fffe]", "[::127.0.0.1]", "１２７．０．０．１", "example.com", "[2606:4700::1111]",
		"[fd00:ec2::254]", "[2600::5efe:7f00:1]", "93.184.216.34", "0xa9fea9fe",
	} {
		f.Add(s, []byte{127, 0, 0, 1}, false)
		f.Add(s, []byte{}, true)
	}
	f.Add("x", []byte{0x20, 0x01, 0, 0, 0x5d, 0xb8, 0xd8, 0x22, 0, 0, 0, 0, 0x80, 0xff, 0xff, 0xfe}, false)
	f.Fuzz(func(t *testing.T, s string, raw []byte, allowPrivate bool) {
		if u, err := url.Parse("http://" + s + "/"); err == nil {
			host := u.Hostname()
			if a, ok := egress.HostAddr(host); ok {
				// Judged at create as it will be when dialled.
				atCreate := egress.CheckHost(host, allowPrivate) == nil
				atDial := egress.CheckDialled(netip.AddrPortFrom(a, 443).String(), allowPrivate) == nil
				if atCreate != atDial {
					t.Fatalf("host %q (%s): allowed at create %v, when dialled %v", host, a, atCreate, atDial)
				}
			}
			if egress.CheckHost(host, allowPrivate) == nil {
				if ip, ok := refDialled(host); ok && refBlocked(ip, allowPrivate) {
					t.Fatalf("host %q (%s) allowed, allow_private=%v", host, ip, allowPrivate)
				}
			}
		}
		if egress.CheckDialled(s, allowPrivate) == nil {
			h, _, err := net.SplitHostPort(s)
			if err != nil {
				t.Fatalf("dial address %q allowed, but it is no host:port", s)
			}
			ip, ok := refDialled(h)
			if !ok || refBlocked(ip, allowPrivate) {
				t.Fatalf("dial address %q allowed, allow_private=%v", s, allowPrivate)
			}
		}
		if a, ok := netip.AddrFromSlice(raw); ok {
			for _, zone := range []string{"", "lo"} {
				if a.Is4() && zone != "" {
					continue
				}
				z := a.WithZone(zone)
				if egress.CheckAddr(z, allowPrivate) == nil && refBlocked(net.IP(raw), allowPrivate) {
					t.Fatalf("address %s allowed, allow_private=%v", z, allowPrivate)
				}
			}
		}
	})
}
