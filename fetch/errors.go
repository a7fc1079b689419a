package fetch

import (
	"errors"
	"fmt"
)

// Sentinel errors that callers can test with errors.Is. Every error Fetch
// returns wraps at most one of them, plus the underlying cause.
var (
	// ErrNetwork: the mirror could not be reached (DNS, refused, reset,
	// proxy failure) before or during a transfer.
	ErrNetwork = errors.New("network error")
	// ErrNotFound: the mirror answered 404 for a file, version or arch.
	ErrNotFound = errors.New("not found on mirror")
	// ErrNotDigestFile: the mirror answered something that is not a SHA512
	// digest file (an HTML page, a captive portal, garbage).
	ErrNotDigestFile = errors.New("not a digest file")
	// ErrDigestMismatch: a file's SHA512 differs from the release's digest
	// file. The file has been deleted. The error is a *DigestError.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrTruncated: a transfer ended before the announced length. The
	// partial file is kept so that the next run resumes it.
	ErrTruncated = errors.New("truncated transfer")
	// ErrNoSpace: the cache's file system is full (ENOSPC).
	ErrNoSpace = errors.New("no space left on device")
	// ErrUnknownSet: a requested set is not listed in the release's digest
	// file.
	ErrUnknownSet = errors.New("unknown set")
	// ErrNoCacheDir: no cache directory was given and the environment
	// names none (neither XDG_CACHE_HOME nor HOME).
	ErrNoCacheDir = errors.New("no cache directory")
	// ErrCacheNotWritable: the cache directory cannot be written (not
	// the user's, a read-only file system): what is cached there is
	// verified and used, but nothing can be downloaded into it.
	ErrCacheNotWritable = errors.New("cache directory not writable")
	// ErrCacheDir: a directory of the cache could not be made for another
	// reason than ErrCacheNotWritable's or ErrNoSpace's: a file system
	// that takes no new directories there (/proc), say.
	ErrCacheDir = errors.New("cache directory cannot be made")
	// ErrForeignCache: root's default cache, from XDG_CACHE_HOME or
	// HOME, is another user's, who could lead what root writes there
	// anywhere. The error is a *ForeignCacheError.
	ErrForeignCache = errors.New("cache directory is another user's")
	// ErrHTTP: the mirror answered with an unexpected HTTP status, or
	// redirected in a loop.
	ErrHTTP = errors.New("unexpected HTTP status")
	// ErrProxyAuth: the HTTP proxy (from HTTPS_PROXY/HTTP_PROXY, with
	// the default client) answered 407: it asks for credentials, which
	// its URL gives (http://USER:PASSWORD@HOST:PORT).
	ErrProxyAuth = errors.New("proxy authentication required")
)

// DigestError says which file failed verification, what the release's digest
// file expected and what the file's content hashes to.
type DigestError struct {
	File     string // file name in the release, e.g. "rescue.tgz"
	Path     string // local path that was checked (and deleted)
	Expected string // hex SHA512 from the digest file
	Actual   string // hex SHA512 of the bytes received
}

// Error names the file, the deleted path and both digests.
func (e *DigestError) Error() string {
	return fmt.Sprintf("SHA512 mismatch for %s (deleted %s): expected %s, got %s; the mirror or the transfer is corrupt",
		e.File, e.Path, e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrDigestMismatch) true for a *DigestError.
func (e *DigestError) Is(target error) bool { return target == ErrDigestMismatch }

// InterruptedError is a download stopped by its context (a signal, a
// deadline) after Have bytes: the partial file Part is kept, and the next
// Fetch of the release resumes it. It wraps the context's error.
type InterruptedError struct {
	URL  string // the file's URL, its password, or a user part without one, shown as "xxxxx"
	Part string // the partial file kept
	Have int64  // bytes in Part
	Err  error  // the context's error
}

// Error names the download, what was kept and why it stopped.
func (e *InterruptedError) Error() string {
	return fmt.Sprintf("download %s interrupted after %d bytes (kept %s to resume): %v", e.URL, e.Have, e.Part, e.Err)
}

// Unwrap returns the context's error.
func (e *InterruptedError) Unwrap() error { return e.Err }

// ElsewhereError is ErrNotFound for a release the mirror URL does not
// hold where the mirror's listing shows another directory of
// NetBSD-<version> trees that does or may: the NetBSD directory below a
// mirror URL one level too high (.../pub), or the NetBSD-archive
// directory older releases are moved to. Its text says so.
type ElsewhereError struct {
	// Mirror is that directory's URL, usable as Fetcher.Mirror (its
	// password, or a user part without one, shown as "xxxxx").
	Mirror string
	Err    error // the error, matching ErrNotFound
}

// Error is Err's text.
func (e *ElsewhereError) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e *ElsewhereError) Unwrap() error { return e.Err }

// ForeignCacheError refuses root the default cache (DefaultCacheDir)
// when the directory the environment names (Env: XDG_CACHE_HOME, or HOME)
// or a part of the cache below it, or a symbolic link met there, belongs
// to another user: root was given that user's HOME (sudo -E), and would
// make that user's ~/.cache its own, write where that user's links lead
// and trust digest files that user wrote. Nothing is made, written or
// chowned there.
type ForeignCacheError struct {
	Dir  string // the default cache directory
	Env  string // where it comes from: "XDG_CACHE_HOME" or "HOME"
	Path string // what belongs to UID: Env's directory, or a part below it
	Link bool   // Path is a symbolic link
	UID  int    // Path's owner
}

// Error names the cache, where it comes from, and what belongs to whom.
func (e *ForeignCacheError) Error() string {
	what := ""
	if e.Link {
		what = ", a symbolic link,"
	}
	return fmt.Sprintf("cache directory %s (from %s): %v: %s%s belongs to uid %d, and this process is root", e.Dir, e.Env, ErrForeignCache, e.Path, what, e.UID)
}

// Is makes errors.Is(err, ErrForeignCache) true.
func (e *ForeignCacheError) Is(target error) bool { return target == ErrForeignCache }
