package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/pollrelay/pollrelay/event"
	"github.com/pollrelay/pollrelay/internal/check"
	"github.com/pollrelay/pollrelay/schedule"
	"github.com/pollrelay/pollrelay/subscription"
)

// placeholderRE finds `{…}` in an event type template.
var placeholderRE = regexp.MustCompile(`\{[^{}]*\}`)

// validate checks ranges and cross-field rules on a normalised config;
// adaptive holds the indexes of the sources with `interval: adaptive`.
func validate(c *Config, adaptive map[int]bool, p *problems) {
	if host, port, err := net.SplitHostPort(c.Listen); err != nil || strings.ContainsAny(host, " /") {
		p.add("listen", "must be host:port, e.g. 127.0.0.1:8787")
	} else if port != "0" && !check.ValidPort(port) {
		p.add("listen", "port must be a number from 1 to 65535 (0 picks a free one)")
	}
	checkAPIToken(c.APIToken, p)
	if c.MemoryLimitBytes < 0 {
		p.add("memory_limit_bytes", "must be 0 (no limit) or more")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		p.add("log.level", "must be one of debug, info, warn, error")
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		p.add("log.format", "must be json or text")
	}
	if c.Storage.Postgres.URL != "" {
		validatePostgres(&c.Storage, p)
	} else if !c.Storage.InMemory && strings.TrimSpace(c.Storage.Path) == "" {
		p.add("storage.path", "required unless in_memory is true")
	}
	validateCluster(c, p)
	if c.Storage.Retention < 0 {
		p.add("storage.retention", "must not be negative")
	}
	if c.Delivery.ShutdownGrace < 0 {
		p.add("delivery.shutdown_grace", "must not be negative")
	}

	if len(c.Sources) == 0 {
		p.add("sources", "at least one source is required")
	}
	seen := map[string]bool{}
	for i := range c.Sources {
		validateSource(c, i, adaptive[i], seen, p)
	}
	validateSubscriptions(c, p)
	validateCompat(c, p)
}

// validateCompat checks compat:. No message quotes an api_key.
func validateCompat(c *Config, p *problems) {
	seen := map[string]bool{}
	listens := map[string]bool{c.Listen: true}
	for i, cp := range c.Compat {
		path := fmt.Sprintf("compat[%d]", i)
		switch cp.Vendor {
		case VendorDAM, VendorGlossi, VendorGumlet:
			if seen[cp.Vendor] {
				p.add(path+".vendor", "%s has a facade already", cp.Vendor)
			}
			seen[cp.Vendor] = true
		default:
			p.add(path+".vendor", "must be one of dam, glossi, gumlet")
		}
		if strings.TrimSpace(cp.APIKey) == "" {
			p.add(path+".api_key", "required: the key a client sends")
		}
		if cp.Template == "" {
			p.add(path+".template", "required: a subscription with template: true")
		} else if t := c.subscription(cp.Template); t == nil || !t.Template {
			p.add(path+".template", "must name a subscription with template: true")
		}
		switch {
		case cp.Listen == "" && cp.Vendor == VendorGumlet:
			p.add(path+".listen", "required for gumlet: its paths (/v1/org/…) are pollrelay's /v1")
		case cp.Listen == "":
		case listens[cp.Listen]:
			p.add(path+".listen", "%s is taken by listen or another facade", cp.Listen)
		default:
			listens[cp.Listen] = true
			if host, port, err := net.SplitHostPort(cp.Listen); err != nil || strings.ContainsAny(host, " /") || (port != "0" && !check.ValidPort(port)) {
				p.add(path+".listen", "must be host:port, e.g. 127.0.0.1:8788")
			}
		}
		if len(cp.Projects) > 0 && cp.Vendor != VendorDAM {
			p.add(path+".projects", "only dam webhooks name a project")
		}
		// The facade names what it creates <vendor>-<id>; a config
		// subscription of such a name would shadow one of them.
		for j, s := range c.Subscriptions {
			if n, ok := strings.CutPrefix(s.Name, cp.Vendor+"-"); ok && n != "" && strings.Trim(n, "0123456789") == "" {
				p.add(fmt.Sprintf("subscriptions[%d].name", j), "%s-<number> names the %s facade's subscriptions; choose another", cp.Vendor, cp.Vendor)
			}
		}
	}
}

// subscription returns the config subscription named name, or nil.
func (c *Config) subscription(name string) *subscription.Spec {
	for i := range c.Subscriptions {
		if c.Subscriptions[i].Name == name {
			return &c.Subscriptions[i]
		}
	}
	return nil
}

// validateSubscriptions checks each subscription, and what only the list
// as a whole can tell: unique names, and https under require_https.
func validateSubscriptions(c *Config, p *problems) {
	seen := map[string]bool{}
	for i := range c.Subscriptions {
		s := &c.Subscriptions[i]
		path := fmt.Sprintf("subscriptions[%d]", i)
		s.Check(path, &p.Problems)
		if check.NameOK(s.Name) && seen[s.Name] {
			p.add(path+".name", "duplicate %q", s.Name)
		}
		seen[s.Name] = true
		if c.Delivery.RequireHTTPS {
			if err := subscription.RequireHTTPS(s.URL); err != nil {
				p.add(path+".url", "%s", err.Error())
			}
		}
	}
}

// schemaRE is what storage.postgres.schema may be: an identifier that
// needs no quoting, and not one of PostgreSQL's own (pg_…).
var schemaRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// maxPostgresConns bounds storage.postgres.max_conns: PostgreSQL's own
// default max_connections is 100, shared by every replica.
const maxPostgresConns = 1000

// validatePostgres checks storage.postgres. No message quotes the URL:
// it may hold a password.
func validatePostgres(s *Storage, p *problems) {
	pg := s.Postgres
	if u, err := url.Parse(pg.URL); err != nil {
		p.add("storage.postgres.url", "must be a URL, postgres://user:password@host:5432/database")
	} else if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		p.add("storage.postgres.url", "must start with postgres:// or postgresql://")
	} else if u.Host == "" && u.Query().Get("host") == "" {
		p.add("storage.postgres.url", "must name a host, postgres://user:password@host:5432/database")
	}
	if !schemaRE.MatchString(pg.Schema) || strings.HasPrefix(pg.Schema, "pg_") {
		p.add("storage.postgres.schema", "must be a lower-case identifier ([a-z_][a-z0-9_]*, at most 63 characters, not starting with pg_)")
	}
	if pg.MaxConns < 1 || pg.MaxConns > maxPostgresConns {
		p.add("storage.postgres.max_conns", "must be from 1 to %d", maxPostgresConns)
	}
	if s.InMemory {
		p.add("storage.in_memory", "cannot be set with storage.postgres.url: the store is the database")
	}
}

// DefaultLease is cluster.lease when the file does not set it.
const DefaultLease = 15 * time.Second

// Bounds of cluster.lease: renewals go every quarter lease and a member
// stops using a lease a second before it expires, so a shorter one would
// leave no time to poll; a longer one leaves a dead member's sources
// unpolled for that long.
const (
	minLease = 4 * time.Second
	maxLease = 10 * time.Minute
)

// memberRE is what cluster.member may be: a Kubernetes pod name fits.
var memberRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$`)

// validateCluster checks cluster:, which only the shared store has.
func validateCluster(c *Config, p *problems) {
	cl := c.Cluster
	if c.Storage.Postgres.URL == "" {
		if cl.Member != "" || cl.Lease != DefaultLease {
			p.add("cluster", "applies only with storage.postgres.url: the embedded store serves one copy")
		}
		return
	}
	if cl.Member != "" && !memberRE.MatchString(cl.Member) {
		p.add("cluster.member", "must be letters, digits, '.', '_' or '-' (at most 253), as a pod name is")
	}
	if cl.Lease < minLease || cl.Lease > maxLease {
		p.add("cluster.lease", "must be from %s to %s", minLease, maxLease)
	}
}

func validateSource(c *Config, i int, adaptive bool, seen map[string]bool, p *problems) {
	s := &c.Sources[i]
	path := fmt.Sprintf("sources[%d]", i)
	check.Name(&p.Problems, path+".name", s.Name, seen)
	// {id} is filled in per request; braces are not valid in a host.
	check.URL(&p.Problems, path+".url", strings.ReplaceAll(s.URL, "{id}", "id"))
	switch s.Method {
	case "GET", "POST", "PUT":
	default:
		p.add(path+".method", "must be GET, POST or PUT")
	}
	check.Headers(&p.Problems, path+".headers", s.Headers)
	if s.Auth != nil {
		validateAuth(s.Auth, path+".auth", p)
	}

	if s.Interval < time.Second {
		p.add(path+".interval", "must be at least 1s")
	}
	validateAdaptive(s, path, adaptive, p)
	every, everyKey := s.Interval, "interval"
	if s.Schedule != nil {
		every, everyKey = validateSchedule(s, path, adaptive, p), "the shortest gap of the schedule"
	}
	switch {
	case s.Timeout <= 0:
		p.add(path+".timeout", "must be more than 0")
	case every >= time.Second && s.Timeout >= every:
		p.add(path+".timeout", "must be less than %s (%s)", everyKey, check.FmtDuration(every))
	default:
		check.Timeout(&p.Problems, path+".timeout", s.Timeout)
	}
	atLeastOne(path+".concurrency", s.Concurrency, p)
	atLeastOne(path+".settle", s.Settle, p)
	atLeastOne(path+".confirm_polls", s.ConfirmPolls, p)
	if !(s.MaxDeleteRatio > 0 && s.MaxDeleteRatio <= 1) {
		p.add(path+".max_delete_ratio", "must be more than 0 and at most 1")
	}
	if s.MaxBackoff <= 0 {
		p.add(path+".max_backoff", "must be more than 0")
	}
	if s.MaxBodyBytes <= 0 {
		p.add(path+".max_body_bytes", "must be more than 0")
	}

	if s.Pagination != nil {
		validatePagination(path+".pagination", s.Pagination, p)
	}
	if s.Incremental != nil {
		validateIncremental(s, path+".incremental", every, p)
	}
	validateWatch(c, i, path, p)
	for j := range s.Events {
		validateRule(&s.Events[j], fmt.Sprintf("%s.events[%d]", path, j), p)
	}
}

// validateAdaptive checks `interval: adaptive` and its bounds.
func validateAdaptive(s *Source, path string, adaptive bool, p *problems) {
	if !adaptive {
		const msg = "only valid with interval: adaptive"
		if s.MinInterval != 0 {
			p.add(path+".min_interval", msg)
		}
		if s.MaxInterval != 0 {
			p.add(path+".max_interval", msg)
		}
		if s.Progress != "" {
			p.add(path+".progress", "%s (on a watch source): it steers when each id is polled", msg)
		}
		if s.ETA != "" {
			p.add(path+".eta", "%s (on a watch source): it steers when each id is polled", msg)
		}
		return
	}
	if !s.IsWatch() {
		// A list source fetches every item in one request: there is no
		// per-item poll to schedule.
		p.add(path+".interval", "adaptive is only valid on a watch source (a URL with {id}); a list source polls at a fixed interval")
		return
	}
	if s.MinInterval < time.Second {
		p.add(path+".min_interval", "must be at least 1s")
	}
	if s.MaxInterval < s.MinInterval {
		p.add(path+".max_interval", "must be at least min_interval (%s)", check.FmtDuration(s.MinInterval))
	}
}

func validatePagination(path string, pg *Pagination, p *problems) {
	styles := 0
	for _, set := range []bool{pg.Next != "", pg.NextURL != "", pg.LinkHeader, pg.PageParam != "", pg.OffsetParam != ""} {
		if set {
			styles++
		}
	}
	if styles != 1 {
		p.add(path, "choose one of next, next_url, link_header, page_param, offset_param")
	}
	if pg.Next != "" && pg.Param == "" {
		p.add(path+".param", "required with next")
	}
	if pg.Next == "" && pg.Param != "" {
		p.add(path+".param", "only valid with next")
	}
	if pg.LimitParam == "" {
		if pg.PageParam != "" {
			p.add(path+".limit_param", "required with page_param")
		} else if pg.OffsetParam != "" {
			p.add(path+".limit_param", "required with offset_param")
		}
		if pg.Limit != 0 {
			p.add(path+".limit", "only valid with limit_param")
		}
	} else {
		atLeastOne(path+".limit", pg.Limit, p)
	}
	atLeastOne(path+".max_pages", pg.MaxPages, p)
}

// validateWatch checks the fields that only make sense on one kind of
// source: a watch source (URL with {id}) fetches one item per request.
func validateWatch(c *Config, i int, path string, p *problems) {
	s := &c.Sources[i]
	if s.WatchTTL < 0 {
		p.add(path+".watch_ttl", "must not be negative")
	}
	for j, id := range s.IDs {
		if strings.TrimSpace(id) == "" {
			p.add(fmt.Sprintf("%s.ids[%d]", path, j), "must not be empty")
		} else if len(id) > event.MaxKeyPart {
			p.add(fmt.Sprintf("%s.ids[%d]", path, j), "must be at most %d bytes", event.MaxKeyPart)
		}
	}
	if s.IsWatch() {
		if s.Items != "" {
			p.add(path+".items", "not allowed on a watch source (its URL has {id})")
		}
		if s.Pagination != nil {
			p.add(path+".pagination", "not allowed on a watch source (its URL has {id})")
		}
	} else {
		const msg = "only valid on a watch source (a URL with {id})"
		if len(s.IDs) > 0 {
			p.add(path+".ids", msg)
		}
		if s.WatchTTL != 0 {
			p.add(path+".watch_ttl", msg)
		}
		if s.WatchFrom != "" {
			p.add(path+".watch_from", msg)
		}
	}
	if s.WatchFrom == "" || !s.IsWatch() {
		return
	}
	if s.WatchFrom == s.Name {
		p.add(path+".watch_from", "must name another source")
		return
	}
	for j := range c.Sources {
		if c.Sources[j].Name != s.WatchFrom {
			continue
		}
		if c.Sources[j].IsWatch() {
			p.add(path+".watch_from", "%q is a watch source; name a list source", s.WatchFrom)
		}
		return
	}
	p.add(path+".watch_from", "no source named %q", s.WatchFrom)
}

func validateRule(r *Rule, path string, p *problems) {
	if strings.TrimSpace(r.Type) == "" {
		p.add(path+".type", "required")
	}
	for _, ph := range placeholderRE.FindAllString(r.Type, -1) {
		switch ph {
		case "{source}", "{previous}", "{current}", "{kind}", "{member}":
		default:
			p.add(path+".type", "unknown placeholder %s (want {source}, {previous}, {current}, {kind} or {member})", ph)
		}
	}
	validateKinds(r, path, p)
	if r.Members != "" && !r.On.Members() {
		p.add(path+".members", "only valid with on: member_added or member_removed")
	}
}

// validateKinds checks a rule's `on:`. created, changed and deleted combine
// freely, as do member_added and member_removed; stalled stands alone, since
// it needs state: and after:, which the others refuse.
func validateKinds(r *Rule, path string, p *problems) {
	plain, members := 0, 0
	for _, k := range r.On {
		switch k {
		case event.Changed, event.Created, event.Deleted:
			plain++
		case event.MemberAdded, event.MemberRemoved:
			members++
		case event.Stalled:
		default:
			p.add(path+".on", "must be one of changed, created, deleted, stalled, member_added, member_removed")
			return
		}
	}
	switch {
	case r.On.Has(event.Stalled) && len(r.On) > 1:
		p.add(path+".on", "stalled cannot be combined with other kinds: give it a rule of its own")
	case plain > 0 && members > 0:
		p.add(path+".on", "member_added and member_removed combine only with each other: give the other kinds a rule of their own")
	case r.On.Has(event.Stalled):
		if r.State == nil {
			p.add(path+".state", "required with on: stalled")
		}
		if r.After <= 0 {
			p.add(path+".after", "must be more than 0 with on: stalled")
		}
	case members > 0:
		if r.Members == "" {
			p.add(path+".members", "required with on: %s (jq yielding a list in the state)", strings.Join(r.On, ", "))
		}
	default:
		if r.State != nil {
			p.add(path+".state", "only valid with on: stalled")
		}
		if r.After != 0 {
			p.add(path+".after", "only valid with on: stalled")
		}
	}
}

func atLeastOne(path string, n int, p *problems) {
	if n < 1 {
		p.add(path, "must be at least 1")
	}
}

// validateAuth checks a source's auth: one kind, with what that kind needs.
func validateAuth(a *Auth, path string, p *problems) {
	kinds := 0
	for _, set := range []bool{a.Bearer != "", a.Basic != nil, a.OAuth2 != nil, a.Query != nil} {
		if set {
			kinds++
		}
	}
	switch {
	case kinds == 0:
		p.add(path, "set one of bearer, basic, oauth2 or query")
	case kinds > 1:
		p.add(path, "choose one of bearer, basic, oauth2 or query")
	}
	if !check.HeaderValue(a.Bearer) {
		p.add(path+".bearer", "must not contain control characters such as CR, LF or NUL")
	}
	if a.Basic != nil && a.Basic.Username == "" {
		p.add(path+".basic.username", "required")
	}
	if o := a.OAuth2; o != nil {
		if u, err := url.Parse(o.TokenURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.add(path+".oauth2.token_url", "must be an absolute http or https URL")
		} else {
			check.Port(&p.Problems, path+".oauth2.token_url", o.TokenURL)
		}
		if o.ClientID == "" {
			p.add(path+".oauth2.client_id", "required")
		}
		if o.RefreshToken == "" && o.ClientSecret == "" {
			p.add(path+".oauth2.client_secret", "required for the client-credentials grant (or set refresh_token)")
		}
	}
	if q := a.Query; q != nil {
		if q.Name == "" {
			p.add(path+".query.name", "required")
		}
		if q.Value == "" {
			p.add(path+".query.value", "required")
		}
	}
}

// validateSchedule checks a source's schedule: and returns the shortest
// gap it leaves between polls (0 when it does not parse).
func validateSchedule(s *Source, path string, adaptive bool, p *problems) time.Duration {
	path += ".schedule"
	if s.IsWatch() {
		p.add(path, "applies to list sources: a watch source polls each id every interval")
		return 0
	}
	if adaptive || s.Interval != defaultSource().Interval {
		p.add(path, "set either interval or schedule, not both")
	}
	if strings.TrimSpace(s.Schedule.Cron) == "" {
		p.add(path+".cron", `required: a cron expression such as "*/5 8-18 * * MON-FRI"`)
		return 0
	}
	if s.Schedule.Timezone == "Local" {
		p.add(path+".timezone", "name the zone (Local is whatever the host says): an IANA name such as Europe/Berlin")
		return 0
	}
	if _, err := schedule.Parse(s.Schedule.Cron, s.Schedule.Timezone); err != nil {
		key := ".cron"
		if strings.HasPrefix(err.Error(), "timezone") {
			key = ".timezone"
		}
		p.add(path+key, "%s", err.Error())
		return 0
	}
	gap := cronGap(s.Schedule.Cron)
	if gap == 0 {
		p.add(path+".cron", "never fires")
	}
	return gap
}

// cronGaps memoises cronGap: 10,000 sources on one schedule sample it once.
var cronGaps sync.Map

// cronGap is the shortest gap between two fires of expr, read on a clock
// without daylight saving time, so it does not depend on the date the
// file is loaded (a repeated hour would make a daily schedule's an hour).
func cronGap(expr string) time.Duration {
	if g, ok := cronGaps.Load(expr); ok {
		return g.(time.Duration)
	}
	c, err := schedule.Parse(expr, "UTC")
	var g time.Duration
	if err == nil && !c.Next(time.Now()).IsZero() {
		g = c.MinGap(time.Now())
	}
	cronGaps.Store(expr, g)
	return g
}

// validateIncremental checks a list source's incremental:; every is how
// often the source polls.
func validateIncremental(s *Source, path string, every time.Duration, p *problems) {
	inc := s.Incremental
	if s.IsWatch() || strings.TrimSpace(s.Items) == "" {
		p.add(path, "applies to list sources (with items:)")
		return
	}
	switch {
	case (inc.Param == "") == (inc.BodyField == ""):
		p.add(path, "set one of param (a query parameter) or body_field (a field of the JSON body)")
	case inc.BodyField != "":
		if s.Method == "GET" {
			p.add(path+".body_field", "needs method POST or PUT: a GET sends no body")
		} else if _, isString := s.Body.(string); isString {
			p.add(path+".body_field", "needs a body given as a mapping, not as a string")
		} else if s.Body != nil {
			if _, isMap := s.Body.(map[string]any); !isMap {
				p.add(path+".body_field", "needs a body that is a mapping")
			}
		}
	}
	if (strings.TrimSpace(inc.From) == "") == (strings.TrimSpace(inc.Cursor) == "") {
		p.add(path, "set one of from (jq over each item) or cursor (jq over each response)")
	}
	if inc.Lookback < 0 {
		p.add(path+".lookback", "must not be negative")
	}
	if inc.Cursor != "" && inc.Lookback != 0 {
		p.add(path+".lookback", "only valid with from: a cursor is sent back as it is")
	}
	if pg := s.Pagination; pg != nil && inc.Param != "" {
		for _, q := range []string{pg.Param, pg.PageParam, pg.OffsetParam, pg.LimitParam} {
			if q == inc.Param {
				p.add(path+".param", "%q is a pagination parameter too: the watermark would replace it", q)
			}
		}
	}
	if every > 0 && inc.FullEvery < every {
		p.add(path+".full_every", "must be at least the time between polls (%s)", check.FmtDuration(every))
	}
}
