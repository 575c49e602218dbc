package egress

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestCheckIP(t *testing.T) {
	cases := []struct {
		ip             string
		public, strict bool // allowed with allowPrivate, allowed without
	}{
		{"169.254.169.254", false, false},
		{"fd00:ec2::254", false, false},
		{"fe80::1", false, false},
		{"127.0.0.1", true, false},
		{"10.1.2.3", true, false},
		{"192.168.1.1", true, false},
		{"172.20.0.1", true, false},
		{"::1", true, false},
		{"::ffff:169.254.169.254", false, false},
		{"93.184.216.34", true, true},
		{"2606:4700::1111", true, true},
		{"0.0.0.0", false, false},
	}
	for _, c := range cases {
		ip := net.ParseIP(c.ip)
		if got := CheckIP(ip, true) == nil; got != c.public {
			t.Errorf("%s with private allowed: allowed=%v, want %v", c.ip, got, c.public)
		}
		if got := CheckIP(ip, false) == nil; got != c.strict {
			t.Errorf("%s without private: allowed=%v, want %v", c.ip, got, c.strict)
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
