package poller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/diff"
	"github.com/pollrelay/pollrelay/internal/redact"
	"github.com/pollrelay/pollrelay/jqexpr"
	"github.com/pollrelay/pollrelay/store"
)

// Page describes one fetched page, for probe's report.
type Page struct {
	URL    string
	Status int
	Items  int
}

// listing is one poll of a list or single-object source.
type listing struct {
	obs []diff.Observation
	// complete is false when max_pages cut the listing short.
	complete bool
	pages    []Page
	// notModified is a 304 answer to a conditional request: nothing was
	// decoded and the stored state stands.
	notModified bool
	// etag and lastModified are the validators of a single-page answer.
	etag, lastModified string
	// interval is what X-Poll-Interval asked for (0 = nothing).
	interval time.Duration
	// mark is the watermark the pages gave, for an incremental source;
	// markErr the first value that could not be one, which keeps the
	// stored watermark (the items are applied all the same).
	mark    mark
	markErr error
}

// Fetch polls a list or single-object source once: every page, decoded
// and extracted. complete is false when max_pages cut the listing short;
// an error means the poll decides nothing.
func Fetch(ctx context.Context, src *compiled, f *fetcher) (obs []diff.Observation, complete bool, err error) {
	l, err := fetchListing(ctx, src, f, diff.Validators{}, nil, plainRequest(src))
	return l.obs, l.complete, err
}

// streamAfter is how many bytes of page bodies a listing keeps before the
// pages after them are filtered through the stored items' index as they
// arrive. Observations point into their page's body, so a listing kept
// whole costs its size in memory: a million items in a thousand pages is
// over 300 MiB. Below it the listing is kept, so an unchanged one can be
// recognised by its digest without reading the stored items at all.
var streamAfter = 16 << 20

// aheadBatch is how many observations that may change something a
// filtered listing keeps before what they change is written
// (Index.ApplyAhead): a batch of items, records and events is what a
// poll in which everything changes holds at once.
var aheadBatch = 500

// stream lets fetchListing filter a long listing page by page.
type stream struct {
	now time.Time
	// index is the source's index, if loaded in advance; load starts
	// loading it.
	index *diff.Index
	load  func() *diff.Index
	// store, when set, stores what a baseline may store ahead of Apply
	// (Index.StoreNew), and ahead writes what a batch of observations
	// changes (Index.ApplyAhead).
	store, ahead func(*diff.Index, []diff.Observation) ([]diff.Observation, error)
	// kept is about what the unfiltered observations hold alive, and
	// filtered how many observations at the start have been filtered.
	kept     int
	filtered int
	on       bool
	// progress, when set, is told the pages and items fetched so far
	// after each page.
	progress func(pages, items int)
	items    int
}

// fetched reports a page of n items to s.progress.
func (s *stream) fetched(pages, n int) {
	if s == nil || s.progress == nil {
		return
	}
	s.items += n
	s.progress(pages, s.items)
}

// page takes a page's observations into out. With more pages to come and
// too much kept, what is not filtered yet is filtered; once filtering has
// begun every page is.
func (s *stream) page(out *listing, obs []diff.Observation, body int, more bool) error {
	out.obs = append(out.obs, obs...)
	if s == nil {
		return nil
	}
	if len(obs) > 0 && obs[0].ObjectRaw == "" {
		// Extracted from the page decoded into Go values, which take
		// several times the size of its text.
		body *= 8
	}
	s.kept += body
	if !s.on && (!more || s.kept <= streamAfter) {
		return nil
	}
	if !s.on {
		s.on = true
		if s.index == nil {
			s.index = s.load()
		}
	}
	kept, err := s.index.Filter(out.obs[s.filtered:], s.now)
	if err == nil && s.store != nil {
		kept, err = s.store(s.index, kept)
	}
	if err != nil {
		return err
	}
	clear(out.obs[s.filtered:])
	out.obs = append(out.obs[:s.filtered], kept...)
	if s.ahead != nil && len(out.obs) >= aheadBatch {
		// Many changes: written now, a batch at a time, rather than
		// held with their records and events until the listing ends.
		for len(out.obs) > 0 {
			n := min(len(out.obs), aheadBatch)
			rest, err := s.ahead(s.index, out.obs[:n])
			if err != nil {
				return err
			}
			if len(rest) > 0 {
				// A baseline's items already stored: a baseline
				// fires nothing, so Apply takes them at the end.
				break
			}
			clear(out.obs[:n])
			out.obs = out.obs[n:]
		}
		out.obs = slices.Clip(out.obs)
	}
	s.filtered, s.kept = len(out.obs), 0
	return nil
}

// fetchListing fetches every page. Conditional requests (val) are made
// only for sources without pagination: a 304 on a first page says nothing
// about the pages after it. s, when set, filters a long listing as it
// arrives (see streamAfter).
func fetchListing(ctx context.Context, src *compiled, f *fetcher, val diff.Validators, s *stream, req request) (listing, error) {
	var out listing
	p := src.pages
	maxPages := 1
	next := req.url
	var hdr http.Header
	if p != nil {
		maxPages, next = p.maxPages, p.style.first(req.url)
	} else {
		hdr = conditional(val.ETag, val.LastModified)
	}
	for n := 0; n < maxPages; n++ {
		resp, err := f.do(ctx, next, req.body, hdr)
		if err != nil {
			return out, pageErr(err, n)
		}
		out.interval = pollInterval(resp.header)
		if resp.status == http.StatusNotModified {
			if n > 0 || hdr == nil {
				return out, pageErr(&PollError{Outcome: OutcomeHTTPError, Status: resp.status,
					Err: fmt.Errorf("%s %s: 304 Not Modified to a request that was not conditional", src.Method, redact.URL(next))}, n)
			}
			out.pages = append(out.pages, Page{URL: redact.URL(next), Status: resp.status})
			out.notModified = true
			return out, nil
		}
		obs, doc, err := parsePage(ctx, src, p, resp)
		if err != nil {
			return out, pageErr(err, n)
		}
		out.pages = append(out.pages, Page{URL: redact.URL(next), Status: resp.status, Items: len(obs)})
		s.fetched(len(out.pages), len(obs))
		if src.inc != nil {
			var bad error
			out.mark, bad = pageMark(ctx, src, resp.body, out.mark)
			if bad != nil && out.markErr == nil {
				out.markErr = pageErr(bad, n)
			}
		}
		if p == nil {
			out.obs = append(out.obs, obs...)
			out.etag, out.lastModified = resp.header.Get("ETag"), resp.header.Get("Last-Modified")
			out.complete = true
			return out, nil
		}
		more, err := p.style.next(ctx, fetchedPage{source: req.url, url: next, resp: resp, doc: doc, n: n, items: len(obs)})
		if err != nil {
			return out, pageErr(err, n)
		}
		if err := s.page(&out, obs, len(resp.body), more != "" && n+1 < maxPages); err != nil {
			if errors.Is(err, jqexpr.ErrLimit) {
				// An event rule ran away on an item written ahead.
				return out, &PollError{Outcome: OutcomeExtract, Err: err}
			}
			return out, storeFailure(err)
		}
		if more == "" {
			out.complete = true
			return out, nil
		}
		next = more
	}
	// max_pages reached with more to fetch: the listing is partial.
	return out, nil
}

func pageErr(err error, n int) error {
	if n == 0 {
		return err
	}
	if pe, ok := err.(*PollError); ok {
		c := *pe
		c.Err = fmt.Errorf("page %d: %w", n+1, pe.Err)
		return &c
	}
	return fmt.Errorf("page %d: %w", n+1, err)
}

func empty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case bool:
		return !x
	}
	return false
}

func withParam(raw, key, val string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	q.Set(key, val)
	u.RawQuery = q.Encode()
	return u.String()
}

// resolve makes a next link absolute against the page it came from. Only
// http and https links to the source's own scheme and host are followed:
// requests carry the source's credentials, which must not go wherever an
// upstream's response points.
func resolve(source, base, ref string) (string, error) {
	b, err := url.Parse(base)
	if err != nil {
		return "", pollErr(OutcomeExtract, "next page: %w", err)
	}
	r, err := url.Parse(ref)
	if err != nil {
		return "", pollErr(OutcomeExtract, "next page URL: %w", err)
	}
	u := b.ResolveReference(r)
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", pollErr(OutcomeExtract, "next page URL has scheme %q", u.Scheme)
	}
	if s, err := url.Parse(source); err != nil || !sameOrigin(s, u) {
		return "", pollErr(OutcomeExtract, "next page URL leaves the source's host (%s): not followed", u.Host)
	}
	return u.String(), nil
}

// nextLink finds rel="next" in RFC 8288 Link headers.
func nextLink(h http.Header) string {
	for _, v := range h.Values("Link") {
		for _, part := range splitLinks(v) {
			part = strings.TrimSpace(part)
			end := strings.Index(part, ">")
			if !strings.HasPrefix(part, "<") || end < 0 {
				continue
			}
			target := part[1:end]
			for _, param := range strings.Split(part[end+1:], ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(param), "=")
				if !ok || !strings.EqualFold(strings.TrimSpace(k), "rel") {
					continue
				}
				for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(val), `"`)) {
					if strings.EqualFold(rel, "next") {
						return target
					}
				}
			}
		}
	}
	return ""
}

// splitLinks splits a Link header on the commas between links, not those
// inside <…> or quotes.
func splitLinks(v string) []string {
	var parts []string
	depth, quoted, start := 0, false, 0
	for i, c := range v {
		switch {
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '<':
			depth++
		case c == '>':
			depth--
		case c == ',' && depth == 0:
			parts = append(parts, v[start:i])
			start = i + 1
		}
	}
	return append(parts, v[start:])
}

// Probed is what Probe fetched.
type Probed struct {
	Obs []diff.Observation
	// Complete: every page was fetched, and the listing was a full one
	// (it may decide deletes).
	Complete bool
	Pages    []Page
	// Incremental says what an incremental source asked for: the
	// watermark sent, or why the listing was full; "" for other sources.
	Incremental string
}

// Probe fetches a list or single-object source once, as a poll after ss
// (the source's stored state) would, without writing to any store.
func Probe(ctx context.Context, cfg *config.Source, ss store.SourceState, log *slog.Logger) (Probed, error) {
	src, err := compile(cfg)
	if err != nil {
		return Probed{}, err
	}
	f := newFetcher(src, log, func(int) {}, nil)
	pl := plan{full: true}
	var out Probed
	if src.inc != nil {
		pl = planFor(src.inc, ss, src.incKey, time.Now())
		out.Incremental = "full listing (" + pl.why + ")"
		if !pl.full {
			out.Incremental = "changes since " + strconv.Quote(paramText(pl.sent))
		}
	}
	req, err := requestFor(src, pl)
	if err != nil {
		return out, err
	}
	l, err := fetchListing(ctx, src, f, diff.Validators{}, nil, req)
	out.Obs, out.Complete, out.Pages = l.obs, l.complete && pl.full, l.pages
	return out, redactError(err, sourceSecrets(cfg))
}

// ProbeWatch fetches one watched id of a watch source, as a watch poll
// would, without touching any store.
func ProbeWatch(ctx context.Context, cfg *config.Source, id string, log *slog.Logger) (diff.Observation, Page, error) {
	src, err := compile(cfg)
	if err != nil {
		return diff.Observation{}, Page{}, err
	}
	f := newFetcher(src, log, func(int) {}, nil)
	u := watchURL(src.URL, id)
	page := Page{URL: redact.URL(u)}
	resp, err := f.do(ctx, u, watchBody(src.body, id), nil)
	if err != nil {
		if pe, ok := errors.AsType[*PollError](err); ok {
			page.Status = pe.Status
		}
		return diff.Observation{}, page, redactError(err, sourceSecrets(cfg))
	}
	page.Status = resp.status
	doc, err := decode(resp.body, resp.status)
	if err != nil {
		return diff.Observation{}, page, redactError(err, sourceSecrets(cfg))
	}
	ob, err := extractWatch(ctx, src, doc, id)
	if err == nil {
		page.Items = 1
	}
	return ob, page, err
}
