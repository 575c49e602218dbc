// Package kubernetes holds the Kubernetes manifests; its tests render each
// kustomization and decode every object strictly into the k8s.io/api types.
package kubernetes

import (
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	k8sjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/deploy/image"
)

// kustomizations are every directory a user applies with kubectl apply -k.
var kustomizations = []string{"base", "overlays/ephemeral"}

// objects is one rendered kustomization, decoded.
type objects struct {
	deployments []*appsv1.Deployment
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
	claims      map[string]*corev1.PersistentVolumeClaim
}

func render(t *testing.T, dir string) *objects {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	o := &objects{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}, claims: map[string]*corev1.PersistentVolumeClaim{}}
	for _, r := range rm.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		if err := o.add(r.GetKind(), y); err != nil {
			t.Fatalf("%s: %s %s: %v", dir, r.GetKind(), r.GetName(), err)
		}
	}
	return o
}

// add decodes one object strictly: an unknown (misspelt) field, a wrong
// case or a duplicate key is an error, as the API server's strict field
// validation would report it.
func (o *objects) add(kind string, y []byte) error {
	var target any
	switch kind {
	case "Deployment":
		d := new(appsv1.Deployment)
		o.deployments = append(o.deployments, d)
		target = d
	case "ConfigMap":
		c := new(corev1.ConfigMap)
		defer func() { o.configMaps[c.Name] = c }()
		target = c
	case "Secret":
		s := new(corev1.Secret)
		defer func() { o.secrets[s.Name] = s }()
		target = s
	case "PersistentVolumeClaim":
		c := new(corev1.PersistentVolumeClaim)
		defer func() { o.claims[c.Name] = c }()
		target = c
	default:
		return fmt.Errorf("no decoder for kind %s: add it here", kind)
	}
	return decodeStrict(y, target)
}

func decodeStrict(y []byte, target any) error {
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		return err
	}
	strict, err := k8sjson.UnmarshalStrict(j, target)
	if err != nil {
		return err
	}
	if len(strict) > 0 {
		return fmt.Errorf("strict decoding: %v", strict)
	}
	return nil
}

// TestStrictDecodingRefusesMisspeltFields shows the decoder used here
// catches what a typo in a manifest looks like.
func TestStrictDecodingRefusesMisspeltFields(t *testing.T) {
	for _, doc := range []string{
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replica: 1}\n",
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {Replicas: 1}\n",
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {template: {spec: {containers: [{name: a, livenesProbe: {}}]}}}\n",
	} {
		if err := decodeStrict([]byte(doc), new(appsv1.Deployment)); err == nil {
			t.Errorf("accepted:\n%s", doc)
		}
	}
}

func TestManifestsRenderAndMatchTheConfig(t *testing.T) {
	for _, dir := range kustomizations {
		t.Run(dir, func(t *testing.T) {
			o := render(t, dir)
			if len(o.deployments) != 1 {
				t.Fatalf("%d Deployments, want 1", len(o.deployments))
			}
			d := o.deployments[0]
			pod := &d.Spec.Template.Spec
			c := container(t, pod, "pollrelay")
			cfg := podConfig(t, o, pod, c)
			checkSidecar(t, d, c, cfg)
			checkProbes(t, c, cfg)
			checkVolumes(t, o, pod, c, cfg)
			checkSecurity(t, pod)
			checkScrape(t, d, cfg)
		})
	}
}

func container(t *testing.T, pod *corev1.PodSpec, name string) *corev1.Container {
	t.Helper()
	for i := range pod.Containers {
		if pod.Containers[i].Name == name {
			return &pod.Containers[i]
		}
	}
	t.Fatalf("no container %q", name)
	return nil
}

// podConfig loads pollrelay's config from the ConfigMap the Pod mounts,
// with the environment the container gets from the Secret, through
// pollrelay's own loader: the file must be valid as pollrelay reads it.
func podConfig(t *testing.T, o *objects, pod *corev1.PodSpec, c *corev1.Container) *config.Config {
	t.Helper()
	args := c.Args
	if len(args) != 3 || args[0] != "run" || args[1] != "--config" || args[2] != image.ConfigPath {
		t.Fatalf("pollrelay args %q, want run --config %s (the image's)", args, image.ConfigPath)
	}
	mount := mountFor(t, c, filepath.Dir(args[2]))
	cmName := ""
	for _, v := range pod.Volumes {
		if v.Name == mount.Name && v.ConfigMap != nil {
			cmName = v.ConfigMap.Name
		}
	}
	cm := o.configMaps[cmName]
	if cm == nil {
		t.Fatalf("the config volume %q names ConfigMap %q, which the kustomization does not create", mount.Name, cmName)
	}
	data, ok := cm.Data[filepath.Base(args[2])]
	if !ok {
		t.Fatalf("ConfigMap %s has no key %s", cmName, filepath.Base(args[2]))
	}
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			s := o.secrets[ref.Name]
			if s == nil {
				t.Fatalf("env %s: no Secret %s", e.Name, ref.Name)
			}
			v, ok := s.StringData[ref.Key]
			if !ok {
				t.Fatalf("env %s: Secret %s has no key %s", e.Name, ref.Name, ref.Key)
			}
			env[e.Name] = v
		default:
			env[e.Name] = e.Value
		}
	}
	for _, m := range regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`).FindAllStringSubmatch(data, -1) {
		if _, ok := env[m[1]]; !ok {
			t.Errorf("config.yaml uses ${%s}, which the container's env does not set", m[1])
		}
	}
	cfg, err := config.ParseWith([]byte(data), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("the ConfigMap's config.yaml is invalid:\n%v", err)
	}
	return cfg
}

func mountFor(t *testing.T, c *corev1.Container, path string) corev1.VolumeMount {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if m.MountPath == path {
			return m
		}
	}
	t.Fatalf("container %s mounts nothing at %s", c.Name, path)
	return corev1.VolumeMount{}
}

func listenPort(t *testing.T, cfg *config.Config) int32 {
	t.Helper()
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		t.Fatalf("listen %q: %v", cfg.Listen, err)
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || ip.IsLoopback()) {
		t.Errorf("listen %q: the kubelet's probes and Prometheus reach the Pod's IP, not loopback", cfg.Listen)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return int32(n)
}

func checkSidecar(t *testing.T, d *appsv1.Deployment, c *corev1.Container, cfg *config.Config) {
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Errorf("replicas %v: with the embedded store there must be one copy", d.Spec.Replicas)
	}
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("strategy %q: two Pods must not open one Badger directory", d.Spec.Strategy.Type)
	}
	grace := d.Spec.Template.Spec.TerminationGracePeriodSeconds
	if grace == nil || float64(*grace) <= cfg.Delivery.ShutdownGrace.Seconds() {
		t.Errorf("terminationGracePeriodSeconds %v is not above shutdown_grace %v", grace, cfg.Delivery.ShutdownGrace)
	}
	mem := c.Resources.Limits.Memory()
	if mem.IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
		t.Errorf("resources %+v: requests and a memory limit are expected", c.Resources)
	}
	if cfg.MemoryLimitBytes <= 0 || cfg.MemoryLimitBytes >= mem.Value() {
		t.Errorf("memory_limit_bytes %d is not under the container's limit %s", cfg.MemoryLimitBytes, mem)
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != listenPort(t, cfg) {
		t.Errorf("container ports %+v do not match listen %s", c.Ports, cfg.Listen)
	}
}
