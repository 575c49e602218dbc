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
)

// TestNodeLibraryAccepts has the official JavaScript Standard Webhooks
// library verify pollrelay's signatures, with one secret and during a
// rotation. It needs node and `npm install` in testdata/interop (.ci/run
// does both); without them it is skipped.
func TestNodeLibraryAccepts(t *testing.T) {
	dir := filepath.Join("..", "testdata", "interop")
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not installed")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "standardwebhooks")); err != nil {
		t.Skip("run npm install in testdata/interop")
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
	cmd := exec.Command("node", "verify.mjs")
	cmd.Dir = dir
	cmd.Stdin = &in
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	if got := strings.Fields(string(out)); strings.Join(got, " ") != "ok ok ok" {
		t.Errorf("the JavaScript library said:\n%s", out)
	}
}
