// Package version says which build of pollrelay is running, for
// `pollrelay version` and the User-Agent of every request it sends.
package version

import (
	"runtime/debug"
	"strings"
)

// stamped is set at build time:
//
//	go build -ldflags "-X github.com/pollrelay/pollrelay/internal/version.stamped=v1.2.0"
var stamped = ""

// Info is what the build knows about itself.
type Info struct {
	Version  string // v1.2.0, a pseudo-version, or dev
	Revision string // the VCS commit, empty when not built from a checkout
	Time     string // the commit's time (RFC 3339), when known
	Modified bool   // built from a checkout with uncommitted changes
}

// Get reads the version from -ldflags, else from the module build info
// (a tagged or pseudo-version `go build` stamps from the checkout), else
// "dev", with the commit `go build` records (vcs.revision, vcs.time,
// vcs.modified). `go run` and `go test` record no commit.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return fromBuild(bi, stamped)
}

// fromBuild is Get over given build info (nil: none) and -ldflags value.
func fromBuild(bi *debug.BuildInfo, stamped string) Info {
	var in Info
	ok := bi != nil
	if ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				in.Revision = s.Value
			case "vcs.time":
				in.Time = s.Value
			case "vcs.modified":
				in.Modified = s.Value == "true"
			}
		}
	}
	switch {
	case stamped != "":
		in.Version = stamped
	case ok && bi.Main.Version != "" && bi.Main.Version != "(devel)":
		in.Version = bi.Main.Version
	case in.Revision != "":
		in.Version = "dev-" + short(in.Revision)
		if in.Modified {
			in.Version += "-dirty"
		}
	default:
		in.Version = "dev"
	}
	return in
}

// String is the version alone, as in the User-Agent.
func String() string { return Get().Version }

// UserAgent is "pollrelay/<version>".
func UserAgent() string { return "pollrelay/" + String() }

// Long is the version with its commit, for `pollrelay version`:
// "pollrelay v1.2.0 (commit 0123456789ab, 2026-01-15T10:30:00Z, modified)".
func (in Info) Long() string {
	var parts []string
	if in.Revision != "" {
		parts = append(parts, "commit "+short(in.Revision))
	} else {
		parts = append(parts, "commit unknown")
	}
	if in.Time != "" {
		parts = append(parts, in.Time)
	}
	if in.Modified {
		parts = append(parts, "modified")
	}
	return "pollrelay " + in.Version + " (" + strings.Join(parts, ", ") + ")"
}

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}
