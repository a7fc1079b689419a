package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/smolvmm/smolvmm/internal/plainname"
	"github.com/smolvmm/smolvmm/internal/regfile"
)

// Defaults for a release request.
const (
	DefaultMirror  = "https://cdn.netbsd.org/pub/NetBSD"
	DefaultVersion = "9.3"
	DefaultArch    = "i386"
	DefaultSet     = "rescue"
	// KernelName is the kernel file fetched from binary/kernel.
	KernelName = "netbsd-GENERIC.gz"
	// DefaultStallTimeout is Fetcher.StallTimeout's default.
	DefaultStallTimeout = 60 * time.Second
)

// maxDigestFile bounds a digest file; NetBSD's are a few KiB.
const maxDigestFile = 1 << 20

// Fetcher downloads release files into a cache. The zero value uses the
// default mirror, the default cache directory and an HTTP client that takes
// proxies from the environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY).
type Fetcher struct {
	// Mirror is the URL of the directory holding NetBSD-<version>
	// directories; DefaultMirror when empty.
	Mirror string
	// Cache is the cache root; DefaultCacheDir() when empty (which
	// root is refused when it is another user's). Files go to
	// Cache/<version>/<arch>/{kernel,sets}/.
	Cache string
	// Client makes the requests; nil means a client with proxies from the
	// environment, no transparent decompression and connection timeouts.
	Client *http.Client
	// Progress, when set, is called at the start of each download with the
	// file name, its total size (-1 if unknown) and the bytes already on
	// disk from an earlier attempt; the bytes received are written to the
	// returned writer, which is closed when the download ends; nil means
	// none for this download. The writer only shows the download: once a
	// write to it fails (or writes short) it is written no more, Note is
	// told, and the download goes on.
	Progress func(name string, total, have int64) io.WriteCloser
	// LockWait, when set, is called before Fetch waits for another
	// process that holds the release's cache directory (fetching the same
	// release), with that process described ("process 1234 (smolvmm up
	// rescue)"; "" when it cannot be found). The wait ends when the lock
	// is free or Fetch's context ends.
	LockWait func(holder string)
	// Note, when set, is called with a line for the user about what
	// Fetch does beside downloading: a cached file that failed its check
	// was removed and is downloaded again (offline, the error that
	// follows is the download's); a Progress writer failed.
	Note func(msg string)
	// StallTimeout is how long a download may go without receiving a
	// byte before it counts as cut short (ErrTruncated) and is resumed:
	// a mirror that stops sending without closing the connection would
	// otherwise hold Fetch, and the cache's lock, for ever. Only time
	// spent waiting for the mirror counts, not time spent writing what
	// arrived (to disk, to Progress). DefaultStallTimeout when zero.
	StallTimeout time.Duration

	// wrapPart lets tests replace the .part file's writer (full-disk test).
	wrapPart func(io.Writer) io.Writer
}

// Action says how Fetch obtained a file.
type Action string

// The ways a file can be obtained.
const (
	Cached     Action = "cached"     // found in the cache and re-verified
	Downloaded Action = "downloaded" // downloaded from the start in this run
	Resumed    Action = "resumed"    // completed from the partial download of an earlier run
)

// File is one verified file of a release in the cache.
type File struct {
	Name        string // name in the release, e.g. "rescue.tgz"
	Set         string // set name ("rescue"); empty for the kernel
	Path        string // verified file in the cache
	SHA512      string // hex digest it was verified against
	Size        int64  // bytes
	Action      Action // how it was obtained
	Transferred int64  // bytes received from the network this run
	Kept        int64  // bytes kept from an earlier run's partial download (Resumed)
	Breaks      int    // transfers cut short in this run and continued
	// Restarted: the mirror answered a request to resume with the whole
	// file (it cannot resume), which was downloaded again from the start.
	Restarted bool
	Repaired  bool          // a corrupt cached copy was deleted first
	Duration  time.Duration // time spent obtaining and verifying it
}

// Release is the result of Fetch: the kernel and the sets, all verified.
type Release struct {
	Version, Arch string // the release and port fetched: "9.3", "i386"
	Dir           string // cache directory of this release
	Kernel        File   // the kernel, KernelName, as the release has it
	Sets          []File // in the order requested, each file once
	// Requests counts the HTTP requests this Fetch made: zero when
	// everything came from the cache.
	Requests int
}

// ReleaseDir is the cache directory Fetch keeps release version/arch in
// (Release.Dir), said without writing to the cache or using the network.
// With no Cache, root is refused the default cache, as by DefaultCacheDir,
// when it or the release's directories in it belong to another user.
func (f *Fetcher) ReleaseDir(version, arch string) (string, error) {
	dir, _, err := f.releaseDir(version, arch)
	return dir, err
}

// releaseDir is ReleaseDir, with the check Fetch makes again once it has
// made the directories: for the default cache, that none of them is
// another user's, a root's concern alone (envCache.foreign); nil for a
// Cache given.
func (f *Fetcher) releaseDir(version, arch string) (string, func() error, error) {
	if f.Cache != "" {
		return filepath.Join(f.Cache, version, arch), nil, nil
	}
	c, err := defaultCache()
	if err != nil {
		return "", nil, err
	}
	dir := filepath.Join(c.dir, version, arch)
	check := func() error {
		for _, sub := range []string{"kernel", "sets"} {
			if err := c.foreign(filepath.Join(dir, sub)); err != nil {
				return err
			}
		}
		return nil
	}
	if err := check(); err != nil {
		return "", nil, err
	}
	return dir, check, nil
}

// Fetch makes sure the release's kernel and the named sets (DefaultSet when
// none) are in the cache and verified, downloading what is missing, and
// returns where they are. A fully cached release costs no network I/O,
// but for one request: a cached digest file that lacks the kernel or a set
// asked for, or names a file the mirror answers 404 for (renamed since:
// base.tgz now base.tar.xz), is fetched again once (the mirror may have
// corrected or changed it), and
// when the mirror cannot be reached the cached list's answer stands
// (ErrUnknownSet, ErrNotFound), saying so.
func (f *Fetcher) Fetch(ctx context.Context, version, arch string, sets ...string) (*Release, error) {
	if err := checkComponent("version", version); err != nil {
		return nil, err
	}
	if err := checkComponent("arch", arch); err != nil {
		return nil, err
	}
	if len(sets) == 0 {
		sets = []string{DefaultSet}
	}
	for _, s := range sets {
		if err := checkComponent("set", s); err != nil {
			return nil, err
		}
	}
	mirror, err := f.mirror()
	if err != nil {
		return nil, err
	}
	dir, check, err := f.releaseDir(version, arch)
	if err != nil {
		return nil, err
	}
	root := filepath.Dir(filepath.Dir(dir))
	// A cache directory this call creates goes too when it fails with
	// nothing cached; one that was there stays.
	stop := root
	for {
		if _, err := os.Lstat(stop); !errors.Is(err, fs.ErrNotExist) || filepath.Dir(stop) == stop {
			break
		}
		stop = filepath.Dir(stop)
	}
	// A lockDir that fails holds no lock: the directories may be another
	// process's, in use (a waiter's Ctrl-C), so they stay.
	unlock, readOnly, err := lockDir(ctx, dir, stop, f.LockWait, check)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rel := &release{f: f, version: version, arch: arch, dir: dir, readOnly: readOnly,
		base: mirror + "/NetBSD-" + version + "/" + arch + "/binary/"}
	out, err := rel.fetch(ctx, sets)
	if err != nil {
		// Leave no directories and no lock for a release that does not
		// exist or could not be reached; a kept .part file stays. A
		// read-only cache made none of them in this call, and is
		// left as it was: one whose lock file is another user's, in
		// directories this one may happen to write (a group's), is
		// that user's to tidy.
		if readOnly == nil {
			removeEmpty(dir, stop)
		}
		return nil, err
	}
	return out, nil
}

// fetch does Fetch's work under the cache directory's lock.
func (rel *release) fetch(ctx context.Context, sets []string) (*Release, error) {
	version, arch := rel.version, rel.arch
	out := &Release{Version: version, Arch: arch, Dir: rel.dir}
	kd, kcached, err := rel.digests(ctx, "kernel", false)
	if err != nil {
		return nil, err
	}
	ksum, ok := kd[KernelName]
	// The cached list may be one the mirror has corrected since (a cache
	// that cannot be written keeps the one it has).
	var stale string // why the cached list's answer stands
	if !ok && kcached && rel.readOnly == nil {
		if kd, stale, err = rel.refresh(ctx, "kernel", kd); err != nil {
			return nil, err
		}
		ksum, ok = kd[KernelName]
		kcached = stale != ""
	}
	if !ok {
		return nil, fmt.Errorf("%w: %skernel/SHA512 does not list %s%s", ErrNotFound, shown(rel.base), KernelName, stale)
	}
	// Resolve every set name before downloading anything, so a typo costs
	// no download.
	sd, scached, err := rel.digests(ctx, "sets", false)
	if err != nil {
		return nil, err
	}
	stale = ""
	if scached && rel.readOnly == nil {
		for _, s := range sets {
			if _, _, err := sd.SetFile(s); err != nil {
				// As for the kernel: fetched again once, and the
				// set is unknown only if the mirror's list lacks it.
				if sd, stale, err = rel.refresh(ctx, "sets", sd); err != nil {
					return nil, err
				}
				scached = stale != ""
				break
			}
		}
	}
	wants, err := rel.resolve(sd, sets, stale)
	if err != nil {
		return nil, err
	}
	out.Kernel, err = rel.file(ctx, "kernel", KernelName, ksum, kcached)
	if kcached && isListedMissing(err) {
		// The mirror may have replaced the file its cached list names.
		if kd, err = rel.relist(ctx, "kernel", err); err != nil {
			return nil, err
		}
		if ksum, ok = kd[KernelName]; !ok {
			return nil, fmt.Errorf("%w: %skernel/SHA512 does not list %s", ErrNotFound, shown(rel.base), KernelName)
		}
		out.Kernel, err = rel.file(ctx, "kernel", KernelName, ksum, false)
	}
	if err != nil {
		return nil, err
	}
	for i := 0; i < len(wants); i++ {
		w := wants[i]
		file, err := rel.file(ctx, "sets", w.name, w.sum, scached)
		if scached && isListedMissing(err) {
			// A set renamed on the mirror (base.tgz now base.tar.xz):
			// every set is resolved anew in the new list, and those
			// done are had again from the cache.
			if sd, err = rel.relist(ctx, "sets", err); err != nil {
				return nil, err
			}
			if wants, err = rel.resolve(sd, sets, ""); err != nil {
				return nil, err
			}
			scached, out.Sets, i = false, nil, -1
			continue
		}
		if err != nil {
			return nil, err
		}
		file.Set = w.set
		out.Sets = append(out.Sets, file)
	}
	out.Requests = rel.requests
	return out, nil
}

// want is a set asked for: its name as given, its file and digest.
type want struct{ set, name, sum string }

// resolve finds the files of sets in the digest list d. A set asked for
// twice ("rescue rescue", "rescue rescue.tgz") is one file, verified and
// returned once, where it was first named. stale is appended to an error.
func (rel *release) resolve(d Digests, sets []string, stale string) ([]want, error) {
	var wants []want
	seen := map[string]bool{}
	for _, s := range sets {
		name, sum, err := d.SetFile(s)
		if err != nil {
			return nil, fmt.Errorf("NetBSD %s/%s: %w%s", rel.version, rel.arch, err, stale)
		}
		if !seen[name] {
			seen[name] = true
			wants = append(wants, want{s, name, sum})
		}
	}
	return wants, nil
}

// relist fetches the digest list of sub again after missing, a 404 for a
// file its cached copy names. When the list cannot be had, missing
// stands, saying why the cached list could not be checked.
func (rel *release) relist(ctx context.Context, sub string, missing error) (Digests, error) {
	d, _, err := rel.digests(ctx, sub, true)
	if err == nil {
		return d, nil
	}
	if ctx.Err() != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%w (the mirror could not be asked again for the list: %v)", missing, err)
}

// release carries the state of one Fetch call.
type release struct {
	f             *Fetcher
	version, arch string
	dir, base     string
	requests      int
	// readOnly is why the cache cannot be written (nil when it can):
	// what is cached is used, and a file that must be downloaded is
	// refused (cannotStore).
	readOnly error
}

// cannotStore is the error of a file (a digest file or a release file,
// at path) that must be downloaded into a cache that cannot be written.
func (r *release) cannotStore(path, why string) error {
	return fmt.Errorf("%s %s, and the cache directory %s is not writable: %w", path, why, r.dir, cacheNotWritable{r.readOnly})
}

// note passes a line to the Fetcher's Note, if any.
func (r *release) note(format string, args ...any) {
	if r.f.Note != nil {
		r.f.Note(fmt.Sprintf(format, args...))
	}
}

// get counts the request and issues it.
func (r *release) get(ctx context.Context, url string, offset int64) (*http.Response, error) {
	r.requests++
	return r.f.get(ctx, url, offset)
}

// digests returns the parsed digest file of sub ("kernel" or "sets"), from
// the cache when it holds a well-formed copy (cached is then true), from
// the mirror otherwise, or when refresh is set (the cached copy lacks a
// file: the mirror may have corrected it since), replacing the cached copy.
func (r *release) digests(ctx context.Context, sub string, refresh bool) (d Digests, cached bool, err error) {
	path := filepath.Join(r.dir, sub, "SHA512")
	data, err := regfile.ReadFile(path, maxDigestFile)
	if err := entryErr(err); err != nil {
		return nil, false, err
	}
	if err == nil && !refresh {
		if d, err := ParseDigests(data); err == nil {
			return d, true, nil
		}
		if r.readOnly != nil {
			return nil, false, r.cannotStore(path, "is corrupt")
		}
		os.Remove(path) // a corrupt cache entry: fetch it again
		r.note("cached %s/SHA512 is not a SHA512 digest file (removed); downloading it again", sub)
	}
	if r.readOnly != nil {
		return nil, false, r.cannotStore(path, "is not cached")
	}
	url := r.base + sub + "/SHA512"
	resp, body, err := r.watchedGet(ctx, url, 0)
	if err != nil {
		return nil, false, err
	}
	defer body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, false, r.notFound(ctx, url)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, false, fmt.Errorf("%w: GET %s: %s", ErrHTTP, shown(url), resp.Status)
	}
	data, err = io.ReadAll(io.LimitReader(body, maxDigestFile+1))
	if err != nil {
		return nil, false, transferErr(url, body.why(ctx, err))
	}
	if len(data) > maxDigestFile {
		return nil, false, fmt.Errorf("%w: %s is larger than %d bytes", ErrNotDigestFile, shown(url), maxDigestFile)
	}
	d, err = ParseDigests(data)
	if err != nil {
		if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "text/html") {
			return nil, false, fmt.Errorf("mirror answered HTML (Content-Type %s) instead of the digest file %s: %w", ct, shown(url), err)
		}
		return nil, false, fmt.Errorf("%s: %w", shown(url), err)
	}
	if err := writeFileAtomic(path, data); err != nil {
		return nil, false, err
	}
	return d, false, nil
}

// refresh fetches the digest file of sub again, the cached copy d lacking
// a file asked for. When the mirror cannot be asked (offline), d's answer
// stands: stale then says why it could not be checked, to be appended to
// the error d gives; a typo is not a network error. An ended context is
// returned as the error.
func (r *release) refresh(ctx context.Context, sub string, d Digests) (fresh Digests, stale string, err error) {
	fresh, _, err = r.digests(ctx, sub, true)
	if err == nil {
		return fresh, "", nil
	}
	if ctx.Err() != nil {
		return nil, "", err
	}
	return d, fmt.Sprintf(" (the cached list; the mirror could not be asked again: %v)", err), nil
}

// notFound explains a 404 for the release's first file: it lists the
// versions the mirror has when the version is missing (and names the
// NetBSD-archive directory when that holds it), the ports when the arch
// is missing, and a NetBSD directory below a mirror URL that lists no
// trees.
func (r *release) notFound(ctx context.Context, url string) error {
	mirror, _ := r.f.mirror()
	dirs := r.listDirs(ctx, mirror+"/")
	versions := versionsIn(dirs)
	if len(versions) > 0 && !slices.Contains(versions, r.version) {
		err := fmt.Errorf("%w: NetBSD version %q (GET %s: 404); the mirror offers: %s",
			ErrNotFound, r.version, shown(url), strings.Join(versions, " "))
		if !slices.Contains(dirs, "NetBSD-archive") {
			return err
		}
		// Releases leave the top of a mirror for NetBSD-archive/, a
		// directory of trees of its own. Named only when its listing
		// holds the version, or cannot be read to say.
		archive := mirror + "/NetBSD-archive"
		held := ""
		if old := versionsIn(r.listDirs(ctx, archive+"/")); slices.Contains(old, r.version) {
			held = ", which holds NetBSD-" + r.version
		} else if len(old) > 0 {
			return err
		}
		return &ElsewhereError{Mirror: shown(archive), Err: fmt.Errorf("%w; older releases are under %s%s", err, shown(archive), held)}
	}
	if arches := archesIn(r.listDirs(ctx, mirror+"/NetBSD-"+r.version+"/")); len(arches) > 0 && !slices.Contains(arches, r.arch) {
		return fmt.Errorf("%w: arch %q in NetBSD %s (GET %s: 404); the mirror offers: %s",
			ErrNotFound, r.arch, r.version, shown(url), strings.Join(arches, " "))
	}
	// A mirror whose listing shows the trees is where it should be,
	// whatever its path (a local one is often a host's root).
	hint := ""
	if len(versions) == 0 {
		// A mirror URL one level too high (.../pub) lists the
		// directory that holds the trees.
		if slices.Contains(dirs, "NetBSD") {
			below := mirror + "/NetBSD"
			return &ElsewhereError{Mirror: shown(below), Err: fmt.Errorf("%w: GET %s: 404; the mirror URL %s lists no NetBSD-<version> trees but a directory NetBSD, which may hold them: %s",
				ErrNotFound, shown(url), shown(mirror), shown(below))}
		}
		hint = misplacedMirror(mirror)
	}
	return fmt.Errorf("%w: GET %s: 404%s", ErrNotFound, shown(url), hint)
}

// misplacedMirror says, for an error's end, when the mirror URL cannot be
// the directory holding the NetBSD-<version> trees: it names one of them,
// or a directory inside one; or when it may not be: it is a host's root
// (as given, the tree's files are looked for below NetBSD-<version>/ in
// it). It is "" otherwise.
func misplacedMirror(mirror string) string {
	u, err := url.Parse(mirror)
	if err != nil {
		return ""
	}
	const holding = "not the directory holding the NetBSD-<version> trees (such as " + DefaultMirror + ")"
	p := strings.Trim(u.Path, "/")
	if p == "" {
		// A local mirror often is a host's root: one whose listing
		// cannot be read may hold the trees, and only the release or
		// arch be missing.
		return "; the mirror URL " + shown(mirror) + " is a host's root, whose listing shows no NetBSD-<version> trees: it may not be the directory holding them (such as " + DefaultMirror + ")"
	}
	parts := strings.Split(p, "/")
	for _, c := range parts {
		if v, ok := strings.CutPrefix(c, "NetBSD-"); ok && releaseNumber(v) {
			return "; the mirror URL " + shown(mirror) + " names a directory of the release tree " + c + ", " + holding
		}
	}
	switch parts[len(parts)-1] {
	case "binary", "sets", "kernel", "installation":
		return "; the mirror URL " + shown(mirror) + " names a directory of a release tree, " + holding
	}
	return ""
}

// releaseNumber reports whether v is a release's name as its tree's
// directory has it: numbers and dots, then maybe "_" and a pre-release
// (9.3, 10.0_RC1), not a name such as "9-archive".
func releaseNumber(v string) bool {
	num, _, _ := strings.Cut(v, "_")
	if num == "" || num[0] < '0' || num[0] > '9' {
		return false
	}
	for _, c := range num {
		if c != '.' && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// file returns the verified cache entry for name, downloading it when the
// cache has no good copy. cached says the digest list that names it is
// the cache's, not one fetched in this run.
func (r *release) file(ctx context.Context, sub, name, sum string, cached bool) (File, error) {
	start := time.Now()
	path := filepath.Join(r.dir, sub, name)
	out := File{Name: name, Path: path, SHA512: sum}
	if st, err := os.Stat(path); err == nil {
		got, err := HashFile(path)
		if err := entryErr(err); err != nil {
			return out, err
		}
		if err != nil {
			return out, fmt.Errorf("verify cached %s: %w", path, err)
		}
		if got == sum {
			out.Size, out.Action, out.Duration = st.Size(), Cached, time.Since(start)
			return out, nil
		}
		if r.readOnly != nil {
			return out, r.cannotStore(path, "does not match its SHA512")
		}
		if err := os.Remove(path); err != nil {
			return out, fmt.Errorf("remove corrupt cache entry %s: %w", path, err)
		}
		out.Repaired = true
		r.note("cached %s did not match its SHA512 (removed); downloading it again", name)
	}
	if r.readOnly != nil {
		return out, r.cannotStore(path, "is not cached")
	}
	d := download{r: r, url: r.base + sub + "/" + name, name: name, path: path, sum: sum, list: sub + "/SHA512", cachedList: cached}
	if err := d.run(ctx); err != nil {
		if errors.Is(err, ErrDigestMismatch) {
			// The digest file may be what is wrong: fetch it again next time.
			os.Remove(filepath.Join(r.dir, sub, "SHA512"))
		}
		return out, err
	}
	out.Size, out.Transferred, out.Duration = d.size, d.transferred, time.Since(start)
	out.Kept, out.Breaks, out.Restarted = d.kept, d.breaks, d.noResume
	out.Action = Downloaded
	if d.kept > 0 {
		// Only bytes from an earlier run make a resume: a transfer cut
		// and continued in this run is still this run's download.
		out.Action = Resumed
	}
	return out, nil
}

// get issues one GET (with a Range from offset when offset > 0) and turns
// transport failures into ErrNetwork errors.
func (f *Fetcher) get(ctx context.Context, url string, offset int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", shown(url), err)
	}
	if offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	}
	resp, err := f.client().Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("GET %s: %w", shown(url), ctx.Err())
		}
		cause := unwrapURLError(err)
		// net/http says a proxy's refusal of CONNECT (an https://
		// mirror) by the status's text alone, and a redirect loop by a
		// text of its own: neither is a mirror out of reach.
		if cause.Error() == http.StatusText(http.StatusProxyAuthRequired) {
			return nil, proxyAuthErr(url, "407 "+cause.Error())
		}
		if strings.HasPrefix(cause.Error(), "stopped after") && strings.HasSuffix(cause.Error(), "redirects") {
			return nil, fmt.Errorf("%w: GET %s: the mirror redirects in a loop (%v)", ErrHTTP, shown(url), cause)
		}
		return nil, fmt.Errorf("%w: cannot reach the mirror: GET %s: %w", ErrNetwork, shown(url), cause)
	}
	if resp.StatusCode == http.StatusProxyAuthRequired {
		// The proxy's answer (an http:// mirror), not the mirror's.
		resp.Body.Close()
		return nil, proxyAuthErr(url, resp.Status)
	}
	return resp, nil
}

// proxyAuthErr is the error of a GET of url that the proxy refused with
// status (407) for want of credentials. The proxy's URL is not said: it
// may hold a password.
func proxyAuthErr(url, status string) error {
	return fmt.Errorf("%w: GET %s: the proxy (from HTTPS_PROXY/HTTP_PROXY) asks for credentials (%s): give them in its URL, such as HTTPS_PROXY=http://USER:PASSWORD@HOST:PORT", ErrProxyAuth, shown(url), status)
}

// shown is u as messages print it: the password of a mirror given as
// http://user:secret@host/... replaced by "xxxxx" (url.URL.Redacted), and
// a user part without one (http://TOKEN@host/..., often a token) replaced
// whole, so that errors and logs can be shared. A URL that does not parse
// has everything before an "@" in its host part replaced.
func shown(u string) string {
	if p, err := url.Parse(u); err == nil {
		if _, ok := p.User.Password(); ok {
			return p.Redacted()
		}
		if p.User == nil || p.User.Username() == "" {
			return u
		}
		q := *p
		q.User = url.User("xxxxx")
		return q.String()
	}
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	end := strings.IndexByte(rest, '/')
	if end < 0 {
		end = len(rest)
	}
	if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
		rest = "xxxxx" + rest[at:]
	}
	return scheme + "://" + rest
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func (f *Fetcher) stallTimeout() time.Duration {
	if f.StallTimeout > 0 {
		return f.StallTimeout
	}
	return DefaultStallTimeout
}

func (f *Fetcher) client() *http.Client {
	if f.Client != nil {
		return f.Client
	}
	return defaultClient()
}

// defaultClient takes proxies from the environment and never decompresses:
// .gz files must reach the digest check byte for byte even from a server
// that labels them Content-Encoding: gzip. It is made on first use, not
// when every smolvmm process (every VM) starts.
var defaultClient = sync.OnceValue(func() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   2,
	}}
})

func (f *Fetcher) mirror() (string, error) {
	m := f.Mirror
	if m == "" {
		m = DefaultMirror
	}
	u, err := url.Parse(m)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("mirror %q is not an http:// or https:// URL (e.g. %s)", shown(m), DefaultMirror)
	}
	// The files' paths are appended to the mirror's: a query or a
	// fragment would end up inside each file's URL.
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		sm, tail := shown(m), "its query and fragment"
		if i := strings.IndexAny(sm, "?#"); i >= 0 {
			tail = strconv.Quote(sm[i:])
		}
		return "", fmt.Errorf("mirror %q: a mirror URL names a directory: drop %s (e.g. %s)", sm, tail, DefaultMirror)
	}
	return strings.TrimRight(m, "/"), nil
}

// checkComponent refuses values that would escape the cache directory or
// the mirror's tree.
func checkComponent(field, v string) error {
	example := map[string]string{"version": DefaultVersion, "arch": DefaultArch, "set": DefaultSet}[field]
	if len(v) > plainname.MaxLen {
		// Said before any directory is made: one named by it is too
		// long for the file system ("mkdir ...: file name too long").
		return fmt.Errorf("bad %s %q... (%d bytes): want a plain name of at most %d bytes such as %q", field, v[:16], len(v), plainname.MaxLen, example)
	}
	if !plainname.Plain(v) {
		return fmt.Errorf("bad %s %q: want a plain name such as %q", field, v, example)
	}
	return nil
}

// removeEmpty removes dir's kernel and sets subdirectories, its lock file
// and dir itself, then empty parents up to root; non-empty ones stay.
func removeEmpty(dir, root string) {
	if os.Remove(filepath.Join(dir, "kernel")) != nil || os.Remove(filepath.Join(dir, "sets")) != nil {
		return
	}
	os.Remove(filepath.Join(dir, ".lock"))
	for d := dir; below(root, d); d = filepath.Dir(d) {
		if os.Remove(d) != nil {
			return
		}
	}
}

// below reports whether path d is inside root and not root itself, by
// their cleaned elements: a relative root such as "." is a prefix of no
// path under it ("c5/abc"), and "/a/b" is one of "/a/bc".
func below(root, d string) bool {
	rel, err := filepath.Rel(root, d)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
