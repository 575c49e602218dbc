package diff

import (
	"fmt"

	"github.com/pollrelay/pollrelay/store"
)

// Heads are a source's stored items without their objects, read in the
// background while the poll's listing is fetched and parsed: the two are
// independent, and on a large listing each takes about as long as the
// other, so a poll that compares takes the longer of them instead of the
// sum. Only the source's own poll loop writes its items, so heads read
// after its previous poll finished are what Apply would read itself.
type Heads struct {
	done  chan struct{}
	items map[string]*store.Item
	err   error
}

// LoadHeads starts reading source's item heads; sizeHint is how many
// items are expected. Wait (or Apply, given the heads) collects them.
func LoadHeads(st *store.Store, source string, sizeHint int) *Heads {
	h := &Heads{done: make(chan struct{}), items: make(map[string]*store.Item, sizeHint)}
	go func() {
		defer close(h.done)
		h.err = st.View(func(t *store.Txn) error {
			return t.ItemHeads(source, func(id string, it *store.Item) error {
				h.items[id] = it
				return nil
			})
		})
		if h.err != nil {
			h.err = fmt.Errorf("load %s: %w", source, h.err)
		}
	}()
	return h
}

// Wait waits until the heads are read. A poll that does not use them
// waits too, so no read is left running when the store closes.
func (h *Heads) Wait() (map[string]*store.Item, error) {
	<-h.done
	return h.items, h.err
}
