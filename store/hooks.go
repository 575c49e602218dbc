package store

import "sync"

// Hooks are the functions a backend's OnEvent registers, run after each
// commit that added events to the outbox.
type Hooks struct {
	mu  sync.Mutex
	fns []func()
}

// Add registers fn.
func (h *Hooks) Add(fn func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fns = append(h.fns, fn)
}

// Run calls every registered function.
func (h *Hooks) Run() {
	h.mu.Lock()
	fns := h.fns
	h.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}
