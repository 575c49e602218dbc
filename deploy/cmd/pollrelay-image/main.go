// Command pollrelay-image builds pollrelay's container image from a static
// binary, without a container engine and without the network, as an OCI
// image layout directory and/or a tarball that `docker load` and
// `podman load` accept.
//
//	CGO_ENABLED=0 go build -trimpath -ldflags "-X github.com/pollrelay/pollrelay/internal/version.stamped=v1.2.3" -o pollrelay .
//	cd deploy && go run ./cmd/pollrelay-image --binary ../pollrelay --version v1.2.3 --tarball ../pollrelay.tar
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/pollrelay/pollrelay/deploy/image"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "pollrelay-image:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("pollrelay-image", flag.ContinueOnError)
	var o image.Options
	fs.StringVar(&o.Binary, "binary", "pollrelay", "the static pollrelay binary")
	fs.StringVar(&o.CACerts, "ca-certs", image.CACertsPath, "PEM bundle of CA certificates to include")
	fs.StringVar(&o.Version, "version", "dev", "the version label")
	fs.StringVar(&o.Revision, "revision", "", "the source revision label")
	fs.StringVar(&o.Source, "source", "", "the source repository label")
	fs.StringVar(&o.Arch, "arch", "amd64", "the binary's GOARCH")
	out := fs.String("layout", "", "write an OCI image layout to this directory")
	tar := fs.String("tarball", "", "write a docker/podman-loadable tarball to this file")
	tag := fs.String("tag", "pollrelay:dev", "the tarball's image reference")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" && *tar == "" {
		return fmt.Errorf("give --layout DIR, --tarball FILE or both")
	}
	img, err := image.Build(o)
	if err != nil {
		return err
	}
	if *out != "" {
		p, err := layout.Write(*out, empty.Index)
		if err != nil {
			return fmt.Errorf("layout %s: %w", *out, err)
		}
		if err := p.AppendImage(img); err != nil {
			return fmt.Errorf("layout %s: %w", *out, err)
		}
	}
	if *tar != "" {
		ref, err := name.NewTag(*tag)
		if err != nil {
			return fmt.Errorf("tag %q: %w", *tag, err)
		}
		if err := tarball.WriteToFile(*tar, ref, img); err != nil {
			return fmt.Errorf("tarball %s: %w", *tar, err)
		}
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Println(d)
	return nil
}
