// Package setname holds the extensions of NetBSD set archives' names
// ("rescue.tgz", "base.tar.xz") and cuts them off a set's name, so that
// the fetcher, service.conf and mkimg agree on which names are one set.
// Each takes the list that fits what it does with the name: the fetcher
// looks for what releases ship; service.conf and mkimg take any of them
// for an archive's name, mkimg telling a name the builder cannot read
// (Readable) what it reads.
package setname

import (
	"slices"
	"strings"
)

// Exts is a list of archive extensions, each with its leading dot, in
// the order a file is looked for. No extension in one ends another, so
// a name ends in at most one of them.
type Exts []string

var (
	// Release holds the extensions of set archives in NetBSD releases,
	// in the order the fetcher prefers them: .tgz (releases up to 9.x)
	// and .tar.xz (10.x, whose sets are built xz-compressed), then the
	// other spellings of gzip and xz and bzip2's, which a release built
	// otherwise may carry. A plain .tar is not among them: no release
	// ships an uncompressed set.
	Release = Exts{".tgz", ".tar.xz", ".tar.gz", ".tar.bz2", ".tbz", ".txz"}
	// Readable holds the extensions of the archives mkimg's builder
	// reads a set from: gzip or xz compressed, or a plain tar (a set a
	// user made). The builder refuses bzip2, so .tar.bz2 and .tbz are
	// not here.
	Readable = Exts{".tgz", ".tar.gz", ".tar.xz", ".txz", ".tar"}
	// Any holds the extensions of Readable and Release: a name ending
	// in one of them is a set's archive for some reader.
	Any = union(Readable, Release)
)

// union is a's extensions, then those of b that a lacks.
func union(a, b Exts) Exts {
	u := append(Exts{}, a...)
	for _, ext := range b {
		if !slices.Contains(u, ext) {
			u = append(u, ext)
		}
	}
	return u
}

// Cut returns name without the extension of e that ends it, and true;
// or name and false when none does, or when nothing would be left
// (".tgz" names no set).
func (e Exts) Cut(name string) (base string, ok bool) {
	for _, ext := range e {
		if base, ok := strings.CutSuffix(name, ext); ok && base != "" {
			return base, true
		}
	}
	return name, false
}

// Base is name without the extension of e that ends it: the set's
// name ("rescue" for "rescue.tgz"), name itself when it has none.
func (e Exts) Base(name string) string {
	base, _ := e.Cut(name)
	return base
}
