package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/store"
	"github.com/pollrelay/pollrelay/store/badger"
	"github.com/pollrelay/pollrelay/store/postgres"
)

var migrateCommand = &command{
	name:    "migrate",
	args:    "--from DIR --to URL [--schema NAME]",
	summary: "move an embedded store into PostgreSQL, to run replicas",
	about: "Copies everything an embedded (Badger) store holds into a PostgreSQL schema:\n" +
		"items with their baselines and history, the event log and outbox, pending and\n" +
		"scheduled deliveries with their attempts, dead letters, API subscriptions with\n" +
		"their secrets, watches and learned histograms. The first poll afterwards fires\n" +
		"nothing for unchanged items, and every pending delivery goes out at its time\n" +
		"under its webhook-id.\n\n" +
		"Stop pollrelay first: a directory a running pollrelay holds is refused, and so\n" +
		"is a schema that already holds anything. The counts are verified at the end;\n" +
		"then set storage.postgres.url (and schema) in the config and start the replicas.",
	example: "pollrelay migrate --from ./pollrelay-data --to postgres://pollrelay@db:5432/app --schema pollrelay",
	flags:   func(fs *flagSet) { new(migrateFlags).declare(fs) },
	run: func(c *command, args []string, stdout, stderr io.Writer) int {
		var f migrateFlags
		if code, ok := parseArgs(c, args, stdout, stderr, f.declare); !ok {
			return code
		}
		switch {
		case f.from == "":
			code, _ := usageError(c, stderr, "--from is required: the directory of the embedded store")
			return code
		case f.to == "":
			code, _ := usageError(c, stderr, "--to is required: the PostgreSQL URL")
			return code
		}
		if err := postgres.CheckSchema(f.schema); err != nil {
			code, _ := usageError(c, stderr, "--schema: "+err.Error())
			return code
		}
		log := newLogger(stderr, config.Log{Level: "warn", Format: "text"})
		if err := migrate(f.from, f.to, f.schema, stdout, log); err != nil {
			fmt.Fprintf(stderr, "pollrelay migrate: %v\n", err)
			return 1
		}
		return 0
	},
}

type migrateFlags struct{ from, to, schema string }

func (f *migrateFlags) declare(fs *flagSet) {
	fs.StringVar(&f.from, "from", "", "the embedded store's `DIR` (storage.path)")
	fs.StringVar(&f.to, "to", "", "the PostgreSQL `URL` (storage.postgres.url)")
	fs.StringVar(&f.schema, "schema", "pollrelay", "the `NAME` of the schema to fill (storage.postgres.schema)")
}

// migrate copies the Badger store in dir into schema at url.
func migrate(dir, url, schema string, out io.Writer, log *slog.Logger) error {
	src, err := openSource(dir, log)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := postgres.Open(postgres.Options{URL: url, Schema: schema, Logger: log, Exclusive: true})
	if err != nil {
		return err
	}
	defer dst.Close()
	where := fmt.Sprintf("schema %s of %s", schema, shownURL(url))
	if held, err := store.Count(dst); err != nil {
		return fmt.Errorf("read %s: %w", where, err)
	} else if held != (store.Counts{}) {
		return fmt.Errorf("%s is not empty (%v): migrate fills a new schema only; name another with --schema", where, held)
	}
	want, err := store.Count(src)
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	fmt.Fprintf(out, "copying %s into %s: %v\n", dir, where, want)
	start := time.Now()
	got, err := store.Copy(dst, src, func(n store.Counts) {
		fmt.Fprintf(out, "  %s: %d items, %d events, %d deliveries so far\n", time.Since(start).Round(time.Second), n.Items, n.Events, n.Deliveries)
	})
	if err != nil {
		return fmt.Errorf("copy into %s: %w", where, err)
	}
	held, err := store.Count(dst)
	if err != nil {
		return fmt.Errorf("verify %s: %w", where, err)
	}
	if got != want || held != want {
		return fmt.Errorf("verify %s: the copy does not match the source\n  source: %v\n  copied: %v\n  target: %v", where, want, got, held)
	}
	fmt.Fprintf(out, "done in %s, counts verified. Next: set storage.postgres.url and storage.postgres.schema: %s in the config and start pollrelay.\n",
		time.Since(start).Round(time.Millisecond), schema)
	return nil
}

// openSource opens the embedded store in dir for the copy. It is opened
// for writing, which takes Badger's directory lock: a pollrelay running on
// dir holds it, and none can start on dir while the copy runs.
func openSource(dir string, log *slog.Logger) (*badger.Store, error) {
	if _, err := os.Stat(filepath.Join(dir, "MANIFEST")); err != nil {
		return nil, fmt.Errorf("--from %s: no embedded store there (no MANIFEST): %w", dir, err)
	}
	st, err := badger.Open(badger.Options{Path: dir, Logger: log})
	if errors.Is(err, syscall.EAGAIN) || err != nil && strings.Contains(err.Error(), "Another process is using this Badger database") {
		return nil, fmt.Errorf("--from %s is in use, most likely by a running pollrelay: stop it first, so that nothing changes during the copy", dir)
	}
	return st, err
}

// shownURL is url as it may be shown: without its password or query, or
// only "the database" when it is not a URL (a key=value string).
func shownURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "the database"
	}
	u.RawQuery, u.Fragment = "", ""
	return u.Redacted()
}
