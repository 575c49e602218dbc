// Package demo holds what `pollrelay demo` runs beside the bridge: a
// simulated task API whose jobs change state on their own, and a receiver
// that verifies each webhook's signature and prints it.
package demo

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"time"
)

// TaskAPI simulates an upstream with no webhooks: jobs are created every
// Every, move queued → processing → ready or errored over a few seconds,
// and disappear from the listing Retain after they finish. A job's state is
// a pure function of its creation time and id, so the API needs no
// goroutine and always answers consistently.
type TaskAPI struct {
	Start  time.Time
	Every  time.Duration
	Retain time.Duration
	Now    func() time.Time
}

// NewTaskAPI returns an API whose first jobs exist at once.
func NewTaskAPI(now func() time.Time) *TaskAPI {
	return &TaskAPI{Start: now().Add(-3 * time.Second), Every: 2 * time.Second, Retain: 20 * time.Second, Now: now}
}

// Job is one simulated task.
type Job struct {
	ID        string    `json:"id"`
	Status    string    `json:"status"`
	Progress  int       `json:"progress"`
	CreatedAt time.Time `json:"created_at"`
	Error     *string   `json:"error"`
}

// phases returns how long job n stays queued and processing, and whether
// it fails: 1–3 s queued, 2–5 s processing, one job in five errors.
func phases(n int) (queued, processing time.Duration, fails bool) {
	h := fnv.New32a()
	fmt.Fprintf(h, "job-%d", n)
	v := h.Sum32()
	queued = time.Second + time.Duration(v%2000)*time.Millisecond
	processing = 2*time.Second + time.Duration((v/2000)%3000)*time.Millisecond
	return queued, processing, (v/7)%5 == 0
}

// Jobs returns the listing at now.
func (a *TaskAPI) Jobs(now time.Time) []Job {
	var out []Job
	count := int(now.Sub(a.Start)/a.Every) + 1
	for n := range count {
		created := a.Start.Add(time.Duration(n) * a.Every)
		age := now.Sub(created)
		q, p, fails := phases(n)
		j := Job{ID: fmt.Sprintf("job_%04d", n+1), CreatedAt: created.UTC()}
		switch {
		case age < q:
			j.Status = "queued"
		case age < q+p:
			j.Status = "processing"
			j.Progress = int(100 * (age - q) / p)
		case fails:
			j.Status, j.Progress = "errored", 100
			msg := "render timed out"
			j.Error = &msg
		default:
			j.Status, j.Progress = "ready", 100
		}
		if age >= q+p+a.Retain {
			continue
		}
		out = append(out, j)
	}
	return out
}

// ServeHTTP answers GET /v1/jobs with {"data": [...]} like many task APIs.
func (a *TaskAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/jobs" {
		http.NotFound(w, r)
		return
	}
	jobs := a.Jobs(a.Now())
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"data": jobs, "has_more": false})
}
