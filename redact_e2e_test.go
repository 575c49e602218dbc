package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/internal/harness"
	"github.com/pollrelay/pollrelay/internal/syncbuf"
)

// Credentials with characters that every encoding changes.
const (
	echoUser     = "svc-reader"
	echoPassword = `p@ss/w+rd?"x"~1`
	echoToken    = "tok_9f8e/7d+6c5b=4a3"
	echoAPIKey   = "key&with=odd/chars+%"
	echoClient   = "client-7"
	echoClientSc = `cl!ent/secret+"9"`
)

// echoConfig has sources with Basic auth (plus an API key in a header and
// in the query), a bearer token and user info in the URL, once for each
// part of the echo the upstream puts first: a quoted body is cut at 256
// bytes, so each form must lead once to be seen.
func echoConfig(dir, upURL string) string {
	host := strings.TrimPrefix(upURL, "http://")
	var b strings.Builder
	fmt.Fprintf(&b, "listen: 127.0.0.1:0\napi_token: %s\nstorage: {path: %q}\nlog: {level: debug, format: text}\nsources:\n", apiToken, dir)
	for part := range echoParts {
		fmt.Fprintf(&b, `  - {name: basic%d, url: '%s/basic?part=%d&api_key=%s', interval: 1h, items: '.data[]',
      headers: {X-Api-Key: %q}, auth: {basic: {username: %s, password: %q}}}
  - {name: bearer%d, url: '%s/bearer?part=%d', interval: 1h, items: '.data[]', auth: {bearer: %q}}
  - {name: userinfo%d, url: 'http://%s:%s@%s/userinfo?part=%d', interval: 1h, items: '.data[]'}
  - {name: oauth%d, url: '%s/oauth?part=%d', interval: 1h, items: '.data[]',
      auth: {oauth2: {token_url: '%s/token?part=%d', client_id: %s, client_secret: %q}}}
`, part, upURL, part, url.QueryEscape(echoAPIKey), echoAPIKey, echoUser, echoPassword,
			part, upURL, part, echoToken,
			part, echoUser, url.PathEscape(echoPassword), host, part,
			part, upURL, part, upURL, part, echoClient, echoClientSc)
	}
	return b.String()
}

// echoParts is how many parts the echo has.
const echoParts = 5

// echoSecretForms is every form the credentials can take in an echo: as
// sent, base64 of user:pass (std and URL), percent-encoded, JSON-escaped
// (with and without escaped slashes) and Go-quoted.
func echoSecretForms() []string {
	pair := echoUser + ":" + echoPassword
	client := echoClient + ":" + echoClientSc
	raw := []string{
		echoPassword, echoToken, echoAPIKey, echoClientSc,
		base64.StdEncoding.EncodeToString([]byte(client)),
		base64.StdEncoding.EncodeToString([]byte(echoClient + ":" + url.QueryEscape(echoClientSc))),
		base64.StdEncoding.EncodeToString([]byte(pair)),
		base64.URLEncoding.EncodeToString([]byte(pair)),
		base64.RawURLEncoding.EncodeToString([]byte(pair)),
	}
	var out []string
	for _, s := range raw {
		j, _ := json.Marshal(s)
		js := string(j[1 : len(j)-1])
		q := strconv.Quote(s)
		out = append(out, s, url.QueryEscape(s), url.PathEscape(s), js, strings.ReplaceAll(js, "/", `\/`), q[1:len(q)-1])
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// An upstream that echoes every request header, its query and the decoded
// Basic credentials into a 500 body, in several encodings, must not get
// any form of a credential into GET /v1/sources, the poll-now answer or
// the log.
func TestEchoedCredentialsAreRedacted(t *testing.T) {
	var echoed atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		parts := make([]string, echoParts)
		keys := make([]string, 0, len(r.Header))
		for k := range r.Header {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			parts[0] += fmt.Sprintf("%s: %s\n", k, r.Header.Get(k))
		}
		if u, p, ok := r.BasicAuth(); ok {
			parts[1] = fmt.Sprintf("basic user=%s password=%s", u, p)
		}
		form, _ := io.ReadAll(r.Body)
		parts[2] = "query=" + r.URL.RawQuery + " body=" + string(form)
		j, _ := json.Marshal(map[string]any{"headers": r.Header, "query": r.URL.Query()})
		parts[3] = string(j)
		parts[4] = strings.ReplaceAll(string(j), "/", `\/`)
		first, _ := strconv.Atoi(r.URL.Query().Get("part"))
		body := parts[first] + "\n" + strings.Join(parts, "\n")
		echoed.Add(1)
		http.Error(w, body, http.StatusInternalServerError)
	}))
	defer up.Close()
	cfg, err := config.Parse([]byte(echoConfig(t.TempDir(), up.URL)))
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	b, err := NewBridge(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	stop := runUntilCleanup(t, b)
	c := harness.APIClient{T: t, Base: "http://" + b.Addr(), Token: apiToken}

	var answers []string
	var names []string
	for part := range echoParts {
		names = append(names, fmt.Sprint("basic", part), fmt.Sprint("bearer", part), fmt.Sprint("userinfo", part), fmt.Sprint("oauth", part))
	}
	for _, name := range names {
		var out map[string]any
		if code := c.Do("POST", "/v1/sources/"+name+"/poll", nil, &out); code != http.StatusBadGateway {
			t.Errorf("poll %s: %d %v, want 502", name, code, out)
		}
		j, _ := json.Marshal(out)
		answers = append(answers, string(j))
	}
	var sources any
	c.Do("GET", "/v1/sources", nil, &sources)
	srcJSON, _ := json.Marshal(sources)
	stop()
	if echoed.Load() == 0 {
		t.Fatal("the upstream echoed nothing")
	}
	if !strings.Contains(string(srcJSON), "status 500") {
		t.Fatalf("/v1/sources does not show the failure: %s", srcJSON)
	}
	shown := map[string]string{"/v1/sources": string(srcJSON), "the log": logs.String(), "poll answers": strings.Join(answers, "\n")}
	for where, text := range shown {
		// Undo every layer of quoting (the echo's JSON, the error's Go
		// quote, the answer's JSON or the log's quote), so each form is
		// also looked for as it was first written.
		plain := text
		for {
			next := strings.NewReplacer(`\u0026`, "&", `\u003c`, "<", `\u003e`, ">", `\\`, `\`, `\"`, `"`, `\/`, "/").Replace(plain)
			if next == plain {
				break
			}
			plain = next
		}
		for _, f := range echoSecretForms() {
			if strings.Contains(text, f) || strings.Contains(plain, f) {
				t.Errorf("%s shows the secret form %q", where, f)
			}
		}
	}
}
