package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/internal/harness"
	"github.com/pollrelay/pollrelay/signature"
)

// shippedEnv stands in for the variables the shipped configs reference.
func shippedEnv(secret string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		switch {
		case strings.HasPrefix(k, "POLLRELAY_"):
			return "", false
		case strings.Contains(k, "SECRET"):
			return secret, true
		case strings.HasSuffix(k, "_API") || strings.HasSuffix(k, "_URL"):
			return "http://127.0.0.1:9", true
		}
		return "x", true
	}
}

// TestShippedConfigsHaveNoWarnings: the recipes, the demo, the example and
// the README's walkthrough are what people copy, so none of them may carry
// a trap validate warns about (a rule missing items born finished, a glob
// nothing emits).
func TestShippedConfigsHaveNoWarnings(t *testing.T) {
	env := shippedEnv(signature.NewSecret())
	files, err := filepath.Glob("examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no recipes: %v", err)
	}
	configs := map[string][]byte{
		"demo":                fmt.Appendf(nil, demoConfig, "http://127.0.0.1:9", "http://127.0.0.1:9", signature.NewSecret()),
		"README walkthrough":  []byte(harness.ReadmeWalkthrough(t, "README.md")),
		"config.example.yaml": nil,
	}
	files = append(files, "config.example.yaml")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		configs[f] = data
	}
	for name, data := range configs {
		cfg, err := config.ParseWith(data, env)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for _, w := range cfg.Warnings() {
			t.Errorf("%s: %s", name, w)
		}
	}
}
