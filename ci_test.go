package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestInteropDepsFailLoudly: the step CI runs to install the interop
// test's library fails when npm is missing or npm ci fails, instead of
// carrying on to a test that would skip.
func TestInteropDepsFailLoudly(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal("bash is needed to run scripts/interop-deps.sh")
	}
	for name, npm := range map[string]string{
		"npm ci fails": "#!/bin/sh\necho 'npm ERR! network' >&2\nexit 1\n",
		"npm missing":  "",
	} {
		bin := t.TempDir()
		if npm != "" {
			if err := os.WriteFile(filepath.Join(bin, "npm"), []byte(npm), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command(bash, "scripts/interop-deps.sh")
		cmd.Env = append(os.Environ(), "PATH="+bin+":/usr/bin:/bin")
		if npm == "" {
			// No npm anywhere on this PATH: only the script's own tools.
			for _, tool := range []string{"dirname"} {
				p, err := exec.LookPath(tool)
				if err != nil {
					t.Fatal(err)
				}
				os.Symlink(p, filepath.Join(bin, tool))
			}
			cmd.Env = append(os.Environ(), "PATH="+bin)
		}
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("%s: the step succeeded:\n%s", name, out)
		}
		if !strings.Contains(string(out), "npm") {
			t.Errorf("%s: no word about npm in:\n%s", name, out)
		}
	}
}
