package e2e

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

// binPath is the binary TestMain built; empty under -short.
var binPath string

// TestMain builds the binary once, before any test, and removes it after
// the last: it outlives every one test.
func TestMain(m *testing.M) {
	flag.Parse()
	if !testing.Short() {
		dir, err := os.MkdirTemp("", "pollrelay-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		binPath = filepath.Join(dir, "pollrelay")
		if out, err := exec.Command("go", "build", "-o", binPath, "github.com/pollrelay/pollrelay").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// binary is the path of the built binary; under -short the test is
// skipped instead.
func binary(t testing.TB) string {
	t.Helper()
	if binPath == "" {
		t.Skip("builds and runs the real binary")
	}
	return binPath
}

// process runs the real binary and can SIGKILL and restart it.
type process struct {
	mu   sync.Mutex
	t    *testing.T
	bin  string
	args []string
	log  *os.File
	cmd  *exec.Cmd
	exit chan error
}

func startProcess(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "pollrelay.log"))
	if err != nil {
		t.Fatal(err)
	}
	p := &process{t: t, bin: bin, args: args, log: f}
	p.start()
	t.Cleanup(func() {
		p.kill()
		f.Close()
		if t.Failed() {
			if out, err := os.ReadFile(f.Name()); err == nil {
				t.Logf("pollrelay output (last 8 KiB):\n%s", tail(out, 8<<10))
			}
		}
	})
	return p
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func (p *process) start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cmd = exec.Command(p.bin, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.exit = make(chan error, 1)
	go func(c *exec.Cmd, ch chan error) { ch <- c.Wait() }(p.cmd, p.exit)
}

func (p *process) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exit
	p.cmd = nil
}

// runBinary runs the binary to its end and returns its exit status, stdout
// and stderr.
func runBinary(t testing.TB, bin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		return ee.ExitCode(), out.String(), errb.String()
	}
	if err != nil {
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	return 0, out.String(), errb.String()
}
