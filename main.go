// Command pollrelay gives webhooks to APIs that have none: it polls their
// status endpoints, detects transitions and delivers each as a signed
// webhook, with durable retries.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `pollrelay gives webhooks to APIs that have none.

Usage:
  pollrelay run --config FILE              run the sidecar
  pollrelay validate --config FILE         check a config and list every problem
  pollrelay probe --config FILE [--source NAME]
                                           poll once and show what would fire
  pollrelay demo [--for 30s]               a simulated API, the bridge and a receiver
  pollrelay version                        print the version
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stdout, stderr)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "probe":
		return cmdProbe(args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "pollrelay", Version())
		return 0
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "pollrelay: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

// Version is the build's version: set by -ldflags, else the module
// version, else "dev".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
