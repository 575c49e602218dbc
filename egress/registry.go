package egress

import "net/netip"

// class is how far an address is from being dialled; a larger class is
// stricter, so the class of an address embedding another is the max of both.
type class int

const (
	public  class = iota // globally reachable
	private              // an internal network: dialled only with allow_private_networks
	never                // never dialled: link-local, cloud metadata, not unicast, reserved
)

// row is one range of the IANA special-purpose address registries (or a
// cloud provider's metadata endpoint), with what it is named in a refusal.
type row struct {
	prefix netip.Prefix
	class  class
	what   string
}

func r(p string, c class, what string) row {
	return row{netip.MustParsePrefix(p), c, what}
}

// ipv4Rows is the IANA IPv4 Special-Purpose Address Registry (RFC 6890 and
// its updates) with the class each row's "globally reachable" column and
// purpose give it, plus metadata services. The most specific row wins; an
// address no row covers is public.
var ipv4Rows = []row{
	r("0.0.0.0/8", never, `"this network" (RFC 791); Linux dials 0.0.0.0 as loopback`),
	r("10.0.0.0/8", private, "private-use (RFC 1918)"),
	r("100.64.0.0/10", private, "shared address space (RFC 6598)"),
	r("100.100.100.200/32", never, "Alibaba Cloud metadata"),
	r("127.0.0.0/8", private, "loopback (RFC 1122)"),
	r("168.63.129.16/32", never, "Azure host services (WireServer)"),
	r("169.254.0.0/16", never, "link-local (RFC 3927), where cloud metadata services live"),
	r("172.16.0.0/12", private, "private-use (RFC 1918)"),
	r("192.0.0.0/24", never, "IETF protocol assignments (RFC 6890), Oracle Cloud metadata at 192.0.0.192"),
	r("192.0.2.0/24", never, "documentation TEST-NET-1 (RFC 5737)"),
	r("192.31.196.0/24", public, "AS112-v4 (RFC 7535)"),
	r("192.52.193.0/24", public, "AMT (RFC 7450)"),
	r("192.88.99.0/24", never, "deprecated 6to4 relay anycast (RFC 7526)"),
	r("192.168.0.0/16", private, "private-use (RFC 1918)"),
	r("192.175.48.0/24", public, "AS112 direct delegation (RFC 7534)"),
	r("198.18.0.0/15", private, "benchmarking (RFC 2544)"),
	r("198.51.100.0/24", never, "documentation TEST-NET-2 (RFC 5737)"),
	r("203.0.113.0/24", never, "documentation TEST-NET-3 (RFC 5737)"),
	r("224.0.0.0/4", never, "multicast (RFC 5771)"),
	r("240.0.0.0/4", never, "reserved (RFC 1112)"),
	r("255.255.255.255/32", never, "limited broadcast (RFC 919, RFC 8190)"),
}

// ipv6Rows is the IANA IPv6 Special-Purpose Address Registry (RFC 6890 and
// its updates) and the IPv6 address space (only 2000::/3 is allocated as
// global unicast), plus metadata services. IPv4-mapped addresses are judged
// as IPv4; the translation and tunnel rows carry an IPv4 address that is
// judged too (see embedded).
var ipv6Rows = []row{
	r("::/0", never, "reserved by the IETF (RFC 4291): not global unicast"),
	r("::/128", never, "unspecified (RFC 4291)"),
	r("::1/128", private, "loopback (RFC 4291)"),
	r("::/96", never, "IPv4-compatible, deprecated (RFC 4291)"),
	r("64:ff9b::/96", public, "IPv4/IPv6 translation (RFC 6052)"),
	r("64:ff9b:1::/48", private, "local-use IPv4/IPv6 translation (RFC 8215)"),
	r("100::/64", never, "discard-only (RFC 6666)"),
	r("100:0:0:1::/64", never, "dummy prefix (RFC 9780)"),
	r("2000::/3", public, "global unicast (RFC 4291)"),
	r("2001::/23", never, "IETF protocol assignments (RFC 2928)"),
	r("2001::/32", public, "Teredo (RFC 4380)"),
	r("2001:1::1/128", public, "PCP anycast (RFC 7723)"),
	r("2001:1::2/128", public, "TURN anycast (RFC 8155)"),
	r("2001:1::3/128", public, "DNS-SD SRP anycast (RFC 9665)"),
	r("2001:2::/48", private, "benchmarking (RFC 5180)"),
	r("2001:3::/32", public, "AMT (RFC 7450)"),
	r("2001:4:112::/48", public, "AS112-v6 (RFC 7535)"),
	r("2001:10::/28", never, "deprecated ORCHID (RFC 4843)"),
	r("2001:20::/28", public, "ORCHIDv2 (RFC 7343)"),
	r("2001:30::/28", public, "drone remote ID (RFC 9374)"),
	r("2001:db8::/32", never, "documentation (RFC 3849)"),
	r("2002::/16", public, "6to4 (RFC 3056)"),
	r("2620:4f:8000::/48", public, "AS112 direct delegation (RFC 7534)"),
	r("3fff::/20", never, "documentation (RFC 9637)"),
	r("5f00::/16", private, "SRv6 SIDs (RFC 9602)"),
	r("fc00::/7", private, "unique-local (RFC 4193)"),
	r("fd00:c1::a9fe:a9fe/128", never, "Oracle Cloud metadata"),
	r("fd00:ec2::/32", never, "AWS instance services (metadata fd00:ec2::254, DNS, NTP)"),
	r("fd20:ce::254/128", never, "Google Cloud metadata"),
	r("fe80::/10", never, "link-local (RFC 4291)"),
	r("fec0::/10", private, "site-local, deprecated (RFC 3879)"),
	r("ff00::/8", never, "multicast (RFC 4291)"),
}

// lookup returns the most specific row covering a (unzoned, unmapped).
func lookup(a netip.Addr) (row, bool) {
	rows := ipv6Rows
	if a.Is4() {
		rows = ipv4Rows
	}
	best, found := row{}, false
	for _, rw := range rows {
		if rw.prefix.Contains(a) && (!found || rw.prefix.Bits() > best.prefix.Bits()) {
			best, found = rw, true
		}
	}
	return best, found
}

var (
	nat64      = netip.MustParsePrefix("64:ff9b::/96")
	nat64Local = netip.MustParsePrefix("64:ff9b:1::/48")
	sixToFour  = netip.MustParsePrefix("2002::/16")
	teredo     = netip.MustParsePrefix("2001::/32")
)

// embedded returns the IPv4 addresses an IPv6 address carries to where it
// is finally delivered: by a NAT64 translator, a 6to4 or Teredo relay, or
// an ISATAP router. Each is judged as IPv4, so 64:ff9b::127.0.0.1 is
// loopback wherever a translator sits.
func embedded(a netip.Addr) []netip.Addr {
	b := a.As16()
	v4 := func(p0, p1, p2, p3 byte) netip.Addr { return netip.AddrFrom4([4]byte{p0, p1, p2, p3}) }
	var out []netip.Addr
	switch {
	case nat64.Contains(a):
		out = append(out, v4(b[12], b[13], b[14], b[15]))
	case nat64Local.Contains(a):
		// RFC 6052 §2.2 places the IPv4 address by prefix length; a local
		// translator may use the /48 layout (around the u octet) or /96.
		// Each layout leaves zeros where the other would read, so a
		// zero candidate is that, not an address.
		for _, c := range []netip.Addr{v4(b[12], b[13], b[14], b[15]), v4(b[6], b[7], b[9], b[10])} {
			if !c.IsUnspecified() {
				out = append(out, c)
			}
		}
	case sixToFour.Contains(a):
		out = append(out, v4(b[2], b[3], b[4], b[5]))
	case teredo.Contains(a):
		// Teredo: the server's address, and the client's, stored inverted.
		out = append(out, v4(b[4], b[5], b[6], b[7]), v4(^b[12], ^b[13], ^b[14], ^b[15]))
	}
	// ISATAP (RFC 5214): an interface id of [02]00:5efe:a.b.c.d under any
	// prefix is forwarded to a.b.c.d.
	if (b[8]|0x02) == 0x02 && b[9] == 0 && b[10] == 0x5e && b[11] == 0xfe {
		out = append(out, v4(b[12], b[13], b[14], b[15]))
	}
	return out
}
