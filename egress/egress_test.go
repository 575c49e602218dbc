package egress

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

// egressForms is every form of address a webhook URL can name, with the
// decision without and with delivery.allow_private_networks. The loopback
// and metadata rows are disguises: zones, IPv4 embedded in IPv6 (mapped,
// compatible, NAT64, 6to4, Teredo, ISATAP), inet_aton spellings, IDNA.
var egressForms = []struct {
	url           string
	strict, loose bool // allowed without, with allow_private_networks
}{
	// globally reachable
	{"http://93.184.216.34/", true, true},
	{"http://[2606:4700::1111]/", true, true},
	{"http://[2606:4700::1111%25eth0]/", true, true},
	{"http://[64:ff9b::5db8:d822]/", true, true},          // NAT64 of 93.184.216.34
	{"http://[2002:5db8:d822::1]/", true, true},           // 6to4 of 93.184.216.34
	{"http://[2001:0:5db8:d822::a247:27dd]/", true, true}, // Teredo, server and client public
	{"http://[2001:4:112::1]/", true, true},               // AS112-v6
	{"http://192.31.196.1/", true, true},                  // AS112-v4
	{"http://example.com:8443/", true, true},              // a name: judged when dialled
	{"http://1.1/", true, true},                           // 1.0.0.1
	{"http://xn--bcher-kva.example/", true, true},         // an IDN name

	// loopback, in every spelling
	{"http://127.0.0.1/", false, true},
	{"http://127.1/", false, true},
	{"http://127.0.0.1./", false, true},
	{"http://2130706433/", false, true},
	{"http://0x7f000001/", false, true},
	{"http://0x7f.1/", false, true},
	{"http://0X7F.0.0.1/", false, true},
	{"http://0177.0.0.1/", false, true},
	{"http://017700000001/", false, true},
	{"http://127.0.1/", false, true},
	{"http://１２７．０．０．１/", false, true}, // full-width, mapped by IDNA before dialling
	{"http://localhost/", false, true},
	{"http://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/", false, true},       // circled letters, mapped by IDNA
	{"http://①②⑦.⓪.⓪.①/", false, true},       // circled digits
	{"http://127。0。0。1/", false, true},       // ideographic full stops
	{"http://127.0.0.1\u00ad/", false, true}, // a soft hyphen IDNA drops
	{"http://loca\u200blhost/", false, true}, // a zero-width space IDNA drops
	{"http://LOCALHOST./", false, true},
	{"http://api.localhost/", false, true},
	{"http://[::1]/", false, true},
	{"http://[::1%25lo]:8080/", false, true},
	{"http://[0:0:0:0:0:0:0:1]/", false, true},
	{"http://[::ffff:127.0.0.1]/", false, true},
	{"http://[::ffff:7f00:1]/", false, true},
	{"http://[::ffff:127.0.0.1%25lo]/", false, true},
	{"http://[64:ff9b::127.0.0.1]/", false, true},
	{"http://[64:ff9b::7f00:1%25eth0]/", false, true},
	{"http://[64:ff9b:1::7f00:1]/", false, true},
	{"http://[64:ff9b:1:7f00:1::]/", false, true}, // RFC 6052 /48 layout
	{"http://[2002:7f00:1::]/", false, true},
	{"http://[2001:0:5db8:d822::80ff:fffe]/", false, true}, // Teredo client 127.0.0.1
	{"http://[2001:0:7f00:1::a247:27dd]/", false, true},    // Teredo server 127.0.0.1
	{"http://[2600::5efe:7f00:1]/", false, true},           // ISATAP
	{"http://[2600::200:5efe:7f00:1]/", false, true},       // ISATAP, universal bit

	// private networks
	{"http://10.0.0.1/", false, true},
	{"http://10.1/", false, true},
	{"http://012.0.0.1/", false, true},
	{"http://172.16.0.1/", false, true},
	{"http://192.168.1.1/", false, true},
	{"http://[::ffff:192.168.1.1]/", false, true},
	{"http://100.64.0.1/", false, true},
	{"http://198.18.0.1/", false, true},
	{"http://198.19.255.255/", false, true},
	{"http://[fc00::1]/", false, true},
	{"http://[fd12:3456::1%25eth0]/", false, true},
	{"http://[fec0::1]/", false, true},
	{"http://[fec0::1%25eth0]/", false, true},
	{"http://[2001:2::1]/", false, true},
	{"http://[5f00::1]/", false, true},
	{"http://[64:ff9b::a00:1]/", false, true},

	// never: link-local and cloud metadata, in every spelling
	{"http://169.254.169.254/", false, false},
	{"http://169.254.43518/", false, false},
	{"http://2852039166/", false, false},
	{"http://0xa9fea9fe/", false, false},
	{"http://0251.0376.0251.0376/", false, false},
	{"http://[::ffff:169.254.169.254]/", false, false},
	{"http://[::ffff:a9fe:a9fe]/", false, false},
	{"http://[64:ff9b::169.254.169.254]/", false, false},
	{"http://[64:ff9b:1::a9fe:a9fe]/", false, false},
	{"http://[2002:a9fe:a9fe::]/", false, false},
	{"http://[2001:0:a9fe:a9fe::a247:27dd]/", false, false},
	{"http://[2001:0:5db8:d822::5601:5601]/", false, false}, // Teredo client 169.254.169.254
	{"http://[2600::5efe:a9fe:a9fe]/", false, false},
	{"http://[fe80::1]/", false, false},
	{"http://[fe80::1%25eth0]/", false, false},
	{"http://[fe80::a9fe:a9fe%25lo]/", false, false},
	{"http://[fd00:ec2::254]/", false, false},
	{"http://[fd00:ec2::254%25eth0]/", false, false},
	{"http://[fd00:ec2::23]/", false, false},
	{"http://[fd20:ce::254]/", false, false},
	{"http://[fd00:c1::a9fe:a9fe]/", false, false},
	{"http://100.100.100.200/", false, false},
	{"http://168.63.129.16/", false, false},
	{"http://192.0.0.192/", false, false},
	{"http://169.254.170.2/", false, false},

	// never: not unicast, reserved, documentation, discard
	{"http://0.0.0.0/", false, false},
	{"http://0/", false, false},
	{"http://0.1.2.3/", false, false},
	{"http://[::]/", false, false},
	{"http://[::%25lo]/", false, false},
	{"http://[::127.0.0.1]/", false, false}, // IPv4-compatible
	{"http://[::8.8.8.8]/", false, false},
	{"http://[::ffff:0:127.0.0.1]/", false, false}, // IPv4-translated
	{"http://[::ffff:0.0.0.0]/", false, false},
	{"http://192.0.0.1/", false, false},
	{"http://192.0.0.170/", false, false},
	{"http://192.0.2.1/", false, false},
	{"http://198.51.100.1/", false, false},
	{"http://203.0.113.1/", false, false},
	{"http://192.88.99.1/", false, false},
	{"http://240.0.0.1/", false, false},
	{"http://255.255.255.255/", false, false},
	{"http://4294967295/", false, false},
	{"http://224.0.0.1/", false, false},
	{"http://239.255.255.250/", false, false},
	{"http://[ff02::1]/", false, false},
	{"http://[ff05::1%25eth0]/", false, false},
	{"http://[100::1]/", false, false},
	{"http://[100:0:0:1::1]/", false, false},
	{"http://[2001:db8::1]/", false, false},
	{"http://[3fff::1]/", false, false},
	{"http://[2001:10::1]/", false, false},
	{"http://[2001:5::1]/", false, false},
	{"http://[4000::1]/", false, false},
	{"http://:8080/", false, false},
}

// TestEgressForms asserts the decision for every form, both where the API
// judges a URL's host and where the dialer judges the address it connects
// to: the two must agree.
func TestEgressForms(t *testing.T) {
	for _, c := range egressForms {
		u, err := url.Parse(c.url)
		if err != nil {
			t.Fatalf("%s: %v", c.url, err)
		}
		host := u.Hostname()
		for _, allow := range []bool{false, true} {
			want := c.strict
			if allow {
				want = c.loose
			}
			err := CheckHost(host, allow)
			if got := err == nil; got != want {
				t.Errorf("CheckHost(%q, allow_private=%v): allowed=%v (%v), want %v", host, allow, got, err, want)
			}
			if err != nil && !errors.Is(err, ErrForbidden) {
				t.Errorf("CheckHost(%q): %v is not ErrForbidden", host, err)
			}
			if err != nil && !want && c.loose && !strings.Contains(err.Error(), "allow_private_networks") {
				t.Errorf("CheckHost(%q): %q does not name allow_private_networks", host, err)
			}
			a, ok := HostAddr(host)
			if !ok {
				continue
			}
			dialled := netip.AddrPortFrom(a, 443).String()
			if got := CheckDialled(dialled, allow) == nil; got != want {
				t.Errorf("CheckDialled(%q, allow_private=%v): allowed=%v, want %v", dialled, allow, got, want)
			}
		}
	}
}

// TestHostAddr pins what each odd spelling is read as.
func TestHostAddr(t *testing.T) {
	cases := map[string]string{
		"2130706433":    "127.0.0.1",
		"127.1":         "127.0.0.1",
		"127.0.1":       "127.0.0.1",
		"0x7f.1":        "127.0.0.1",
		"0177.0.0.1":    "127.0.0.1",
		"10.1":          "10.0.0.1",
		"1.2.3.4.":      "1.2.3.4",
		"１２７．０．０．１":     "127.0.0.1",
		"::1%lo":        "::1%lo",
		"[::1]":         "::1",
		"169.254.43518": "169.254.169.254",
		"0":             "0.0.0.0",
	}
	for in, want := range cases {
		a, ok := HostAddr(in)
		if !ok || a.String() != want {
			t.Errorf("HostAddr(%q) = %v, %v; want %s", in, a, ok, want)
		}
	}
	for _, name := range []string{"example.com", "1.2.3.4.5", "256.1.1.1", "08.0.0.1", "1..2", "4294967296", "0xg", "127.0.0.1x", ""} {
		if a, ok := HostAddr(name); ok {
			t.Errorf("HostAddr(%q) = %v; want a name", name, a)
		}
	}
}

// TestDialChecksResolvedAddress dials a hostname that resolves to
// loopback: the check must see the resolved IP, not the name.
func TestDialChecksResolvedAddress(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	strict := &http.Client{Transport: &http.Transport{DialContext: DialContext(false)}}
	_, err := strict.Get("http://localhost:" + port + "/")
	if !errors.Is(err, ErrForbidden) {
		t.Fatalf("localhost reached without allow_private_networks: %v", err)
	}
	lax := &http.Client{Transport: &http.Transport{DialContext: DialContext(true)}}
	resp, err := lax.Get("http://localhost:" + port + "/")
	if err != nil {
		t.Fatalf("with private networks allowed: %v", err)
	}
	resp.Body.Close()
	if _, err := DialContext(true)(context.Background(), "tcp", "169.254.169.254:80"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("metadata address dialled: %v", err)
	}
}
