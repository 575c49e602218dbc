// Package image builds pollrelay's container image without a container
// engine: one layer holding the static binary, CA certificates, a passwd
// entry for the non-root user and the data directory it owns, on an empty
// base. It writes what the Dockerfile in the repository's root builds, so
// the image tested here is the one users run.
package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's layout. The Dockerfile uses the same paths, user and port.
const (
	BinaryPath  = "/usr/local/bin/pollrelay"
	CACertsPath = "/etc/ssl/certs/ca-certificates.crt"
	ConfigPath  = "/etc/pollrelay/config.yaml"
	DataDir     = "/var/lib/pollrelay"
	UID         = 65532 // distroless's "nonroot"
	User        = "65532:65532"
	Port        = "8787/tcp"
)

// Options says what goes into the image.
type Options struct {
	Binary  string // a static pollrelay binary (CGO_ENABLED=0)
	CACerts string // PEM bundle; default /etc/ssl/certs/ca-certificates.crt
	Version string // org.opencontainers.image.version
	// Revision and Source become the matching OCI labels when set.
	Revision string
	Source   string
	// Created is the image's creation time; zero keeps the build
	// reproducible (the Unix epoch).
	Created time.Time
	// Arch is the binary's architecture (GOARCH); default amd64.
	Arch string
}

// Build returns the image.
func Build(o Options) (v1.Image, error) {
	if o.CACerts == "" {
		o.CACerts = CACertsPath
	}
	if o.Arch == "" {
		o.Arch = "amd64"
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return nil, fmt.Errorf("image: read binary: %w", err)
	}
	certs, err := os.ReadFile(o.CACerts)
	if err != nil {
		return nil, fmt.Errorf("image: read CA certificates: %w", err)
	}
	layer, err := rootLayer(bin, certs)
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		return nil, fmt.Errorf("image: add layer: %w", err)
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image: config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", o.Arch
	cf.Created = v1.Time{Time: o.Created.UTC()}
	cf.Config = imageConfig(o)
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("image: set config: %w", err)
	}
	return img, nil
}

func imageConfig(o Options) v1.Config {
	labels := map[string]string{
		"org.opencontainers.image.title":       "pollrelay",
		"org.opencontainers.image.description": "Webhooks for APIs that have none: polls upstream APIs and delivers each transition as a signed webhook.",
		"org.opencontainers.image.version":     o.Version,
		"org.opencontainers.image.created":     o.Created.UTC().Format(time.RFC3339),
	}
	if o.Revision != "" {
		labels["org.opencontainers.image.revision"] = o.Revision
	}
	if o.Source != "" {
		labels["org.opencontainers.image.source"] = o.Source
	}
	return v1.Config{
		User:         User,
		Entrypoint:   []string{BinaryPath},
		Cmd:          []string{"run", "--config", ConfigPath},
		WorkingDir:   DataDir,
		Env:          []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
		ExposedPorts: map[string]struct{}{Port: {}},
		Volumes:      map[string]struct{}{DataDir: {}},
		Labels:       labels,
	}
}

const passwd = "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
const group = "root:x:0:\nnonroot:x:65532:\n"

// rootLayer is the whole filesystem. Everything is root's and read-only to
// the user pollrelay runs as, except the data directory.
func rootLayer(bin, certs []byte) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	dir := func(name string, uid int) *tar.Header {
		return &tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, Uid: uid, Gid: uid, ModTime: epoch}
	}
	file := func(name string, mode int64, body []byte) *tar.Header {
		return &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body)), ModTime: epoch}
	}
	entries := []struct {
		h    *tar.Header
		body []byte
	}{
		{dir("etc", 0), nil},
		{file("etc/passwd", 0o644, []byte(passwd)), []byte(passwd)},
		{file("etc/group", 0o644, []byte(group)), []byte(group)},
		{dir("etc/pollrelay", 0), nil},
		{dir("etc/ssl", 0), nil},
		{dir("etc/ssl/certs", 0), nil},
		{file("etc/ssl/certs/ca-certificates.crt", 0o644, certs), certs},
		{dir("home", 0), nil},
		{dir("home/nonroot", 0), nil},
		{dir("usr", 0), nil},
		{dir("usr/local", 0), nil},
		{dir("usr/local/bin", 0), nil},
		{file("usr/local/bin/pollrelay", 0o755, bin), bin},
		{dir("var", 0), nil},
		{dir("var/lib", 0), nil},
		{dir("var/lib/pollrelay", UID), nil},
	}
	entries[len(entries)-1].h.Mode = 0o700
	for _, e := range entries {
		if err := tw.WriteHeader(e.h); err != nil {
			return nil, fmt.Errorf("image: layer %s: %w", e.h.Name, err)
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, fmt.Errorf("image: layer %s: %w", e.h.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("image: layer: %w", err)
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}
