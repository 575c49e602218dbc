package poller

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pollrelay/pollrelay/store"
)

// Errors of the watch methods, for the API to map onto status codes.
var (
	// ErrNotWatchSource: the source's URL has no {id}.
	ErrNotWatchSource = errors.New("not a watch source")
	// ErrWatchNotFound: the id is not watched.
	ErrWatchNotFound = errors.New("watch not found")
	// ErrInvalidWatch: a bad id, ttl, metadata or cursor.
	ErrInvalidWatch = errors.New("invalid watch")
)

// Limits on what the API may store in a watch: the id goes into a URL and
// a store key, the metadata into every event of the watch.
const (
	maxWatchID       = 512
	maxWatchMetadata = 16 << 10
	// DefaultWatchesLimit and MaxWatchesLimit bound a page of Watches.
	DefaultWatchesLimit = 100
	MaxWatchesLimit     = 1000
)

// PutWatch starts watching id on a watch source, or updates its watch (PUT
// semantics: ttl and metadata are replaced). ttl 0 means the source's
// watch_ttl (0 there: no expiry). metadata, a JSON object or null, is
// echoed in the watch's events as data.watch.metadata. A watch that ended
// before starts again, so a watch put on an item already in a terminal
// state fires its terminal event on the first poll. The watch is polled
// from the source's next round.
func (m *Manager) PutWatch(ctx context.Context, source, id string, ttl time.Duration, metadata json.RawMessage) (store.Watch, error) {
	l, err := m.watchLoop(source)
	if err != nil {
		return store.Watch{}, fmt.Errorf("put watch %s/%s: %w", source, id, err)
	}
	if err := checkWatchID(id); err != nil {
		return store.Watch{}, fmt.Errorf("put watch %s: %w", source, err)
	}
	if ttl < 0 {
		return store.Watch{}, fmt.Errorf("put watch %s/%s: ttl must not be negative: %w", source, id, ErrInvalidWatch)
	}
	meta, err := watchMetadata(metadata)
	if err != nil {
		return store.Watch{}, fmt.Errorf("put watch %s/%s: %w", source, id, err)
	}
	if err := ctx.Err(); err != nil {
		return store.Watch{}, err
	}
	if ttl == 0 {
		ttl = l.src.WatchTTL
	}
	now := m.now()
	var out store.Watch
	created := false
	err = m.st.Update(func(t store.Txn) error {
		w, err := t.Watch(source, id)
		if err != nil {
			return err
		}
		created = w == nil
		if w == nil {
			w = &store.Watch{Source: source, ID: id, CreatedAt: now}
		}
		w.Origin, w.Metadata, w.ExpiresAt = store.OriginAPI, meta, time.Time{}
		if ttl > 0 {
			w.ExpiresAt = now.Add(ttl)
		}
		if err := t.ClearWatchEnded(source, id); err != nil {
			return err
		}
		out = *w
		return t.PutWatch(w)
	})
	if err != nil {
		return store.Watch{}, fmt.Errorf("put watch %s/%s: %w", source, id, err)
	}
	if created {
		l.addWatches(1)
	}
	return out, nil
}

// DeleteWatch stops watching id. No event fires; the item's stored state
// stays, and neither `ids:` nor watch_from starts the watch again.
func (m *Manager) DeleteWatch(ctx context.Context, source, id string) error {
	l, err := m.watchLoop(source)
	if err != nil {
		return fmt.Errorf("delete watch %s/%s: %w", source, id, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err = m.st.Update(func(t store.Txn) error {
		w, err := t.Watch(source, id)
		if err != nil {
			return err
		}
		if w == nil {
			return ErrWatchNotFound
		}
		if err := t.DeleteWatch(source, id); err != nil {
			return err
		}
		return t.MarkWatchEnded(source, id, m.now())
	})
	if err != nil {
		return fmt.Errorf("delete watch %s/%s: %w", source, id, err)
	}
	l.addWatches(-1)
	return nil
}

// Watches returns up to limit watches of source (of every source when
// source is empty), in source then id order, starting after cursor, with
// the cursor of the next page ("" at the end). limit ≤ 0 means
// DefaultWatchesLimit; at most MaxWatchesLimit are returned.
func (m *Manager) Watches(ctx context.Context, source, cursor string, limit int) ([]store.Watch, string, error) {
	if source != "" {
		if _, err := m.watchLoop(source); err != nil {
			return nil, "", fmt.Errorf("list watches of %s: %w", source, err)
		}
	}
	if limit <= 0 {
		limit = DefaultWatchesLimit
	}
	limit = min(limit, MaxWatchesLimit)
	afterSource, afterID, err := decodeCursor(cursor)
	if err == nil && source != "" && afterSource != "" && afterSource != source {
		err = fmt.Errorf("cursor is for another source: %w", ErrInvalidWatch)
	}
	if err != nil {
		return nil, "", fmt.Errorf("list watches: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	out := []store.Watch{}
	more := false
	err = m.st.View(func(t store.Txn) error {
		return t.Watches(source, afterSource, afterID, func(w *store.Watch) bool {
			if len(out) == limit {
				more = true
				return false
			}
			out = append(out, *w)
			return true
		})
	})
	if err != nil {
		return nil, "", fmt.Errorf("list watches: %w", err)
	}
	next := ""
	if more {
		last := out[len(out)-1]
		next = base64.RawURLEncoding.EncodeToString([]byte(last.Source + "\x00" + last.ID))
	}
	return out, next, nil
}

// watchLoop returns the running loop of a watch source.
func (m *Manager) watchLoop(source string) (*watchLoop, error) {
	l := m.loop(source)
	if l == nil {
		return nil, ErrUnknownSource
	}
	w, ok := l.watchKind()
	if !ok {
		return nil, ErrNotWatchSource
	}
	return w, nil
}

func checkWatchID(id string) error {
	switch {
	case strings.TrimSpace(id) == "":
		return fmt.Errorf("id is empty: %w", ErrInvalidWatch)
	case len(id) > maxWatchID:
		return fmt.Errorf("id is longer than %d bytes: %w", maxWatchID, ErrInvalidWatch)
	case strings.ContainsAny(id, "\x00\r\n"):
		return fmt.Errorf("id contains a control character: %w", ErrInvalidWatch)
	case id == "." || id == "..":
		// Escaping leaves dots alone: /tasks/{id} would become /tasks/..
		return fmt.Errorf("id %q would change the URL's path: %w", id, ErrInvalidWatch)
	}
	return nil
}

// watchMetadata checks and compacts metadata: a JSON object, or nothing.
func watchMetadata(raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if len(raw) > maxWatchMetadata {
		return nil, fmt.Errorf("metadata is larger than %d bytes: %w", maxWatchMetadata, ErrInvalidWatch)
	}
	if raw[0] != '{' || !json.Valid(raw) {
		return nil, fmt.Errorf("metadata must be a JSON object: %w", ErrInvalidWatch)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fmt.Errorf("metadata: %v: %w", err, ErrInvalidWatch)
	}
	return buf.Bytes(), nil
}

func decodeCursor(c string) (source, id string, err error) {
	if c == "" {
		return "", "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", "", fmt.Errorf("bad cursor: %w", ErrInvalidWatch)
	}
	source, id, ok := strings.Cut(string(b), "\x00")
	if !ok || source == "" {
		return "", "", fmt.Errorf("bad cursor: %w", ErrInvalidWatch)
	}
	return source, id, nil
}
