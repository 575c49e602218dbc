package cluster

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// SoloToken is the token of every lease on Solo: with one member there is
// no other holder to fence out.
const SoloToken int64 = 1

// Solo is the backend of a single process (the embedded store): its one
// member holds every lease under SoloToken, and nothing expires, so a
// process paused for a while finds its leases where it left them.
type Solo struct {
	mu     sync.Mutex
	member *Member
	leases map[string]*Lease
}

// NewSolo returns an empty Solo backend.
func NewSolo() *Solo { return &Solo{leases: map[string]*Lease{}} }

// Join registers m, the only member.
func (s *Solo) Join(_ context.Context, m Member, _ time.Duration, _ map[string]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.member = &m
	return nil
}

// Heartbeat renews every lease h holds.
func (s *Solo) Heartbeat(_ context.Context, h Holder, _ time.Duration, names []string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.member == nil || s.member.Holder != h {
		return nil, ErrNotMember
	}
	var out []string
	for _, n := range names {
		if l := s.leases[n]; l != nil && l.Live && l.Holder == h {
			out = append(out, n)
		}
	}
	return out, nil
}

// Members returns the one member, once joined.
func (s *Solo) Members(context.Context) ([]Member, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.member == nil {
		return nil, nil
	}
	return []Member{*s.member}, nil
}

// MemberConfigs has nothing to compare against: there is no other member.
func (s *Solo) MemberConfigs(context.Context, Holder) (map[string]string, error) {
	return nil, nil
}

// Leases returns every lease acquired.
func (s *Solo) Leases(context.Context) ([]Lease, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Lease, 0, len(s.leases))
	for _, l := range s.leases {
		out = append(out, *l)
	}
	slices.SortFunc(out, func(a, b Lease) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Acquire takes free leases under SoloToken.
func (s *Solo) Acquire(_ context.Context, h Holder, claims []Claim) (map[string]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	got := map[string]int64{}
	for _, c := range claims {
		if l := s.leases[c.Name]; l != nil && l.Live && l.Holder != h {
			continue
		}
		s.leases[c.Name] = &Lease{Name: c.Name, Holder: h, Token: SoloToken, Config: c.Config, Live: true}
		got[c.Name] = SoloToken
	}
	return got, nil
}

// Release frees the leases h holds among names.
func (s *Solo) Release(_ context.Context, h Holder, names []string, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		if l := s.leases[n]; l != nil && l.Holder == h {
			l.Live, l.Released = false, reason
		}
	}
	return nil
}

// Leave releases the member's leases and removes it.
func (s *Solo) Leave(_ context.Context, h Holder) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.leases {
		if l.Holder == h && l.Live {
			l.Live, l.Released = false, ReasonReleased
		}
	}
	if s.member != nil && s.member.Holder == h {
		s.member = nil
	}
	return nil
}
