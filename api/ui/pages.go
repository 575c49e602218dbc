package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/glob"
	"github.com/pollrelay/pollrelay/notifier"
	"github.com/pollrelay/pollrelay/poller"
	"github.com/pollrelay/pollrelay/store"
)

// Bounds on what one page reads, so a page stays fast on a large store.
const (
	listLimit     = 200  // rows of a list page
	scanLimit     = 5000 // events an item's page looks through for its own
	answerPreview = 1024 // bytes of a receiver's answer shown
)

// pageData is what every template gets.
type pageData struct {
	Title string
	Nav   string
	CSRF  string
	Msg   string
	Error string
	Data  any
}

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"json": func(b json.RawMessage) string {
		if len(b) == 0 {
			return "—"
		}
		return string(b)
	},
	"pretty": func(v any) string {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err.Error()
		}
		return string(b)
	},
	"preview": func(s string) string {
		if len(s) <= answerPreview {
			return s
		}
		return strings.ToValidUTF8(s[:answerPreview], "") + "…"
	},
	"ms": func(f float64) string { return fmt.Sprintf("%.1f ms", f) },
}

func parsePages() map[string]*template.Template {
	base := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templates, "templates/layout.html"))
	names, err := fs.Glob(templates, "templates/*.html")
	if err != nil {
		panic(err)
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "layout" {
			continue
		}
		pages[name] = template.Must(template.Must(base.Clone()).ParseFS(templates, n))
	}
	return pages
}

// render executes a page into a buffer first, so a template error is a
// clean 500 and never half a page.
func (c *Console) render(w http.ResponseWriter, status int, name, session string, d pageData) {
	if session != "" {
		d.CSRF = c.csrf(session)
	}
	if d.Nav == "" {
		d.Nav = name
	}
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, "layout.html", d); err != nil {
		c.opts.Logger.Error("console page failed", "page", name, "error", err.Error())
		http.Error(w, "internal error; see pollrelay's log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (c *Console) fail(w http.ResponseWriter, r *http.Request, session string, err error) {
	c.opts.Logger.Error("console request failed", "path", r.URL.Path, "error", err.Error())
	c.render(w, http.StatusInternalServerError, "error", session, pageData{Title: "Error", Error: "Internal error; see pollrelay's log."})
}

func (c *Console) notFound(w http.ResponseWriter, session, msg string) {
	c.render(w, http.StatusNotFound, "error", session, pageData{Title: "Not found", Error: msg})
}

type sourcesData struct {
	Sources []poller.Status
	Charts  template.HTML
}

func (c *Console) sources(w http.ResponseWriter, r *http.Request, s string) {
	st := c.opts.Poller.Status()
	c.render(w, http.StatusOK, "sources", s, pageData{Title: "Sources", Msg: r.URL.Query().Get("msg"),
		Data: sourcesData{Sources: st, Charts: c.sampler.Charts()}})
}

func (c *Console) pollNow(w http.ResponseWriter, r *http.Request, _ string) {
	name := r.PostFormValue("source")
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	err := c.opts.Poller.PollNow(ctx, name)
	switch {
	case errors.Is(err, poller.ErrUnknownSource):
		back(w, r, "/ui/", fmt.Sprintf("There is no source %q.", name))
	case err != nil:
		back(w, r, "/ui/", fmt.Sprintf("Polled %s: %v", name, err))
	default:
		back(w, r, "/ui/", "Polled "+name+".")
	}
}

func (c *Console) knownSource(name string) bool {
	return slices.ContainsFunc(c.opts.Config().Sources, func(s config.Source) bool { return s.Name == name })
}

type itemRow struct {
	ID    string
	State json.RawMessage
	Since time.Time
}

type itemsData struct {
	Source, ID, State string
	Items             []itemRow
	More              bool
}

// items lists a source's items whose id and canonical JSON state contain
// the searched text.
func (c *Console) items(w http.ResponseWriter, r *http.Request, s string) {
	q := r.URL.Query()
	d := itemsData{Source: q.Get("source"), ID: q.Get("id"), State: q.Get("state")}
	if !c.knownSource(d.Source) {
		c.notFound(w, s, fmt.Sprintf("There is no source %q.", d.Source))
		return
	}
	errStop := errors.New("enough")
	err := c.opts.Store.View(func(t store.Txn) error {
		return t.ItemHeads(d.Source, func(id string, it *store.Item) error {
			if !strings.Contains(id, d.ID) || !strings.Contains(string(it.State), d.State) {
				return nil
			}
			if len(d.Items) == listLimit {
				d.More = true
				return errStop
			}
			d.Items = append(d.Items, itemRow{ID: id, State: it.State, Since: it.Since})
			return nil
		})
	})
	if err != nil && !errors.Is(err, errStop) {
		c.fail(w, r, s, err)
		return
	}
	c.render(w, http.StatusOK, "items", s, pageData{Title: "Items of " + d.Source, Nav: "sources", Data: d})
}

// moment is one line of an item's timeline: a state it entered, or an
// event it caused.
type moment struct {
	At    time.Time
	State json.RawMessage
	Event *event.Event
}

type itemData struct {
	Source, ID string
	Item       *store.Item
	Timeline   []moment
	Scanned    bool // the event log was longer than scanLimit
}

func (c *Console) item(w http.ResponseWriter, r *http.Request, s string) {
	q := r.URL.Query()
	d := itemData{Source: q.Get("source"), ID: q.Get("id")}
	if !c.knownSource(d.Source) {
		c.notFound(w, s, fmt.Sprintf("There is no source %q.", d.Source))
		return
	}
	err := c.opts.Store.View(func(t store.Txn) error {
		var err error
		if d.Item, err = t.Item(d.Source, d.ID); err != nil {
			return err
		}
		n := 0
		return t.Events("", func(e *event.Event) bool {
			if n++; n > scanLimit {
				d.Scanned = true
				return false
			}
			if e.Source == d.Source && e.ItemID == d.ID {
				d.Timeline = append(d.Timeline, moment{At: e.CreatedAt, Event: e})
			}
			return true
		})
	})
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	if d.Item != nil {
		for _, h := range d.Item.History {
			d.Timeline = append(d.Timeline, moment{At: h.At, State: h.State})
		}
	}
	if d.Item == nil && len(d.Timeline) == 0 {
		c.notFound(w, s, fmt.Sprintf("Source %q tracks no item %q.", d.Source, d.ID))
		return
	}
	slices.SortStableFunc(d.Timeline, func(a, b moment) int { return b.At.Compare(a.At) })
	c.render(w, http.StatusOK, "item", s, pageData{Title: "Item " + d.ID, Nav: "sources", Data: d})
}

type eventsData struct {
	Type, Source, Since string
	Events              []*event.Event
	Next                string
}

func (c *Console) events(w http.ResponseWriter, r *http.Request, s string) {
	q := r.URL.Query()
	d := eventsData{Type: q.Get("type"), Source: q.Get("source"), Since: q.Get("since")}
	var since time.Time
	if d.Since != "" {
		var err error
		if since, err = parseSince(d.Since); err != nil {
			c.render(w, http.StatusUnprocessableEntity, "events", s, pageData{Title: "Events", Error: err.Error(), Data: d})
			return
		}
	}
	if !glob.Valid(d.Type) {
		c.render(w, http.StatusUnprocessableEntity, "events", s, pageData{Title: "Events", Error: "type: not a glob", Data: d})
		return
	}
	err := c.opts.Store.View(func(t store.Txn) error {
		return t.Events(q.Get("before"), func(e *event.Event) bool {
			if !since.IsZero() && e.CreatedAt.Before(since) {
				return false
			}
			if d.Source != "" && e.Source != d.Source {
				return true
			}
			if d.Type != "" && !glob.Match(d.Type, e.Type) {
				return true
			}
			if len(d.Events) == listLimit {
				d.Next = d.Events[len(d.Events)-1].ID
				return false
			}
			d.Events = append(d.Events, e)
			return true
		})
	})
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.render(w, http.StatusOK, "events", s, pageData{Title: "Events", Data: d})
}

// parseSince reads an RFC 3339 time or the form's datetime-local value (UTC).
func parseSince(v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("since: a time like 2026-01-15T10:30 (UTC) or 2026-01-15T10:30:00Z")
}

type eventData struct {
	Event      *event.Event
	Deliveries []*store.Delivery
	Attempts   []store.Attempt
}

func (c *Console) event(w http.ResponseWriter, r *http.Request, s string) {
	id := r.URL.Query().Get("id")
	subs, err := c.opts.Subscriptions()
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	var d eventData
	err = c.opts.Store.View(func(t store.Txn) error {
		var err error
		if d.Event, err = t.Event(id); err != nil || d.Event == nil {
			return err
		}
		for _, sub := range subs {
			dl, err := t.Delivery(sub, id)
			if err != nil {
				return err
			}
			if dl != nil {
				d.Deliveries = append(d.Deliveries, dl)
			}
		}
		d.Attempts, err = t.Attempts(id)
		return err
	})
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	if d.Event == nil {
		c.notFound(w, s, fmt.Sprintf("There is no event %q.", id))
		return
	}
	c.render(w, http.StatusOK, "event", s, pageData{Title: "Event " + id, Nav: "events", Msg: r.URL.Query().Get("msg"), Data: d})
}

func (c *Console) redeliver(w http.ResponseWriter, r *http.Request, _ string) {
	id := r.PostFormValue("event")
	to := r.PostFormValue("back")
	if to == "" {
		to = "/ui/event?id=" + urlQuery(id)
	}
	n, err := c.opts.Notifier.Redeliver(r.Context(), id)
	switch {
	case errors.Is(err, notifier.ErrNotFound):
		back(w, r, to, fmt.Sprintf("There is no event %q.", id))
	case err != nil:
		c.opts.Logger.Error("console redeliver failed", "event", id, "error", err.Error())
		back(w, r, to, "Redeliver failed; see pollrelay's log.")
	default:
		back(w, r, to, fmt.Sprintf("Redelivering %s: %d delivery(ies) queued.", id, n))
	}
}

type subRow struct {
	ID string
	notifier.SubscriptionStats
}

func (c *Console) subscriptions(w http.ResponseWriter, r *http.Request, s string) {
	ids, err := c.opts.Subscriptions()
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	var rows []subRow
	for _, id := range ids {
		st, _ := c.opts.Notifier.Stats(id)
		rows = append(rows, subRow{ID: id, SubscriptionStats: st})
	}
	c.render(w, http.StatusOK, "subscriptions", s, pageData{Title: "Subscriptions", Data: rows})
}

type deadData struct {
	Subscription string
	Deliveries   []*store.Delivery
	More         bool
}

// dead lists dead-lettered deliveries, newest first.
func (c *Console) dead(w http.ResponseWriter, r *http.Request, s string) {
	d := deadData{Subscription: r.URL.Query().Get("subscription")}
	err := c.opts.Store.View(func(t store.Txn) error {
		return t.Deliveries(func(dl *store.Delivery) error {
			if dl.State == store.Dead && (d.Subscription == "" || dl.Subscription == d.Subscription) {
				d.Deliveries = append(d.Deliveries, dl)
			}
			return nil
		})
	})
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	slices.SortFunc(d.Deliveries, func(a, b *store.Delivery) int { return b.UpdatedAt.Compare(a.UpdatedAt) })
	if len(d.Deliveries) > listLimit {
		d.Deliveries, d.More = d.Deliveries[:listLimit], true
	}
	c.render(w, http.StatusOK, "dead", s, pageData{Title: "Dead letters", Msg: r.URL.Query().Get("msg"), Data: d})
}

// queueDepth is every subscription's pending and retrying deliveries.
func (c *Console) queueDepth() int {
	ids, err := c.opts.Subscriptions()
	if err != nil {
		return 0
	}
	n := 0
	for _, id := range ids {
		if st, ok := c.opts.Notifier.Stats(id); ok {
			n += st.QueueLength + st.RetryQueueLength
		}
	}
	return n
}

func urlQuery(s string) string { return url.QueryEscape(s) }
