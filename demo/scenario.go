package demo

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
)

// Scenario is a simulated upstream as a sequence of steps. Each step holds
// the full response body of every path the upstream serves at that point,
// so a recipe's test (or `pollrelay demo --recipe`) can play a vendor's
// state changes one step at a time.
type Scenario struct {
	Vendor string `json:"vendor"`
	// Env holds values the vendor's example config needs to match this
	// upstream (ids that appear in its URLs).
	Env   map[string]string `json:"env,omitempty"`
	Steps []Step            `json:"steps"`
}

// Step is the upstream's state at one point of a scenario.
type Step struct {
	Note      string                     `json:"note"`
	Responses map[string]json.RawMessage `json:"responses"` // path → body
}

// LoadScenario reads a scenario file.
func LoadScenario(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read scenario: %w", err)
	}
	return ParseScenario(data)
}

// ParseScenario decodes a scenario and checks that it has steps.
func ParseScenario(data []byte) (*Scenario, error) {
	var sc Scenario
	if err := json.Unmarshal(data, &sc); err != nil {
		return nil, fmt.Errorf("parse scenario: %w", err)
	}
	if len(sc.Steps) == 0 {
		return nil, fmt.Errorf("parse scenario %s: no steps", sc.Vendor)
	}
	return &sc, nil
}

// Upstream serves a scenario's current step.
type Upstream struct {
	sc *Scenario

	mu   sync.Mutex
	step int
	hits map[string]int
	// Headers records the request headers last seen per path, so tests can
	// check the recipe authenticates the way the vendor expects.
	headers map[string]http.Header
}

// NewUpstream serves sc from its first step.
func NewUpstream(sc *Scenario) *Upstream {
	return &Upstream{sc: sc, hits: map[string]int{}, headers: map[string]http.Header{}}
}

// Advance moves to the next step; it reports false after the last.
func (u *Upstream) Advance() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.step+1 >= len(u.sc.Steps) {
		return false
	}
	u.step++
	return true
}

// Step returns the current step's index and note.
func (u *Upstream) Step() (int, string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.step, u.sc.Steps[u.step].Note
}

// LastHeaders returns the headers of the last request for path.
func (u *Upstream) LastHeaders(path string) http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.headers[path]
}

// ServeHTTP answers with the current step's body for the path, or 404.
func (u *Upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	body, ok := u.sc.Steps[u.step].Responses[r.URL.Path]
	u.hits[r.URL.Path]++
	u.headers[r.URL.Path] = r.Header.Clone()
	u.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"error": "no such resource: %s"}`, strings.ReplaceAll(r.URL.Path, `"`, ""))
		return
	}
	w.Write(body)
}
