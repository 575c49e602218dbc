package badger

import (
	"maps"
	"testing"
)

func TestHistograms(t *testing.T) {
	s := openStore(t)
	want := map[string]string{`"queued"`: "q", `"processing"`: "p", "": "empty state"}
	err := s.update(func(t *Txn) error {
		for state, v := range want {
			if err := t.PutHistogram("jobs", state, []byte(v)); err != nil {
				return err
			}
		}
		// Another source, whose name extends this one's, stays apart.
		return t.PutHistogram("jobs2", `"queued"`, []byte("other"))
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	err = s.view(func(t *Txn) error {
		return t.Histograms("jobs", func(state string, v []byte) error {
			got[state] = string(v)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, want) {
		t.Errorf("Histograms = %v, want %v", got, want)
	}
}
