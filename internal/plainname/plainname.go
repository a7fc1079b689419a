// Package plainname says which names of a NetBSD release's parts (a
// version, an architecture, a set) are plain: each names a directory or
// file of the fetch cache and a path below the mirror, which a name
// holding a path separator, "." or "..", or a URL's ?, # or % would
// leave or change. The fetcher and a service's service.conf check set
// names alike with it, so that what one takes the other does not refuse.
package plainname

import "strings"

// MaxLen is the longest plain name in bytes: room is left for the
// suffixes the cache adds (".tgz.part"), and real names are far shorter
// ("10.1", "evbarm", "rescue").
const MaxLen = 64

// Plain reports whether v is a plain name: at most MaxLen bytes long,
// not empty, "." or "..", without / or \, ?, #, % or a space. Callers
// that say why a name is refused check the length first, as it has its
// own advice.
func Plain(v string) bool {
	return v != "" && len(v) <= MaxLen && v != "." && v != ".." && !strings.ContainsAny(v, `/\?#% `)
}
