package api

import (
	"encoding/base64"
	"errors"
	"net/http"

	"github.com/pollrelay/pollrelay/notifier"
	"github.com/pollrelay/pollrelay/store"
)

// listQuarantine serves GET /v1/quarantine: the records set aside, by id,
// optionally of one kind (?kind=item|event|delivery).
func (s *Server) listQuarantine(w http.ResponseWriter, r *http.Request) {
	limit, ok := limitParam(w, r)
	if !ok {
		return
	}
	kind := r.URL.Query().Get("kind")
	if kind != "" && kind != store.QuarantineItem && kind != store.QuarantineEvent && kind != store.QuarantineDelivery {
		writeError(w, http.StatusUnprocessableEntity, "kind: must be item, event or delivery")
		return
	}
	after := ""
	if c := r.URL.Query().Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil || len(b) == 0 {
			writeError(w, http.StatusUnprocessableEntity, "cursor: not a cursor this API returned")
			return
		}
		after = string(b)
	}
	out := list[*store.Quarantined]{Data: []*store.Quarantined{}}
	err := s.opts.Store.View(func(t store.Txn) error {
		return t.QuarantineRecords(after, func(q *store.Quarantined) bool {
			if kind != "" && q.Kind != kind {
				return true
			}
			if len(out.Data) == limit {
				last := out.Data[len(out.Data)-1]
				out.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(last.ID))
				return false
			}
			out.Data = append(out.Data, q)
			return true
		})
	})
	if err != nil {
		s.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// retryQuarantine serves POST /v1/quarantine/{id}/retry.
func (s *Server) retryQuarantine(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	err := s.opts.Notifier.RetryQuarantined(r.Context(), id)
	switch {
	case errors.Is(err, notifier.ErrNotFound):
		writeError(w, http.StatusNotFound, "no quarantine record "+quote(id))
	case errors.Is(err, notifier.ErrStillBad):
		writeError(w, http.StatusConflict, err.Error())
	case err != nil:
		s.internal(w, r, err)
	default:
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "retried"})
	}
}
