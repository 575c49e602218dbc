package demo

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pollrelay/pollrelay/signature"
)

// Verifier checks a webhook's signature: a *signature.Verifier for
// Standard Webhooks, a *signature.SchemeVerifier for any scheme.
type Verifier interface {
	Verify(body []byte, h http.Header) error
}

// Receiver is an application endpoint that verifies every webhook the way
// a real app should, and prints one line per webhook.
type Receiver struct {
	verifier Verifier
	out      io.Writer
	// line describes a verified webhook; dup is set for a webhook-id seen
	// before.
	line func(r *http.Request, body []byte, dup bool) string

	mu       sync.Mutex
	Verified atomic.Int64
	Rejected atomic.Int64
	seen     map[string]bool
}

// NewReceiver verifies Standard Webhooks signatures with secret (whsec_ or
// whpk_) and prints each envelope's transition to out.
func NewReceiver(secret string, out io.Writer) (*Receiver, error) {
	v, err := signature.NewVerifier(secret)
	if err != nil {
		return nil, err
	}
	return &Receiver{verifier: v, out: out, line: envelopeLine, seen: map[string]bool{}}, nil
}

// NewVendorReceiver verifies with v and prints each webhook's event name
// and body, whatever shape a vendor's payload gives it.
func NewVendorReceiver(v Verifier, out io.Writer) *Receiver {
	return &Receiver{verifier: v, out: out, line: vendorLine, seen: map[string]bool{}}
}

// ServeHTTP verifies and prints one webhook.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err := rc.verifier.Verify(body, r.Header); err != nil {
		rc.Rejected.Add(1)
		fmt.Fprintf(rc.out, "✗ rejected webhook: %v\n", err)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	rc.Verified.Add(1)
	// Each subscription gets its own delivery of an event, under the same
	// webhook-id: a repeat is the same id at the same path.
	id := r.URL.Path + " " + r.Header.Get("webhook-id")
	dup := rc.seen[id]
	rc.seen[id] = true
	fmt.Fprintf(rc.out, "✓ %s  %s\n", time.Now().Format("15:04:05"), rc.line(r, body, dup))
	w.WriteHeader(http.StatusNoContent)
}

// envelopeLine shows a pollrelay envelope's transition.
func envelopeLine(r *http.Request, body []byte, dup bool) string {
	var env struct {
		Type string `json:"type"`
		Data struct {
			ID       string          `json:"id"`
			Previous json.RawMessage `json:"previous"`
			Current  json.RawMessage `json:"current"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &env)
	note := ""
	if dup {
		note = "  (duplicate delivery)"
	}
	return fmt.Sprintf("%-22s %-9s %s → %s  signature verified, webhook-id %s%s",
		env.Type, env.Data.ID, text(env.Data.Previous), text(env.Data.Current), r.Header.Get("webhook-id"), note)
}

// vendorLine shows a vendor-shaped body: its event name, found in the
// common shapes, and the body cut short.
func vendorLine(r *http.Request, body []byte, _ bool) string {
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	name := "?"
	for _, k := range []string{"type", "event"} {
		if s, ok := m[k].(string); ok {
			name = s
			break
		}
	}
	return fmt.Sprintf("%s %s %s  %s", r.Method, r.URL.Path, name, clip(body, 120))
}

func clip(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func text(r json.RawMessage) string {
	if len(r) == 0 || string(r) == "null" {
		return "∅"
	}
	var s string
	if json.Unmarshal(r, &s) == nil {
		return s
	}
	return string(r)
}
