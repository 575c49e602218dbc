package poller

import (
	"context"
	"errors"
	"strconv"

	"github.com/pollrelay/pollrelay/config"
	"github.com/pollrelay/pollrelay/jqexpr"
)

// pagination is a source's `pagination:` compiled: its style and how many
// pages a listing may take.
type pagination struct {
	style    pageStyle
	maxPages int
}

// pageStyle is one way of finding the page after another.
type pageStyle interface {
	// first is the URL of a listing's first page.
	first(source string) string
	// next is the URL of the page after pg, or "" at the end.
	next(ctx context.Context, pg fetchedPage) (string, error)
	// reads is the jq expression the style evaluates over each page's
	// document, or nil when it needs no document.
	reads() *jqexpr.Expr
}

// fetchedPage is what a style may look at to find the next page.
type fetchedPage struct {
	source string // the source's URL
	url    string // this page's URL
	resp   *response
	// doc is the decoded page; set only for a style that reads one.
	doc any
	// n is the page's index (0 = first), items how many items it had.
	n, items int
}

// newPagination compiles p; nil stays nil.
func newPagination(p *config.Pagination) (*pagination, error) {
	if p == nil {
		return nil, nil
	}
	pg := &pagination{maxPages: max(p.MaxPages, 1)}
	var err error
	switch {
	case p.Next != "":
		var e *jqexpr.Expr
		e, err = jqexpr.Shared(p.Next)
		pg.style = nextToken{byExpr{e}, p.Param}
	case p.NextURL != "":
		var e *jqexpr.Expr
		e, err = jqexpr.Shared(p.NextURL)
		pg.style = nextURL{byExpr{e}}
	case p.LinkHeader:
		pg.style = linkHeader{}
	case p.PageParam != "":
		pg.style = pageNumbers{numbered{param: p.PageParam, limitParam: p.LimitParam, limit: p.Limit}}
	case p.OffsetParam != "":
		pg.style = offsets{numbered{param: p.OffsetParam, limitParam: p.LimitParam, limit: p.Limit}}
	default:
		err = errors.New("choose one of next, next_url, link_header, page_param, offset_param")
	}
	if err != nil {
		return nil, err
	}
	return pg, nil
}

// byExpr is what the styles that read the next page from the document
// share: the expression, and a first page at the source's URL.
type byExpr struct{ expr *jqexpr.Expr }

func (s byExpr) first(source string) string { return source }
func (s byExpr) reads() *jqexpr.Expr        { return s.expr }

// nextToken is `next` with `param`: jq yields a cursor, sent back as a
// query parameter of the source's URL.
type nextToken struct {
	byExpr
	param string
}

func (s nextToken) next(ctx context.Context, pg fetchedPage) (string, error) {
	v, err := follow(ctx, s.expr, pg.doc, "next")
	if v == nil || err != nil {
		return "", err
	}
	tok, err := idString(v)
	if err != nil {
		return "", pollErr(OutcomeExtract, "pagination.next: %w", err)
	}
	return withParam(pg.source, s.param, tok), nil
}

// nextURL is `next_url`: jq yields the next page's URL, absolute or
// relative to the page.
type nextURL struct{ byExpr }

func (s nextURL) next(ctx context.Context, pg fetchedPage) (string, error) {
	v, err := follow(ctx, s.expr, pg.doc, "next_url")
	if v == nil || err != nil {
		return "", err
	}
	u, ok := v.(string)
	if !ok {
		return "", pollErr(OutcomeExtract, "pagination.next_url: must be a string, got %T", v)
	}
	return resolve(pg.source, pg.url, u)
}

// follow evaluates a style's expression over a page: nil when it yields
// nothing to follow (null, false or ""), the last page.
func follow(ctx context.Context, e *jqexpr.Expr, doc any, key string) (any, error) {
	v, err := e.First(ctx, doc)
	if err != nil {
		return nil, pollErr(OutcomeExtract, "pagination.%s: %w", key, err)
	}
	if empty(v) {
		return nil, nil
	}
	return v, nil
}

// linkHeader is `link_header`: the response's RFC 8288 rel="next" link.
type linkHeader struct{}

func (linkHeader) first(source string) string { return source }
func (linkHeader) reads() *jqexpr.Expr        { return nil }

func (linkHeader) next(_ context.Context, pg fetchedPage) (string, error) {
	link := nextLink(pg.resp.header)
	if link == "" {
		return "", nil
	}
	return resolve(pg.source, pg.url, link)
}

// numbered is what page and offset numbering share: the parameter that
// numbers pages, and the page size sent in limitParam. A page with no
// items, or fewer than the limit, is the last.
type numbered struct {
	param, limitParam string
	limit             int
}

func (s numbered) reads() *jqexpr.Expr { return nil }

// at is the URL with the numbering parameter set to v.
func (s numbered) at(source string, v int) string {
	u := source
	if s.limitParam != "" && s.limit > 0 {
		u = withParam(u, s.limitParam, strconv.Itoa(s.limit))
	}
	return withParam(u, s.param, strconv.Itoa(v))
}

func (s numbered) last(pg fetchedPage) bool {
	return pg.items == 0 || (s.limit > 0 && pg.items < s.limit)
}

// pageNumbers is `page_param`: pages numbered from 1.
type pageNumbers struct{ numbered }

func (s pageNumbers) first(source string) string { return s.at(source, 1) }

func (s pageNumbers) next(_ context.Context, pg fetchedPage) (string, error) {
	if s.last(pg) {
		return "", nil
	}
	return s.at(pg.source, pg.n+2), nil
}

// offsets is `offset_param`: each page starts at the offset of its first
// item.
type offsets struct{ numbered }

func (s offsets) first(source string) string { return s.at(source, 0) }

func (s offsets) next(_ context.Context, pg fetchedPage) (string, error) {
	if s.last(pg) {
		return "", nil
	}
	return s.at(pg.source, (pg.n+1)*max(s.limit, 1)), nil
}
