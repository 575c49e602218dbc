// Package cluster decides who polls what. Each list source, and each of the
// 64 shards of a watch source's ids, is a lease held by one live member at a
// time, with a fencing token that grows on every change of holder. A
// Coordinator keeps this member's share of the leases (spread evenly over
// the live members), renews them well inside their duration, and tells its
// subscribers which leases it gained and lost, so the poller runs a
// source's loop only while the source's lease is held.
//
// The leases themselves live in a Backend: Solo, where one member holds
// everything under a constant token (the embedded store's case, so there
// is one polling path), or a shared database, whose backend lives with that
// store so no package but main imports it.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"
)

// Shards is how many leases a watch source's ids are divided into.
const Shards = 64

// Holder is one process of one member. The random ID tells apart a pod
// restarted under the same name from its predecessor, so the new process
// never inherits leases the old one may still be using.
type Holder struct {
	Member string
	ID     string
}

func (h Holder) String() string { return h.Member + "/" + h.ID }

// Member is a live member as the backend lists it. Version is a digest of
// the member's config hashes: a coordinator fetches a member's configs
// again only when it changes.
type Member struct {
	Holder  Holder
	Version string
}

// Lease is a lease's state as the backend sees it.
type Lease struct {
	Name string
	// Holder is the holder, or the last holder of a lease released or
	// expired.
	Holder Holder
	// Token is the fencing token, 0 for a lease never acquired.
	Token int64
	// Config is the holder's (or the last holder's) config hash for the
	// lease's source.
	Config string
	// Live is set while the lease is held and not expired, in the
	// backend's clock.
	Live bool
	// Released says why the holder let the lease go, when it did:
	// ReasonReleased or ReasonRebalanced; empty while held or after it
	// expired.
	Released string
}

// Handoff reasons: why a lease passed from one holder to another, the
// reason label of pollrelay_lease_handoffs_total.
const (
	ReasonExpired    = "expired"    // the holder stopped renewing it
	ReasonReleased   = "released"   // the holder let it go: shutdown or the source removed
	ReasonRebalanced = "rebalanced" // the holder let it go to even out the leases
)

// Reasons are the handoff reasons, for labels created up front.
var Reasons = []string{ReasonExpired, ReasonReleased, ReasonRebalanced}

// ErrNotMember is returned by Heartbeat for a holder the backend does not
// know (it left, or its record was removed): the coordinator joins again.
var ErrNotMember = errors.New("not a member")

// Backend keeps the members and leases. Every expiry is in the backend's
// clock (a database's clock_timestamp()), never the caller's, so members
// whose clocks disagree still agree on who holds what.
type Backend interface {
	// Join registers m as a live member for ttl, with its config hash for
	// each source it runs; the leases m already holds take on its new
	// hashes. It is called again when the config changes.
	Join(ctx context.Context, m Member, ttl time.Duration, configs map[string]string) error
	// Heartbeat keeps h live for ttl more, and with it every lease h
	// holds: a lease lasts as long as its holder's heartbeat. It returns
	// those of leases h still holds. It never writes a lease's token, so
	// it never waits for a poll that holds the token.
	Heartbeat(ctx context.Context, h Holder, ttl time.Duration, leases []string) (renewed []string, err error)
	// Members returns the live members.
	Members(ctx context.Context) ([]Member, error)
	// MemberConfigs returns a member's config hash for each source.
	MemberConfigs(ctx context.Context, h Holder) (map[string]string, error)
	// Leases returns the state of every lease ever acquired.
	Leases(ctx context.Context) ([]Lease, error)
	// Acquire makes the live member h the holder of each claimed lease
	// that is free or expired and whose token is still the one expected,
	// recording the claim's config hash as the holder's. It returns the
	// new token of each lease acquired, larger than every token the lease
	// had; a lease not acquired is absent. The lease lasts as long as h's
	// heartbeat.
	Acquire(ctx context.Context, h Holder, claims []Claim) (map[string]int64, error)
	// Release frees the leases h holds among names at once, recording
	// why.
	Release(ctx context.Context, h Holder, names []string, reason string) error
	// Leave releases every lease h holds (ReasonReleased) and removes h
	// from the members, at once: the others see both or neither.
	Leave(ctx context.Context, h Holder) error
}

// Claim is a lease to acquire, as it was last seen.
type Claim struct {
	Name   string
	Config string
	// Expect is the token the lease was seen with; 0 for a lease never
	// acquired.
	Expect int64
}

// Waker is a Backend that can tell when another member released a lease
// or joined, so the coordinator acts at once instead of at its next tick.
type Waker interface {
	// Wakeups sends on the channel after such a change by a holder other
	// than me, until ctx ends.
	Wakeups(ctx context.Context, me Holder) <-chan struct{}
}

// Lease kinds, the kind label of pollrelay_leases_held.
const (
	KindSource = "source"
	KindShard  = "shard"
)

// SourceLease is the name of a list source's lease.
func SourceLease(source string) string { return "source/" + source }

// ShardLease is the name of the lease on one shard of a watch source.
func ShardLease(source string, shard int) string {
	return fmt.Sprintf("shard/%s/%02d", source, shard)
}

// ShardOf is the shard a watch source's id belongs to: FNV-1a of the id,
// mod Shards, so every member agrees without asking.
func ShardOf(id string) int {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % Shards)
}

// ParseLease splits a lease name into its kind, source and shard (-1 for
// a source lease).
func ParseLease(name string) (kind, source string, shard int, ok bool) {
	if s, found := strings.CutPrefix(name, "source/"); found && s != "" {
		return KindSource, s, -1, true
	}
	rest, found := strings.CutPrefix(name, "shard/")
	if !found {
		return "", "", 0, false
	}
	i := strings.LastIndexByte(rest, '/')
	if i <= 0 {
		return "", "", 0, false
	}
	n, err := strconv.Atoi(rest[i+1:])
	if err != nil || n < 0 || n >= Shards {
		return "", "", 0, false
	}
	return KindShard, rest[:i], n, true
}

// Source is a source this member runs, as the coordinator sees it: its
// name, whether its ids are sharded (a watch source), and a hash of its
// config, so that during a rolling config change its leases go only to
// members that run the same config as the holder.
type Source struct {
	Name    string
	Sharded bool
	Config  string
}

// leases expands sources into lease names, each with its source's config
// hash.
func leases(sources []Source) map[string]string {
	out := make(map[string]string, len(sources))
	for _, s := range sources {
		if !s.Sharded {
			out[SourceLease(s.Name)] = s.Config
			continue
		}
		for i := range Shards {
			out[ShardLease(s.Name, i)] = s.Config
		}
	}
	return out
}

// sourceOf is the source a lease name belongs to.
func sourceOf(name string) string {
	_, s, _, _ := ParseLease(name)
	return s
}
