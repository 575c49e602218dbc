package poller

import (
	"crypto/tls"
	"net/http"
	"sync"

	"github.com/hashicorp/go-cleanhttp"

	"github.com/pollrelay/pollrelay/config"
)

// tlsKey is what makes two sources need different transports. Everything
// else about a request (headers, auth, timeouts, redirects) lives in the
// request or the per-source client.
type tlsKey struct {
	insecure bool
}

func transportKey(src *config.Source) tlsKey {
	return tlsKey{insecure: src.InsecureSkipVerify}
}

// newTransport is a pooled transport for one TLS setting.
func newTransport(k tlsKey) *http.Transport {
	tr := cleanhttp.DefaultPooledTransport()
	if k.insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for by config
	}
	return tr
}

// transports hands out one transport per TLS setting, so sources share
// connection pools: a transport per source held its own idle connections
// (two goroutines and two buffers each) and its own HTTP/2 setup, which
// for thousands of sources on one upstream was most of their memory.
type transports struct {
	mu sync.Mutex
	m  map[tlsKey]*http.Transport
}

func (t *transports) get(k tlsKey) *http.Transport {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[tlsKey]*http.Transport{}
	}
	tr, ok := t.m[k]
	if !ok {
		tr = newTransport(k)
		t.m[k] = tr
	}
	return tr
}

// closeIdle closes every idle connection, as a stopped manager leaves
// nothing open.
func (t *transports) closeIdle() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tr := range t.m {
		tr.CloseIdleConnections()
	}
}
