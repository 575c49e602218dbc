// Package check validates decoded settings with paths. It walks a generic
// key tree (parsed YAML or JSON) against koanf-tagged structs, decodes it
// onto them, and collects every problem as "path: message", so a user
// fixes a file or a request in one pass. config uses it for the file and
// subscription for a subscription wherever it comes from, so the two
// report the same problem in the same words.
package check

import (
	"fmt"
	"slices"
	"strings"
)

// Problems collects validation messages with their paths. The zero value
// is ready to use.
type Problems struct {
	list []string
	// badPaths had a decoding problem; later checks of them or anything
	// under them would only repeat it, so they are skipped.
	badPaths []string
	// FromEnv maps a path to the POLLRELAY_ variable that set it, so a
	// problem with an overridden value points at the variable, not the file.
	FromEnv map[string]string
}

// Add records a problem at path unless path already had a decoding problem.
func (p *Problems) Add(path, format string, args ...any) {
	for _, b := range p.badPaths {
		if path == b || strings.HasPrefix(path, b+".") || strings.HasPrefix(path, b+"[") {
			return
		}
	}
	msg := fmt.Sprintf(format, args...)
	if env, ok := p.FromEnv[path]; ok {
		msg += " (set by " + env + ")"
	}
	p.list = append(p.list, path+": "+msg)
}

// Bad records a decoding problem at path and silences later ones there.
func (p *Problems) Bad(path, format string, args ...any) {
	p.Add(path, format, args...)
	p.badPaths = append(p.badPaths, path)
}

// Len is the number of problems recorded.
func (p *Problems) Len() int { return len(p.list) }

// HasUnder reports whether a problem was recorded at path or below it.
func (p *Problems) HasUnder(path string) bool {
	for _, b := range p.badPaths {
		if b == path || strings.HasPrefix(b, path+".") || strings.HasPrefix(b, path+"[") {
			return true
		}
	}
	for _, l := range p.list {
		if strings.HasPrefix(l, path+": ") || strings.HasPrefix(l, path+".") || strings.HasPrefix(l, path+"[") {
			return true
		}
	}
	return false
}

// Err returns the problems sorted by path (a block's own problems before
// those of its keys) as a *ValidationError, or nil without any.
func (p *Problems) Err() error {
	if len(p.list) == 0 {
		return nil
	}
	out := slices.Clone(p.list)
	slices.SortStableFunc(out, func(a, b string) int {
		pa, _, _ := strings.Cut(a, ": ")
		pb, _, _ := strings.Cut(b, ": ")
		return naturalCompare(pa, pb)
	})
	return &ValidationError{Problems: out}
}

// ValidationError lists every problem found, each as "path: message", e.g.
// "sources[1].interval: must be at least 1s".
type ValidationError struct {
	Problems []string
}

// Error joins the problems, one per line.
func (e *ValidationError) Error() string { return strings.Join(e.Problems, "\n") }

// naturalCompare orders strings with digit runs compared as numbers, so
// sources[2] comes before sources[10].
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digitPrefix(a), digitPrefix(b)
		if da != "" && db != "" {
			na, nb := strings.TrimLeft(da, "0"), strings.TrimLeft(db, "0")
			if c := len(na) - len(nb); c != 0 {
				return c
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[len(da):], b[len(db):]
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func digitPrefix(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}
