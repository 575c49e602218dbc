package demo

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pollrelay/pollrelay/signature"
)

// Receiver is an application endpoint that verifies every webhook the way
// a real app should, and prints one line per webhook.
type Receiver struct {
	verifier *signature.Verifier
	out      io.Writer

	mu       sync.Mutex
	Verified atomic.Int64
	Rejected atomic.Int64
	seen     map[string]bool
}

// NewReceiver verifies with secret (whsec_ or whpk_) and prints to out.
func NewReceiver(secret string, out io.Writer) (*Receiver, error) {
	v, err := signature.NewVerifier(secret)
	if err != nil {
		return nil, err
	}
	return &Receiver{verifier: v, out: out, seen: map[string]bool{}}, nil
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
	var env struct {
		Type string `json:"type"`
		Data struct {
			ID       string          `json:"id"`
			Previous json.RawMessage `json:"previous"`
			Current  json.RawMessage `json:"current"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &env)
	id := r.Header.Get("webhook-id")
	dup := ""
	if rc.seen[id] {
		dup = "  (duplicate delivery)"
	}
	rc.seen[id] = true
	fmt.Fprintf(rc.out, "✓ %s  %-22s %-9s %s → %s  signature verified, webhook-id %s%s\n",
		time.Now().Format("15:04:05"), env.Type, env.Data.ID, text(env.Data.Previous), text(env.Data.Current), id, dup)
	w.WriteHeader(http.StatusNoContent)
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
