package config

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/signature"
	"github.com/pollrelay/pollrelay/subscription"
)

func TestDefaults(t *testing.T) {
	c := mustParse(t, `
sources:
  - name: tasks
    url: http://127.0.0.1:9000/tasks
    items: '.[]'
    pagination: {page_param: page, limit_param: n}
    events: [{type: tasks.changed}]
subscriptions:
  - name: app
    url: http://127.0.0.1:3000/hooks
    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
`, noEnv)
	d := Default()
	if c.Listen != "127.0.0.1:8787" || c.Storage.Path != "./pollrelay-data" || c.Storage.Retention != 168*time.Hour ||
		c.Log != (Log{Level: "info", Format: "json"}) || c.Delivery != (Delivery{ShutdownGrace: 10 * time.Second, RotationOverlap: 24 * time.Hour}) {
		t.Errorf("top-level defaults = %+v", c)
	}
	if d.Listen != c.Listen {
		t.Errorf("Default().Listen = %q", d.Listen)
	}

	s := c.Sources[0]
	if s.Method != "GET" || s.Interval != 15*time.Second || s.Timeout != 10*time.Second ||
		s.MaxBodyBytes != 10<<20 || s.MaxBackoff != 5*time.Minute || s.Concurrency != 4 ||
		s.Settle != 1 || s.MaxDeleteRatio != 0.5 || s.ConfirmPolls != 3 || s.ID != ".id" || s.State != ".status" {
		t.Errorf("source defaults = %+v", s)
	}
	// The compiled expressions are checked in poller (TestCompiledDefaults).
	if body, rate := bodyAndRate(t, &s); !s.DeletesEnabled() || s.IsWatch() || rate != 0 || body != nil {
		t.Errorf("source: deletes %v watch %v rate %v body %q", s.DeletesEnabled(), s.IsWatch(), rate, body)
	}
	if pg := s.Pagination; pg.MaxPages != 100 || pg.Limit != 100 {
		t.Errorf("pagination defaults = %+v", pg)
	}
	if r := s.Events[0]; !slices.Equal(r.On, Kinds{"changed"}) || !anyState(t, r.From) || !anyState(t, r.To) || r.When != "" {
		t.Errorf("rule defaults = %+v", r)
	}

	sub := c.Subscriptions[0]
	if sub.Method != "POST" || sub.Timeout != 15*time.Second || sub.Ordering != "resource" || sub.MaxInFlight != 16 ||
		compiled(t, sub).Payload != nil || sub.Scheme() != (signature.Scheme{Name: "standard"}) {
		t.Errorf("subscription defaults = %+v", sub)
	}
	if !slices.Equal(sub.Retry.Schedule, subscription.DefaultRetrySchedule) {
		t.Errorf("retry schedule = %v", sub.Retry.Schedule)
	}
	sub.Retry.Schedule[0] = time.Hour
	if subscription.DefaultRetrySchedule[0] != 5*time.Second {
		t.Errorf("the default retry schedule was shared, not copied")
	}
}

func TestExplicitValuesWin(t *testing.T) {
	c := mustParse(t, `
sources:
  - name: fast
    url: http://127.0.0.1:9000/fast
    interval: 3s
  - name: slow
    url: http://127.0.0.1:9000/slow
    interval: 2m
    timeout: 1m
subscriptions:
  - name: app
    url: http://127.0.0.1:3000/hooks
    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
    retry: {schedule: []}
`, noEnv)
	// The default timeout stays below a short interval.
	if got := c.Sources[0].Timeout; got != 2*time.Second {
		t.Errorf("default timeout with a 3s interval = %v, want 2s", got)
	}
	if got := c.Sources[1].Timeout; got != time.Minute {
		t.Errorf("timeout = %v", got)
	}
	if s := c.Subscriptions[0].Retry.Schedule; s == nil || len(s) != 0 {
		t.Errorf("schedule: [] = %#v, want empty (no retries)", s)
	}
}

func TestDerivedFields(t *testing.T) {
	c := mustParse(t, `
sources:
  - name: a
    url: http://x/a
    method: post
    body: '{"raw": true}'
    rate: 5/s
    terminal: ready
  - name: b
    url: http://x/b
    body: {q: [1, 2.5, "x<y"], ok: true}
    rate: 300/m
    terminal: [ready, 3, true, null, {code: 1}]
    events:
      - {type: t, from: 1, to: 'err*'}
  - name: c
    url: http://x/c
    body: 42
    rate: 1800/h
subscriptions:
  - name: one
    url: http://x/one
    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
    signature: standard
    payload: ' . '
  - name: two
    url: http://x/two
    method: put
    secret: [k1, k2]
    signature: {scheme: hmac-sha256, header: X-Sig}
    payload: '{type}'
  - name: three
    url: http://x/three
    secret: tok
    signature: {scheme: token, header: x-token}
`, noEnv)
	// Terminal states and rule matchers are compiled by diff, and checked
	// there (TestCompileDerived) on these sources.
	a, b, cc := c.Sources[0], c.Sources[1], c.Sources[2]
	if body, rate := bodyAndRate(t, &a); a.Method != "POST" || string(body) != `{"raw": true}` || rate != 5 {
		t.Errorf("a: method %q body %q rate %v", a.Method, body, rate)
	}
	if body, rate := bodyAndRate(t, &b); string(body) != `{"ok":true,"q":[1,2.5,"x<y"]}` || rate != 5 {
		t.Errorf("b: body %s rate %v", body, rate)
	}
	if body, rate := bodyAndRate(t, &cc); string(body) != "42" || rate != 0.5 {
		t.Errorf("c: body %s rate %v", body, rate)
	}
	// Free-form fields keep the YAML value.
	if !reflect.DeepEqual(b.Body, map[string]any{"q": []any{1, 2.5, "x<y"}, "ok": true}) {
		t.Errorf("b body = %#v", b.Body)
	}
	if r := b.Events[0]; r.From != 1 {
		t.Errorf("from 1: %#v", r.From)
	}

	one, two, three := c.Subscriptions[0], c.Subscriptions[1], c.Subscriptions[2]
	if p := compiled(t, one).Payload; p != nil || one.Scheme() != (signature.Scheme{Name: "standard"}) {
		t.Errorf("one: payload %v scheme %+v", p, one.Scheme())
	}
	if two.Method != "PUT" || compiled(t, two).Payload == nil || !slices.Equal(two.Secrets(), []string{"k1", "k2"}) ||
		two.Scheme() != (signature.Scheme{Name: "hmac-sha256", Header: "X-Sig", Encoding: "hex"}) {
		t.Errorf("two = %+v", two)
	}
	if !reflect.DeepEqual(two.Secret, []any{"k1", "k2"}) {
		t.Errorf("two secret = %#v", two.Secret)
	}
	if three.Scheme() != (signature.Scheme{Name: "token", Header: "x-token"}) || !slices.Equal(three.Secrets(), []string{"tok"}) {
		t.Errorf("three = %+v", three)
	}
}

// bodyAndRate are a source's request body and rate as the poller takes
// them from its config.
func bodyAndRate(t *testing.T, s *Source) ([]byte, float64) {
	t.Helper()
	body, err := s.RequestBody()
	if err != nil {
		t.Fatalf("%s: body: %v", s.Name, err)
	}
	var rate float64
	if s.Rate != "" {
		var ok bool
		if rate, ok = ParseRate(s.Rate); !ok {
			t.Fatalf("%s: rate %q", s.Name, s.Rate)
		}
	}
	return body, rate
}

// compiled is a config subscription as pollrelay runs it.
func compiled(t *testing.T, spec subscription.Spec) *subscription.Subscription {
	t.Helper()
	s, err := subscription.FromConfig(spec)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// anyState reports whether a rule pattern accepts every state.
func anyState(t *testing.T, v any) bool {
	t.Helper()
	p, err := ParsePattern(v)
	if err != nil {
		t.Fatal(err)
	}
	return p.Any
}

func TestEnvExpansion(t *testing.T) {
	lookup := env(map[string]string{
		"HOST":     "api.example.com",
		"TOKEN":    "t0k",
		"INTERVAL": "30s",
		"N":        "2",
		"DELETES":  "false",
		"EMPTY":    "",
	})
	c := mustParse(t, `
sources:
  - name: tasks
    url: https://${HOST}/v1/tasks
    headers: {Authorization: "Bearer ${TOKEN}", X-Literal: "$${TOKEN}", X-Unset: "a${UNSET}b", X-Empty: "${EMPTY}"}
    interval: ${INTERVAL}
    concurrency: ${N}
    deletes: ${DELETES}
    body: {filter: {owner: "${TOKEN}"}, tags: ["${HOST}", 1]}
    state: '.status // "$x"'
`, lookup)
	s := c.Sources[0]
	if s.URL != "https://api.example.com/v1/tasks" {
		t.Errorf("url = %q", s.URL)
	}
	want := map[string]string{"Authorization": "Bearer t0k", "X-Literal": "${TOKEN}", "X-Unset": "ab", "X-Empty": ""}
	if !reflect.DeepEqual(s.Headers, want) {
		t.Errorf("headers = %q, want %q", s.Headers, want)
	}
	if s.Interval != 30*time.Second || s.Concurrency != 2 || s.DeletesEnabled() {
		t.Errorf("interval %v concurrency %d deletes %v", s.Interval, s.Concurrency, s.DeletesEnabled())
	}
	if body, _ := bodyAndRate(t, &s); string(body) != `{"filter":{"owner":"t0k"},"tags":["api.example.com",1]}` {
		t.Errorf("body = %s", body)
	}
	if s.State != `.status // "$x"` {
		t.Errorf("state = %q: a lone $ must survive", s.State)
	}
}

func TestEnvOverrides(t *testing.T) {
	yaml := `
api_token: token-from-the-file
storage: {path: /from/file}
log: {level: info}
sources:
  - name: tasks
    url: http://127.0.0.1:9000/tasks
`
	c := mustParse(t, yaml, env(map[string]string{
		"POLLRELAY_API_TOKEN":                "token-from-the-env",
		"POLLRELAY_STORAGE__PATH":            "/from/env",
		"POLLRELAY_LOG__LEVEL":               "debug",
		"POLLRELAY_DELIVERY__SHUTDOWN_GRACE": "1m",
		"POLLRELAY_STORAGE__IN_MEMORY":       "true",
		"POLLRELAY_LISTEN":                   ":9999",
		// Not config keys: ignored rather than reported as unknown.
		"POLLRELAY_CONFIG":  "/etc/pollrelay.yaml",
		"POLLRELAY_SOURCES": "nope",
		"POLLRELAY_STORAGE": "nope",
	}))
	if c.APIToken != "token-from-the-env" || c.Storage.Path != "/from/env" || c.Log.Level != "debug" ||
		c.Delivery.ShutdownGrace != time.Minute || !c.Storage.InMemory || c.Listen != ":9999" {
		t.Errorf("overrides not applied: %+v", c)
	}
	if c.Log.Format != "json" {
		t.Errorf("an override of log.level lost log.format: %q", c.Log.Format)
	}

	_, err := ParseWith([]byte(yaml), env(map[string]string{
		"POLLRELAY_LOG__LEVEL":         "loud",
		"POLLRELAY_STORAGE__RETENTION": "forever",
	}))
	want := []string{
		"log.level: must be one of debug, info, warn, error (set by POLLRELAY_LOG__LEVEL)",
		`storage.retention: invalid duration "forever" (set by POLLRELAY_STORAGE__RETENTION)`,
	}
	if got := problemsOf(t, err); !slices.Equal(got, want) {
		t.Errorf("problems = %q, want %q", got, want)
	}
}

func TestMapKeysWithDotsSurvive(t *testing.T) {
	c := mustParse(t, `
sources:
  - name: tasks
    url: http://127.0.0.1:9000/tasks
    headers: {X-Api.Key: v1, a.b.c: v2}
    body: {filter.status: ready, nested: {x.y: 1}}
subscriptions:
  - name: app
    url: http://127.0.0.1:3000/hooks
    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
    headers: {X-Env.Name: prod}
`, noEnv)
	if want := map[string]string{"X-Api.Key": "v1", "a.b.c": "v2"}; !reflect.DeepEqual(c.Sources[0].Headers, want) {
		t.Errorf("source headers = %q", c.Sources[0].Headers)
	}
	if body, _ := bodyAndRate(t, &c.Sources[0]); string(body) != `{"filter.status":"ready","nested":{"x.y":1}}` {
		got := string(body)
		t.Errorf("body = %s", got)
	}
	if want := map[string]string{"X-Env.Name": "prod"}; !reflect.DeepEqual(c.Subscriptions[0].Headers, want) {
		t.Errorf("subscription headers = %q", c.Subscriptions[0].Headers)
	}

	_, err := ParseWith([]byte(`
sources:
  - name: tasks
    url: http://127.0.0.1:9000/tasks
    headers: {"Bad Header": v, "X-Ok": [1]}
    intervall.x: 1
`), noEnv)
	want := []string{
		`sources[0].headers.X-Ok: must be a string`,
		`sources[0].headers["Bad Header"]: invalid header name`,
		`sources[0]["intervall.x"]: unknown key`,
	}
	if got := problemsOf(t, err); !slices.Equal(got, want) {
		t.Errorf("problems = %q, want %q", got, want)
	}
}

func TestScalarCoercion(t *testing.T) {
	c := mustParse(t, `
sources:
  - name: tasks
    url: http://127.0.0.1:9000/tasks
    headers: {X-Count: 5, X-Flag: true, X-Ratio: 0.5}
    pagination: {next: .next, param: 123}
  - name: watch
    url: http://127.0.0.1:9000/tasks/{id}
    ids: "a, b"
subscriptions:
  - name: app
    url: http://127.0.0.1:3000/hooks
    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
    events: video.*
`, noEnv)
	s := c.Sources[0]
	if want := map[string]string{"X-Count": "5", "X-Flag": "true", "X-Ratio": "0.5"}; !reflect.DeepEqual(s.Headers, want) {
		t.Errorf("headers = %q", s.Headers)
	}
	if s.Pagination.Param != "123" {
		t.Errorf("param = %q", s.Pagination.Param)
	}
	if got := c.Sources[1].IDs; !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("ids = %q", got)
	}
	if got := c.Subscriptions[0].Events; !slices.Equal(got, []string{"video.*"}) {
		t.Errorf("events = %q", got)
	}
	_, err := ParseWith([]byte(`
sources:
  - name: w
    url: http://127.0.0.1:9000/w/{id}
    ids: "a, ,b"
`), noEnv)
	if want := []string{"sources[0].ids[1]: must not be empty"}; !slices.Equal(problemsOf(t, err), want) {
		t.Errorf("problems = %q", problemsOf(t, err))
	}
}

// TestNotAMapping: a file that is a list or a single value says what a
// config file is, not which Go type the YAML library wanted.
func TestNotAMapping(t *testing.T) {
	for _, doc := range []string{"- name: tasks\n  url: http://x/\n", "just words\n", "42\n", "[1, 2]\n"} {
		_, err := ParseWith([]byte(doc), noEnv)
		want := "yaml: the file must be a mapping of keys such as sources: and subscriptions:, not a list or a single value"
		if err == nil || err.Error() != want {
			t.Errorf("%q: %v, want %q", doc, err, want)
		}
	}
}
