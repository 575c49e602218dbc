package config

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/internal/check"
)

// configKeys lists every key the file may set, as dotted paths, by walking
// the koanf tags of t.
func configKeys(prefix string, t reflect.Type) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == reflect.TypeFor[time.Duration]() {
		return nil
	}
	var out []string
	for _, f := range check.Fields(t) {
		key := f.Name
		if prefix != "" {
			key = prefix + "." + f.Name
		}
		out = append(out, key)
		out = append(out, configKeys(key, f.Type)...)
	}
	return out
}

// TestExampleDocumentsEveryKey: config.example.yaml is said to document
// every key, so each key of Config (by its koanf tag) and each kind of
// `on:` must appear in it, set or in a comment.
func TestExampleDocumentsEveryKey(t *testing.T) {
	raw, err := os.ReadFile("../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	keys := configKeys("", reflect.TypeFor[Config]())
	if len(keys) < 50 {
		t.Fatalf("found only %d keys; the walk is broken", len(keys))
	}
	for _, key := range keys {
		name := key[strings.LastIndex(key, ".")+1:]
		if !regexp.MustCompile(`(^|[\s{,#\[])` + regexp.QuoteMeta(name) + `:`).MatchString(doc) {
			t.Errorf("config.example.yaml does not mention %s", key)
		}
	}
	for _, kind := range []string{event.Changed, event.Created, event.Deleted, event.Stalled, event.MemberAdded, event.MemberRemoved} {
		if !regexp.MustCompile(`on: .*\b` + kind + `\b`).MatchString(doc) {
			t.Errorf("config.example.yaml does not show on: %s", kind)
		}
	}
}
