// Package egress decides which addresses pollrelay may send webhooks to.
// A sidecar that accepts webhook URLs through an API must not become a way
// to reach the cloud metadata service or the internal network (SSRF). The
// check runs on the IP actually dialled, so a hostname that resolves to a
// public address when validated and to 169.254.169.254 when used (DNS
// rebinding) is still refused.
//
// An address is judged without its zone (netip.Prefix.Contains is false
// for every zoned address, so [::1%lo] would otherwise pass as public),
// IPv4-mapped addresses as IPv4, and an IPv6 address that carries an IPv4
// one to where it is delivered (NAT64, 6to4, Teredo, ISATAP) by the
// stricter of the two, against the IANA special-purpose registries
// (registry.go). Whatever is not globally reachable is refused.
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

// verdict is the judgement of one address: its class and the row that gave
// it, for addr (the address itself or an IPv4 address it carries).
type verdict struct {
	class class
	addr  netip.Addr
	what  string
}

// judge classifies a, zone stripped and unmapped.
func judge(a netip.Addr) verdict {
	a = a.WithZone("").Unmap()
	if !a.IsValid() {
		return verdict{never, a, "not an IP address"}
	}
	v := verdict{public, a, "globally reachable"}
	if rw, ok := lookup(a); ok {
		v = verdict{rw.class, a, rw.what}
	}
	if a.Is6() {
		for _, e := range embedded(a) {
			if ev := judge(e); ev.class > v.class {
				v = ev
			}
		}
	}
	return v
}

// CheckAddr reports whether addr may be sent webhooks: never when it is
// link-local, a metadata service, not unicast or reserved; private and
// loopback ranges only when allowPrivate.
func CheckAddr(addr netip.Addr, allowPrivate bool) error {
	v := judge(addr)
	if v.class == public || (v.class == private && allowPrivate) {
		return nil
	}
	desc := fmt.Sprintf("%s is %s", addr, v.what)
	if shown := addr.WithZone("").Unmap(); v.addr != shown {
		desc = fmt.Sprintf("%s carries %s, %s", addr, v.addr, v.what)
	}
	if v.class == private {
		return fmt.Errorf("%w: %s (set delivery.allow_private_networks to allow it)", ErrForbidden, desc)
	}
	return fmt.Errorf("%w: %s", ErrForbidden, desc)
}

// CheckDialled checks the "host:port" a dialer is about to connect to, as
// net.Dialer.Control receives it (zone included, for link-local).
func CheckDialled(address string, allowPrivate bool) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrForbidden, err)
	}
	return CheckAddr(ap.Addr(), allowPrivate)
}

// DialContext returns a dial function that checks every address it
// connects to, after DNS resolution: Control runs for each address tried,
// so every family a happy-eyeballs dial falls back to is checked too.
func DialContext(allowPrivate bool) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{
		Timeout:   30 * time.Second,
		KeepAlive: 30 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			return CheckDialled(address, allowPrivate)
		},
	}
	return d.DialContext
}
