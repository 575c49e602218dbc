package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMissingChild is run by TestMissingFailsInCI in a child process.
func TestMissingChild(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") != "1" {
		t.Skip("run by TestMissingFailsInCI")
	}
	Missing(t, "node_modules not installed")
}

// TestMissingFailsInCI: the same missing dependency skips on a laptop and
// fails under CI=true.
func TestMissingFailsInCI(t *testing.T) {
	for _, c := range []struct {
		ci     string
		fails  bool
		output string
	}{
		{"true", true, "CI=true, and a test dependency is missing: node_modules not installed"},
		{"1", true, "a test dependency is missing"},
		{"", false, "--- SKIP"},
		{"false", false, "--- SKIP"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMissingChild$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTENV_CHILD=1", "CI="+c.ci)
		out, err := cmd.CombinedOutput()
		if (err != nil) != c.fails || !strings.Contains(string(out), c.output) {
			t.Errorf("CI=%q: err %v, output:\n%s", c.ci, err, out)
		}
	}
}
