package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestHelp: every command's help, however it is asked for, is the same
// complete text on stdout with exit 0: usage line, description, each flag,
// an example.
func TestHelp(t *testing.T) {
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			code, want, errOut := runCLI("help", c.name)
			if code != 0 || errOut != "" {
				t.Fatalf("help %s: exit %d, stderr %q", c.name, code, errOut)
			}
			for _, part := range []string{"Usage: pollrelay " + c.name, c.about, "Example:\n  " + strings.ReplaceAll(c.example, "\n", "\n  ")} {
				if !strings.Contains(want, part) {
					t.Errorf("help %s lacks %q:\n%s", c.name, part, want)
				}
			}
			var fs flagSet
			if c.flags != nil {
				c.flags(&fs)
			}
			fs.VisitAll(func(f *flagDef) {
				if !strings.Contains(want, "--"+f.Name) {
					t.Errorf("help %s does not describe --%s", c.name, f.Name)
				}
			})
			if c.name == "help" {
				return
			}
			for _, form := range []string{"--help", "-h"} {
				code, out, errOut := runCLI(c.name, form)
				if code != 0 || out != want || errOut != "" {
					t.Errorf("%s %s: exit %d, stderr %q, stdout differs from help %s: %q", c.name, form, code, errOut, c.name, out)
				}
			}
		})
	}
	code, out, _ := runCLI("help")
	if code != 0 {
		t.Errorf("help: exit %d", code)
	}
	for _, want := range []string{"demo [--for 30s] [--recipe NAME]", "POLLRELAY_API_TOKEN", "POLLRELAY_STORAGE__PATH", "SIGHUP", "SIGTERM", "pollrelay secret"} {
		if !strings.Contains(out, want) {
			t.Errorf("top-level help lacks %q", want)
		}
	}
	if code, _, errOut := runCLI("help", "nope"); code != 2 || !strings.Contains(errOut, `unknown command "nope"`) {
		t.Errorf("help nope: exit %d, %q", code, errOut)
	}
}

// TestStrayArguments: an argument a command does not take is named, not
// mistaken for a missing flag or ignored.
func TestStrayArguments(t *testing.T) {
	for _, args := range [][]string{
		{"validate", "extra", "--config", "f.yaml"},
		{"probe", "--config", "f.yaml", "extra"},
		{"run", "extra"},
		{"version", "extra"},
		{"secret", "extra"},
		{"demo", "extra"},
	} {
		code, out, errOut := runCLI(args...)
		if code != 2 || out != "" || !strings.Contains(errOut, `unexpected argument "extra"`) || !strings.Contains(errOut, "pollrelay help "+args[0]) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	if code, _, errOut := runCLI("validate"); code != 2 || !strings.Contains(errOut, "--config FILE is required") {
		t.Errorf("validate without --config: exit %d, %q", code, errOut)
	}
}

// TestSecretCommand prints a secret validate accepts, fresh each time.
func TestSecretCommand(t *testing.T) {
	_, a, _ := runCLI("secret")
	_, b, _ := runCLI("secret")
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	if !strings.HasPrefix(a, "whsec_") || a == b {
		t.Fatalf("secrets %q and %q", a, b)
	}
	path := filepath.Join(t.TempDir(), "c.yaml")
	yaml := fmt.Sprintf("storage: {in_memory: true}\nsources: [{name: a, url: 'http://127.0.0.1:9/a'}]\nsubscriptions: [{name: s, url: 'http://127.0.0.1:9/h', secret: %q}]\n", a)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI("validate", "--config", path); code != 0 || errOut != "" {
		t.Errorf("validate with a fresh secret: exit %d, %q", code, errOut)
	}
}

// TestValidateWarns: a glob nothing emits and a short secret are warnings:
// printed, exit 0.
func TestValidateWarns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	yaml := "storage: {in_memory: true}\nsources:\n  - {name: videos, url: 'http://127.0.0.1:9/v', events: [{type: 'video.status.{current}', on: [created, changed]}]}\n" +
		"subscriptions: [{name: s, url: 'http://127.0.0.1:9/h', events: ['video.stauts.*'], secret: whsec_c2hvcnQ=}]\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI("validate", "--config", path)
	if code != 0 || !strings.HasPrefix(out, "config ok") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, want := range []string{`warning: subscriptions[0].events[0]: "video.stauts.*" matches no event type`, "warning: subscriptions[0].secret: the key is 5 bytes"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}
