package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/jqexpr"
	"github.com/pollrelay/pollrelay/subscription"
)

const testdataDir = "../testdata/config"

// env returns a lookup func over a fixed environment.
func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

// noEnv is an empty environment, so tests never depend on the real one.
var noEnv = env(nil)

// testEnv holds the variables the good-*.yaml files and the example use.
var testEnv = map[string]string{
	"API_TOKEN":           "api-token-0123456789",
	"POLLRELAY_API_TOKEN": "api-token-0123456789",
	"UPSTREAM_TOKEN":      "upstream-token",
	"UPSTREAM_PASSWORD":   "upstream-password",
	"WEBHOOK_SECRET":      "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	// A 32-byte ed25519 seed.
	"SIGNING_KEY":   "whsk_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
	"VENDOR_SECRET": "vendor-secret",
}

func mustParse(t *testing.T, yaml string, lookup func(string) (string, bool)) *Config {
	t.Helper()
	c, err := ParseWith([]byte(yaml), lookup)
	if err != nil {
		t.Fatalf("ParseWith: %v", err)
	}
	return c
}

func problemsOf(t *testing.T, err error) []string {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error = %v (%T), want *ValidationError", err, err)
	}
	return ve.Problems
}

// invalidCases pairs each testdata/config/invalid-*.yaml with the exact
// problems it must produce, in order.
var invalidCases = map[string][]string{
	"invalid-unknown-key.yaml": {
		"listne: unknown key",
	},
	"invalid-unknown-source-key.yaml": {
		"sources[0].intervall: unknown key",
		"sources[0].pagination.maxpages: unknown key",
	},
	"invalid-adaptive.yaml": {
		"sources[0].interval: adaptive is only valid on a watch source (a URL with {id}); a list source polls at a fixed interval",
		"sources[1].min_interval: must be at least 1s",
		"sources[2].max_interval: must be at least min_interval (1m)",
		"sources[3].max_interval: only valid with interval: adaptive",
	},
	"invalid-interval.yaml": {
		"sources[1].interval: must be at least 1s",
	},
	"invalid-timeout.yaml": {
		"sources[0].timeout: must be less than interval (15s)",
		"sources[1].timeout: must be less than interval (1m)",
	},
	"invalid-jq.yaml": {
		`sources[0].events[0].when: jq ".current == ": unexpected EOF`,
		`sources[0].state: jq ".status |": unexpected EOF`,
	},
	"invalid-glob.yaml": {
		`sources[0].events[1].to[2]: bad glob "[x"`,
		`subscriptions[0].events[2]: bad glob "[x"`,
	},
	"invalid-duplicate-name.yaml": {
		"sources[1].name: must contain only a-z, 0-9, _ and -",
		`sources[2].name: duplicate "videos"`,
	},
	"invalid-url.yaml": {
		"sources[0].url: must be an absolute http or https URL",
		"sources[1].url: must be an absolute http or https URL",
		"subscriptions[0].url: must be an absolute http or https URL",
	},
	"invalid-rate.yaml": {
		"sources[0].rate: must look like 5/s, 300/m or 1000/h",
	},
	"invalid-pagination.yaml": {
		"sources[0].pagination: choose one of next, next_url, link_header, page_param, offset_param",
		"sources[0].pagination.param: required with next",
		"sources[1].pagination.limit_param: required with page_param",
	},
	"invalid-secret-prefix.yaml": {
		"subscriptions[0].secret[1]: must be whsec_<base64> or whsk_<base64>: a Standard Webhooks secret is whsec_ followed by the base64 of 24 to 64 random bytes; `pollrelay secret` prints a fresh one",
		"subscriptions[0].secret[2]: must be whsec_<base64> or whsk_<base64>: what follows whsec_ is not standard base64 (A-Z, a-z, 0-9, + and /, padded with =); `pollrelay secret` prints a fresh one",
	},
	"invalid-missing-secret.yaml": {
		"subscriptions[0].secret: required",
		"subscriptions[1].secret: must not be empty",
	},
	"invalid-duration-type.yaml": {
		`sources[0].interval: invalid duration "abc"`,
		`sources[0].timeout: must be a duration string like "15s"`,
		`subscriptions[0].retry.schedule[1]: must be a duration string like "15s"`,
		`subscriptions[0].retry.schedule[2]: invalid duration "soon"`,
	},
	"invalid-types.yaml": {
		"log: must be a mapping",
		"sources[0].concurrency: must be an integer",
		"sources[0].emit_existing: must be true or false",
		"sources[0].headers: must be a mapping",
		"sources[0].max_delete_ratio: must be a number",
		"sources[1]: must be a mapping",
	},
	"invalid-many.yaml": {
		"listen: must be host:port, e.g. 127.0.0.1:8787",
		"log.level: must be one of debug, info, warn, error",
		"sources[0].concurrency: must be at least 1",
		"sources[0].events[0].on: must be one of changed, created, deleted, stalled, member_added, member_removed",
		"sources[0].events[0].type: required",
		"sources[0].max_delete_ratio: must be more than 0 and at most 1",
		"sources[0].method: must be GET, POST or PUT",
		"sources[0].name: must contain only a-z, 0-9, _ and -",
		"sources[0].settle: must be at least 1",
		"storage.path: required unless in_memory is true",
		"subscriptions[0].max_in_flight: must be from 1 to 1000",
		"subscriptions[0].method: must be POST or PUT",
		"subscriptions[0].ordering: must be resource or none",
		"subscriptions[0].timeout: must be more than 0",
	},
	"invalid-require-https.yaml": {
		"subscriptions[0].url: must be https:// (delivery.require_https is on)",
	},
	"invalid-retry-every.yaml": {
		"subscriptions[0].retry: set either schedule or every/for, not both",
		"subscriptions[1].retry: every must be more than 0 and for at least every",
		"subscriptions[2].retry.jitter: must be from 0 to 1 (0 = the exact schedule, 0.2 = ±20%)",
	},
	"invalid-watch.yaml": {
		"sources[0].watch_ttl: only valid on a watch source (a URL with {id})",
		"sources[1].items: not allowed on a watch source (its URL has {id})",
		"sources[1].pagination: not allowed on a watch source (its URL has {id})",
		`sources[1].watch_from: no source named "nothing"`,
		`sources[2].watch_from: "task-status" is a watch source; name a list source`,
	},
	"invalid-signature.yaml": {
		"subscriptions[0].signature: scheme hmac-sha256 needs a header: use {scheme: hmac-sha256, header: X-Signature}",
		"subscriptions[1].signature.encoding: only valid with scheme hmac-sha256",
		"subscriptions[2].signature.encoding: must be hex or base64",
		"subscriptions[3].signature.hedaer: unknown key",
		`subscriptions[3].signature.scheme: unknown scheme "rsa" (want standard, hmac-sha256 or token)`,
		"subscriptions[4].secret: signing key has 4 bytes, want 64 (private key) or 32 (seed)",
	},
	"invalid-on.yaml": {
		"sources[0].events[0].on: must be one of changed, created, deleted, stalled, member_added, member_removed",
		"sources[0].events[1].on: stalled cannot be combined with other kinds: give it a rule of its own",
		"sources[0].events[2].on: member_added and member_removed combine only with each other: give the other kinds a rule of their own",
		"sources[0].events[3].on: must be a list",
	},
	"invalid-stalled.yaml": {
		"sources[0].events[0].after: must be more than 0 with on: stalled",
		"sources[0].events[0].state: required with on: stalled",
		"sources[0].events[1].after: only valid with on: stalled",
		"sources[0].events[1].type: unknown placeholder {curent} (want {source}, {previous}, {current}, {kind} or {member})",
	},
	"invalid-auth.yaml": {
		"sources[0].auth: set one of bearer, basic, oauth2 or query",
		"sources[1].auth: choose one of bearer, basic, oauth2 or query",
		"sources[2].auth.basic.username: required",
		"sources[3].auth.oauth2.client_id: required",
		"sources[3].auth.oauth2.client_secret: required for the client-credentials grant (or set refresh_token)",
		"sources[3].auth.oauth2.token_url: must be an absolute http or https URL",
		"sources[4].auth.query.value: required",
	},
	"invalid-header-control.yaml": {
		"sources[0].auth.bearer: must not contain control characters such as CR, LF or NUL",
		"sources[0].headers.X-Del: must not contain control characters such as CR, LF or NUL",
		"sources[0].headers.X-Soh: must not contain control characters such as CR, LF or NUL",
		`sources[0].headers["X-\x01"]: invalid header name`,
		"subscriptions[0].headers.X-Env: must not contain control characters such as CR, LF or NUL",
		"subscriptions[0].headers.X-Nul: must not contain control characters such as CR, LF or NUL",
		"subscriptions[1].secret: must not contain control characters such as CR, LF or NUL",
	},
	"invalid-bounds.yaml": {
		"sources[0].name: must be at most 64 characters",
		"sources[0].timeout: must be from 100ms to 5m",
		"sources[1].timeout: must be from 100ms to 5m",
		"subscriptions[0].max_in_flight: must be from 1 to 1000",
		"subscriptions[0].name: must be at most 64 characters",
		"subscriptions[0].timeout: must be from 100ms to 5m",
		"subscriptions[1].max_in_flight: must be from 1 to 1000",
		"subscriptions[1].timeout: must be from 100ms to 5m",
	},
	"invalid-ports.yaml": {
		"listen: port must be a number from 1 to 65535 (0 picks a free one)",
		"sources[0].url: port must be a number from 1 to 65535",
		"sources[1].url: port must be a number from 1 to 65535",
		"sources[3].auth.oauth2.token_url: port must be a number from 1 to 65535",
		"subscriptions[0].url: port must be a number from 1 to 65535",
	},
	"invalid-api-token.yaml": {
		"api_token: must be at least 16 bytes; make one with: head -c 24 /dev/urandom | base64",
	},
	"invalid-listen-name.yaml": {
		"api_token: must not contain spaces or control characters",
		"listen: port must be a number from 1 to 65535 (0 picks a free one)",
	},
	"invalid-no-sources.yaml": {
		"sources: at least one source is required",
	},
	"invalid-secrets-in-errors.yaml": {
		"api_token: must be a string",
		"sources[0].headers.Authorization: must not contain control characters such as CR, LF or NUL",
		"sources[0].url: must be an absolute http or https URL",
		"subscriptions[0].secret: must be whsec_<base64> or whsk_<base64>: what follows whsec_ is not standard base64 (A-Z, a-z, 0-9, + and /, padded with =); `pollrelay secret` prints a fresh one",
	},
}

func TestInvalidConfigs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testdataDir, "invalid-*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, ok := invalidCases[filepath.Base(f)]; !ok {
			t.Errorf("%s has no expected problems in invalidCases", f)
		}
	}
	for name, want := range invalidCases {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(testdataDir, name))
			if err != nil {
				t.Fatal(err)
			}
			c, err := ParseWith(data, noEnv)
			if c != nil {
				t.Errorf("got a config with an error")
			}
			got := problemsOf(t, err)
			if !slices.Equal(got, want) {
				t.Errorf("problems:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
			if err.Error() != strings.Join(want, "\n") {
				t.Errorf("Error() = %q", err.Error())
			}
			if strings.Contains(err.Error(), "TOPSECRET") {
				t.Errorf("a secret leaked into the error: %v", err)
			}
		})
	}
}

func TestGoodConfigs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testdataDir, "good-*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no good-*.yaml files: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ParseWith(data, env(testEnv)); err != nil {
				t.Errorf("ParseWith: %v", err)
			}
		})
	}
}

func TestExampleConfigParses(t *testing.T) {
	data, err := os.ReadFile("../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseWith(data, env(testEnv))
	if err != nil {
		t.Fatalf("config.example.yaml: %v", err)
	}
	if got, want := c.Summary(), "config ok: 2 sources (1 watch), 1 subscription, listen 127.0.0.1:8787"; got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
	if c.APIToken != "api-token-0123456789" {
		t.Errorf("api_token = %q, want it from the environment", c.APIToken)
	}
	if got := c.Sources[0].Headers["Authorization"]; got != "Bearer upstream-token" {
		t.Errorf("Authorization header = %q", got)
	}
	if got := c.Subscriptions[0].Secrets(); !slices.Equal(got, []string{testEnv["WEBHOOK_SECRET"]}) {
		t.Errorf("secrets = %q", got)
	}

	// Without the environment the example names what is missing.
	_, err = ParseWith(data, noEnv)
	if want := []string{"subscriptions[0].secret: must not be empty"}; !slices.Equal(problemsOf(t, err), want) {
		t.Errorf("problems without env = %q, want %q", problemsOf(t, err), want)
	}
}

func TestYAMLSyntaxError(t *testing.T) {
	_, err := ParseWith([]byte("sources:\n  - name: a\n   url: [\n"), noEnv)
	var ve *ValidationError
	var se *SyntaxError
	if err == nil || errors.As(err, &ve) || !errors.As(err, &se) || !strings.HasPrefix(err.Error(), "3:") {
		t.Errorf("error = %v, want a YAML error on line 3", err)
	}
	// A file that is not a mapping at the top is a YAML error too.
	if _, err := ParseWith([]byte("- a\n- b\n"), noEnv); err == nil || errors.As(err, &ve) {
		t.Errorf("list at top level: error = %v", err)
	}
	// Duplicate keys are rejected by the YAML parser.
	if _, err := ParseWith([]byte("listen: a:1\nlisten: b:2\n"), noEnv); err == nil || errors.As(err, &ve) {
		t.Errorf("duplicate key: error = %v", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte("sources: [{name: a, url: 'http://x/a'}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(good)
	if err != nil || c.Sources[0].Name != "a" {
		t.Fatalf("Load = %+v, %v", c, err)
	}

	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("sources: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bad); err == nil || !strings.HasPrefix(err.Error(), bad+":") || strings.Count(err.Error(), bad) != 1 {
		t.Errorf("bad YAML: %v", err)
	}

	invalid := filepath.Join(dir, "invalid.yaml")
	if err := os.WriteFile(invalid, []byte("listen: nope\nsources: [{name: a, url: 'http://x/a'}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(invalid)
	if got := problemsOf(t, err); !slices.Equal(got, []string{"listen: must be host:port, e.g. 127.0.0.1:8787"}) {
		t.Errorf("problems = %q", got)
	}
}

func TestSummary(t *testing.T) {
	c := &Config{Listen: ":1", Sources: []Source{{URL: "http://x/{id}"}, {URL: "http://x/"}}}
	if got, want := c.Summary(), "config ok: 2 sources (1 watch), 0 subscriptions, listen :1"; got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
	c = &Config{Listen: ":1", Sources: []Source{{URL: "http://x/"}}, Subscriptions: []subscription.Spec{{}}}
	if got, want := c.Summary(), "config ok: 1 source, 1 subscription, listen :1"; got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(testdataDir, "*.yaml"))
	files = append(files, "../config.example.yaml")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("sources: [{name: a, url: 'http://x/{id}', terminal: {a: [1, {2: 3}]}}]"))
	f.Add([]byte("sources: [~, 1, [], {events: [~, 2, {from: [[x]], to: {1: 2}}]}]"))
	f.Add([]byte("subscriptions: [{secret: [1, ~], signature: {scheme: 1}, retry: {schedule: x,y}}]"))
	f.Add([]byte("storage: {retention: 1d1d}\nlog: [a]\nsources: {a: b}"))
	f.Add([]byte("a: &a [*a]"))
	f.Add([]byte("sources: [{max_delete_ratio: .nan, concurrency: 1e99, body: .inf, terminal: [.nan]}]"))
	lookup := env(testEnv)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseWith(data, lookup)
		if err != nil {
			if c != nil {
				t.Fatal("a config and an error")
			}
			var ve *ValidationError
			if errors.As(err, &ve) {
				if len(ve.Problems) == 0 {
					t.Fatal("a ValidationError without problems")
				}
				for _, p := range ve.Problems {
					if !strings.Contains(p, ": ") {
						t.Fatalf("problem without a path: %q", p)
					}
					// What the file said is quoted back; the rest is ours.
					if goInternals.MatchString(quoted.ReplaceAllString(p, `""`)) {
						t.Fatalf("problem names Go internals: %q", p)
					}
				}
			}
			return
		}
		_ = c.Summary()
		if len(c.Sources) == 0 {
			t.Fatal("a valid config without sources")
		}
		for _, s := range c.Sources {
			id, idErr := jqexpr.Shared(s.ID)
			state, stateErr := jqexpr.Shared(s.State)
			if id == nil || idErr != nil || state == nil || stateErr != nil || s.Interval < time.Second || s.Timeout >= s.Interval {
				t.Fatalf("a valid source that breaks an invariant: %+v", s)
			}
		}
		for _, s := range c.Subscriptions {
			if len(s.Secrets()) == 0 || s.Scheme().Name == "" {
				t.Fatalf("a valid subscription that breaks an invariant: %+v", s)
			}
		}
	})
}

func TestRetryEveryExpands(t *testing.T) {
	cfg, err := ParseWith([]byte(`
sources: [{name: s, url: "http://127.0.0.1:9000/s"}]
subscriptions:
  - {name: app, url: "http://127.0.0.1:3000/h", secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", retry: {every: 30m, for: 24h}}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Subscriptions[0].Retry.Schedule
	if len(s) != 48 || s[0] != 30*time.Minute || s[47] != 30*time.Minute {
		t.Errorf("every 30m for 24h: got %d entries %v", len(s), s)
	}
}
