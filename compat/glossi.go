package compat

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/pollrelay/pollrelay/api"
	"github.com/pollrelay/pollrelay/internal/redact"
	"github.com/pollrelay/pollrelay/signature"
)

// Glossi's webhooks API (glossi-webhooks.txt): one webhook per API key,
// created or replaced with PUT, read with GET, removed with DELETE. The
// answers to PUT and GET are the document's; its errors and DELETE's
// answer are not documented, so they are pollrelay's.

const glossiPath = "/api/v1/webhooks"

// glossiEvents are the events Glossi's document lists.
var glossiEvents = []string{
	"model.processed", "model.failed", "project.created",
	"job.complete", "job.failed", "render.complete", "render.failed",
}

func (f *Facade) routesGlossi() {
	f.handle(glossiPath, map[string]http.HandlerFunc{
		"GET":    f.glossiAuth(f.glossiGet),
		"PUT":    f.glossiAuth(f.glossiPut),
		"DELETE": f.glossiAuth(f.glossiDelete),
	})
}

func (f *Facade) glossiAuth(h http.HandlerFunc) http.HandlerFunc {
	return f.keyIn("X-API-Key", "Invalid API key", h)
}

// glossiSaved is PUT's answer, with the secret.
type glossiSaved struct {
	ID          string   `json:"id"`
	URL         string   `json:"url"`
	Secret      string   `json:"secret"`
	Events      []string `json:"events"`
	Enabled     bool     `json:"enabled"`
	Description string   `json:"description"`
}

// glossiShown is GET's answer: no secret, and the delivery health. A
// webhook never triggered shows null for the last trigger and status.
type glossiShown struct {
	ID                 string   `json:"id"`
	URL                string   `json:"url"`
	Events             []string `json:"events"`
	Enabled            bool     `json:"enabled"`
	Description        string   `json:"description"`
	LastTriggeredAt    *string  `json:"lastTriggeredAt"`
	LastResponseStatus *int     `json:"lastResponseStatus"`
	// FailureCount is Glossi's: deliveries whose retries all failed
	// (/v1's dead_count), not /v1's failure_count of failed attempts.
	FailureCount int `json:"failureCount"`
}

// the webhook of this facade's key, if there is one.
func (f *Facade) glossiCurrent() (owned, bool) {
	all := f.mine()
	if len(all) == 0 {
		return owned{}, false
	}
	return all[0], true
}

func (f *Facade) glossiGet(w http.ResponseWriter, _ *http.Request) {
	o, ok := f.glossiCurrent()
	if !ok {
		writeError(w, http.StatusNotFound, "Webhook not found")
		return
	}
	st := f.o.API.SubscriptionStats(o.sub.ID())
	v := glossiShown{
		ID: o.rec.UUID, URL: redact.Userinfo(o.sub.Spec.URL), Events: o.sub.Spec.Events, Enabled: !st.Disabled,
		Description: o.rec.Description, FailureCount: st.DeadCount,
	}
	if !st.LastTriggeredAt.IsZero() {
		at, status := millis(st.LastTriggeredAt), st.LastResponseStatus
		v.LastTriggeredAt, v.LastResponseStatus = &at, &status
	}
	writeJSON(w, http.StatusOK, v)
}

// glossiBody is a PUT body, checked.
type glossiBody struct {
	url, description string
	events           []string
	enabled          bool
}

func glossiParse(w http.ResponseWriter, r *http.Request) (glossiBody, bool) {
	b := glossiBody{enabled: true}
	body, err := readObject(r)
	if err != nil {
		if !tooBig(w, err) {
			writeError(w, http.StatusBadRequest, "Invalid JSON body: "+err.Error())
		}
		return b, false
	}
	fail := func(msg string) (glossiBody, bool) {
		writeError(w, http.StatusBadRequest, msg)
		return b, false
	}
	u, ok := body["url"].(string)
	if !ok {
		return fail("url: required, a string")
	}
	if err := checkURL(u); err != nil {
		return fail("url: must be an absolute http or https URL")
	}
	b.url = u
	list, ok := body["events"].([]any)
	if !ok || len(list) == 0 {
		return fail("events: required, a non-empty list of " + strings.Join(glossiEvents, ", "))
	}
	for i, e := range list {
		s, _ := e.(string)
		if !slices.Contains(glossiEvents, s) {
			return fail(fmt.Sprintf("events[%d]: must be one of %s", i, strings.Join(glossiEvents, ", ")))
		}
		if !slices.Contains(b.events, s) {
			b.events = append(b.events, s)
		}
	}
	if v, has := body["enabled"]; has {
		if b.enabled, ok = v.(bool); !ok {
			return fail("enabled: must be true or false")
		}
	}
	if v, has := body["description"]; has && v != nil {
		if b.description, ok = v.(string); !ok {
			return fail("description: must be a string")
		}
	}
	return b, true
}

// glossiPut creates the key's webhook with a new secret, or replaces it
// keeping the secret; both answers show the secret, as the document says.
func (f *Facade) glossiPut(w http.ResponseWriter, r *http.Request) {
	b, ok := glossiParse(w, r)
	if !ok {
		return
	}
	tmpl, body, err := f.template()
	if err != nil {
		f.internal(w, r, err)
		return
	}
	body["url"], body["events"] = b.url, anyList(b.events)
	f.one.Lock()
	defer f.one.Unlock()
	cur, exists := f.glossiCurrent()
	var saved glossiSaved
	if exists {
		rec := cur.rec
		rec.Description = b.description
		sub, err := f.o.API.ReplaceSubscription(r.Context(), cur.sub.Record, body, mustJSON(rec))
		if !f.glossiStored(w, r, err) {
			return
		}
		saved = glossiSaved{ID: rec.UUID, URL: redact.Userinfo(sub.Spec.URL), Secret: sub.Record.Secrets[0].Value, Events: sub.Spec.Events, Description: rec.Description}
		cur = owned{sub, rec}
	} else {
		secret := newGlossiSecret(tmpl.Spec.Scheme().Name)
		sub, rec, err := f.create(r.Context(), body, secret, record{UUID: newUUID(), Description: b.description})
		if !f.glossiStored(w, r, err) {
			return
		}
		saved = glossiSaved{ID: rec.UUID, URL: redact.Userinfo(sub.Spec.URL), Secret: secret, Events: sub.Spec.Events, Description: rec.Description}
		cur = owned{sub, rec}
	}
	if err := f.o.API.SetSubscriptionDisabled(r.Context(), cur.sub.ID(), !b.enabled); err != nil {
		f.internal(w, r, err)
		return
	}
	saved.Enabled = b.enabled
	writeJSON(w, http.StatusOK, saved)
}

func (f *Facade) glossiDelete(w http.ResponseWriter, r *http.Request) {
	f.one.Lock()
	defer f.one.Unlock()
	o, ok := f.glossiCurrent()
	if !ok {
		writeError(w, http.StatusNotFound, "Webhook not found")
		return
	}
	if err := f.o.API.RemoveSubscription(r.Context(), o.sub.ID()); !f.glossiStored(w, r, err) {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (f *Facade) glossiStored(w http.ResponseWriter, r *http.Request, err error) bool {
	var inv *api.InvalidError
	switch {
	case err == nil:
		return true
	case errors.As(err, &inv) && (inv.Key == "url" || inv.Key == "events"):
		writeError(w, http.StatusBadRequest, inv.Error())
	case errors.Is(err, api.ErrSubscriptionGone):
		writeError(w, http.StatusNotFound, "Webhook not found")
	case errors.Is(err, api.ErrSubscriptionChanged):
		writeError(w, http.StatusConflict, "Webhook was changed by another request; retry")
	default:
		f.internal(w, r, err)
	}
	return false
}

// newGlossiSecret makes a webhook's secret in the form its template's
// scheme signs with: a whsec_ key for Standard Webhooks, else 32 random
// bytes in hex, which Glossi's samples use as the HMAC key as it is.
func newGlossiSecret(scheme string) string {
	if scheme == signature.SchemeStandard || scheme == "" {
		return signature.NewSecret()
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newUUID is a random (version 4) UUID, the form of Glossi's ids.
func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
