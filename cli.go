package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/pollrelay/pollrelay/config"
)

// flagSet is the standard library's, named here so command tables read
// plainly.
type flagSet = flag.FlagSet

// flagDef is one declared flag.
type flagDef = flag.Flag

// parseArgs parses a command's flags (declare adds them; nil: none). When
// it returns false the command exits with code: 0 after printing its help
// for --help or -h, 2 after a usage error, which names the problem and
// where to read more. A command takes no positional arguments, so any is
// an error rather than silently ignored.
func parseArgs(c *command, args []string, stdout, stderr io.Writer, declare func(*flagSet)) (int, bool) {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if declare != nil {
		declare(fs)
	}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printHelp(stdout, c)
		return 0, false
	case err != nil:
		return usageError(c, stderr, err.Error())
	case fs.NArg() > 0:
		return usageError(c, stderr, fmt.Sprintf("unexpected argument %q: %s takes only flags (--name value)", fs.Arg(0), c.name))
	}
	return 0, true
}

func usageError(c *command, stderr io.Writer, msg string) (int, bool) {
	fmt.Fprintf(stderr, "pollrelay %s: %s\nusage: %s\nrun 'pollrelay help %s' for its flags and an example\n", c.name, msg, usageLine(c), c.name)
	return 2, false
}

func usageLine(c *command) string {
	if c.args == "" {
		return "pollrelay " + c.name
	}
	return "pollrelay " + c.name + " " + c.args
}

// printHelp prints a command's usage line, description, flags and example.
func printHelp(w io.Writer, c *command) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n\n", usageLine(c), c.about)
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	if c.flags != nil {
		c.flags(fs)
	}
	var flags strings.Builder
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		head := "--" + f.Name
		if name != "" {
			head += " " + strings.ToUpper(name)
		}
		if f.DefValue != "" && f.DefValue != "0s" && f.DefValue != "false" {
			usage += " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(&flags, "  %-22s %s\n", head, usage)
	})
	if flags.Len() == 0 {
		fmt.Fprint(w, "Flags: none\n\n")
	} else {
		fmt.Fprintf(w, "Flags:\n%s  %-22s %s\n\n", flags.String(), "--help, -h", "print this help")
	}
	fmt.Fprintf(w, "Example:\n  %s\n", strings.ReplaceAll(c.example, "\n", "\n  "))
}

// configFlags are the flags of the commands that read a config file.
type configFlags struct {
	path string
}

func (f *configFlags) declare(fs *flagSet) {
	fs.StringVar(&f.path, "config", "", "the YAML config `FILE` (required)")
}

// printConfigError lists every validation problem, one per line. Any other
// error from config.Load already names the file.
func printConfigError(w io.Writer, path string, err error) {
	var ve *config.ValidationError
	if errors.As(err, &ve) {
		fmt.Fprintf(w, "%s: %d problem(s):\n", path, len(ve.Problems))
		for _, p := range ve.Problems {
			fmt.Fprintf(w, "  %s\n", p)
		}
		return
	}
	fmt.Fprintln(w, err)
}

// loadConfig parses a command's flags (--config and those extra adds) and
// loads its config. A nil config means the command is done and exits with
// the code: 0 after its help, 2 for bad flags, 1 for a bad config, whose
// problems have been printed.
func loadConfig(c *command, args []string, stdout, stderr io.Writer, extra func(*flagSet)) (*config.Config, string, int) {
	var f configFlags
	code, ok := parseArgs(c, args, stdout, stderr, func(fs *flagSet) {
		f.declare(fs)
		if extra != nil {
			extra(fs)
		}
	})
	if !ok {
		return nil, "", code
	}
	if f.path == "" {
		code, _ := usageError(c, stderr, "--config FILE is required")
		return nil, "", code
	}
	cfg, err := config.Load(f.path)
	if err != nil {
		printConfigError(stderr, f.path, err)
		return nil, "", 1
	}
	return cfg, f.path, 0
}

// newLogger builds the slog logger the config asks for.
func newLogger(w io.Writer, c config.Log) *slog.Logger {
	lv := new(slog.LevelVar)
	lv.Set(parseLevel(c.Level))
	return newLevelLogger(w, c.Format, lv)
}

// newLevelLogger builds a logger whose level lv can change while it runs.
func newLevelLogger(w io.Writer, format string, lv *slog.LevelVar) *slog.Logger {
	opts := &slog.HandlerOptions{Level: lv}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// parseLevel reads log.level; validation has already refused other values.
func parseLevel(s string) slog.Level {
	var level slog.Level
	_ = level.UnmarshalText([]byte(s))
	return level
}
