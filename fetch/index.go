package fetch

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// hrefRE finds links in a web server's directory index page; compiled on
// first use, not in every smolvmm process.
var hrefRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?i)href\s*=\s*"([^"?#]+)"`) })

// listDirs reads a directory index page at url and returns the names of the
// subdirectories it links to, sorted. It returns nil when the page cannot be
// had or lists nothing: the caller only uses it to improve an error message.
func (r *release) listDirs(ctx context.Context, url string) []string {
	resp, body, err := r.watchedGet(ctx, url, 0)
	if err != nil {
		return nil
	}
	defer body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	page, err := io.ReadAll(io.LimitReader(body, 1<<20))
	if err != nil {
		return nil
	}
	return parseIndexAt(string(page), url)
}

// parseIndexAt extracts the subdirectory links ("9.3/", "i386/") from an
// HTML directory listing fetched from pageURL: relative ones, and those
// written as absolute paths or URLs ("/pub/NetBSD/NetBSD-9.3/") that name
// a direct subdirectory of the page.
func parseIndexAt(page, pageURL string) []string {
	base, _ := url.Parse(pageURL)
	seen := map[string]bool{}
	var dirs []string
	for _, m := range hrefRE().FindAllStringSubmatch(page, -1) {
		h := strings.TrimPrefix(m[1], "./")
		if base != nil && base.Path != "" && (strings.HasPrefix(h, "/") || strings.Contains(h, "://")) {
			u, err := base.Parse(h)
			if err != nil || u.Host != base.Host {
				continue
			}
			rest, ok := strings.CutPrefix(u.Path, strings.TrimSuffix(base.Path, "/")+"/")
			if !ok {
				continue
			}
			h = rest
		}
		name, ok := strings.CutSuffix(h, "/")
		if !ok || name == "" || strings.ContainsAny(name, "/:") || strings.HasPrefix(name, ".") || seen[name] {
			continue
		}
		seen[name] = true
		dirs = append(dirs, name)
	}
	sort.Strings(dirs)
	return dirs
}

// versionsIn keeps the NetBSD-<version> entries of a mirror's top index
// whose version starts with a digit (not NetBSD-archive, NetBSD-daily) and
// returns the versions, newest first.
func versionsIn(dirs []string) []string {
	var v []string
	for _, d := range dirs {
		if s, ok := strings.CutPrefix(d, "NetBSD-"); ok && s != "" && s[0] >= '0' && s[0] <= '9' {
			v = append(v, s)
		}
	}
	sort.Slice(v, func(i, j int) bool { return versionLess(v[j], v[i]) })
	return v
}

// versionLess orders release names by their numeric fields, so that
// 9.3 < 9.3.1 < 10.0, a pre-release ("_BETA", "_RC1") before its release
// (10.0_RC1 < 10.0); what is not a number compares as text.
func versionLess(a, b string) bool {
	an, apre, _ := strings.Cut(a, "_")
	bn, bpre, _ := strings.Cut(b, "_")
	switch {
	case numberLess(an, bn):
		return true
	case numberLess(bn, an):
		return false
	case apre == "" || bpre == "":
		return apre != "" && bpre == ""
	}
	return apre < bpre
}

// numberLess orders dotted numbers field by field.
func numberLess(a, b string) bool {
	for a != "" && b != "" {
		na, ra := leadingNumber(a)
		nb, rb := leadingNumber(b)
		if na != nb {
			return na < nb
		}
		if ra == a || rb == b { // no number at the front: compare the rest as text
			return a < b
		}
		a, b = strings.TrimPrefix(ra, "."), strings.TrimPrefix(rb, ".")
	}
	return len(a) < len(b)
}

// leadingNumber splits s into the number at its start and the rest.
func leadingNumber(s string) (int, string) {
	n, i := 0, 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9' && n < 1e6; i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n, s[i:]
}

// notArch names directories of a release that are not ports.
var notArch = map[string]bool{"source": true, "shared": true, "images": true, "iso": true, "patches": true}

// archesIn keeps the port directories of a release's index.
func archesIn(dirs []string) []string {
	var a []string
	for _, d := range dirs {
		if !notArch[d] {
			a = append(a, d)
		}
	}
	return a
}
