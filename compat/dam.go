package compat

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/pollrelay/pollrelay/api"
	"github.com/pollrelay/pollrelay/internal/redact"
)

// DAM's admin webhooks API (dam-admin-webhooks-api.txt). Its answers to
// POST are the document's, field for field; list, get, update and delete
// are not documented, so their shapes are pollrelay's, in the same
// wrapper.

const damPath = "/api/v2/admin/webhooks"

func (f *Facade) routesDAM() {
	f.handle(damPath, map[string]http.HandlerFunc{
		"GET":  f.damAuth(f.damList),
		"POST": f.damAuth(f.damCreate),
	})
	f.handle(damPath+"/{id}", map[string]http.HandlerFunc{
		"GET":    f.damAuth(f.damGet),
		"PUT":    f.damAuth(f.damUpdate),
		"PATCH":  f.damAuth(f.damUpdate),
		"DELETE": f.damAuth(f.damDelete),
	})
}

// damAuth checks X-API-KEY.
func (f *Facade) damAuth(h http.HandlerFunc) http.HandlerFunc {
	return f.keyIn("X-API-KEY", "Unauthorized", h)
}

// damWebhook is a webhook as DAM answers it, in the document's key order.
type damWebhook struct {
	ID               uint64   `json:"id"`
	Name             string   `json:"name"`
	HTTPURL          string   `json:"http_url"`
	HTTPMethod       string   `json:"http_method"`
	TriggerEvents    []string `json:"trigger_events"`
	CreatedAt        string   `json:"created_at"`
	UpdatedAt        string   `json:"updated_at"`
	Disabled         bool     `json:"disabled"`
	ProjectID        *string  `json:"project_id"`
	QueueLength      int      `json:"queue_length"`
	RetryQueueLength int      `json:"retry_queue_length"`
	// LatestRun is null until the webhook is first triggered; then its
	// shape is pollrelay's (the document shows only null).
	LatestRun      *damRun  `json:"latest_run"`
	WebhookUsers   []string `json:"webhook_users"`
	WebhookHeaders []string `json:"webhook_headers"`
}

type damRun struct {
	TriggeredAt    string `json:"triggered_at"`
	ResponseStatus int    `json:"response_status"`
}

func (f *Facade) damView(o owned) damWebhook {
	st := f.o.API.SubscriptionStats(o.sub.ID())
	v := damWebhook{
		ID: o.rec.ID, Name: o.rec.Name, HTTPURL: redact.Userinfo(o.sub.Spec.URL), HTTPMethod: o.sub.Spec.Method,
		TriggerEvents: o.sub.Spec.Events, CreatedAt: millis(o.sub.Record.CreatedAt), UpdatedAt: millis(o.sub.Record.UpdatedAt),
		Disabled: st.Disabled, ProjectID: o.rec.ProjectID,
		QueueLength: st.QueueLength, RetryQueueLength: st.RetryQueueLength,
		WebhookUsers: []string{}, WebhookHeaders: []string{},
	}
	if !st.LastTriggeredAt.IsZero() {
		v.LatestRun = &damRun{TriggeredAt: millis(st.LastTriggeredAt), ResponseStatus: st.LastResponseStatus}
	}
	return v
}

func damAnswer(w http.ResponseWriter, v damWebhook) {
	writeJSON(w, http.StatusOK, map[string]damWebhook{"webhook": v})
}

// damInvalid is DAM's 422 for a parameter: the value as Ruby inspects it,
// then the validation it failed.
func damInvalid(w http.ResponseWriter, param string, value any, validation string) {
	writeError(w, http.StatusUnprocessableEntity, "Invalid parameter '"+param+"' value "+rubyInspect(value)+": "+validation)
}

// damTriggerList is the validation text of trigger_events.
var damTriggerList = func() string {
	q := make([]string, len(damTriggerEvents))
	for i, e := range damTriggerEvents {
		q[i] = `"` + e + `"`
	}
	return "Must be an array of [" + strings.Join(q, ", ") + "]"
}()

// damMaxString bounds a string parameter: a name is shown, not a store.
const damMaxString = 4096

// damParams checks a create or update body in the document's parameter
// order, answering the first problem. On update (partial) an absent key
// keeps its value; on create every key but project_id is required.
type damParams struct {
	name, url, method *string
	events            []string
	project           *string
	hasProject        bool
}

func (f *Facade) damParse(w http.ResponseWriter, r *http.Request, partial bool) (damParams, bool) {
	var p damParams
	body, err := readObject(r)
	if err != nil {
		if !tooBig(w, err) {
			writeError(w, http.StatusBadRequest, "Invalid JSON body: "+err.Error())
		}
		return p, false
	}
	str := func(key string, required bool) (*string, bool) {
		v, has := body[key]
		if !has && (partial || !required) {
			return nil, true
		}
		s, ok := v.(string)
		if !ok {
			damInvalid(w, key, v, "Must be a String")
			return nil, false
		}
		if len(s) > damMaxString {
			damInvalid(w, key, s[:32]+"…", fmt.Sprintf("Must be at most %d bytes", damMaxString))
			return nil, false
		}
		return &s, true
	}
	var ok bool
	if p.name, ok = str("name", true); !ok {
		return p, false
	}
	if p.url, ok = str("http_url", true); !ok {
		return p, false
	}
	if p.url != nil {
		if err := checkURL(*p.url); err != nil {
			damInvalid(w, "http_url", *p.url, "Must be an absolute http or https URL")
			return p, false
		}
	}
	if p.method, ok = str("http_method", true); !ok {
		return p, false
	}
	if p.method != nil {
		m, _ := asciiUpper(*p.method)
		if m != "POST" && m != "PUT" {
			damInvalid(w, "http_method", *p.method, "Must be one of POST, PUT")
			return p, false
		}
		p.method = &m
	}
	if v, has := body["trigger_events"]; has || !partial {
		list, ok := v.([]any)
		if ok {
			for _, e := range list {
				s, isStr := e.(string)
				if !isStr || !slices.Contains(damTriggerEvents, s) {
					ok = false
					break
				}
				if !slices.Contains(p.events, s) {
					p.events = append(p.events, s)
				}
			}
		}
		if !ok || len(list) == 0 {
			damInvalid(w, "trigger_events", v, damTriggerList)
			return p, false
		}
	}
	if v, has := body["project_id"]; has && v != nil {
		s, isStr := v.(string)
		if !isStr {
			damInvalid(w, "project_id", v, "Must be a String")
			return p, false
		}
		if !slices.Contains(f.o.Config.Projects, s) {
			writeError(w, http.StatusNotFound, "project not found")
			return p, false
		}
		p.project = &s
	}
	_, p.hasProject = body["project_id"]
	return p, true
}

func (f *Facade) damList(w http.ResponseWriter, _ *http.Request) {
	listAs(f, w, f.damView)
}

func (f *Facade) damGet(w http.ResponseWriter, r *http.Request) {
	o, ok := f.found(w, r)
	if !ok {
		return
	}
	damAnswer(w, f.damView(o))
}

func (f *Facade) damCreate(w http.ResponseWriter, r *http.Request) {
	p, ok := f.damParse(w, r, false)
	if !ok {
		return
	}
	body, secret, err := f.signedLikeTemplate()
	if err != nil {
		f.internal(w, r, err)
		return
	}
	body["url"], body["method"], body["events"] = *p.url, *p.method, anyList(p.events)
	sub, rec, err := f.create(r.Context(), body, secret, record{Name: *p.name, ProjectID: p.project})
	if !f.damStored(w, r, *p.url, err) {
		return
	}
	damAnswer(w, f.damView(owned{sub, rec}))
}

func (f *Facade) damUpdate(w http.ResponseWriter, r *http.Request) {
	o, ok := f.found(w, r)
	if !ok {
		return
	}
	p, ok := f.damParse(w, r, true)
	if !ok {
		return
	}
	// From the stored spec, not the template: what /v1 changed stays.
	body, err := specBody(o.sub)
	if err != nil {
		f.internal(w, r, err)
		return
	}
	rec := o.rec
	if p.name != nil {
		rec.Name = *p.name
	}
	if p.url != nil {
		body["url"] = *p.url
	}
	if p.method != nil {
		body["method"] = *p.method
	}
	if p.events != nil {
		body["events"] = anyList(p.events)
	}
	if p.hasProject {
		rec.ProjectID = p.project
	}
	sub, err := f.o.API.ReplaceSubscription(r.Context(), o.sub.Record, body, mustJSON(rec))
	if !f.damStored(w, r, body["url"], err) {
		return
	}
	damAnswer(w, f.damView(owned{sub, rec}))
}

func (f *Facade) damDelete(w http.ResponseWriter, r *http.Request) {
	o, ok := f.found(w, r)
	if !ok {
		return
	}
	v := f.damView(o)
	if err := f.o.API.RemoveSubscription(r.Context(), o.sub.ID()); !f.damStored(w, r, nil, err) {
		return
	}
	damAnswer(w, v)
}

// damStored answers a failed change in DAM's form; true when there was
// none. url is the http_url sent, which a refusal of it quotes.
func (f *Facade) damStored(w http.ResponseWriter, r *http.Request, url any, err error) bool {
	var inv *api.InvalidError
	switch {
	case err == nil:
		return true
	case errors.As(err, &inv) && inv.Key == "url":
		damInvalid(w, "http_url", url, "Must be an address pollrelay may deliver to ("+inv.Message+")")
	case errors.Is(err, api.ErrSubscriptionGone):
		writeError(w, http.StatusNotFound, "webhook not found")
	case errors.Is(err, api.ErrSubscriptionChanged):
		writeError(w, http.StatusConflict, "webhook was changed by another request; read it again and retry")
	default:
		f.internal(w, r, err)
	}
	return false
}
