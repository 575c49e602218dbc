package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestWritesLayoutAndTarball: both outputs hold the same image config and layers, and the
// tarball names the tag it was given.
func TestWritesLayoutAndTarball(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "pollrelay")
	if err := os.WriteFile(bin, []byte("\x7fELF not really"), 0o755); err != nil {
		t.Fatal(err)
	}
	oci, tar := filepath.Join(dir, "oci"), filepath.Join(dir, "img.tar")
	if err := run([]string{"--binary", bin, "--version", "v9.9.9", "--layout", oci, "--tarball", tar, "--tag", "pollrelay:v9.9.9"}); err != nil {
		t.Fatal(err)
	}
	idx, err := layout.ImageIndexFromPath(oci)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil || len(m.Manifests) != 1 {
		t.Fatalf("layout: %v %+v", err, m)
	}
	tag, _ := name.NewTag("pollrelay:v9.9.9")
	img, err := tarball.ImageFromPath(tar, &tag)
	if err != nil {
		t.Fatal(err)
	}
	fromLayout, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	// The tarball's manifest is docker's, so compare what the manifests
	// point at: the config (which names every layer's diff id).
	a, errA := img.ConfigName()
	b, errB := fromLayout.ConfigName()
	if errA != nil || errB != nil || a != b {
		t.Errorf("tarball config %s (%v), layout config %s (%v)", a, errA, b, errB)
	}
	cf, err := img.ConfigFile()
	if err != nil || cf.Config.Labels["org.opencontainers.image.version"] != "v9.9.9" {
		t.Errorf("config %v, %+v", err, cf)
	}
	if err := run([]string{"--binary", bin}); err == nil {
		t.Error("no output named: no error")
	}
}
