package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"

	"github.com/pollrelay/pollrelay/internal/check"
	"github.com/pollrelay/pollrelay/subscription"
)

// keyDelim is koanf's key-path delimiter. koanf splits flattened keys on it,
// so it must never occur in a YAML key: header names such as `X-Api.Key`
// contain dots, which the default "." would cut into nested keys.
const keyDelim = "\x00"

// Defaults that are not visible in Default because they apply per element.
const (
	defaultSourceTimeout = 10 * time.Second
	defaultMaxPages      = 100
	defaultPageLimit     = 100
	maxRetrySchedule     = 100
	defaultMinInterval   = time.Second
	defaultMaxInterval   = 10 * time.Minute
)

// Default returns the configuration every file starts from: a key the file
// leaves out keeps the value here.
func Default() Config {
	return Config{
		Listen:   "127.0.0.1:8787",
		Storage:  Storage{Path: "./pollrelay-data", Retention: 7 * 24 * time.Hour, Postgres: Postgres{Schema: "pollrelay", MaxConns: 8}},
		Cluster:  Cluster{Lease: DefaultLease},
		Log:      Log{Level: "info", Format: "json"},
		Delivery: Delivery{ShutdownGrace: 10 * time.Second, RotationOverlap: 24 * time.Hour},
	}
}

// RecommendedMemoryLimit is the memory_limit_bytes the README suggests
// for a sidecar tracking about a million items: a full poll of them then
// peaks near 110-130 MiB RSS instead of near 200, at ~15% more time for
// that poll. It is not the default because a limit below a deployment's
// live heap makes the collector run much more: a single 100,000-item page
// polled under it took 25-30% longer.
const RecommendedMemoryLimit = 100 << 20

// defaultSource is what each element of `sources:` starts from. Timeout is
// left 0 because its default depends on the interval (see normaliseSource).
func defaultSource() Source {
	return Source{
		Method:         "GET",
		Interval:       15 * time.Second,
		MaxBodyBytes:   10 << 20,
		MaxBackoff:     5 * time.Minute,
		Concurrency:    4,
		Settle:         1,
		MaxDeleteRatio: 0.5,
		ConfirmPolls:   3,
		ID:             ".id",
		State:          ".status",
	}
}

// defaultRule is what each element of a source's `events:` starts from.
func defaultRule() Rule { return Rule{On: Kinds{"changed"}} }

// ValidationError lists every problem found in a configuration, each as
// "path: message", e.g. "sources[1].interval: must be at least 1s".
type ValidationError = check.ValidationError

// Load reads the file at path and parses it with Parse.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		var ve *ValidationError
		var se *SyntaxError
		switch {
		case errors.As(err, &ve):
			return nil, err
		case errors.As(err, &se):
			se.File = path
			return nil, se
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// Only a file's payloads are tried here, once per load: a stored API
	// subscription was tried when it was created or changed.
	if err := tryPayloads(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Parse builds a Config from YAML with the process environment; see
// ParseWith.
func Parse(data []byte) (*Config, error) { return ParseWith(data, os.LookupEnv) }

// ParseWith builds a Config from YAML in four steps: defaults, parse,
// normalise, validate. lookupEnv (os.LookupEnv when nil) serves two
// purposes:
//
//   - `${NAME}` in any string value of the file expands to the variable's
//     value. An unset variable expands to "" (so a missing secret shows up as
//     an empty, and usually invalid, value rather than a literal "${NAME}").
//     `$${` is a literal `${`.
//   - POLLRELAY_<KEY> overrides a scalar key outside lists, after expansion:
//     the key is upper-cased and a double underscore nests, so
//     POLLRELAY_API_TOKEN sets api_token and POLLRELAY_STORAGE__PATH sets
//     storage.path. Other POLLRELAY_ variables are ignored.
//
// A YAML syntax error is returned as a *SyntaxError. Anything else wrong is
// returned at once as a *ValidationError listing every problem with its path.
func ParseWith(data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	p := &problems{}

	// 1. Defaults: decoding below only overwrites keys the file sets.
	cfg := Default()

	// 2. Parse: YAML with ${ENV} expanded, then POLLRELAY_ overrides on top.
	k := koanf.NewWithConf(koanf.Conf{Delim: keyDelim})
	if err := k.Load(rawbytes.Provider(data), expandingParser{lookupEnv}); err != nil {
		return nil, syntaxError(data, err)
	}
	overrides, fromEnv := envOverrides(lookupEnv)
	if len(overrides) > 0 {
		if err := k.Load(confmap.Provider(overrides, ""), nil); err != nil {
			return nil, fmt.Errorf("config environment overrides: %w", err)
		}
	}
	p.FromEnv = fromEnv
	tree := k.Raw()
	// `interval: adaptive` is not a duration: take it out before the
	// checker would report it as one; normalisation then gives those
	// sources their bounds.
	adaptive := takeAdaptive(tree)
	// Reject unknown keys and values of the wrong type with their path, and
	// drop them so the decoder sees only values it can take.
	check.Tree(&p.Problems, "", reflect.TypeFor[Config](), tree)
	prefill(&cfg, tree)
	check.Decode(&p.Problems, tree, &cfg)

	// 3. Normalise: per-element defaults that depend on other fields, and
	// the subscriptions' derived fields. Every jq expression and rule value
	// is checked here so its problem has its path; the packages that run
	// them compile them again.
	normalise(&cfg, adaptive, p)

	// 4. Validate: ranges and cross-field rules.
	validate(&cfg, adaptive, p)

	if err := p.err(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// IntervalAdaptive is the `interval:` value that selects adaptive polling.
const IntervalAdaptive = "adaptive"

// takeAdaptive removes `interval: adaptive` from each source in tree and
// returns the indexes of those sources.
func takeAdaptive(tree map[string]any) map[int]bool {
	list, _ := tree["sources"].([]any)
	out := map[int]bool{}
	for i, e := range list {
		m, _ := e.(map[string]any)
		if v, ok := m["interval"].(string); ok && strings.EqualFold(strings.TrimSpace(v), IntervalAdaptive) {
			delete(m, "interval")
			out[i] = true
		}
	}
	return out
}

// prefill sizes the lists the file has and fills each element with its
// defaults, so that decoding overwrites only the keys present: an explicit
// `concurrency: 0` is then reported instead of silently becoming 4.
func prefill(cfg *Config, tree map[string]any) {
	if list, ok := tree["sources"].([]any); ok {
		cfg.Sources = make([]Source, len(list))
		for i, e := range list {
			cfg.Sources[i] = defaultSource()
			m, _ := e.(map[string]any)
			if rules, ok := m["events"].([]any); ok {
				cfg.Sources[i].Events = make([]Rule, len(rules))
				for j := range rules {
					cfg.Sources[i].Events[j] = defaultRule()
				}
			}
		}
	}
	if list, ok := tree["subscriptions"].([]any); ok {
		cfg.Subscriptions = make([]subscription.Spec, len(list))
		for i := range list {
			cfg.Subscriptions[i] = subscription.Default()
		}
	}
}

// problems collects validation messages with their paths.
type problems struct{ check.Problems }

// add records a problem at path unless path already had a decoding problem.
func (p *problems) add(path, format string, args ...any) { p.Add(path, format, args...) }

// err returns the problems sorted by path, or nil without any.
func (p *problems) err() error { return p.Err() }

// Summary describes the configuration in one line, e.g.
// "config ok: 2 sources (1 watch), 1 subscription, listen 127.0.0.1:8787".
func (c *Config) Summary() string {
	watches := 0
	for i := range c.Sources {
		if c.Sources[i].IsWatch() {
			watches++
		}
	}
	var b strings.Builder
	b.WriteString("config ok: ")
	b.WriteString(plural(len(c.Sources), "source"))
	if watches > 0 {
		fmt.Fprintf(&b, " (%d watch)", watches)
	}
	b.WriteString(", ")
	b.WriteString(plural(len(c.Subscriptions), "subscription"))
	b.WriteString(", listen ")
	b.WriteString(c.Listen)
	return b.String()
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
