package poller

import (
	"context"
	"errors"
	"time"

	"github.com/pollrelay/pollrelay/diff"
	"github.com/pollrelay/pollrelay/jqexpr"
	"github.com/pollrelay/pollrelay/store"
)

// listLoop polls a list or single-object source: one listing a poll,
// page by page, compared with the stored items (diff.Apply).
type listLoop struct {
	*loop
	// dups is the number of duplicate ids last logged, so an upstream
	// that always repeats ids is logged once, not every poll.
	dups int
	// preload is true when the last poll compared its listing with the
	// stored items, so the next is likely to as well: it then reads them
	// while fetching (diff.LoadIndex). A listing that keeps matching the
	// stored digest skips the comparison, and reading would be wasted.
	preload bool
	// truncated is set while listings are cut short at max_pages, so that
	// is logged once; guarded by mu.
	truncated bool
	// markErr is the last unreadable watermark value logged, so an
	// upstream that always sends one is logged once, not every poll.
	markErr string
}

// noteMarkErr logs a value that could not be a watermark when it differs
// from the last one logged, and its end once.
func (l *listLoop) noteMarkErr(err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	switch {
	case msg == l.markErr:
	case err != nil:
		l.log.Warn("incremental: a value could not be a watermark; the items are applied and the stored watermark stays", "error", msg)
	default:
		l.log.Info("incremental: watermarks read again")
	}
	l.markErr = msg
}

// pollOnce is a list poll; no PollNow cuts it short.
func (l *listLoop) pollOnce(ctx context.Context, _ time.Time, _ <-chan struct{}) error {
	return l.poll(ctx)
}

// poll fetches, extracts and applies one listing. A source without
// pagination sends the stored validators back; a 304 then skips decoding
// and the diff, except that stalled rules are still checked.
func (l *listLoop) poll(ctx context.Context) error {
	start := l.m.now()
	var val diff.Validators
	pl := plan{full: true}
	if l.src.Pagination == nil || l.src.inc != nil {
		var ss store.SourceState
		err := l.store().View(func(t store.Txn) error {
			var err error
			ss, err = t.SourceState(l.src.Name)
			return err
		})
		switch {
		case err != nil && l.src.inc != nil:
			// Asking for everything loses nothing; asking from a guess might.
			l.log.Warn("read the stored watermark; listing everything", "error", err.Error())
		case err != nil:
			l.log.Warn("read stored validators; polling unconditionally", "error", err.Error())
		case l.src.inc != nil:
			// An incremental request differs from a full one: validators
			// of either would answer for the other.
			pl = planFor(l.src.inc, ss, l.src.incKey, start)
		case ss.ValidatorsFor == l.vkey:
			val = diff.Validators{ETag: ss.ETag, LastModified: ss.LastModified}
		}
	}
	req, err := requestFor(l.src, pl)
	if err != nil {
		return &PollError{Outcome: OutcomeExtract, Err: err}
	}
	if l.src.inc != nil {
		l.log.Debug("incremental poll", "full", pl.full, "why", pl.why, "watermark", pl.sent)
	}
	tracked := l.status().ItemsTracked
	s := &stream{now: start, progress: l.progress(start), load: func() *diff.Index { return diff.LoadIndex(l.store(), l.src.Source, tracked) },
		store: func(x *diff.Index, obs []diff.Observation) ([]diff.Observation, error) {
			return x.StoreNew(ctx, l.store(), obs, start, l.m.watchersOf(l.src.Name))
		},
		ahead: func(x *diff.Index, obs []diff.Observation) ([]diff.Observation, error) {
			return x.ApplyAhead(ctx, l.store(), obs, start, l.m.watchersOf(l.src.Name))
		}}
	if l.preload {
		s.index = s.load()
	}
	defer func() {
		if s.index != nil {
			s.index.Wait() // whether Apply used it or not
		}
	}()
	lst, err := fetchListing(ctx, l.src, l.f, val, s, req)
	var res diff.Result
	outcome := OutcomeSuccess
	if err == nil {
		l.setAsked(lst.interval)
		p := diff.Poll{
			Observations: lst.obs, Complete: lst.complete && pl.full, Now: l.m.now(),
			Validators: diff.Validators{ETag: lst.etag, LastModified: lst.lastModified, For: l.vkey},
			Watchers:   l.m.watchersOf(l.src.Name),
			Index:      s.index,
		}
		if l.src.inc != nil {
			l.noteMarkErr(lst.markErr)
			p.Validators = diff.Validators{}
			p.Mark = markFor(pl, lst, l.src.incKey)
			p.Changes = !pl.full
		}
		if lst.notModified {
			outcome = OutcomeNotModified
			p = diff.Poll{Replay: true, Now: p.Now, Index: s.index}
		}
		if !lst.notModified || l.src.Stalls() != nil {
			res, err = diff.Apply(ctx, l.store(), l.src.Source, p)
			if err == nil && res.Duplicates >= 0 {
				l.noteDuplicates(res.Duplicates, res.DuplicateID)
			}
			l.preload = err == nil && res.Duplicates >= 0 && !lst.notModified
			switch {
			case err == nil || ctx.Err() != nil:
			case errors.Is(err, jqexpr.ErrLimit):
				err = &PollError{Outcome: OutcomeExtract, Err: err}
			default:
				err = storeFailure(err)
			}
		} else {
			res.Tracked = l.status().ItemsTracked
		}
	}
	if ctx.Err() != nil {
		// Shutting down or the lease lapsed: neither success nor failure,
		// but what was written ahead stands.
		if s.index != nil {
			l.appliedAhead(s.index.Ahead())
		}
		return ctx.Err()
	}
	l.m.metrics.duration.WithLabelValues(l.src.Name).Observe(l.m.now().Sub(start).Seconds())
	if err != nil {
		outcome = OutcomeNetwork
		if pe, ok := errors.AsType[*PollError](err); ok {
			outcome = pe.Outcome
		}
	}
	l.m.metrics.polls.WithLabelValues(l.src.Name, outcome).Inc()
	l.finish(start, outcome, err)
	if err != nil && s.index != nil {
		l.appliedAhead(s.index.Ahead())
	}
	if err == nil {
		l.applied(res, lst)
		if l.src.inc != nil {
			listing, sent := "full", ""
			if !pl.full {
				listing, sent = "changes", paramText(pl.sent)
			}
			l.mu.Lock()
			l.st.Listing, l.st.Watermark = listing, sent
			l.mu.Unlock()
		}
	}
	return err
}

// progress returns what a poll started at start reports each page to: the
// status shows it, and past progressLogEvery it is logged that often.
func (l *listLoop) progress(start time.Time) func(pages, items int) {
	logged := start
	return func(pages, items int) {
		now := l.m.now()
		l.mu.Lock()
		l.st.Progress = &Progress{StartedAt: start, Pages: pages, Items: items}
		l.mu.Unlock()
		if now.Sub(logged) >= progressLogEvery {
			logged = now
			l.log.Info("poll in progress", "pages", pages, "items", items, "elapsed", now.Sub(start).Round(time.Second).String())
		}
	}
}

// noteDuplicates logs a listing that names an id more than once: the
// first occurrence is used (diff.Compare), which an operator should know
// when an item's state looks stuck. Logged when the count changes.
func (l *listLoop) noteDuplicates(n int, example string) {
	if n == l.dups {
		return
	}
	l.dups = n
	if n > 0 {
		l.log.Warn("listing repeats ids; the first occurrence of each is used", "duplicates", n, "example_id", example)
	}
}

// appliedAhead counts and logs what a failed poll wrote before it failed
// (Index.ApplyAhead): those transitions stand, and their events go out.
func (l *listLoop) appliedAhead(res diff.Result) {
	if len(res.Transitions) == 0 && len(res.WatchesAdded) == 0 {
		return // nothing, or a baseline's items, which fire nothing
	}
	l.counted(res)
	l.log.Info("transitions written before the poll failed", "transitions", len(res.Transitions), "events", len(res.Events))
	l.loggedEvents(res)
}

// counted counts a poll's written transitions and the watches they
// started.
func (l *listLoop) counted(res diff.Result) {
	for _, t := range res.Transitions {
		l.m.metrics.transitions.WithLabelValues(l.src.Name, t.Kind).Inc()
	}
	for ws, n := range res.WatchesAdded {
		l.m.watchesAdded(ws, n)
	}
}

// loggedEvents logs each event a poll wrote, at debug.
func (l *listLoop) loggedEvents(res diff.Result) {
	for _, e := range res.Events {
		l.log.Debug("event", "event_id", e.ID, "type", e.Type, "item", e.ItemID)
	}
}

// applied records what a successful list poll wrote.
func (l *listLoop) applied(res diff.Result, lst listing) {
	name := l.src.Name
	m := l.m.metrics
	l.setTracked(res.Tracked)
	l.counted(res)
	switch {
	case res.Baseline:
		l.log.Info("baseline recorded", "items", res.Tracked, "events", len(res.Events))
	case len(res.Events) > 0 || res.HeldDeletes > 0:
		l.log.Info("transitions", "transitions", len(res.Transitions), "events", len(res.Events),
			"held_deletes", res.HeldDeletes, "items", res.Tracked)
	}
	if res.Quarantined > 0 {
		// One line per poll, however many items it skipped.
		l.log.Warn("items skipped; the rest of the listing was applied (GET /v1/quarantine)",
			"skipped", res.Quarantined, "example_id", store.CutID(res.QuarantinedID, 64),
			"example_id_bytes", res.QuarantinedIDBytes, "example_reason", res.QuarantinedReason)
	}
	if res.HeldDeletes > 0 {
		m.heldDeletes.WithLabelValues(name).Inc()
		l.log.Warn("mass delete held back: listing would delete too many items",
			"deletes", res.HeldDeletes, "confirm_polls", l.src.ConfirmPolls)
	}
	l.mu.Lock()
	if cut := !lst.complete && !lst.notModified; cut != l.truncated {
		l.truncated = cut
		if cut {
			l.log.Warn("listing cut short at max_pages: items seen are updated, none deleted", "pages", len(lst.pages))
		}
	}
	l.mu.Unlock()
	for _, e := range res.RuleErrors {
		l.log.Warn("event rule failed", "error", e.Error())
	}
	l.loggedEvents(res)
}
