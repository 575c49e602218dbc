package badger

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/internal/syncbuf"
	"github.com/pollrelay/pollrelay/internal/tmpfs"
)

// TestCloseUnwritableDirectory: a store whose directory was removed, or
// whose device went read-only, holding unflushed writes, returns from
// Close with an error saying why (Badger alone retried its flush every
// second, forever). The read-only case mounts, so it needs root.
func TestCloseUnwritableDirectory(t *testing.T) {
	cases := map[string]struct {
		dir     func(t *testing.T) string
		break_  func(t *testing.T, dir string)
		errWant error
	}{
		"removed": {
			dir: func(t *testing.T) string { return filepath.Join(t.TempDir(), "data") },
			break_: func(t *testing.T, dir string) {
				os.RemoveAll(dir)
				// Given back at cleanup, so the store can close then.
				t.Cleanup(func() { os.MkdirAll(dir, 0o700) })
			},
			errWant: syscall.ENOENT,
		},
		"read-only": {
			dir:     func(t *testing.T) string { return filepath.Join(tmpfs.Mount(t, "96m"), "data") },
			break_:  func(t *testing.T, dir string) { tmpfs.ReadOnly(t, filepath.Dir(dir)) },
			errWant: syscall.EROFS,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dir := tc.dir(t)
			logs := &syncbuf.Buffer{}
			s, err := Open(Options{Path: dir, Logger: slog.New(slog.NewTextHandler(logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			// Once the directory is writable again (the cleanups below run
			// first), so nothing is left open. A removed directory's LOCK
			// file is gone, which Close reports after closing.
			hung := false
			t.Cleanup(func() {
				if !hung {
					s.Close()
				}
			})
			e := &event.Event{ID: event.NewID(time.Now()), Type: "t.changed", Source: "t", ItemID: "a", CreatedAt: time.Now()}
			if err := s.update(func(tx *Txn) error { return tx.AddEvent(e) }); err != nil {
				t.Fatal(err)
			}
			tc.break_(t, dir)
			done := make(chan error, 1)
			go func() { done <- s.Close() }()
			select {
			case err = <-done:
			case <-time.After(time.Minute):
				hung = true
				t.Fatal("Close did not return")
			}
			if !errors.Is(err, tc.errWant) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "cannot be written") {
				t.Errorf("Close = %v, want an error naming %s and %v", err, dir, tc.errWant)
			}
			if !strings.Contains(logs.String(), "not flushed") {
				t.Errorf("not logged:\n%s", logs)
			}
		})
	}
}
