package egress_test

import (
	"net"
	"strconv"
	"strings"

	"golang.org/x/net/idna"
)

// The reference below decides "would dialling this reach a range that
// must be refused" a second way, slowly and from its own tables, so the
// fuzz target can hold the guard to it: net.IP and net.IPNet instead of
// netip, strconv instead of a hand-written inet_aton, and blocked ranges
// listed as strings rather than classified rows.

// refNever is every range refused even with allow_private_networks.
var refNever = cidrs(
	// IPv4: this network, link-local, metadata, protocol assignments,
	// documentation, 6to4 relays, multicast, reserved, broadcast.
	"0.0.0.0/8", "169.254.0.0/16", "100.100.100.200/32", "168.63.129.16/32",
	"192.0.0.0/24", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24",
	"192.88.99.0/24", "224.0.0.0/3",
	// IPv6: metadata, link-local, multicast, discard, documentation,
	// unallocated protocol assignments, deprecated ORCHID.
	"fd00:ec2::/32", "fd20:ce::254/128", "fd00:c1::a9fe:a9fe/128",
	"fe80::/10", "ff00::/8", "100::/64", "100:0:0:1::/64", "2001:db8::/32",
	"3fff::/20", "2001:10::/28",
)

// refPrivate is refused only without allow_private_networks.
var refPrivate = cidrs(
	"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8",
	"100.64.0.0/10", "198.18.0.0/15",
	"::1/128", "fc00::/7", "fec0::/10", "64:ff9b:1::/48", "2001:2::/48", "5f00::/16",
)

// refV6Allocated is IPv6 space that may be dialled at all: global unicast
// and the local ranges judged by the lists above.
var refV6Allocated = cidrs("2000::/3", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8", "::1/128", "64:ff9b::/96", "64:ff9b:1::/48")

// refIETF is 2001::/23 minus what its registry rows call globally
// reachable (Teredo is judged by what it carries).
var (
	refIETF       = cidrs("2001::/23")
	refIETFGlobal = cidrs("2001::/32", "2001:1::1/128", "2001:1::2/128", "2001:1::3/128", "2001:2::/48",
		"2001:3::/32", "2001:4:112::/48", "2001:20::/28", "2001:30::/28")
)

func cidrs(ss ...string) []*net.IPNet {
	var out []*net.IPNet
	for _, s := range ss {
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			panic(err)
		}
		out = append(out, n)
	}
	return out
}

func inAny(ip net.IP, nets []*net.IPNet) bool {
	for _, n := range nets {
		// net.IPNet.Contains matches an IPv4 net against IPv4-mapped
		// addresses too; compare families explicitly.
		if (len(n.IP) == net.IPv4len) == (ip.To4() != nil) && n.Contains(ip) {
			return true
		}
	}
	return false
}

// refBlocked reports whether ip (16 or 4 bytes) must be refused.
func refBlocked(ip net.IP, allowPrivate bool) bool {
	if inAny(ip, refNever) || (!allowPrivate && inAny(ip, refPrivate)) {
		return true
	}
	if ip.To4() != nil {
		return false
	}
	ip = ip.To16()
	if !inAny(ip, refV6Allocated) || (inAny(ip, refIETF) && !inAny(ip, refIETFGlobal)) {
		return true
	}
	for _, e := range refCarried(ip) {
		if refBlocked(e, allowPrivate) {
			return true
		}
	}
	return false
}

var refTunnels = map[string][]*net.IPNet{
	"64:ff9b::/96": cidrs("64:ff9b::/96"), "64:ff9b:1::/48": cidrs("64:ff9b:1::/48"),
	"2002::/16": cidrs("2002::/16"), "2001::/32": cidrs("2001::/32"),
}

// refCarried lists the IPv4 addresses an IPv6 address is delivered to by
// a translator or tunnel.
func refCarried(ip net.IP) []net.IP {
	var out []net.IP
	has := func(p string) bool { return inAny(ip, refTunnels[p]) }
	switch {
	case has("64:ff9b::/96"):
		out = append(out, net.IP(ip[12:16]))
	case has("64:ff9b:1::/48"):
		for _, c := range []net.IP{net.IP(ip[12:16]), {ip[6], ip[7], ip[9], ip[10]}} {
			if !c.Equal(net.IPv4zero) {
				out = append(out, c)
			}
		}
	case has("2002::/16"):
		out = append(out, net.IP(ip[2:6]))
	case has("2001::/32"):
		out = append(out, net.IP(ip[4:8]), net.IP{^ip[12], ^ip[13], ^ip[14], ^ip[15]})
	}
	if (ip[8] == 0 || ip[8] == 2) && ip[9] == 0 && ip[10] == 0x5e && ip[11] == 0xfe {
		out = append(out, net.IP(ip[12:16]))
	}
	return out
}

// refDialled is what a dialer connects to for a URL host when the host is
// an address in some form; false for a name (resolved, and checked, when
// dialled).
func refDialled(host string) (net.IP, bool) {
	if strings.ContainsRune(host, ':') {
		h, _, _ := strings.Cut(host, "%")
		ip := net.ParseIP(h)
		return ip, ip != nil
	}
	if m, err := idna.Lookup.ToASCII(host); err == nil {
		host = m
	}
	host = strings.TrimSuffix(host, ".")
	if l := strings.ToLower(host); l == "localhost" || strings.HasSuffix(l, ".localhost") {
		return net.IPv4(127, 0, 0, 1), true
	}
	return refAton(host)
}

// refAton is inet_aton(3) by strconv.
func refAton(s string) (net.IP, bool) {
	parts := strings.Split(s, ".")
	if len(parts) == 0 || len(parts) > 4 {
		return nil, false
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		if p == "" || !strings.ContainsAny(p[:1], "0123456789") {
			return nil, false
		}
		base, digits := 10, p
		if lp := strings.ToLower(p); strings.HasPrefix(lp, "0x") {
			base, digits = 16, p[2:]
		} else if strings.HasPrefix(p, "0") {
			base, digits = 8, p[1:]
		}
		if digits == "" {
			continue // "0" and "0x" are zero
		}
		if strings.ContainsAny(digits, "_+-") {
			return nil, false // strconv would take these; inet_aton does not
		}
		v, err := strconv.ParseUint(digits, base, 32)
		if err != nil {
			return nil, false
		}
		vals[i] = v
	}
	var n uint64
	for i, v := range vals {
		if i < len(vals)-1 {
			if v > 255 {
				return nil, false
			}
			n = n<<8 | v
			continue
		}
		rest := uint(8 * (4 - i))
		if v>>rest != 0 {
			return nil, false
		}
		n = n<<rest | v
	}
	return net.IPv4(byte(n>>24), byte(n>>16), byte(n>>8), byte(n)), true
}
