package cluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// call bounds one backend call by the renewal interval, so a hung
// connection cannot hold up the renewals and the expiries after it.
func (c *Coordinator) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.renew)
}

// join registers this member, when it has not yet or its configs changed.
func (c *Coordinator) join(ctx context.Context) error {
	c.mu.Lock()
	if c.joined {
		c.mu.Unlock()
		return nil
	}
	m := Member{Holder: c.me, Version: c.version}
	configs := maps.Clone(c.configs)
	c.mu.Unlock()
	cctx, cancel := c.call(ctx)
	defer cancel()
	sent := c.now()
	if err := c.b.Join(cctx, m, c.lease, configs); err != nil {
		return err
	}
	c.mu.Lock()
	c.beatSent = sent
	// A SetSources meanwhile changed the version: join again next step.
	c.joined = c.version == m.Version
	c.mu.Unlock()
	return nil
}

// heartbeat keeps this member live and renews its leases; a lease the
// backend did not renew is held by another member now, or is about to be.
func (c *Coordinator) heartbeat(ctx context.Context) error {
	c.mu.Lock()
	names := slices.Collect(maps.Keys(c.held))
	c.mu.Unlock()
	sent := c.now()
	cctx, cancel := c.call(ctx)
	defer cancel()
	renewed, err := c.b.Heartbeat(cctx, c.me, c.lease, names)
	if errors.Is(err, ErrNotMember) {
		c.mu.Lock()
		c.joined = false
		c.mu.Unlock()
	}
	if err != nil {
		return err
	}
	ok := make(map[string]bool, len(renewed))
	for _, n := range renewed {
		ok[n] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.beatSent = sent
	for _, n := range names {
		h := c.held[n]
		if h == nil {
			continue
		}
		if ok[n] {
			h.validUntil = sent.Add(c.lease - Margin)
		} else {
			c.drop(n, ReasonExpired)
		}
	}
	return nil
}

// expireOverdue drops the leases this member may no longer use.
func (c *Coordinator) expireOverdue() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for n, h := range c.held {
		if !now.Before(h.validUntil) {
			c.drop(n, ReasonExpired)
		}
	}
}

// look reads what the backend shows, with the configs of members whose
// configs changed since they were last read.
func (c *Coordinator) look(ctx context.Context) (view, error) {
	cctx, cancel := c.call(ctx)
	defer cancel()
	members, err := c.b.Members(cctx)
	if err != nil {
		return view{}, err
	}
	ls, err := c.b.Leases(cctx)
	if err != nil {
		return view{}, err
	}
	v := view{me: c.me, configs: map[Holder]map[string]string{}, leases: make(map[string]Lease, len(ls)),
		held: map[string]bool{}, leaving: map[string]bool{}}
	for _, l := range ls {
		v.leases[l.Name] = l
	}
	live := map[Holder]bool{}
	for _, m := range members {
		live[m.Holder] = true
		v.members = append(v.members, m.Holder)
		if m.Holder == c.me {
			continue
		}
		k, ok := c.known[m.Holder]
		if !ok || k.version != m.Version {
			cfg, err := c.b.MemberConfigs(cctx, m.Holder)
			if err != nil {
				return view{}, fmt.Errorf("configs of %s: %w", m.Holder, err)
			}
			k = memberConfigs{version: m.Version, configs: cfg}
			c.known[m.Holder] = k
		}
		v.configs[m.Holder] = k.configs
	}
	maps.DeleteFunc(c.known, func(h Holder, _ memberConfigs) bool { return !live[h] })
	c.mu.Lock()
	defer c.mu.Unlock()
	c.members = members
	c.leases = v.leases
	c.metrics.setMembers(len(members))
	v.want = maps.Clone(c.want)
	for n, h := range c.held {
		if h.handover == nil {
			v.held[n] = true
		} else {
			v.leaving[n] = true
		}
	}
	return v, nil
}

// handOver starts letting go of leases: their subscribers are told, and
// each is released once all of them said Done. c.mu is held.
func (c *Coordinator) handOver(names []string, reason string) {
	for _, n := range names {
		h := c.held[n]
		if h == nil || h.handover != nil {
			continue
		}
		ho := &handover{reason: reason, pending: len(c.subs)}
		h.handover = ho
		for s := range c.subs {
			done := c.doneFunc(s, ho)
			s.mu.Lock()
			s.open[ho] = done
			s.mu.Unlock()
			s.send(Event{Lease: n, Reason: reason, done: done})
		}
	}
}

func (c *Coordinator) doneFunc(s *subscriber, ho *handover) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.open, ho)
			s.mu.Unlock()
			c.mu.Lock()
			ho.pending--
			ready := ho.pending == 0
			c.mu.Unlock()
			if ready {
				c.poke()
			}
		})
	}
}

// releaseReady releases the leases whose handover every subscriber
// answered.
func (c *Coordinator) releaseReady(ctx context.Context) error {
	byReason := map[string][]string{}
	c.mu.Lock()
	for n, h := range c.held {
		if h.handover != nil && h.handover.pending <= 0 {
			byReason[h.handover.reason] = append(byReason[h.handover.reason], n)
		}
	}
	c.mu.Unlock()
	for _, reason := range slices.Sorted(maps.Keys(byReason)) {
		names := byReason[reason]
		cctx, cancel := c.call(ctx)
		err := c.b.Release(cctx, c.me, names, reason)
		cancel()
		if err != nil {
			return err
		}
		c.mu.Lock()
		for _, n := range names {
			c.remove(n)
		}
		c.mu.Unlock()
		c.log.Log(context.Background(), c.level, "cluster: leases handed over", "reason", reason, "leases", len(names))
	}
	return nil
}

func (c *Coordinator) releaseStale(ctx context.Context, names []string) error {
	if len(names) == 0 {
		return nil
	}
	cctx, cancel := c.call(ctx)
	defer cancel()
	return c.b.Release(cctx, c.me, names, ReasonReleased)
}

// acquireBatch is how many leases one Acquire call claims: a watch
// source's shards, or as many list sources, in one round trip.
const acquireBatch = Shards

// acquire claims the acquisitions in batches for at most half a renewal
// interval, so that renewals stay on time when thousands of leases are
// free at once; more reports that some are left for the next step, or
// that some were not acquired, so the next step looks again at once.
func (c *Coordinator) acquire(ctx context.Context, list []acquisition) (more bool, err error) {
	deadline := c.now().Add(c.renew / 2)
	got := 0
	for i := 0; i < len(list); i += acquireBatch {
		if i > 0 && !c.now().Before(deadline) {
			more = true
			break
		}
		batch := list[i:min(i+acquireBatch, len(list))]
		claims := make([]Claim, len(batch))
		for j, a := range batch {
			claims[j] = Claim{Name: a.name, Config: a.config, Expect: a.prev.Token}
		}
		cctx, cancel := c.call(ctx)
		tokens, err := c.b.Acquire(cctx, c.me, claims)
		cancel()
		if err != nil {
			return false, err
		}
		// One not acquired: another member was quicker, or a poll under
		// the old token still runs. Look again at once rather than at
		// the next renewal.
		more = more || len(tokens) < len(batch)
		got += len(tokens)
		c.mu.Lock()
		for _, a := range batch {
			token, ok := tokens[a.name]
			if !ok {
				continue
			}
			// The lease lasts as long as the heartbeat that keeps this
			// member live: from the last one sent.
			c.add(a.name, token, c.beatSent)
			if a.prev.Token > 0 && a.prev.Holder != c.me {
				c.metrics.handoff(handoffReason(a.prev))
			}
		}
		c.mu.Unlock()
	}
	if got > 0 {
		c.mu.Lock()
		n := len(c.held)
		c.mu.Unlock()
		c.log.Log(context.Background(), c.level, "cluster: leases acquired", "acquired", got, "held", n)
	}
	return more, nil
}

// handoffReason is why the previous holder let a lease go.
func handoffReason(prev Lease) string {
	if prev.Released != "" {
		return prev.Released
	}
	return ReasonExpired
}

// add records a lease acquired and tells the subscribers. c.mu is held.
func (c *Coordinator) add(name string, token int64, sent time.Time) {
	c.held[name] = &held{token: token, validUntil: sent.Add(c.lease - Margin)}
	c.metrics.addHeld(name, 1)
	for s := range c.subs {
		s.send(Event{Lease: name, Held: true, Token: token})
	}
}

// drop forgets a lease this member may no longer use and tells the
// subscribers, unless they were told already when its handover began.
// c.mu is held.
func (c *Coordinator) drop(name, reason string) {
	h := c.held[name]
	if h == nil {
		return
	}
	c.remove(name)
	if h.handover != nil {
		return
	}
	for s := range c.subs {
		s.send(Event{Lease: name, Reason: reason})
	}
}

func (c *Coordinator) remove(name string) {
	if _, ok := c.held[name]; ok {
		delete(c.held, name)
		c.metrics.addHeld(name, -1)
	}
}
