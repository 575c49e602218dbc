package signature

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/internal/testenv"
)

// TestNodeLibraryAccepts has the official JavaScript Standard Webhooks
// library verify pollrelay's signatures, with one secret and during a
// rotation. It needs node and `npm install` in testdata/interop (.ci/run
// does both); without them it is skipped, and fails under CI=true.
func TestNodeLibraryAccepts(t *testing.T) {
	dir := filepath.Join("..", "testdata", "interop")
	if _, err := exec.LookPath("node"); err != nil {
		testenv.Missing(t, "node not installed")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "standardwebhooks")); err != nil {
		testenv.Missing(t, "run npm ci in testdata/interop")
	}
	a, b := NewSecret(), NewSecret()
	body := []byte(`{"type":"video.status.ready","timestamp":"2026-01-15T10:30:00.123Z","data":{"id":"v_1","note":"ünïcode & <html>"}}`)
	var in bytes.Buffer
	for _, c := range []struct{ signWith, verifyWith []string }{
		{[]string{a}, []string{a}},
		{[]string{b, a}, []string{a}},
		{[]string{b, a}, []string{b}},
	} {
		s, err := NewSigner(Scheme{Name: SchemeStandard}, c.signWith)
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header{}
		s.Sign(h, "evt_01JH8Q6V0J5A5Q3MZP8W6K2Z9E", time.Now(), body)
		headers := map[string]string{}
		for k := range h {
			headers[strings.ToLower(k)] = h.Get(k)
		}
		line, _ := json.Marshal(map[string]any{"secret": c.verifyWith[0], "body": string(body), "headers": headers})
		in.Write(append(line, '\n'))
	}
	if got := strings.Join(runNode(t, "verify.mjs", &in), " "); got != "ok ok ok" {
		t.Errorf("the JavaScript library said: %s", got)
	}
}

// TestGlossiNodeSampleAcceptsRotation runs Glossi's documented Node.js
// check against hmac-sha256 deliveries, during a rotation too: the header
// must hold one MAC (timingSafeEqual throws on two), from the newest
// secret, over a body JSON.stringify reproduces.
func TestGlossiNodeSampleAcceptsRotation(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		testenv.Missing(t, "node not installed")
	}
	const oldSecret, newSecret = "glossi-old-secret", "glossi-new-secret"
	body := []byte(`{"event":"model.processed","timestamp":"2025-01-15T10:30:00.000Z","data":{"modelId":"m1","name":"Chair <v2> & co"}}`)
	var in bytes.Buffer
	for _, secrets := range [][]string{{oldSecret}, {newSecret, oldSecret}} {
		s, err := NewSigner(Scheme{Name: SchemeHMACSHA256, Header: "X-Glossi-Signature"}, secrets)
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header{}
		s.Sign(h, "evt_1", time.Now(), body)
		line, _ := json.Marshal(map[string]any{"secret": secrets[0], "body": string(body),
			"headers": map[string]string{"x-glossi-signature": h.Get("X-Glossi-Signature")}})
		in.Write(append(line, '\n'))
	}
	if got := strings.Join(runNode(t, "glossi-sample.mjs", &in), " "); got != "ok ok" {
		t.Errorf("Glossi's sample said: %s", got)
	}
}

// runNode runs a script of testdata/interop over in and returns the lines
// it printed.
func runNode(t *testing.T, script string, in *bytes.Buffer) []string {
	t.Helper()
	cmd := exec.Command("node", script)
	cmd.Dir = filepath.Join("..", "testdata", "interop")
	cmd.Stdin = in
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", script, err, out)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}
