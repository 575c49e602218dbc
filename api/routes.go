package api

import (
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/egress"
	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/glob"
	"github.com/pollrelay/pollrelay/notifier"
	"github.com/pollrelay/pollrelay/poller"
	"github.com/pollrelay/pollrelay/store"
)

//go:embed openapi.json
var openapiDoc []byte

// OpenAPI returns the OpenAPI 3.1 document of /v1.
func OpenAPI() []byte { return openapiDoc }

func (s *Server) routesV1() {
	s.mux.HandleFunc("/v1/openapi.json", method("GET", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openapiDoc)
	}))
	s.handle("/v1/subscriptions", map[string]http.HandlerFunc{"GET": s.listSubscriptions, "POST": s.createSubscription})
	s.handle("/v1/subscriptions/{id}", map[string]http.HandlerFunc{
		"GET": s.getSubscription, "PATCH": s.patchSubscription, "DELETE": s.deleteSubscription,
	})
	s.handle("/v1/subscriptions/{id}/rotate-secret", map[string]http.HandlerFunc{"POST": s.rotateSecret})
	s.handle("/v1/subscriptions/{id}/ping", map[string]http.HandlerFunc{"POST": s.ping})
	s.handle("/v1/subscriptions/{id}/replay", map[string]http.HandlerFunc{"POST": s.replay})
	s.handle("/v1/events", map[string]http.HandlerFunc{"GET": s.listEvents})
	s.handle("/v1/events/{id}", map[string]http.HandlerFunc{"GET": s.getEvent})
	s.handle("/v1/events/{id}/attempts", map[string]http.HandlerFunc{"GET": s.attempts})
	s.handle("/v1/events/{id}/redeliver", map[string]http.HandlerFunc{"POST": s.redeliver})
	s.handle("/v1/sources", map[string]http.HandlerFunc{"GET": s.sources})
	s.handle("/v1/sources/{name}/poll", map[string]http.HandlerFunc{"POST": s.pollNow})
	s.handle("/v1/items/{source}/{id}", map[string]http.HandlerFunc{"GET": s.item})
	s.handle("/v1/watches", map[string]http.HandlerFunc{"GET": s.listWatches})
	s.handle("/v1/watches/{source}/{id}", map[string]http.HandlerFunc{"PUT": s.putWatch, "DELETE": s.deleteWatch})
	s.handle("/v1/quarantine", map[string]http.HandlerFunc{"GET": s.listQuarantine})
	s.handle("/v1/quarantine/{id}/retry", map[string]http.HandlerFunc{"POST": s.retryQuarantine})
	s.handle("/v1/reload", map[string]http.HandlerFunc{"POST": s.reload})
}

const (
	defaultLimit = 50
	maxLimit     = 500
)

// limitParam reads ?limit= (default 50, at most 500).
func limitParam(w http.ResponseWriter, r *http.Request) (int, bool) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return defaultLimit, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxLimit {
		writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("limit: must be a whole number from 1 to %d", maxLimit))
		return 0, false
	}
	return n, true
}

// list is a page of a list endpoint.
type list[T any] struct {
	Data       []T    `json:"data"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// page serves an in-memory list with an offset cursor.
func page[T any](w http.ResponseWriter, r *http.Request, all []T) {
	limit, ok := limitParam(w, r)
	if !ok {
		return
	}
	off := 0
	if c := r.URL.Query().Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		n, perr := strconv.Atoi(string(b))
		if err != nil || perr != nil || n < 0 {
			writeError(w, http.StatusUnprocessableEntity, "cursor: not a cursor this API returned")
			return
		}
		off = n
	}
	out := list[T]{Data: []T{}}
	if off < len(all) {
		end := min(off+limit, len(all))
		out.Data = all[off:end]
		if end < len(all) {
			out.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(end)))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, ok := limitParam(w, r)
	if !ok {
		return
	}
	typ, source := q.Get("type"), q.Get("source")
	if typ != "" && !glob.Valid(typ) {
		writeError(w, http.StatusUnprocessableEntity, "type: bad glob "+quote(typ))
		return
	}
	var since time.Time
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			writeError(w, http.StatusUnprocessableEntity, "since: must be an RFC 3339 time like 2026-01-15T10:30:00Z")
			return
		}
		since = t
	}
	before := ""
	if c := q.Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil || len(b) < 5 || string(b[:4]) != "evt_" {
			writeError(w, http.StatusUnprocessableEntity, "cursor: not a cursor this API returned")
			return
		}
		before = string(b)
	}
	out := list[*event.Event]{Data: []*event.Event{}}
	more := false
	err := s.opts.Store.View(func(t store.Txn) error {
		return t.Events(before, func(e *event.Event) bool {
			if !since.IsZero() && e.CreatedAt.Before(since) {
				return false
			}
			if source != "" && e.Source != source {
				return true
			}
			if typ != "" {
				if !glob.Match(typ, e.Type) {
					return true
				}
			}
			if len(out.Data) == limit {
				more = true
				return false
			}
			out.Data = append(out.Data, e)
			return true
		})
	})
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if more {
		out.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(out.Data[len(out.Data)-1].ID))
	}
	writeJSON(w, http.StatusOK, out)
}

type eventView struct {
	*event.Event
	Deliveries []*store.Delivery `json:"deliveries"`
}

func (s *Server) getEvent(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	v := eventView{Deliveries: []*store.Delivery{}}
	subs := s.opts.Subscriptions.IDs()
	err := s.opts.Store.View(func(t store.Txn) error {
		var err error
		if v.Event, err = t.Event(id); err != nil || v.Event == nil {
			return err
		}
		for _, sub := range subs {
			d, err := t.Delivery(sub, id)
			if err != nil {
				return err
			}
			if d != nil {
				v.Deliveries = append(v.Deliveries, d)
			}
		}
		return nil
	})
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if v.Event == nil {
		writeError(w, http.StatusNotFound, "no event "+quote(id))
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) attempts(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var atts []store.Attempt
	found := false
	err := s.opts.Store.View(func(t store.Txn) error {
		e, err := t.Event(id)
		if err != nil || e == nil {
			return err
		}
		found = true
		atts, err = t.Attempts(id)
		return err
	})
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if !found {
		writeError(w, http.StatusNotFound, "no event "+quote(id))
		return
	}
	if atts == nil {
		atts = []store.Attempt{}
	}
	writeJSON(w, http.StatusOK, list[store.Attempt]{Data: atts})
}

func (s *Server) redeliver(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	n, err := s.opts.Notifier.Redeliver(r.Context(), id)
	switch {
	case errors.Is(err, notifier.ErrNotFound):
		writeError(w, http.StatusNotFound, "no event "+quote(id))
	case err != nil:
		s.internal(w, r, err)
	default:
		writeJSON(w, http.StatusAccepted, map[string]int{"deliveries": n})
	}
}

func (s *Server) sources(w http.ResponseWriter, r *http.Request) {
	st := s.opts.Poller.Status()
	if st == nil {
		st = []poller.Status{}
	}
	writeJSON(w, http.StatusOK, list[poller.Status]{Data: st})
}

func (s *Server) pollNow(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	err := s.opts.Poller.PollNow(r.Context(), name)
	if errors.Is(err, poller.ErrUnknownSource) {
		writeError(w, http.StatusNotFound, "no source "+quote(name))
		return
	}
	var status *poller.Status
	for _, st := range s.opts.Poller.Status() {
		if st.Name == name {
			status = &st
		}
	}
	if err != nil {
		// The upstream failed, not this request: say so, with the status.
		writeJSON(w, http.StatusBadGateway, map[string]any{"error": err.Error(), "source": status})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"source": status})
}

type itemView struct {
	Source  string               `json:"source"`
	ID      string               `json:"id"`
	State   json.RawMessage      `json:"state"`
	Object  json.RawMessage      `json:"object,omitempty"`
	Since   time.Time            `json:"since"`
	History []store.HistoryEntry `json:"history"`
	Pending json.RawMessage      `json:"pending_state,omitempty"`
}

func (s *Server) item(w http.ResponseWriter, r *http.Request) {
	source, id := r.PathValue("source"), r.PathValue("id")
	known := slices.ContainsFunc(s.opts.Control.Config().Sources, func(c config.Source) bool { return c.Name == source })
	if !known {
		writeError(w, http.StatusNotFound, "no source "+quote(source))
		return
	}
	var it *store.Item
	err := s.opts.Store.View(func(t store.Txn) error {
		var err error
		it, err = t.Item(source, id)
		return err
	})
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if it == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("source %s tracks no item %s", quote(source), quote(id)))
		return
	}
	v := itemView{Source: source, ID: id, State: it.State, Object: it.Object, Since: it.Since, History: it.History, Pending: it.Pending}
	if v.History == nil {
		v.History = []store.HistoryEntry{}
	}
	writeJSON(w, http.StatusOK, v)
}

// listWatches pages through watches newest first, like every list here.
// The poller lists them by source and id, so they are gathered and sorted;
// a source holds at most a few tens of thousands.
func (s *Server) listWatches(w http.ResponseWriter, r *http.Request) {
	source := r.URL.Query().Get("source")
	all := []store.Watch{}
	cursor := ""
	for {
		ws, next, err := s.opts.Poller.Watches(r.Context(), source, cursor, poller.MaxWatchesLimit)
		if s.watchError(w, r, err, source) {
			return
		}
		all = append(all, ws...)
		if next == "" {
			break
		}
		cursor = next
	}
	slices.SortStableFunc(all, func(a, b store.Watch) int { return b.CreatedAt.Compare(a.CreatedAt) })
	views := make([]watchView, len(all))
	for i := range all {
		views[i] = viewWatch(all[i])
	}
	page(w, r, views)
}

// watchView is a watch as /v1 shows it: the stored record without the
// HTTP validators the poller keeps for conditional requests.
type watchView struct {
	Source     string          `json:"source"`
	ID         string          `json:"id"`
	Metadata   json.RawMessage `json:"metadata,omitempty"`
	CreatedAt  time.Time       `json:"created_at"`
	ExpiresAt  time.Time       `json:"expires_at,omitzero"`
	Origin     string          `json:"origin"`
	ObservedAt time.Time       `json:"observed_at,omitzero"`
}

func viewWatch(w store.Watch) watchView {
	return watchView{Source: w.Source, ID: w.ID, Metadata: w.Metadata, CreatedAt: w.CreatedAt,
		ExpiresAt: w.ExpiresAt, Origin: w.Origin, ObservedAt: w.ObservedAt}
}

type watchRequest struct {
	TTL      string          `json:"ttl"`
	Metadata json.RawMessage `json:"metadata"`
}

func (s *Server) putWatch(w http.ResponseWriter, r *http.Request) {
	source, id := r.PathValue("source"), r.PathValue("id")
	var req watchRequest
	if r.ContentLength != 0 {
		if !decode(w, r, &req) {
			return
		}
	}
	var ttl time.Duration
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 {
			writeError(w, http.StatusUnprocessableEntity, "ttl: must be a positive duration like 2h")
			return
		}
		ttl = d
	}
	wt, err := s.opts.Poller.PutWatch(r.Context(), source, id, ttl, req.Metadata)
	if s.watchError(w, r, err, source) {
		return
	}
	writeJSON(w, http.StatusOK, viewWatch(wt))
}

func (s *Server) deleteWatch(w http.ResponseWriter, r *http.Request) {
	source, id := r.PathValue("source"), r.PathValue("id")
	err := s.opts.Poller.DeleteWatch(r.Context(), source, id)
	if errors.Is(err, poller.ErrWatchNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s is not watching %s", quote(source), quote(id)))
		return
	}
	if s.watchError(w, r, err, source) {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// watchError maps the poller's watch errors onto status codes; it reports
// whether it answered.
func (s *Server) watchError(w http.ResponseWriter, r *http.Request, err error, source string) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, poller.ErrUnknownSource):
		writeError(w, http.StatusNotFound, "no source "+quote(source))
	case errors.Is(err, poller.ErrNotWatchSource):
		writeError(w, http.StatusUnprocessableEntity, "source: "+quote(source)+" is not a watch source (its url has no {id})")
	case errors.Is(err, poller.ErrInvalidWatch):
		writeError(w, http.StatusUnprocessableEntity, err.Error())
	default:
		s.internal(w, r, err)
	}
	return true
}

// reload answers which changed keys still wait for a restart, so a caller
// is not told "reloaded" about a listen address that did not move.
func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	if err := s.opts.Control.ReloadFile(); err != nil {
		invalid(w, err)
		return
	}
	restart := []string{}
	if rr, ok := s.opts.Control.(RestartReporter); ok {
		restart = append(restart, rr.RestartRequired()...)
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "reloaded", "restart_required": restart})
}

// checkDestination refuses webhook targets that must never be reached
// from a sidecar: link-local and cloud metadata addresses always, private
// and loopback ones unless delivery.allow_private_networks. A host that is
// an address in any form a dialer takes is judged as that address; a name
// is checked by the notifier on every address it connects to, which also
// covers DNS rebinding.
func (s *Server) checkDestination(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	return egress.CheckHost(u.Hostname(), s.opts.Control.Config().Delivery.AllowPrivateNetworks)
}

func quote(s string) string { return strconv.Quote(s) }
func itoa(i int) string     { return strconv.Itoa(i) }

func sortStrings(s []string) []string {
	slices.Sort(s)
	return s
}
