package version

import (
	"runtime/debug"
	"testing"
)

func TestFromBuild(t *testing.T) {
	vcs := []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-01-15T10:30:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}
	cases := []struct {
		name    string
		bi      *debug.BuildInfo
		stamped string
		want    string
	}{
		{"ldflags win", &debug.BuildInfo{Main: debug.Module{Version: "v1.0.0"}, Settings: vcs}, "v2.0.0",
			"pollrelay v2.0.0 (commit 0123456789ab, 2026-01-15T10:30:00Z, modified)"},
		{"module version", &debug.BuildInfo{Main: debug.Module{Version: "v1.3.0"}}, "", "pollrelay v1.3.0 (commit unknown)"},
		{"devel with a commit", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs}, "",
			"pollrelay dev-0123456789ab-dirty (commit 0123456789ab, 2026-01-15T10:30:00Z, modified)"},
		{"nothing known", nil, "", "pollrelay dev (commit unknown)"},
	}
	for _, c := range cases {
		if got := fromBuild(c.bi, c.stamped).Long(); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
