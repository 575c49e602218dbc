package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/internal/harness"
)

// strictConfig has the API on and delivery to private networks off, so
// API subscriptions go through the egress guard.
const strictConfig = `
listen: 127.0.0.1:0
api_token: %s
storage: {path: %q}
log: {level: info, format: text}
sources:
  - name: tasks
    url: http://127.0.0.1:9/v1/tasks
    interval: 1h
    items: '.data[]'
`

// loopbackDisguises are URLs that reach a loopback receiver on port if
// dialled: IPv6 with a zone, IPv4 embedded in IPv6, inet_aton spellings,
// IDNA-mapped digits and loopback names.
func loopbackDisguises(port string) []string {
	hosts := []string{
		"127.0.0.1", "127.1", "127.0.1", "2130706433", "0x7f000001", "0x7f.1", "0177.0.0.1", "017700000001",
		"127.0.0.1.", "１２７．０．０．１", "localhost", "LocalHost.", "a.localhost", "ｌｏｃａｌｈｏｓｔ",
		"[::1]", "[::1%25lo]", "[::1%25eth0]", "[0:0::1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1%25lo]",
		"[::127.0.0.1]", "[64:ff9b::127.0.0.1]", "[64:ff9b:1::7f00:1]", "[2002:7f00:1::]",
		"[2001:0:7f00:1::a247:27dd]", "0.0.0.0", "0", "[::]", "[::%25lo]",
	}
	// A name the resolver maps to loopback is judged when dialled.
	if h, err := os.Hostname(); err == nil {
		if addrs, err := net.LookupHost(h); err == nil && len(addrs) > 0 && net.ParseIP(addrs[0]).IsLoopback() {
			hosts = append(hosts, h)
		}
	}
	urls := make([]string, len(hosts))
	for i, h := range hosts {
		urls[i] = "http://" + h + ":" + port + "/hook"
	}
	return urls
}

// TestEgressDisguisesNeverReachLoopback creates (and patches) API
// subscriptions to a loopback receiver through every disguise, with
// allow_private_networks off: each is refused with 422 at create, or its
// ping is refused when dialled; the receiver gets nothing.
func TestEgressDisguisesNeverReachLoopback(t *testing.T) {
	var hits atomic.Int32
	count := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	})
	rc := httptest.NewServer(count)
	defer rc.Close()
	_, port, _ := net.SplitHostPort(rc.Listener.Addr().String())
	// The same receiver on ::1, so the IPv6 disguises would reach it too.
	if l, err := net.Listen("tcp", "[::1]:"+port); err == nil {
		rc6 := &httptest.Server{Listener: l, Config: &http.Server{Handler: count}}
		rc6.Start()
		defer rc6.Close()
	} else {
		t.Logf("no IPv6 loopback receiver: %v", err)
	}
	b, _ := startBridge(t, fmt.Sprintf(strictConfig, apiToken, t.TempDir()))
	c := harness.APIClient{T: t, Base: "http://" + b.Addr(), Token: apiToken}

	var out map[string]any
	if code := c.Do("POST", "/v1/subscriptions", map[string]any{"name": "patched", "url": "https://example.com/hook"}, &out); code != 201 {
		t.Fatalf("create a public subscription: %d %v", code, out)
	}
	for i, u := range loopbackDisguises(port) {
		name := fmt.Sprintf("d%d", i)
		out = nil
		code := c.Do("POST", "/v1/subscriptions", map[string]any{"name": name, "url": u}, &out)
		if code == 422 {
			if msg, _ := out["error"].(string); !strings.Contains(msg, "destination not allowed") {
				t.Errorf("create %s: 422 %q does not say why", u, msg)
			}
			out = nil
			if code := c.Do("PATCH", "/v1/subscriptions/patched", map[string]any{"url": u}, &out); code != 422 {
				t.Errorf("PATCH url %s: %d %v, want 422 as at create", u, code, out)
			}
			continue
		}
		if code != 201 {
			t.Errorf("create %s: %d %v", u, code, out)
			continue
		}
		// Accepted as a name: the dialer must refuse what it resolves to.
		var ping map[string]string
		if code := c.Do("POST", "/v1/subscriptions/"+name+"/ping", nil, &ping); code != 202 {
			t.Fatalf("ping %s: %d %v", name, code, ping)
		}
		var atts struct {
			Data []map[string]any `json:"data"`
		}
		harness.WaitFor(t, 10*time.Second, func() bool {
			c.Do("GET", "/v1/events/"+ping["event_id"]+"/attempts", nil, &atts)
			return len(atts.Data) > 0
		})
		if msg, _ := atts.Data[0]["error"].(string); !strings.Contains(msg, "destination not allowed") {
			t.Errorf("ping through %s: attempt %v, want it refused when dialled", u, atts.Data[0])
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the loopback receiver got %d requests through disguises", n)
	}
}
