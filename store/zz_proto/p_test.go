package zzproto

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/pollrelay/pollrelay/store"
)

func TestBubble(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		st, err := store.Open(store.Options{Path: dir})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 50; i++ {
			if err := st.Update(func(tx *store.Txn) error { return tx.PutSourceState("x", store.SourceState{ETag: "a"}) }); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Minute)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	})
}
func TestOutside(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(store.Options{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	synctest.Test(t, func(t *testing.T) {
		for i := 0; i < 50; i++ {
			if err := st.Update(func(tx *store.Txn) error { return tx.PutSourceState("x", store.SourceState{ETag: "a"}) }); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Minute)
		}
	})
}
