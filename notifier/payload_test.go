package notifier

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/store"
)

func jsonValue(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	return v
}

// payload: reshapes the envelope into a vendor's own shape, so an app
// written for the vendor's webhooks works unchanged.
func TestPayloadVendorShapes(t *testing.T) {
	glossiObject := `{"modelId":"model-uuid","name":"Chair Model","status":"READY","glbFilePath":"https://s3.example/file.glb","thumbnailUrl":"https://s3.example/file.jpg"}`
	csmObject := `{"session_id":"SESSION_1756711515_3265503","user_id":"681dcde5253883b154accfde","session_type":"image_to_3d","status":"complete","input_image":"https://example/in.png"}`
	cases := []struct {
		name   string
		config string
		ev     *event.Event
		want   func(ev *event.Event) string
		check  func(t *testing.T, h hit)
	}{
		{
			name: "Glossi",
			config: `secret: glossi-secret
				signature: {scheme: hmac-sha256, header: X-Glossi-Signature, encoding: hex}
				payload: '{event: .type, timestamp: .timestamp, data: .data.object}'`,
			ev: &event.Event{Type: "model.processed", Kind: event.Changed, Source: "models", ItemID: "model-uuid",
				Previous: json.RawMessage(`"PROCESSING"`), Current: json.RawMessage(`"READY"`), Object: json.RawMessage(glossiObject)},
			want: func(ev *event.Event) string {
				return `{"event":"model.processed","timestamp":"` + ev.CreatedAt.UTC().Format(event.TimestampFormat) + `","data":` + glossiObject + `}`
			},
			check: func(t *testing.T, h hit) {
				m := hmac.New(sha256.New, []byte("glossi-secret"))
				m.Write(h.Body)
				if h.Header.Get("X-Glossi-Signature") != hex.EncodeToString(m.Sum(nil)) {
					t.Error("X-Glossi-Signature is not the HMAC of the reshaped body as sent")
				}
			},
		},
		{
			name: "CSM",
			config: `secret: ` + testSecret + `
				payload: '{type: "session_status_changed", payload: {session_id: .data.id, user_id: .data.object.user_id, session_type: .data.object.session_type, old_status: .data.previous, new_status: .data.current, timestamp: .timestamp, session_data: (.data.object | del(.input_image_embedding))}}'`,
			ev: &event.Event{Type: "session.complete", Kind: event.Changed, Source: "sessions", ItemID: "SESSION_1756711515_3265503",
				Previous: json.RawMessage(`"incomplete"`), Current: json.RawMessage(`"complete"`), Object: json.RawMessage(csmObject)},
			want: func(ev *event.Event) string {
				return `{"type":"session_status_changed","payload":{"session_id":"SESSION_1756711515_3265503",` +
					`"user_id":"681dcde5253883b154accfde","session_type":"image_to_3d","old_status":"incomplete",` +
					`"new_status":"complete","timestamp":"` + ev.CreatedAt.UTC().Format(event.TimestampFormat) + `",` +
					`"session_data":` + csmObject + `}}`
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver()
			srv := httptest.NewServer(rc)
			defer srv.Close()
			subs := parseSubs(t, "name: app\nurl: "+srv.URL+"\n"+c.config)
			e := start(t, t.TempDir(), subs, Options{})
			ev := e.put(c.ev)
			h := rc.next(t)
			if got, want := jsonValue(t, h.Body), jsonValue(t, []byte(c.want(ev))); !reflect.DeepEqual(got, want) {
				t.Errorf("body\n%s\nwant\n%s", h.Body, c.want(ev))
			}
			if h.ID != ev.ID {
				t.Errorf("webhook-id %s, want %s", h.ID, ev.ID)
			}
			if c.check != nil {
				c.check(t, h)
			}
			e.waitState("app", ev.ID, store.Delivered)
		})
	}
}

// A payload program that fails at run time dead-letters the delivery with
// the reason instead of sending garbage, blames neither the endpoint nor
// the next event of the item, and sends nothing.
func TestPayloadRuntimeError(t *testing.T) {
	for _, c := range []struct{ name, payload, reason string }{
		{"jq error", `{name: (.data.object.status | ascii_downcase)}`, "ascii_downcase cannot be applied to"},
		{"no value", `.data.object.missing`, "produced no value"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver()
			srv := httptest.NewServer(rc)
			defer srv.Close()
			subs := parseSubs(t, "name: app\nurl: "+srv.URL+"\nsecret: "+testSecret+"\npayload: '"+c.payload+"'")
			e := start(t, t.TempDir(), subs, Options{})
			bad := e.put(&event.Event{Type: "task.ready", Kind: event.Changed, Source: "tasks", ItemID: "a",
				Current: json.RawMessage(`"ready"`), Object: json.RawMessage(`{"status":7}`)})
			good := e.put(&event.Event{Type: "task.ready", Kind: event.Changed, Source: "tasks", ItemID: "a",
				Current: json.RawMessage(`"ready"`), Object: json.RawMessage(`{"status":"READY","missing":1}`)})

			d := e.waitState("app", bad.ID, store.Dead)
			if !strings.Contains(d.LastError, c.reason) || !strings.Contains(d.LastError, "payload") || d.Attempts != 1 {
				t.Errorf("dead delivery: %+v, want a payload error saying %q", d, c.reason)
			}
			as := e.attempts(bad.ID)
			if len(as) != 1 || as[0].Outcome != OutcomePayload || as[0].Status != 0 {
				t.Errorf("attempt: %+v", as)
			}
			e.waitState("app", good.ID, store.Delivered)
			for _, h := range rc.all() {
				if h.ID == bad.ID {
					t.Errorf("the event whose payload failed was sent: %s", h.Body)
				}
			}
			if st, _ := e.n.Stats("app"); st.FailureCount != 0 || st.DeadCount != 1 {
				t.Errorf("stats: %+v; a payload error is not the endpoint's failure", st)
			}
		})
	}
}
