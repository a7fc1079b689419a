package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/fetch/fetchtest"
)

var (
	testKernel = bytes.Repeat([]byte("\x7fELF fake netbsd kernel "), 4000) // ~96 KB: several reads
	testRescue = fetchtest.RescueSet()
	testBase   = []byte("not really xz, the fetcher does not care\n")
)

func testRelease() fetchtest.Release {
	return fetchtest.Release{Version: "9.3", Arch: "i386", Kernel: testKernel,
		Sets: map[string][]byte{"rescue.tgz": testRescue, "base.tar.xz": testBase}}
}

// setup returns a server with release 9.3/i386 (plus 10.0/amd64, so that
// the mirror's indexes list more than one entry) and a fetcher using it.
func setup(t *testing.T) (*fetchtest.Server, *Fetcher) {
	t.Helper()
	other := fetchtest.Release{Version: "10.0", Arch: "amd64", Kernel: []byte("k"), Sets: map[string][]byte{"rescue.tgz": []byte("r")}}
	srv := fetchtest.NewServer(testRelease(), other)
	t.Cleanup(srv.Close)
	return srv, &Fetcher{Mirror: srv.Mirror(), Cache: t.TempDir()}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFetchHappyPath(t *testing.T) {
	srv, f := setup(t)
	rel, err := f.Fetch(context.Background(), "9.3", "i386", "rescue", "base")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(f.Cache, "9.3", "i386"); rel.Dir != want {
		t.Errorf("Dir = %s, want %s", rel.Dir, want)
	}
	// Said before the fetch (up judges its image by a stamp kept there).
	if dir, err := f.ReleaseDir("9.3", "i386"); err != nil || dir != rel.Dir {
		t.Errorf("ReleaseDir = %q, %v; want the release's Dir %s", dir, err, rel.Dir)
	}
	if rel.Kernel.Path != filepath.Join(rel.Dir, "kernel", KernelName) || !bytes.Equal(mustRead(t, rel.Kernel.Path), testKernel) {
		t.Errorf("kernel at %s does not hold the served kernel", rel.Kernel.Path)
	}
	want := []struct {
		set, name string
		data      []byte
	}{{"rescue", "rescue.tgz", testRescue}, {"base", "base.tar.xz", testBase}}
	if len(rel.Sets) != len(want) {
		t.Fatalf("got %d sets, want %d", len(rel.Sets), len(want))
	}
	for i, w := range want {
		s := rel.Sets[i]
		if s.Set != w.set || s.Name != w.name || s.Action != Downloaded || s.Size != int64(len(w.data)) || s.Transferred != int64(len(w.data)) {
			t.Errorf("set %d = %+v, want %s as %s, downloaded, %d bytes", i, s, w.set, w.name, len(w.data))
		}
		if !bytes.Equal(mustRead(t, s.Path), w.data) {
			t.Errorf("%s: content differs from the served file", s.Path)
		}
	}
	// Two digest files, the kernel and two sets.
	if n := len(srv.Requests()); n != 5 || rel.Requests != 5 {
		t.Errorf("requests: server saw %d, Fetch counted %d, want 5", n, rel.Requests)
	}
	if m, _ := filepath.Glob(filepath.Join(rel.Dir, "*", "*.part")); len(m) != 0 {
		t.Errorf("partial files left behind: %v", m)
	}
}

// TestFetchSetNamedTwice: a set named twice, also by its file name, is
// verified and returned once, in the order first asked for.
func TestFetchSetNamedTwice(t *testing.T) {
	tests := []struct {
		name string
		sets []string
		want []string // File.Name of each set returned
	}{
		{"same name", []string{"rescue", "rescue"}, []string{"rescue.tgz"}},
		{"name and file name", []string{"rescue", "rescue.tgz"}, []string{"rescue.tgz"}},
		{"order kept", []string{"base", "rescue", "base"}, []string{"base.tar.xz", "rescue.tgz"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, f := setup(t)
			rel, err := f.Fetch(context.Background(), "9.3", "i386", tt.sets...)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range rel.Sets {
				got = append(got, s.Name)
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("sets %v, want %v", got, tt.want)
			}
			// Two digest files, the kernel and each set once.
			if n := len(srv.Requests()); n != 3+len(tt.want) {
				t.Errorf("%d requests, want %d: %v", n, 3+len(tt.want), srv.Requests())
			}
		})
	}
}

func TestFetchSecondRunIsOffline(t *testing.T) {
	srv, f := setup(t)
	if _, err := f.Fetch(context.Background(), "9.3", "i386"); err != nil {
		t.Fatal(err)
	}
	srv.ResetLog()
	rel, err := f.Fetch(context.Background(), "9.3", "i386")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Requests()); n != 0 || rel.Requests != 0 {
		t.Errorf("second run made %d requests (counted %d), want 0: %v", n, rel.Requests, srv.Requests())
	}
	if rel.Kernel.Action != Cached || rel.Sets[0].Action != Cached || rel.Sets[0].Transferred != 0 {
		t.Errorf("actions = %s, %s; want cached", rel.Kernel.Action, rel.Sets[0].Action)
	}
	// With the mirror gone, the cache alone must still serve.
	srv.Close()
	if _, err := f.Fetch(context.Background(), "9.3", "i386"); err != nil {
		t.Errorf("offline run with a full cache: %v", err)
	}
}

func TestFetchRepairsCorruptCache(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(t *testing.T, rel *Release)
		reqs    int
	}{
		{"set flipped byte", func(t *testing.T, rel *Release) {
			b := mustRead(t, rel.Sets[0].Path)
			b[len(b)/2] ^= 0xff
			os.WriteFile(rel.Sets[0].Path, b, 0o644)
		}, 1},
		{"kernel truncated", func(t *testing.T, rel *Release) {
			os.Truncate(rel.Kernel.Path, 10)
		}, 1},
		{"sets digest file garbage", func(t *testing.T, rel *Release) {
			os.WriteFile(filepath.Join(rel.Dir, "sets", "SHA512"), []byte("garbage\n"), 0o644)
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, f := setup(t)
			rel, err := f.Fetch(context.Background(), "9.3", "i386")
			if err != nil {
				t.Fatal(err)
			}
			tt.corrupt(t, rel)
			srv.ResetLog()
			rel, err = f.Fetch(context.Background(), "9.3", "i386")
			if err != nil {
				t.Fatal(err)
			}
			if n := len(srv.Requests()); n != tt.reqs {
				t.Errorf("repair made %d requests, want %d: %v", n, tt.reqs, srv.Requests())
			}
			if !bytes.Equal(mustRead(t, rel.Kernel.Path), testKernel) || !bytes.Equal(mustRead(t, rel.Sets[0].Path), testRescue) {
				t.Error("cache does not hold the right bytes after repair")
			}
		})
	}
}

func TestFetchCorruptDownload(t *testing.T) {
	srv, f := setup(t)
	bad := append([]byte(nil), testRescue...)
	bad[10] ^= 1
	srv.SetFault(fetchtest.SetsPath("9.3", "i386", "rescue.tgz"), fetchtest.Fault{Body: bad})
	_, err := f.Fetch(context.Background(), "9.3", "i386", "rescue")
	var de *DigestError
	if !errors.As(err, &de) || !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("err = %v, want a *DigestError", err)
	}
	if de.File != "rescue.tgz" || de.Expected != sha512hex(testRescue) || de.Actual != sha512hex(bad) {
		t.Errorf("DigestError = %+v, want rescue.tgz with expected and actual digests", de)
	}
	for _, s := range []string{"rescue.tgz", de.Expected, de.Actual} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("message %q does not name %s", err, s)
		}
	}
	for _, p := range []string{"rescue.tgz", "rescue.tgz.part"} {
		if _, err := os.Stat(filepath.Join(f.Cache, "9.3", "i386", "sets", p)); !os.IsNotExist(err) {
			t.Errorf("%s still exists after a digest mismatch (%v)", p, err)
		}
	}
}

func TestFetchWrongDigestFile(t *testing.T) {
	srv, f := setup(t)
	srv.SetFile(fetchtest.SetsPath("9.3", "i386", "SHA512"),
		fetchtest.DigestFile(map[string][]byte{"rescue.tgz": []byte("something else")}))
	_, err := f.Fetch(context.Background(), "9.3", "i386")
	if !errors.Is(err, ErrDigestMismatch) || !strings.Contains(err.Error(), sha512hex([]byte("something else"))) {
		t.Fatalf("err = %v, want a digest mismatch naming the listed digest", err)
	}
	noAdvice(t, err)
	// Once the mirror is fixed, the next run fetches the digest file again
	// instead of trusting the cached wrong one.
	srv.AddRelease(testRelease())
	if _, err := f.Fetch(context.Background(), "9.3", "i386"); err != nil {
		t.Fatalf("after fixing the mirror: %v", err)
	}
}

func TestFetchNotFound(t *testing.T) {
	tests := []struct {
		name, version, arch string
		sets                []string
		fault               string // path to answer 404
		want                error
		wantMsg             []string
	}{
		{"unknown version", "9.9", "i386", nil, "", ErrNotFound, []string{`version "9.9"`, "offers: 10.0 9.3"}},
		{"unknown arch", "9.3", "vax", nil, "", ErrNotFound, []string{`arch "vax"`, "offers: i386"}},
		{"set not in release", "9.3", "i386", []string{"games"}, "", ErrUnknownSet, []string{`"games"`, "base, rescue"}},
		{"listed set missing on mirror", "9.3", "i386", nil, fetchtest.SetsPath("9.3", "i386", "rescue.tgz"), ErrNotFound, []string{"rescue.tgz: 404", "the mirror is incomplete"}},
		{"release digest missing", "9.3", "i386", nil, fetchtest.KernelPath("9.3", "i386", "SHA512"), ErrNotFound, []string{"kernel/SHA512: 404"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, f := setup(t)
			if tt.fault != "" {
				srv.SetFault(tt.fault, fetchtest.Fault{Status: 404})
			}
			_, err := f.Fetch(context.Background(), tt.version, tt.arch, tt.sets...)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if tt.sets != nil && hasRequest(srv, fetchtest.KernelPath(tt.version, tt.arch, KernelName), "") {
				t.Error("the kernel was downloaded although a set name was wrong")
			}
			if tt.fault == "" && tt.sets == nil {
				if _, err := os.Stat(filepath.Join(f.Cache, tt.version)); !os.IsNotExist(err) {
					t.Errorf("cache directory left for a release that does not exist (%v)", err)
				}
			}
			for _, m := range tt.wantMsg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("message %q lacks %q", err, m)
				}
			}
			// Facts only: the caller adds advice in its own terms (the
			// command's flags), which came after the library's own.
			if strings.Contains(err.Error(), "check the") || strings.Contains(err.Error(), "try another") {
				t.Errorf("message %q gives advice", err)
			}
		})
	}
}

func TestFetchHTMLInsteadOfDigests(t *testing.T) {
	srv, f := setup(t)
	srv.SetFault(fetchtest.KernelPath("9.3", "i386", "SHA512"), fetchtest.Fault{Status: 200,
		ContentType: "text/html", Body: []byte("<!DOCTYPE html><html><body>Welcome to the hotel wifi</body></html>")})
	_, err := f.Fetch(context.Background(), "9.3", "i386")
	if !errors.Is(err, ErrNotDigestFile) || !strings.Contains(err.Error(), "HTML") || !strings.Contains(err.Error(), "kernel/SHA512") {
		t.Fatalf("err = %v, want ErrNotDigestFile saying HTML and naming kernel/SHA512", err)
	}
	noAdvice(t, err)
	if _, err := os.Stat(filepath.Join(f.Cache, "9.3", "i386", "kernel", "SHA512")); !os.IsNotExist(err) {
		t.Error("an HTML answer was cached as a digest file")
	}
}

func TestFetchHTMLInsteadOfSet(t *testing.T) {
	srv, f := setup(t)
	srv.SetFault(fetchtest.SetsPath("9.3", "i386", "rescue.tgz"), fetchtest.Fault{Status: 200,
		ContentType: "text/html; charset=utf-8", Body: []byte("<html>Please log in</html>")})
	_, err := f.Fetch(context.Background(), "9.3", "i386")
	var he *HTMLError
	if !errors.Is(err, ErrHTTP) || !errors.As(err, &he) || he.File != "rescue.tgz" || !strings.Contains(err.Error(), "HTML page") || !strings.Contains(err.Error(), "instead of rescue.tgz") {
		t.Fatalf("err = %v, want an HTML-page error naming rescue.tgz", err)
	}
	// The advice is the CLI's: fetch states the facts.
	if strings.Contains(err.Error(), "check") {
		t.Errorf("err = %v: advice in the library's error", err)
	}
	if _, err := os.Stat(filepath.Join(f.Cache, "9.3", "i386", "sets", "rescue.tgz.part")); !os.IsNotExist(err) {
		t.Error("the HTML page was written to the partial file")
	}
}

// TestFetchTruncatedTransfer: a run gives up on a file cut short more
// than maxBreaks times (here 3), though each transfer made progress,
// keeping what arrived, and the next run resumes it.
func TestFetchTruncatedTransfer(t *testing.T) {
	defer func(n int) { maxBreaks = n }(maxBreaks)
	maxBreaks = 3
	srv, f := setup(t)
	path := fetchtest.KernelPath("9.3", "i386", KernelName)
	srv.SetFault(path, fetchtest.Fault{TruncateAt: 1000})
	_, err := f.Fetch(context.Background(), "9.3", "i386")
	if !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), "after 3 earlier breaks, and gives up") {
		t.Fatalf("err = %v, want ErrTruncated saying it gave up after 3 breaks", err)
	}
	part := filepath.Join(f.Cache, "9.3", "i386", "kernel", KernelName+".part")
	if got := fileSize(part); got != 4000 {
		t.Errorf("partial file holds %d bytes, want 4000 (four transfers, three resumed)", got)
	}
	if _, err := os.Stat(strings.TrimSuffix(part, ".part")); !os.IsNotExist(err) {
		t.Error("a truncated kernel was put in place")
	}
	// The next run resumes where the last one stopped.
	srv.SetFault(path, fetchtest.Fault{})
	srv.ResetLog()
	rel, err := f.Fetch(context.Background(), "9.3", "i386")
	if err != nil {
		t.Fatal(err)
	}
	if rel.Kernel.Action != Resumed || rel.Kernel.Transferred != int64(len(testKernel)-4000) {
		t.Errorf("kernel %s with %d bytes transferred, want resumed with %d", rel.Kernel.Action, rel.Kernel.Transferred, len(testKernel)-4000)
	}
	if !hasRequest(srv, path, "bytes=4000-") {
		t.Errorf("no Range request for the kernel: %v", srv.Requests())
	}
	if !bytes.Equal(mustRead(t, rel.Kernel.Path), testKernel) {
		t.Error("resumed kernel differs")
	}
}

func TestFetchResume(t *testing.T) {
	kpath := fetchtest.KernelPath("9.3", "i386", KernelName)
	tests := []struct {
		name      string
		seed      []byte // pre-existing .part content, from an earlier run
		fault     fetchtest.Fault
		action    Action
		kept      int64 // bytes of seed the result keeps
		breaks    int
		wantRange string
		restarted bool // the mirror answered a request to resume with the whole file
	}{
		// A transfer cut and continued in one run is that run's download,
		// not a resume of an earlier one.
		{"cut once, resumed in the same run", nil, fetchtest.Fault{TruncateAt: 5000, Times: 1}, Downloaded, 0, 1, "bytes=5000-", false},
		{"cut twice in the same run", nil, fetchtest.Fault{TruncateAt: 5000, Times: 2}, Downloaded, 0, 2, "bytes=10000-", false},
		{"good partial from an earlier run", testKernel[:7000], fetchtest.Fault{}, Resumed, 7000, 0, "bytes=7000-", false},
		{"earlier partial, then cut in this run", testKernel[:7000], fetchtest.Fault{TruncateAt: 2000, Times: 1}, Resumed, 7000, 1, "bytes=9000-", false},
		{"bad partial: restart from zero", append([]byte("garbage!"), testKernel[8:7000]...), fetchtest.Fault{}, Downloaded, 0, 0, "bytes=7000-", false},
		{"server ignores Range", testKernel[:7000], fetchtest.Fault{IgnoreRange: true}, Downloaded, 0, 0, "bytes=7000-", true},
		{"cut once, then a server that ignores Range", nil, fetchtest.Fault{TruncateAt: 5000, Times: 1, Then: &fetchtest.Fault{IgnoreRange: true}}, Downloaded, 0, 1, "bytes=5000-", true},
		{"partial longer than the file", append(append([]byte(nil), testKernel...), 'x'), fetchtest.Fault{}, Downloaded, 0, 0, "bytes=" + itoa(len(testKernel)+1) + "-", false},
		{"complete partial needs no request", testKernel, fetchtest.Fault{}, Resumed, int64(len(testKernel)), 0, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, f := setup(t)
			if _, err := f.Fetch(context.Background(), "9.3", "i386"); err != nil {
				t.Fatal(err)
			}
			kfile := filepath.Join(f.Cache, "9.3", "i386", "kernel", KernelName)
			os.Remove(kfile)
			if tt.seed != nil {
				os.WriteFile(kfile+".part", tt.seed, 0o644)
			}
			srv.SetFault(kpath, tt.fault)
			srv.ResetLog()
			rel, err := f.Fetch(context.Background(), "9.3", "i386")
			if err != nil {
				t.Fatal(err)
			}
			k := rel.Kernel
			if k.Action != tt.action || k.Kept != tt.kept || k.Breaks != tt.breaks || k.Restarted != tt.restarted {
				t.Errorf("action %s, kept %d, breaks %d, restarted %v; want %s, %d, %d, %v", k.Action, k.Kept, k.Breaks, k.Restarted, tt.action, tt.kept, tt.breaks, tt.restarted)
			}
			if k.Kept+k.Transferred < k.Size {
				t.Errorf("kept %d + transferred %d < size %d", k.Kept, k.Transferred, k.Size)
			}
			if !bytes.Equal(mustRead(t, kfile), testKernel) {
				t.Error("kernel differs from the served one")
			}
			if tt.wantRange != "" && !hasRequest(srv, kpath, tt.wantRange) {
				t.Errorf("no request with Range %s: %v", tt.wantRange, srv.Requests())
			}
			if tt.wantRange == "" && len(srv.Requests()) != 0 {
				t.Errorf("requests %v, want none", srv.Requests())
			}
		})
	}
}

func TestFetchNoNetwork(t *testing.T) {
	srv, f := setup(t)
	srv.Close() // nothing listens on its port any more
	_, err := f.Fetch(context.Background(), "9.3", "i386")
	if !errors.Is(err, ErrNetwork) || !strings.Contains(err.Error(), "cannot reach the mirror") {
		t.Fatalf("err = %v, want ErrNetwork", err)
	}
	noAdvice(t, err)
}

// noAdvice fails t when err tells its reader what to do: the library
// states facts, and its caller advises (smolvmm's advice.go).
func noAdvice(t *testing.T, err error) {
	t.Helper()
	for _, a := range []string{"check ", "run again", "try ", "mirror URL"} {
		if strings.Contains(err.Error(), a) {
			t.Errorf("err = %q advises %q", err, a)
		}
	}
}

// fullDisk fails every write the way a full file system does.
type fullDisk struct{}

func (fullDisk) Write([]byte) (int, error) {
	return 0, &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}
}

func TestFetchDiskFull(t *testing.T) {
	_, f := setup(t)
	f.wrapPart = func(io.Writer) io.Writer { return fullDisk{} }
	_, err := f.Fetch(context.Background(), "9.3", "i386")
	// The fact once, and no advice: the caller knows how its user
	// chooses the cache (it said the cause twice, around advice).
	if !errors.Is(err, ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) || strings.Count(err.Error(), "no space left on device") != 1 || strings.Contains(err.Error(), "(") {
		t.Fatalf("err = %v, want ErrNoSpace saying it once, without advice", err)
	}
}

func TestFetchBadArguments(t *testing.T) {
	tests := []struct {
		name                  string
		mirror, version, arch string
		sets                  []string
		want                  string
	}{
		{"version escapes", "", "../9.3", "i386", nil, "bad version"},
		{"empty arch", "", "9.3", "", nil, "bad arch"},
		{"set with slash", "", "9.3", "i386", []string{"a/b"}, "bad set"},
		{"ftp mirror", "ftp://ftp.netbsd.org/pub/NetBSD", "9.3", "i386", nil, "not an http"},
		// They made no directory: "mkdir ...: file name too long".
		{"version too long", "", strings.Repeat("9", 300), "i386", nil, `bad version "9999999999999999"... (300 bytes): want a plain name of at most 64 bytes such as "9.3"`},
		{"arch too long", "", "9.3", strings.Repeat("a", 65), nil, "bad arch"},
		{"set too long", "", "9.3", "i386", []string{strings.Repeat("s", 256)}, "bad set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &Fetcher{Mirror: tt.mirror, Cache: filepath.Join(t.TempDir(), "cache")}
			if err := f.Check(tt.version, tt.arch, tt.sets...); err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrBadArgument) {
				t.Errorf("Check: err = %v, want %q matching ErrBadArgument", err, tt.want)
			}
			_, err := f.Fetch(context.Background(), tt.version, tt.arch, tt.sets...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if _, err := os.Stat(f.Cache); err == nil {
				t.Errorf("the cache %s was made for a release refused", f.Cache)
			}
		})
	}
}

// recorder is a Progress writer that remembers what it saw.
type recorder struct {
	name        string
	total, have int64
	n           int64
	closed      bool
}

func (r *recorder) Write(p []byte) (int, error) { r.n += int64(len(p)); return len(p), nil }
func (r *recorder) Close() error                { r.closed = true; return nil }

func TestFetchProgress(t *testing.T) {
	_, f := setup(t)
	var recs []*recorder
	f.Progress = func(name string, total, have int64) io.WriteCloser {
		r := &recorder{name: name, total: total, have: have}
		recs = append(recs, r)
		return r
	}
	if _, err := f.Fetch(context.Background(), "9.3", "i386"); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Fatalf("%d progress writers, want 2 (kernel, rescue)", len(recs))
	}
	k := recs[0]
	if k.name != KernelName || k.total != int64(len(testKernel)) || k.n != k.total || k.have != 0 || !k.closed {
		t.Errorf("kernel progress = %+v", *k)
	}
}

func TestDefaultCacheDir(t *testing.T) {
	tests := []struct{ xdg, home, want string }{
		{"/x/cache", "/home/u", "/x/cache/smolvmm"},
		{"", "/home/u", "/home/u/.cache/smolvmm"},
		{"relative", "/home/u", "/home/u/.cache/smolvmm"},
	}
	for _, tt := range tests {
		t.Setenv("XDG_CACHE_HOME", tt.xdg)
		t.Setenv("HOME", tt.home)
		if got, err := DefaultCacheDir(); err != nil || got != tt.want {
			t.Errorf("XDG_CACHE_HOME=%q HOME=%q: %q, %v; want %q", tt.xdg, tt.home, got, err, tt.want)
		}
	}
}

func hasRequest(srv *fetchtest.Server, path, rng string) bool {
	for _, r := range srv.Requests() {
		if r.Path == path && r.Range == rng {
			return true
		}
	}
	return false
}

func TestFetchInterruptedKeepsPartial(t *testing.T) {
	srv, f := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	// The mirror sends 20000 bytes and stalls; cancel (as Ctrl-C would)
	// once bytes are on disk.
	f.Progress = func(name string, total, have int64) io.WriteCloser {
		return &cancelOnWrite{cancel: cancel}
	}
	srv.SetFault(fetchtest.KernelPath("9.3", "i386", KernelName), fetchtest.Fault{StallAt: 20000, Times: 1})
	_, err := f.Fetch(ctx, "9.3", "i386")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	part := filepath.Join(f.Cache, "9.3", "i386", "kernel", KernelName+".part")
	have := fileSize(part)
	if have != 20000 {
		t.Fatalf("partial file holds %d bytes, want some of %d (err %v)", have, len(testKernel), err)
	}
	var ie *InterruptedError
	if !errors.As(err, &ie) || ie.Part != part || ie.Have != have {
		t.Errorf("err = %v (%#v), want an InterruptedError naming %s and its %d bytes", err, ie, part, have)
	}
	f.Progress = nil
	srv.ResetLog()
	rel, err := f.Fetch(context.Background(), "9.3", "i386")
	if err != nil {
		t.Fatal(err)
	}
	if rel.Kernel.Action != Resumed || !hasRequest(srv, fetchtest.KernelPath("9.3", "i386", KernelName), "bytes="+itoa(int(have))+"-") {
		t.Errorf("kernel %s, requests %v; want resumed from %d", rel.Kernel.Action, srv.Requests(), have)
	}
}

// cancelOnWrite cancels once the first 20000 bytes have arrived.
type cancelOnWrite struct {
	cancel func()
	n      int
}

func (c *cancelOnWrite) Write(p []byte) (int, error) {
	if c.n += len(p); c.n >= 20000 {
		c.cancel()
	}
	return len(p), nil
}
func (c *cancelOnWrite) Close() error { return nil }

func TestFetchConcurrentProcessesShareTheCache(t *testing.T) {
	srv, f := setup(t)
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() {
			g := &Fetcher{Mirror: f.Mirror, Cache: f.Cache}
			_, err := g.Fetch(context.Background(), "9.3", "i386", "rescue", "base")
			errs <- err
		}()
	}
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	// The lock serialises them: one downloads, the others find the cache.
	if n := len(srv.Requests()); n != 5 {
		t.Errorf("%d requests, want 5 (one download of each file)", n)
	}
}

// TestFetchThroughRedirects fetches from a front server that redirects every
// request elsewhere, as cdn.netbsd.org and many mirrors do: the files
// arrive verified and a resumed download still sends its Range to the
// server that answers.
func TestFetchThroughRedirects(t *testing.T) {
	srv, f := setup(t)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, srv.URL+r.URL.Path, http.StatusFound)
	}))
	t.Cleanup(front.Close)
	f.Mirror = front.URL + strings.TrimPrefix(srv.Mirror(), srv.URL)
	kfile := filepath.Join(f.Cache, "9.3", "i386", "kernel", KernelName)
	if err := os.MkdirAll(filepath.Dir(kfile), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kfile+".part", testKernel[:6000], 0o644); err != nil {
		t.Fatal(err)
	}
	rel, err := f.Fetch(context.Background(), "9.3", "i386")
	if err != nil {
		t.Fatal(err)
	}
	if rel.Kernel.Action != Resumed || !bytes.Equal(mustRead(t, kfile), testKernel) {
		t.Errorf("kernel %s, content equal %v; want resumed and equal", rel.Kernel.Action, bytes.Equal(mustRead(t, kfile), testKernel))
	}
	if !bytes.Equal(mustRead(t, rel.Sets[0].Path), testRescue) {
		t.Error("rescue set differs from the served one")
	}
	if !hasRequest(srv, fetchtest.KernelPath("9.3", "i386", KernelName), "bytes=6000-") {
		t.Errorf("the redirected request lost its Range: %v", srv.Requests())
	}
}

// TestFetchHTMLWithoutContentType serves an error page labelled as a binary
// file in place of the set: the digest check refuses it, deletes it, and
// the message says an HTML page arrived.
func TestFetchHTMLWithoutContentType(t *testing.T) {
	srv, f := setup(t)
	srv.SetFault(fetchtest.SetsPath("9.3", "i386", "rescue.tgz"), fetchtest.Fault{Status: 200,
		ContentType: "application/octet-stream", Body: []byte("\n<!DOCTYPE HTML>\n<html><body>503 backend fetch failed</body></html>")})
	_, err := f.Fetch(context.Background(), "9.3", "i386")
	if !errors.Is(err, ErrDigestMismatch) || !strings.Contains(err.Error(), "HTML page") || !strings.Contains(err.Error(), "not rescue.tgz") {
		t.Fatalf("err = %v, want a digest mismatch saying an HTML page arrived instead of rescue.tgz", err)
	}
	if !errors.As(err, new(*UnlabelledHTMLError)) {
		t.Errorf("err = %v, want an *UnlabelledHTMLError", err)
	}
	noAdvice(t, err)
	if _, err := os.Stat(filepath.Join(f.Cache, "9.3", "i386", "sets", "rescue.tgz.part")); !os.IsNotExist(err) {
		t.Error("the HTML page was kept")
	}
}

// TestFetchStalledTransfer: a mirror that stops sending mid-file without
// closing the connection is a break like any other after StallTimeout,
// and the transfer resumes from where it stopped.
func TestFetchStalledTransfer(t *testing.T) {
	tests := []struct {
		name        string
		times       int  // stalls before the mirror answers in full
		ignoreRange bool // a resume gets the whole file again: no progress
		wantOK      bool
		wantBreaks  int
	}{
		{"stalls once, then resumes", 1, false, true, 1},
		// 96,000 bytes: nine stalls at 10,000 bytes each, every one
		// further than the last.
		{"stalls every time, each further", 0, false, true, 9},
		{"stalls every time, no further", 0, true, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, f := setup(t)
			f.StallTimeout = 200 * time.Millisecond
			kpath := fetchtest.KernelPath("9.3", "i386", KernelName)
			srv.SetFault(kpath, fetchtest.Fault{StallAt: 10000, Times: tt.times, IgnoreRange: tt.ignoreRange})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			rel, err := f.Fetch(ctx, "9.3", "i386")
			if ctx.Err() != nil {
				t.Fatalf("Fetch hung until the test's deadline: %v", err)
			}
			if tt.wantOK {
				if err != nil {
					t.Fatal(err)
				}
				if rel.Kernel.Breaks != tt.wantBreaks || !hasRequest(srv, kpath, "bytes=10000-") {
					t.Errorf("breaks %d, requests %v; want %d, resumed from 10000", rel.Kernel.Breaks, srv.Requests(), tt.wantBreaks)
				}
				if !bytes.Equal(mustRead(t, rel.Kernel.Path), testKernel) {
					t.Error("resumed kernel differs")
				}
				return
			}
			if !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), "no data for 200ms") {
				t.Fatalf("err = %v, want ErrTruncated saying no data for 200ms", err)
			}
			part := filepath.Join(f.Cache, "9.3", "i386", "kernel", KernelName+".part")
			if got := fileSize(part); got != 10000 {
				t.Errorf("partial file holds %d bytes, want 10000 (the second transfer, from the start, got no further)", got)
			}
		})
	}
}

// slowWriter is a Progress writer whose first write takes pause, as a
// terminal paused with Ctrl-S or a stalling disk would.
type slowWriter struct {
	pause time.Duration
	done  bool
}

func (w *slowWriter) Write(p []byte) (int, error) {
	if !w.done {
		w.done = true
		time.Sleep(w.pause)
	}
	return len(p), nil
}
func (w *slowWriter) Close() error { return nil }

// TestFetchSlowWriterIsNoStall: time spent writing what arrived (to the
// .part file, to Progress) is not the mirror sending nothing: only a read
// that waits longer than StallTimeout is a stall.
func TestFetchSlowWriterIsNoStall(t *testing.T) {
	_, f := setup(t)
	f.StallTimeout = 200 * time.Millisecond
	f.Progress = func(name string, total, have int64) io.WriteCloser {
		return &slowWriter{pause: 400 * time.Millisecond}
	}
	rel, err := f.Fetch(context.Background(), "9.3", "i386")
	if err != nil {
		t.Fatalf("err = %v, want none: the writer was slow, not the mirror", err)
	}
	for _, file := range append([]File{rel.Kernel}, rel.Sets...) {
		if file.Breaks != 0 {
			t.Errorf("%s: %d breaks, want 0", file.Path, file.Breaks)
		}
	}
}

// TestFetchStalledDigestFile: a digest file whose transfer stalls ends in
// ErrTruncated too, not in a wait without end.
func TestFetchStalledDigestFile(t *testing.T) {
	srv, f := setup(t)
	f.StallTimeout = 200 * time.Millisecond
	srv.SetFault(fetchtest.KernelPath("9.3", "i386", "SHA512"), fetchtest.Fault{StallAt: 10})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := f.Fetch(ctx, "9.3", "i386")
	if ctx.Err() != nil || !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), "no data for 200ms") {
		t.Fatalf("err = %v, want ErrTruncated saying no data for 200ms", err)
	}
}

// TestFetchStalledIndex: the mirror's index, read to list the versions it
// offers, that stalls leaves the 404's error without the list, in time.
func TestFetchStalledIndex(t *testing.T) {
	srv, f := setup(t)
	f.StallTimeout = 200 * time.Millisecond
	srv.SetFault("", fetchtest.Fault{Body: bytes.Repeat([]byte("<a href=\"NetBSD-9.3/\">"), 100), StallAt: 10})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := f.Fetch(ctx, "9.9", "i386")
	if ctx.Err() != nil || !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound before the test's deadline", err)
	}
}

// TestFetchCutWithoutRange: a mirror that cuts transfers and answers a
// request to resume with the whole file again makes no progress: the
// file is not downloaded from zero again and again, and the error says
// the mirror cannot resume rather than promising a resume.
func TestFetchCutWithoutRange(t *testing.T) {
	srv, f := setup(t)
	kpath := fetchtest.KernelPath("9.3", "i386", KernelName)
	srv.SetFault(kpath, fetchtest.Fault{TruncateAt: 1000, IgnoreRange: true})
	_, err := f.Fetch(context.Background(), "9.3", "i386")
	if !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), "cannot resume") || strings.Contains(err.Error(), "resumes it") {
		t.Fatalf("err = %v, want ErrTruncated saying the mirror cannot resume", err)
	}
	gets := 0
	for _, r := range srv.Requests() {
		if r.Path == kpath {
			gets++
		}
	}
	if gets != 2 {
		t.Errorf("%d requests for the kernel, want 2 (the second shows the mirror cannot resume): %v", gets, srv.Requests())
	}
}

// TestFetchWrongRangeThenCut: a resume answered with another range than
// asked starts the part file over; a cut of that fresh transfer is
// progress from zero, resumed (the run gave up, promising a resume).
func TestFetchWrongRangeThenCut(t *testing.T) {
	srv, f := setup(t)
	kpath := fetchtest.KernelPath("9.3", "i386", KernelName)
	srv.SetFault(kpath, fetchtest.Fault{TruncateAt: 2000, Times: 1,
		Then: &fetchtest.Fault{WrongRange: true, Times: 1,
			Then: &fetchtest.Fault{TruncateAt: 1000, Times: 1}}})
	if _, err := f.Fetch(context.Background(), "9.3", "i386"); err != nil {
		t.Fatalf("Fetch: %v; requests %v", err, srv.Requests())
	}
	var ranges []string
	for _, r := range srv.Requests() {
		if r.Path == kpath {
			ranges = append(ranges, r.Range)
		}
	}
	if want := []string{"", "bytes=2000-", "", "bytes=1000-"}; !slices.Equal(ranges, want) {
		t.Errorf("the kernel's requests had ranges %q, want %q", ranges, want)
	}
}

// TestFetchPartForWhole: a mirror answering a request for the whole file
// with a part of it (206 from byte 1) is an error, not a start over from
// zero that asks the same again for ever.
func TestFetchPartForWhole(t *testing.T) {
	srv, f := setup(t)
	kpath := fetchtest.KernelPath("9.3", "i386", KernelName)
	srv.SetFault(kpath, fetchtest.Fault{PartWhole: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := f.Fetch(ctx, "9.3", "i386")
	if !errors.Is(err, ErrHTTP) || !strings.Contains(err.Error(), "to a request for the whole file") {
		t.Fatalf("err = %v, want ErrHTTP naming the part answered for the whole file", err)
	}
	gets := 0
	for _, r := range srv.Requests() {
		if r.Path == kpath {
			gets++
		}
	}
	if gets != 1 {
		t.Errorf("%d requests for the kernel, want 1", gets)
	}
}

// TestFetchMisplacedMirror: a mirror URL naming a release tree, a
// directory in one, or a host's root got a bare 404 for
// .../NetBSD-9.3/NetBSD-9.3/i386/binary/kernel/SHA512; the error says the
// mirror is not the directory holding the release trees. A mirror URL
// that may be that directory gets no such words.
func TestFetchMisplacedMirror(t *testing.T) {
	// A mirror that lists NetBSD-<version> trees is in its place, at a
	// host's root too (a local mirror often is): the 404 is the file's.
	root := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			io.WriteString(w, `<a href="NetBSD-9.3/">NetBSD-9.3/</a>`)
			return
		}
		http.NotFound(w, r)
	}))
	defer root.Close()
	f := &Fetcher{Mirror: root.URL, Cache: t.TempDir()}
	if _, err := f.Fetch(context.Background(), "9.3", "i386"); !errors.Is(err, ErrNotFound) || strings.Contains(err.Error(), "the directory holding") {
		t.Errorf("a host's root listing the trees: %v; want ErrNotFound, no word about the mirror's place", err)
	}

	tests := []struct {
		name, path string // the mirror: the server's URL + path
		want       string // in the error; "" for none of the words
	}{
		{"release tree", fetchtest.MirrorPath + "/NetBSD-9.3", "names a directory of the release tree NetBSD-9.3, not the directory holding the NetBSD-<version> trees (such as " + DefaultMirror + ")"},
		{"inside a release tree", fetchtest.MirrorPath + "/NetBSD-9.3/i386/binary/", "release tree NetBSD-9.3, not the directory holding"},
		{"binary directory", "/mirror/binary", "names a directory of a release tree, not the directory holding"},
		// No listing to tell: a local mirror at a host's root may hold
		// the trees, and only the release be missing.
		{"host root", "/", "is a host's root, whose listing shows no NetBSD-<version> trees: it may not be the directory holding them (such as " + DefaultMirror + ")"},
		{"host root, no slash", "", "is a host's root, whose listing shows no NetBSD-<version> trees: it may not be"},
		{"another directory", "/pub/OpenBSD", ""},
		{"a directory named like a tree", "/NetBSD-9-archive/pub/OpenBSD", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, f := setup(t)
			f.Mirror = srv.URL + tt.path
			_, err := f.Fetch(context.Background(), "9.3", "i386")
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("err = %v, want ErrNotFound", err)
			}
			if tt.want == "" && (strings.Contains(err.Error(), "not the directory holding") || strings.Contains(err.Error(), "may not be the directory")) {
				t.Errorf("err = %v, want no word about the mirror's place", err)
			}
			if tt.want != "" && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to say %q", err, tt.want)
			}
		})
	}
}

// TestFetchElsewhere: a mirror URL one level above the trees
// (.../pub) got a bare 404, and a release moved to NetBSD-archive/ got
// "the mirror offers: 10.0 9.3" with no word of where it went. The error
// now names the directory the mirror's listing shows may hold it, as an
// *ElsewhereError; a listing that shows none gets no such words.
func TestFetchElsewhere(t *testing.T) {
	above := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/pub/":
			io.WriteString(w, `<a href="NetBSD/">NetBSD/</a> <a href="OpenBSD/">OpenBSD/</a>`)
		case "/other/":
			io.WriteString(w, `<a href="OpenBSD/">OpenBSD/</a>`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer above.Close()
	tests := []struct {
		name, version string
		mirror        func(srv *fetchtest.Server) string
		elsewhere     func(srv *fetchtest.Server) string // the directory named; "" for none
		want          string
	}{
		{"one level too high", "9.3", func(*fetchtest.Server) string { return above.URL + "/pub" },
			func(*fetchtest.Server) string { return above.URL + "/pub/NetBSD" },
			"lists no NetBSD-<version> trees but a directory NetBSD, which may hold them: " + above.URL + "/pub/NetBSD"},
		{"one level too high, slash", "9.3", func(*fetchtest.Server) string { return above.URL + "/pub/" },
			func(*fetchtest.Server) string { return above.URL + "/pub/NetBSD" }, "which may hold them: " + above.URL + "/pub/NetBSD"},
		{"no NetBSD directory", "9.3", func(*fetchtest.Server) string { return above.URL + "/other" }, nil, ""},
		{"archived release", "9.2", func(srv *fetchtest.Server) string { return srv.Mirror() },
			func(srv *fetchtest.Server) string { return srv.Mirror() + "/NetBSD-archive" },
			`version "9.2" (GET ` + "%s" + `/NetBSD-9.2/i386/binary/kernel/SHA512: 404); the mirror offers: 10.0 9.3; older releases are under %s/NetBSD-archive, which holds NetBSD-9.2`},
		{"not archived either", "9.9", func(srv *fetchtest.Server) string { return srv.Mirror() }, nil, "offers: 10.0 9.3"},
		// An archive whose listing cannot be read may hold it.
		{"archive unlisted", "9.9", func(srv *fetchtest.Server) string {
			srv.SetFault("NetBSD-archive/", fetchtest.Fault{Status: 403})
			return srv.Mirror()
		}, func(srv *fetchtest.Server) string { return srv.Mirror() + "/NetBSD-archive" },
			"offers: 10.0 9.3; older releases are under %s/NetBSD-archive$"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, f := setup(t)
			srv.SetFile("NetBSD-archive/NetBSD-9.2/i386/binary/kernel/SHA512", []byte("x"))
			f.Mirror = tt.mirror(srv)
			_, err := f.Fetch(context.Background(), tt.version, "i386")
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("err = %v, want ErrNotFound", err)
			}
			want := tt.want
			switch strings.Count(want, "%s") {
			case 1:
				want = fmt.Sprintf(want, srv.Mirror())
			case 2:
				want = fmt.Sprintf(want, srv.Mirror(), srv.Mirror())
			}
			// "$": the error ends there.
			if w, ok := strings.CutSuffix(want, "$"); ok && !strings.HasSuffix(err.Error(), w) {
				t.Errorf("err = %v, want it to end %q", err, w)
			}
			if want = strings.TrimSuffix(want, "$"); !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v, want it to say %q", err, want)
			}
			var e *ElsewhereError
			switch {
			case tt.elsewhere == nil && (errors.As(err, &e) || strings.Contains(err.Error(), "NetBSD-archive") || strings.Contains(err.Error(), "may hold")):
				t.Errorf("err = %v, want no other directory named", err)
			case tt.elsewhere != nil && !errors.As(err, &e):
				t.Errorf("err = %v, want an *ElsewhereError", err)
			case tt.elsewhere != nil && e.Mirror != tt.elsewhere(srv):
				t.Errorf("ElsewhereError.Mirror = %q, want %q", e.Mirror, tt.elsewhere(srv))
			}
		})
	}
}
