package harness

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

// APIClient calls a running pollrelay's /v1 and holds every answer to
// openapi.json.
type APIClient struct {
	T     testing.TB
	Base  string // http://host:port
	Token string
}

// Do sends a request and decodes the JSON answer into out (if not nil).
func (c APIClient) Do(method, path string, body any, out any) int {
	c.T.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.Base+path, rd)
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.T.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusNoContent && !json.Valid(data) {
		c.T.Errorf("%s %s: answer is not JSON: %s", method, path, data)
	}
	for _, problem := range CheckAgainstOpenAPI(method, path, resp.StatusCode, data) {
		c.T.Errorf("openapi.json: %s", problem)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			c.T.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	return resp.StatusCode
}
