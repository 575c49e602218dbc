// Command pollrelay gives webhooks to APIs that have none: it polls their
// status endpoints, detects transitions and delivers each as a signed
// webhook, with durable retries.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pollrelay/pollrelay/internal/version"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// command is one subcommand: what `pollrelay help` says about it and how
// it runs. flags declares its flags, on throwaway values, for its help.
type command struct {
	name    string
	args    string // after the name in its usage line
	summary string // one line, for the command list
	about   string // a paragraph, for its help
	example string
	flags   func(fs *flagSet)
	run     func(c *command, args []string, stdout, stderr io.Writer) int
}

// commands is the CLI, in the order `pollrelay help` lists it.
var commands []*command

func init() {
	commands = []*command{runCommand, validateCommand, probeCommand, demoCommand, migrateCommand, secretCommand, versionCommand, helpCommand}
}

// lookup finds a command by name.
func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return 2
	}
	switch args[0] {
	case "--help", "-h", "-help":
		fmt.Fprint(stdout, usage())
		return 0
	case "--version", "-v":
		args[0] = "version"
	}
	c := lookup(args[0])
	if c == nil {
		fmt.Fprintf(stderr, "pollrelay: unknown command %q\n\n%s", args[0], usage())
		return 2
	}
	return c.run(c, args[1:], stdout, stderr)
}

// usage is the top-level help.
func usage() string {
	var b strings.Builder
	b.WriteString("pollrelay gives webhooks to APIs that have none: it polls their status\n" +
		"endpoints, detects transitions and delivers each as a signed webhook.\n\nUsage:\n")
	for _, c := range commands {
		line := "pollrelay " + c.name
		if c.args != "" {
			line += " " + c.args
		}
		fmt.Fprintf(&b, "  %-44s %s\n", line, c.summary)
	}
	b.WriteString(`
Run 'pollrelay help COMMAND' (or 'pollrelay COMMAND --help') for a command's
flags and an example. New here? 'pollrelay demo' runs everything locally;
'pollrelay demo --recipe NAME' plays a vendor recipe (` + strings.Join(recipeNames(), ", ") + `).

Environment:
  ${NAME} in any string value of the config expands to the variable.
  POLLRELAY_<KEY> overrides a config key; a double underscore nests:
  POLLRELAY_API_TOKEN sets api_token, POLLRELAY_STORAGE__PATH storage.path.

Signals (run):
  SIGTERM, SIGINT  stop polling, let in-flight deliveries finish within
                   delivery.shutdown_grace, close the store
  SIGHUP           reload the config file; a bad file keeps the running one
`)
	return b.String()
}

var versionCommand = &command{
	name:    "version",
	summary: "print the version and the commit it was built from",
	about: "Prints pollrelay's version (set with -ldflags, else the module version go build\n" +
		"stamps from the checkout, else dev) and the commit, its time and whether the\n" +
		"checkout had uncommitted changes. The version is also the User-Agent\n" +
		"pollrelay/<version> of every request pollrelay sends.",
	example: "pollrelay version",
	run: func(c *command, args []string, stdout, stderr io.Writer) int {
		if code, ok := parseArgs(c, args, stdout, stderr, nil); !ok {
			return code
		}
		fmt.Fprintln(stdout, version.Get().Long())
		return 0
	},
}

var helpCommand = &command{
	name:    "help",
	args:    "[COMMAND]",
	summary: "describe pollrelay or one command",
	about:   "Without a command, lists the commands; with one, prints its description, flags and an example.",
	example: "pollrelay help probe",
	run: func(_ *command, args []string, stdout, stderr io.Writer) int {
		switch len(args) {
		case 0:
			fmt.Fprint(stdout, usage())
			return 0
		case 1:
			c := lookup(args[0])
			if c == nil {
				fmt.Fprintf(stderr, "pollrelay help: unknown command %q\n\n%s", args[0], usage())
				return 2
			}
			printHelp(stdout, c)
			return 0
		}
		fmt.Fprintf(stderr, "pollrelay help: takes at most one command, got %q\n", strings.Join(args, " "))
		return 2
	},
}
