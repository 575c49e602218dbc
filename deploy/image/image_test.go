package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

const testVersion = "v0.0.0-imagetest"

// TestImageIsSelfContained builds the image from a freshly built static
// binary, writes it as an OCI layout, reads it back, unpacks its
// filesystem and runs pollrelay from the unpacked root — chrooted into it
// as the image's user when the test runs as root (as CI does), so nothing
// from the build machine can be used and nothing outside the data volume
// can be written.
func TestImageIsSelfContained(t *testing.T) {
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	img, err := Build(Options{Binary: bin, Version: testVersion, Revision: "abc123", Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	img = roundTrip(t, img, filepath.Join(dir, "oci"))
	checkConfig(t, img)

	root := filepath.Join(dir, "root")
	unpack(t, img, root)
	checkFilesystem(t, root)

	out := runInRoot(t, root, 30*time.Second, "version")
	if !strings.Contains(out, "pollrelay "+testVersion) {
		t.Fatalf("pollrelay version in the image printed %q", out)
	}
	out = runInRoot(t, root, 60*time.Second, "demo", "--for", "5s")
	verified := regexp.MustCompile(`(?m)^✓ .*signature verified, webhook-id evt_`)
	if n := len(verified.FindAllString(out, -1)); n < 1 || !strings.Contains(out, ", 0 rejected") {
		t.Fatalf("the demo in the image verified %d webhooks:\n%s", n, out)
	}
}

// TestImageRunsWithItsDataVolume runs the sidecar itself from the unpacked
// image, its Badger store in the data directory, until /readyz answers and
// a SIGTERM stops it cleanly.
func TestImageRunsWithItsDataVolume(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs as root; this test must chroot into the image there")
		}
		t.Skip("needs root to chroot into the unpacked image as its user")
	}
	dir := t.TempDir()
	img, err := Build(Options{Binary: buildBinary(t, dir), Version: testVersion})
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root")
	unpack(t, img, root)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"data":[{"id":"a","status":"ready"}]}`)
	}))
	defer upstream.Close()
	addr := freeAddr(t)
	cfg := fmt.Sprintf(`listen: %s
storage: {path: %s}
log: {level: info, format: json}
sources:
  - {name: jobs, url: %s, interval: 1s, timeout: 500ms, items: '.data[]', id: '.id', state: '.status'}
`, addr, DataDir, upstream.URL)
	if err := os.WriteFile(filepath.Join(root, ConfigPath), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := inRoot(root, "run", "--config", ConfigPath)
	logs, err := os.Create(filepath.Join(dir, "pollrelay.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitReady(t, "http://"+addr+"/readyz", logs.Name())
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("pollrelay run in the image: %v\n%s", err, readLog(logs.Name()))
	}
	entries, err := os.ReadDir(filepath.Join(root, DataDir))
	if err != nil || len(entries) == 0 {
		t.Fatalf("no Badger files in the data volume (%v)\n%s", err, readLog(logs.Name()))
	}
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// TestMain removes the binary the tests share.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// buildBinary builds pollrelay the way the Dockerfile does, once for all
// the tests here.
func buildBinary(t *testing.T, _ string) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "pollrelay-image-")
		if buildErr == nil {
			buildErr = compile(filepath.Join(buildDir, "pollrelay"))
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "pollrelay")
}

func compile(bin string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X github.com/pollrelay/pollrelay/internal/version.stamped="+testVersion, "-o", bin, ".")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			return fmt.Errorf("the binary is dynamically linked (%v); the image has no libc", p.Type)
		}
	}
	return nil
}

// roundTrip writes img as an OCI layout and reads it back, so what is
// checked is what a registry or `skopeo copy oci:` would get.
func roundTrip(t *testing.T, img v1.Image, dir string) v1.Image {
	t.Helper()
	p, err := layout.Write(dir, emptyIndex(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil || len(m.Manifests) != 1 {
		t.Fatalf("layout index: %v, %+v", err, m)
	}
	back, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return back
}

func checkConfig(t *testing.T, img v1.Image) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User == "" || c.User == "root" || strings.HasPrefix(c.User, "0:") || c.User == "0" {
		t.Errorf("user %q: the image must not run as root", c.User)
	}
	if len(c.Entrypoint) != 1 || c.Entrypoint[0] != BinaryPath {
		t.Errorf("entrypoint %q, want [%s]", c.Entrypoint, BinaryPath)
	}
	if strings.Join(c.Cmd, " ") != "run --config "+ConfigPath {
		t.Errorf("cmd %q", c.Cmd)
	}
	if _, ok := c.ExposedPorts[Port]; !ok {
		t.Errorf("exposed ports %v lack %s", c.ExposedPorts, Port)
	}
	if len(c.Volumes) != 1 {
		t.Errorf("volumes %v, want only %s", c.Volumes, DataDir)
	}
	if _, ok := c.Volumes[DataDir]; !ok {
		t.Errorf("volumes %v lack %s", c.Volumes, DataDir)
	}
	if c.Healthcheck != nil {
		t.Errorf("healthcheck %+v: probes belong to the orchestrator", c.Healthcheck)
	}
	want := map[string]string{
		"org.opencontainers.image.title":    "pollrelay",
		"org.opencontainers.image.version":  testVersion,
		"org.opencontainers.image.revision": "abc123",
		"org.opencontainers.image.created":  "2026-01-02T03:04:05Z",
	}
	for k, v := range want {
		if c.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], v)
		}
	}
	if cf.OS != "linux" || cf.Architecture == "" {
		t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
	}
}

// unpack writes the image's flattened filesystem under root, with the
// modes and, when running as root, the owners the image gives.
func unpack(t *testing.T, img v1.Image, root string) {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(p, root+string(filepath.Separator)) {
			t.Fatalf("layer entry %q escapes the root", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, os.FileMode(h.Mode).Perm())
		case tar.TypeReg:
			err = writeFile(p, tr, os.FileMode(h.Mode).Perm())
		default:
			t.Fatalf("unexpected layer entry %q of type %c", h.Name, h.Typeflag)
		}
		if err == nil {
			err = os.Chmod(p, os.FileMode(h.Mode).Perm())
		}
		if err == nil && os.Geteuid() == 0 {
			err = os.Lchown(p, h.Uid, h.Gid)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func writeFile(p string, r io.Reader, mode os.FileMode) error {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	return errors.Join(err, f.Close())
}

// checkFilesystem checks the passwd entry of the image's user, the CA
// bundle, and that the data directory is the only place the user may write.
func checkFilesystem(t *testing.T, root string) {
	t.Helper()
	pw, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if err != nil {
		t.Fatal(err)
	}
	if !passwdHas(pw, fmt.Sprint(UID)) {
		t.Errorf("/etc/passwd has no entry for uid %d:\n%s", UID, pw)
	}
	pem, err := os.ReadFile(filepath.Join(root, CACertsPath))
	if err != nil {
		t.Fatal(err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		t.Errorf("%s holds no certificate", CACertsPath)
	}
	err = filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel := "/" + strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
		st := fi.Sys().(*syscall.Stat_t)
		writable := fi.Mode().Perm()&0o002 != 0 || (int(st.Uid) == UID && fi.Mode().Perm()&0o200 != 0)
		if writable != (rel == DataDir) && os.Geteuid() == 0 {
			t.Errorf("%s: writable by the image's user = %v; only %s should be", rel, writable, DataDir)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func passwdHas(pw []byte, uid string) bool {
	sc := bufio.NewScanner(bytes.NewReader(pw))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) == 7 && f[2] == uid {
			return true
		}
	}
	return false
}

// inRoot is pollrelay started from the unpacked image: chrooted into it as
// the image's user when possible, else the unpacked binary run directly.
func inRoot(root string, args ...string) *exec.Cmd {
	if os.Geteuid() != 0 {
		cmd := exec.Command(filepath.Join(root, BinaryPath), args...)
		cmd.Dir = root
		return cmd
	}
	cmd := exec.Command(BinaryPath, args...)
	cmd.Path = BinaryPath // resolved inside the chroot, not on this machine
	cmd.Dir = DataDir
	cmd.Env = []string{"PATH=/usr/local/bin", "HOME=/home/nonroot"}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot:     root,
		Credential: &syscall.Credential{Uid: UID, Gid: UID},
	}
	return cmd
}

func runInRoot(t *testing.T, root string, timeout time.Duration, args ...string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Logf("not root: running the unpacked binary without chroot")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := inRoot(root, args...)
	cmd = withContext(ctx, cmd)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pollrelay %s in the image: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// withContext kills cmd when ctx ends.
func withContext(ctx context.Context, cmd *exec.Cmd) *exec.Cmd {
	c := exec.CommandContext(ctx, cmd.Path)
	c.Args, c.Dir, c.Env, c.SysProcAttr = cmd.Args, cmd.Dir, cmd.Env, cmd.SysProcAttr
	return c
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func readLog(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func waitReady(t *testing.T, url, logs string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never answered 200\n%s", url, readLog(logs))
}

func emptyIndex(t *testing.T) v1.ImageIndex {
	t.Helper()
	return empty.Index
}
