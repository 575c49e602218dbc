package compat

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/pollrelay/pollrelay/api"
	"github.com/pollrelay/pollrelay/internal/redact"
)

// Gumlet's webhook API (gumlet-video-status-webhooks.txt): the document
// gives only the request of POST /v1/org/webhooks, so every answer here,
// and the list, get and delete beside it, are pollrelay's. Its paths are
// pollrelay's /v1, so it is served on its own address.

const gumletPath = "/v1/org/webhooks"

// gumletTriggers maps Gumlet's triggers to the event types they stand for.
var gumletTriggers = map[string]string{"status": "video.status.*"}

func (f *Facade) routesGumlet() {
	f.handle(gumletPath, map[string]http.HandlerFunc{
		"GET":  f.gumletAuth(f.gumletList),
		"POST": f.gumletAuth(f.gumletCreate),
	})
	f.handle(gumletPath+"/{id}", map[string]http.HandlerFunc{
		"GET":    f.gumletAuth(f.gumletGet),
		"DELETE": f.gumletAuth(f.gumletDelete),
	})
}

func (f *Facade) gumletAuth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		scheme, token, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
		if !strings.EqualFold(scheme, "Bearer") || !f.keyOK(strings.TrimSpace(token)) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gumlet"`)
			writeError(w, http.StatusUnauthorized, "invalid or missing API key")
			return
		}
		h(w, r)
	}
}

// gumletWebhook is a webhook as this facade shows it.
type gumletWebhook struct {
	ID       uint64   `json:"id"`
	URL      string   `json:"url"`
	Sources  []string `json:"sources"`
	Triggers []string `json:"triggers"`
	Disabled bool     `json:"disabled"`
}

func (f *Facade) gumletView(o owned) gumletWebhook {
	v := gumletWebhook{ID: o.rec.ID, URL: redact.Userinfo(o.sub.Spec.URL), Sources: o.rec.Sources, Triggers: o.rec.Triggers}
	if v.Sources == nil {
		v.Sources = []string{}
	}
	v.Disabled = f.o.API.SubscriptionStats(o.sub.ID()).Disabled
	return v
}

func (f *Facade) gumletList(w http.ResponseWriter, _ *http.Request) {
	listAs(f, w, f.gumletView)
}

func (f *Facade) gumletGet(w http.ResponseWriter, r *http.Request) {
	o, ok := f.found(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, f.gumletView(o))
}

// stringList reads key of body as a list of strings; absent is nil.
func stringList(body map[string]any, key string) ([]string, error) {
	v, has := body[key]
	if !has || v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: must be a list of strings", key)
	}
	out := make([]string, len(list))
	for i, e := range list {
		s, ok := e.(string)
		if !ok || s == "" {
			return nil, fmt.Errorf("%s[%d]: must be a non-empty string", key, i)
		}
		out[i] = s
	}
	return out, nil
}

func (f *Facade) gumletCreate(w http.ResponseWriter, r *http.Request) {
	body, err := readObject(r)
	if err != nil {
		if !tooBig(w, err) {
			writeError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error())
		}
		return
	}
	u, ok := body["url"].(string)
	if !ok || checkURL(u) != nil {
		writeError(w, http.StatusBadRequest, "url: required, an absolute http or https URL")
		return
	}
	sources, err := stringList(body, "sources")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	triggers, err := stringList(body, "triggers")
	if err == nil && len(triggers) == 0 {
		err = errors.New(`triggers: required, e.g. ["status"]`)
	}
	var events []string
	for i, t := range triggers {
		ev, known := gumletTriggers[t]
		if !known && err == nil {
			err = fmt.Errorf(`triggers[%d]: unknown trigger %q; the one Gumlet documents is "status"`, i, t)
		}
		events = append(events, ev)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	spec, secret, err := f.signedLikeTemplate()
	if err != nil {
		f.internal(w, r, err)
		return
	}
	spec["url"], spec["events"] = u, anyList(events)
	sub, rec, err := f.create(r.Context(), spec, secret, record{Sources: sources, Triggers: triggers})
	if !f.gumletStored(w, r, err) {
		return
	}
	writeJSON(w, http.StatusOK, f.gumletView(owned{sub, rec}))
}

func (f *Facade) gumletDelete(w http.ResponseWriter, r *http.Request) {
	o, ok := f.found(w, r)
	if !ok {
		return
	}
	if err := f.o.API.RemoveSubscription(r.Context(), o.sub.ID()); !f.gumletStored(w, r, err) {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (f *Facade) gumletStored(w http.ResponseWriter, r *http.Request, err error) bool {
	var inv *api.InvalidError
	switch {
	case err == nil:
		return true
	case errors.As(err, &inv) && inv.Key == "url":
		writeError(w, http.StatusBadRequest, inv.Error())
	case errors.Is(err, api.ErrSubscriptionGone):
		writeError(w, http.StatusNotFound, "webhook not found")
	default:
		f.internal(w, r, err)
	}
	return false
}
