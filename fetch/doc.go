// Package fetch downloads a NetBSD release's kernel and sets from a mirror
// into a local cache and verifies every file against the release's SHA512
// digest files before handing it out.
//
// The mirror layout is NetBSD's release tree:
//
//	<mirror>/NetBSD-<version>/<arch>/binary/kernel/netbsd-GENERIC.gz
//	<mirror>/NetBSD-<version>/<arch>/binary/kernel/SHA512
//	<mirror>/NetBSD-<version>/<arch>/binary/sets/<set>.tgz (or .tar.xz)
//	<mirror>/NetBSD-<version>/<arch>/binary/sets/SHA512
//
// The cache keeps the same files under <cache>/<version>/<arch>/kernel and
// .../sets. Once a release's files are cached, Fetch does no network I/O at
// all: it re-hashes each cached file against the cached digest file, and a
// file that no longer matches is deleted and downloaded again. Downloads go
// to a ".part" file that is renamed into place only after its digest
// matches; an interrupted download is resumed with an HTTP Range request, or
// restarted from zero when the mirror cannot resume it. A cached digest
// file that lacks the kernel or a set asked for, or names a file the
// mirror answers 404 for, is fetched once more before Fetch fails: the
// mirror may have corrected it, or renamed a set, since. An entry of the
// cache that is not a regular file (a FIFO) is refused, never waited on.
// A cache this
// process may not write still serves what it holds, verified; a file it
// lacks is refused (ErrCacheNotWritable).
//
// Root is refused its default cache (DefaultCacheDir), with a
// *ForeignCacheError matching ErrForeignCache, before anything is made or
// read there, when the directory XDG_CACHE_HOME or HOME names, or a part
// of the cache below it (.cache, smolvmm, a release's directories, a
// symbolic link met there), belongs to another user: root was given that
// user's HOME (sudo -E), and that user could lead root's writes anywhere.
// The directories above XDG_CACHE_HOME or HOME are not looked at (in a
// user namespace / belongs to the overflow uid), a cache given by its
// path (Fetcher.Cache) is used as given, and nobody but root is refused
// anything: a group's HOME serves its members. A Fetch that fails in a
// cache it cannot write removes nothing there.
package fetch
