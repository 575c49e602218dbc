package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/diff"
	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/poller"
	"github.com/pollrelay/pollrelay/store"
)

// cmdProbe polls sources once and prints what was extracted and which
// transitions would fire against the stored state. It writes nothing: the
// store is opened read-only, and only if it exists.
func cmdProbe(args []string, stdout, stderr io.Writer) int {
	var only string
	path, ok := configFlag("probe", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&only, "source", "", "probe only this source")
	})
	if !ok {
		return 2
	}
	cfg, err := config.Load(path)
	if err != nil {
		printConfigError(stderr, path, err)
		return 1
	}
	log := newLogger(stderr, config.Log{Level: "warn", Format: "text"})
	var st *store.Store
	if !cfg.Storage.InMemory {
		st, err = store.OpenReadOnly(cfg.Storage.Path, log)
		if err != nil {
			fmt.Fprintf(stderr, "note: comparing against an empty state (%v)\n", err)
		} else {
			defer st.Close()
		}
	}
	found, failed := false, false
	for i := range cfg.Sources {
		src := &cfg.Sources[i]
		if only != "" && src.Name != only {
			continue
		}
		found = true
		if src.IsWatch() {
			fmt.Fprintf(stdout, "== %s: watch source; probe polls list and single-object sources only\n\n", src.Name)
			continue
		}
		if err := probeSource(context.Background(), stdout, src, st, log); err != nil {
			fmt.Fprintf(stdout, "   error: %v\n\n", err)
			failed = true
		}
	}
	if !found {
		fmt.Fprintf(stderr, "pollrelay probe: no source named %q\n", only)
		return 1
	}
	if failed {
		return 1
	}
	return 0
}

func probeSource(ctx context.Context, w io.Writer, src *config.Source, st *store.Store, log *slog.Logger) error {
	start := time.Now()
	obs, complete, pages, err := poller.Probe(ctx, src, log)
	took := time.Since(start)
	fmt.Fprintf(w, "== %s: %d page(s), %d item(s), complete=%v, %s\n", src.Name, len(pages), len(obs), complete, took.Round(time.Millisecond))
	for _, p := range pages {
		fmt.Fprintf(w, "   page %s → %d, %d item(s)\n", p.URL, p.Status, p.Items)
	}
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "   ID\tSTATE")
	for _, o := range obs {
		fmt.Fprintf(tw, "   %s\t%s\n", o.ID, event.Text(o.State))
	}
	tw.Flush()

	prev := map[string]*store.Item{}
	var ss store.SourceState
	if st != nil {
		err := st.View(func(t *store.Txn) error {
			var err error
			if ss, err = t.SourceState(src.Name); err != nil {
				return err
			}
			return t.Items(src.Name, func(id string, it *store.Item) error {
				prev[id] = it
				return nil
			})
		})
		if err != nil {
			return fmt.Errorf("read stored state: %w", err)
		}
	}
	now := time.Now()
	changes := diff.Compare(prev, obs, diff.Options{
		Baseline: !ss.Baselined, EmitExisting: src.EmitExisting, Complete: complete,
		Deletes: src.DeletesEnabled(), Settle: src.Settle, Now: now,
	})
	n := 0
	for _, c := range changes {
		for _, t := range c.Transitions {
			evs, err := diff.Events(ctx, src, t, nil, now)
			if err != nil {
				fmt.Fprintf(w, "   rule error: %v\n", err)
			}
			for _, e := range evs {
				fmt.Fprintf(w, "   would fire %s  (%s: %s → %s)\n", e.Type, e.ItemID, event.Text(e.Previous), event.Text(e.Current))
				n++
			}
		}
	}
	switch {
	case !ss.Baselined && !src.EmitExisting:
		fmt.Fprintf(w, "   first poll: would record a baseline of %d item(s) and fire nothing\n\n", len(obs))
	case n == 0:
		fmt.Fprintf(w, "   no transitions would fire\n\n")
	default:
		fmt.Fprintf(w, "   %d event(s) would fire\n\n", n)
	}
	return nil
}
