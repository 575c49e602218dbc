package image

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDockerfileMatchesImage keeps the Dockerfile users build and the image
// tested here the same image: one user, entrypoint, command, port and data
// volume, a static -trimpath binary with its version stamped, and no
// HEALTHCHECK (the orchestrator's probes do that).
func TestDockerfileMatchesImage(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	runtime := df[strings.LastIndex(df, "\nFROM "):]
	want := []string{
		"\nUSER " + User + "\n",
		`ENTRYPOINT ["` + BinaryPath + `"]`,
		`CMD ["run", "--config", "` + ConfigPath + `"]`,
		"\nEXPOSE " + strings.TrimSuffix(Port, "/tcp") + "\n",
		"\nVOLUME " + DataDir + "\n",
		"\nWORKDIR " + DataDir + "\n",
		"--chown=65532:65532 --chmod=700 /out" + DataDir + " " + DataDir,
		"COPY --from=build /out" + BinaryPath + " " + BinaryPath,
	}
	for _, w := range want {
		if !strings.Contains(runtime, w) {
			t.Errorf("the Dockerfile's runtime stage lacks %q", w)
		}
	}
	if !regexp.MustCompile(`\nFROM gcr\.io/distroless/static[^\n]*:nonroot\n`).MatchString(runtime) {
		t.Error("the runtime stage is not distroless/static:nonroot")
	}
	for _, w := range []string{"CGO_ENABLED=0", "-trimpath", "-X github.com/pollrelay/pollrelay/internal/version.stamped=${VERSION}"} {
		if !strings.Contains(df, w) {
			t.Errorf("the Dockerfile's build lacks %q", w)
		}
	}
	if regexp.MustCompile(`(?m)^\s*HEALTHCHECK`).MatchString(df) {
		t.Error("the Dockerfile has a HEALTHCHECK")
	}
}
