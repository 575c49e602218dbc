package kubernetes

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/deploy/image"
)

// routes are the paths pollrelay's server registers outside /v1, read
// from api/server.go: a probe or scrape path must be one of them. (Reading
// the source keeps this module's dependencies to pollrelay's config
// package, instead of everything the server imports.)
func routes(t *testing.T) map[string]bool {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join("..", "..", "api", "server.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) == 0 {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		lit, isLit := call.Args[0].(*ast.BasicLit)
		if ok && isLit && lit.Kind == token.STRING && (sel.Sel.Name == "HandleFunc" || sel.Sel.Name == "Handle") {
			if p, err := strconv.Unquote(lit.Value); err == nil {
				out[p] = true
			}
		}
		return true
	})
	if !out["/healthz"] || !out["/readyz"] {
		t.Fatalf("routes read from api/server.go: %v; the parse is out of date", out)
	}
	return out
}

// port resolves a probe's or annotation's port, by name or number, to the
// container's port number.
func port(t *testing.T, c *corev1.Container, p intstr.IntOrString) int32 {
	t.Helper()
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	t.Fatalf("container %s has no port named %q", c.Name, p.StrVal)
	return 0
}

// checkProbes: liveness on /healthz, start-up on /readyz, and no readiness
// probe (DESIGN.md: a Pod is Ready only when all its containers are, so
// the store's readiness must not decide the app's).
func checkProbes(t *testing.T, c *corev1.Container, cfg *config.Config) {
	want := listenPort(t, cfg)
	probes := []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"startupProbe", c.StartupProbe, "/readyz"},
		{"livenessProbe", c.LivenessProbe, "/healthz"},
	}
	for _, p := range probes {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: want an httpGet on %s", p.name, p.path)
			continue
		}
		h := p.probe.HTTPGet
		if h.Path != p.path {
			t.Errorf("%s: path %s, want %s", p.name, h.Path, p.path)
		}
		if got := port(t, c, h.Port); got != want {
			t.Errorf("%s: port %d, but pollrelay listens on %s", p.name, got, cfg.Listen)
		}
		if !routes(t)[h.Path] {
			t.Errorf("%s: pollrelay's server has no route %s", p.name, h.Path)
		}
	}
	if c.ReadinessProbe != nil {
		t.Errorf("readinessProbe %+v: use /readyz as the startupProbe only", c.ReadinessProbe)
	}
}

func checkVolumes(t *testing.T, o *objects, pod *corev1.PodSpec, c *corev1.Container, cfg *config.Config) {
	if cfg.Storage.Path != image.DataDir {
		t.Errorf("storage.path %s is not the image's data volume %s", cfg.Storage.Path, image.DataDir)
	}
	m := mountFor(t, c, cfg.Storage.Path)
	if m.ReadOnly {
		t.Errorf("storage.path %s is mounted read-only", cfg.Storage.Path)
	}
	i := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
	if i < 0 {
		t.Fatalf("no volume %q for storage.path", m.Name)
	}
	v := pod.Volumes[i]
	switch {
	case v.PersistentVolumeClaim != nil:
		if o.claims[v.PersistentVolumeClaim.ClaimName] == nil {
			t.Errorf("volume %s claims %q, which the kustomization does not create", v.Name, v.PersistentVolumeClaim.ClaimName)
		}
	case v.EmptyDir != nil:
	default:
		t.Errorf("volume %s for the store is neither a claim nor an emptyDir: %+v", v.Name, v.VolumeSource)
	}
}

// checkSecurity: non-root as the image's user, a read-only root (the image
// test proves pollrelay writes only its data volume), no capabilities.
func checkSecurity(t *testing.T, pod *corev1.PodSpec) {
	sc := pod.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("the Pod does not set runAsNonRoot")
	}
	if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != image.UID || sc.FSGroup == nil || *sc.FSGroup != image.UID {
		t.Errorf("the Pod must run as, and give its volumes to, the image's user %d", image.UID)
	}
	for _, c := range pod.Containers {
		s := c.SecurityContext
		if s == nil || s.ReadOnlyRootFilesystem == nil || !*s.ReadOnlyRootFilesystem {
			t.Errorf("container %s: readOnlyRootFilesystem not set", c.Name)
		}
		if s == nil || s.AllowPrivilegeEscalation == nil || *s.AllowPrivilegeEscalation {
			t.Errorf("container %s: allowPrivilegeEscalation not false", c.Name)
		}
		if s == nil || s.Capabilities == nil || !slices.Contains(s.Capabilities.Drop, "ALL") {
			t.Errorf("container %s: capabilities not dropped", c.Name)
		}
	}
}

func checkScrape(t *testing.T, d *appsv1.Deployment, cfg *config.Config) {
	a := d.Spec.Template.Annotations
	if a["prometheus.io/scrape"] != "true" {
		t.Errorf("annotations %v: no prometheus.io/scrape", a)
	}
	if a["prometheus.io/port"] != strconv.Itoa(int(listenPort(t, cfg))) {
		t.Errorf("prometheus.io/port %q, but pollrelay listens on %s", a["prometheus.io/port"], cfg.Listen)
	}
	if !routes(t)[a["prometheus.io/path"]] {
		t.Errorf("prometheus.io/path %q: pollrelay's server has no such route", a["prometheus.io/path"])
	}
}
