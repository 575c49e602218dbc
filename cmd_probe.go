package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/diff"
	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/poller"
	"github.com/pollrelay/pollrelay/store"
	"github.com/pollrelay/pollrelay/store/badger"
	"github.com/pollrelay/pollrelay/store/postgres"
)

// probeWatchLimit caps how many ids of a watch source probe polls: it
// shows what extraction does, it is not a round.
const probeWatchLimit = 20

var probeCommand = &command{
	name:    "probe",
	args:    "--config FILE [--source NAME]",
	summary: "poll once and show what would fire; writes nothing",
	about: "Polls each source once (or only --source), prints the ids and states its jq\n" +
		"extracts and the events that would fire against the stored state, and\n" +
		"writes nothing. Use it to check items:, id: and state: against the real\n" +
		"upstream before run. It warns when every id or state comes out null or the\n" +
		"same, the mark of a typo in a jq path.",
	example: "pollrelay probe --config pollrelay.yaml --source videos",
	flags: func(fs *flagSet) {
		new(configFlags).declare(fs)
		declareProbeFlags(fs, new(string))
	},
	run: cmdProbe,
}

func declareProbeFlags(fs *flagSet, only *string) {
	fs.StringVar(only, "source", "", "probe only the source `NAME`")
}

// cmdProbe polls sources once and prints what was extracted and which
// transitions would fire against the stored state. It writes nothing: the
// store is opened read-only, and only if it exists.
func cmdProbe(c *command, args []string, stdout, stderr io.Writer) int {
	var only string
	cfg, _, code := loadConfig(c, args, stdout, stderr, func(fs *flagSet) { declareProbeFlags(fs, &only) })
	if cfg == nil {
		return code
	}
	log := newLogger(stderr, config.Log{Level: "warn", Format: "text"})
	st, unreadable := openProbeStore(cfg, stdout, stderr, log)
	if st != nil {
		defer st.Close()
	}
	found, failed := false, false
	for i := range cfg.Sources {
		src := &cfg.Sources[i]
		if only != "" && src.Name != only {
			continue
		}
		found = true
		probe := probeSource
		if src.IsWatch() {
			probe = probeWatchSource
		}
		if err := probe(context.Background(), stdout, src, probeState{st, unreadable}, log); err != nil {
			fmt.Fprintf(stdout, "   error: %v\n\n", err)
			failed = true
		}
	}
	if !found {
		fmt.Fprintf(stderr, "pollrelay probe: no source named %q\n", only)
		return 1
	}
	if unreadable != nil {
		fmt.Fprintf(stdout, "probe could not read the stored state, so it cannot say what run would fire: %v\n", unreadable)
		fmt.Fprintln(stdout, "If pollrelay run holds the store, ask it instead (POST /v1/sources/NAME/poll, then GET /v1/events), or stop it and probe again.")
		return 1
	}
	if failed {
		return 1
	}
	return 0
}

// probeState is the stored state probe compares against: an empty store
// in memory for an in-memory config or a store not created yet (what
// run's first poll starts from); err set, and st nil, when a store exists
// but cannot be read, most often because a running pollrelay holds its
// lock.
type probeState struct {
	st  store.Store
	err error
}

// openProbeStore opens the config's store read-only, or an empty one in
// memory when there is none yet: a missing store is said on stdout,
// beside the answer it changes. One that exists but cannot be opened is
// returned as the error.
func openProbeStore(cfg *config.Config, stdout, stderr io.Writer, log *slog.Logger) (store.Store, error) {
	where := cfg.Storage.Path
	if pg := cfg.Storage.Postgres; pg.URL != "" {
		where = "schema " + pg.Schema + " of storage.postgres.url"
	} else if cfg.Storage.InMemory {
		return openEmptyStore(log)
	}
	st, err := openStore(cfg, true, log)
	switch {
	case err == nil:
		return st, nil
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, postgres.ErrNoSchema):
		fmt.Fprintf(stdout, "no store at %s yet: comparing against an empty state, as run's first poll would\n\n", where)
		return openEmptyStore(log)
	}
	fmt.Fprintf(stdout, "cannot read the stored state at %s: the transitions below are not computed (%v)\n\n", where, err)
	fmt.Fprintf(stderr, "pollrelay probe: %v\n", err)
	return nil, err
}

// openEmptyStore is the empty state a first poll starts from.
func openEmptyStore(log *slog.Logger) (store.Store, error) {
	st, err := badger.Open(badger.Options{InMemory: true, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("open an empty store in memory: %w", err)
	}
	return st, nil
}

func probeSource(ctx context.Context, w io.Writer, src *config.Source, ps probeState, log *slog.Logger) error {
	start := time.Now()
	var ss store.SourceState
	if ps.err == nil {
		if err := ps.st.View(func(t store.Txn) error {
			var err error
			ss, err = t.SourceState(src.Name)
			return err
		}); err != nil {
			return err
		}
	}
	pr, err := poller.Probe(ctx, src, ss, log)
	obs, complete, pages := pr.Obs, pr.Complete, pr.Pages
	took := time.Since(start)
	fmt.Fprintf(w, "== %s: %d page(s), %d item(s), complete=%v, %s\n", src.Name, len(pages), len(obs), complete, took.Round(time.Millisecond))
	if pr.Incremental != "" {
		fmt.Fprintf(w, "   incremental: %s\n", pr.Incremental)
	}
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
	warnSuspicious(w, obs)
	if ps.err != nil {
		fmt.Fprintf(w, "   stored state unreadable: cannot say which transitions would fire\n\n")
		return nil
	}

	// The poll run would make, through the same comparison and guards,
	// with nothing written.
	rules, err := diff.Compile(src)
	if err != nil {
		return err
	}
	res, err := diff.Preview(ctx, ps.st, rules, diff.Poll{Observations: obs, Complete: complete, Now: time.Now()})
	if err != nil {
		return err
	}
	for _, err := range res.RuleErrors {
		fmt.Fprintf(w, "   rule error: %v\n", err)
	}
	printEvents(w, res.Events)
	if res.HeldDeletes > 0 {
		fmt.Fprintf(w, "   would hold back %d delete(s): more than max_delete_ratio (%g) of the stored items; run fires them once confirm_polls (%d) polls in a row agree\n",
			res.HeldDeletes, src.MaxDeleteRatio, src.ConfirmPolls)
	}
	switch {
	case res.Baseline && !src.EmitExisting:
		fmt.Fprintf(w, "   first poll: would record a baseline of %d item(s) and fire nothing\n\n", len(obs))
	case len(res.Events) == 0:
		fmt.Fprintf(w, "   no transitions would fire\n\n")
	default:
		fmt.Fprintf(w, "   %d event(s) would fire\n\n", len(res.Events))
	}
	return nil
}

// probeWatchSource polls the ids of a watch source that are configured
// (`ids:`) or watched in the store, up to probeWatchLimit.
func probeWatchSource(ctx context.Context, w io.Writer, src *config.Source, ps probeState, log *slog.Logger) error {
	st := ps.st
	watches := map[string]*store.Watch{}
	ids := slices.Clone(src.IDs)
	if ps.err == nil {
		err := st.View(func(t store.Txn) error {
			return t.Watches(src.Name, "", "", func(wt *store.Watch) bool {
				watches[wt.ID] = wt
				if !slices.Contains(ids, wt.ID) {
					ids = append(ids, wt.ID)
				}
				return len(ids) < probeWatchLimit
			})
		})
		if err != nil {
			return fmt.Errorf("read stored watches: %w", err)
		}
	}
	if len(ids) > probeWatchLimit {
		ids = ids[:probeWatchLimit]
	}
	if len(ids) == 0 {
		fmt.Fprintf(w, "== %s: watch source with no ids to probe (add ids: or a watch)\n\n", src.Name)
		return nil
	}

	type result struct {
		id   string
		ob   diff.Observation
		page poller.Page
		err  error
	}
	start := time.Now()
	results := make([]result, len(ids))
	failed := 0
	for i, id := range ids {
		ob, page, err := poller.ProbeWatch(ctx, src, id, log)
		results[i] = result{id, ob, page, err}
		if err != nil {
			failed++
		}
	}
	fmt.Fprintf(w, "== %s: watch source, %d request(s), %d failed, %s\n", src.Name, len(ids), failed, time.Since(start).Round(time.Millisecond))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "   ID\tSTATE\tREQUEST")
	for _, r := range results {
		state := event.Text(r.ob.State)
		if r.err != nil {
			state = "error: " + r.err.Error()
		}
		fmt.Fprintf(tw, "   %s\t%s\t%s → %d\n", r.id, state, r.page.URL, r.page.Status)
	}
	tw.Flush()
	var obs []diff.Observation
	for _, r := range results {
		if r.err == nil {
			obs = append(obs, r.ob)
		}
	}
	warnSuspicious(w, obs)
	if ps.err != nil {
		fmt.Fprintf(w, "   stored state unreadable: cannot say which transitions would fire\n\n")
		if failed > 0 {
			return fmt.Errorf("%d of %d request(s) failed", failed, len(ids))
		}
		return nil
	}

	rules, err := diff.Compile(src)
	if err != nil {
		return err
	}
	now := time.Now()
	n := 0
	for _, r := range results {
		if r.err != nil {
			continue
		}
		var prev *store.Item
		if err := st.View(func(t store.Txn) error {
			var err error
			prev, err = t.Item(src.Name, r.id)
			return err
		}); err != nil {
			return fmt.Errorf("read stored state: %w", err)
		}
		wt := watches[r.id]
		c, _, ended := diff.CompareWatch(prev, r.ob, diff.WatchOptionsFor(rules, wt, rules.Stalls(), now))
		for _, t := range c.Transitions {
			n += printWouldFire(ctx, w, rules, t, diff.EventWatch(wt), now)
		}
		if ended {
			fmt.Fprintf(w, "   would end the watch of %s\n", r.id)
		}
	}
	if n == 0 {
		fmt.Fprintf(w, "   no transitions would fire\n\n")
	} else {
		fmt.Fprintf(w, "   %d event(s) would fire\n\n", n)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d request(s) failed", failed, len(ids))
	}
	return nil
}

// printWouldFire prints the events a transition would cause and returns
// how many.
func printWouldFire(ctx context.Context, w io.Writer, src *diff.Source, t diff.Transition, wt *event.Watch, now time.Time) int {
	evs, err := diff.Events(ctx, src, t, wt, now)
	if err != nil {
		fmt.Fprintf(w, "   rule error: %v\n", err)
	}
	printEvents(w, evs)
	return len(evs)
}

func printEvents(w io.Writer, evs []*event.Event) {
	for _, e := range evs {
		fmt.Fprintf(w, "   would fire %s  (%s: %s → %s)\n", e.Type, e.ItemID, event.Text(e.Previous), event.Text(e.Current))
	}
}

// warnSuspicious flags extractions that look like a typo in a jq path
// rather than data: every state null (`.stauts` yields null on every
// item, and a state that never changes never fires), or every item under
// one id or one state. A single item proves nothing, so it needs two.
func warnSuspicious(w io.Writer, obs []diff.Observation) {
	if len(obs) < 2 {
		return
	}
	ids := map[string]bool{}
	states := map[string]bool{}
	for _, o := range obs {
		ids[o.ID] = true
		states[string(o.State)] = true
	}
	if len(ids) == 1 {
		fmt.Fprintf(w, "   WARNING: all %d items have the id %s: check id: (jq), it should differ per item\n", len(obs), obs[0].ID)
	}
	switch {
	case len(states) == 1 && string(obs[0].State) == "null":
		fmt.Fprintf(w, "   WARNING: every state is null: check state: (jq); a misspelt field such as '.stauts' yields null, and a state that never changes never fires\n")
	case len(states) == 1:
		fmt.Fprintf(w, "   WARNING: all %d items have the same state %s: if that is not what the upstream shows, check state: (jq)\n", len(obs), event.Text(obs[0].State))
	}
}
