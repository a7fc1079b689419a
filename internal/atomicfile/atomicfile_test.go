package atomicfile

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/internal/protlink/protlinktest"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "img")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := Write(path, 0o644, func(f *os.File) error {
		f.Write([]byte("half"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the writer's error", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Fatalf("failed write changed the file to %q", b)
	}
	if err := WriteFile(path, []byte("new"), 0o640); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	st, _ := os.Stat(path)
	// The replaced file's mode stays (TestWriteKeepsModeAndOwner).
	if string(b) != "new" || st.Mode().Perm() != 0o600 {
		t.Fatalf("content %q mode %v, want new and 0600", b, st.Mode().Perm())
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".img.tmp-*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	if err := WriteFile(filepath.Join(dir, "missing", "x"), nil, 0o644); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
}

// TestWriteRefusesNonRegular builds each kind of file in a temporary
// directory and checks that Write leaves it be: a rename over it would
// swap a device node or FIFO for a plain file (kstrip -o /dev/full did).
func TestWriteRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	linkToFIFO := filepath.Join(dir, "link-to-fifo")
	if err := os.Symlink("fifo", linkToFIFO); err != nil {
		t.Fatal(err)
	}
	// A character device like /dev/full (1,7), made only where mknod works.
	chr := filepath.Join(dir, "full")
	chrErr := unix.Mknod(chr, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 7)))
	tests := []struct {
		name, path, kind, link string
		skip                   error
	}{
		{"FIFO", fifo, "a FIFO", "", nil},
		{"socket", sock, "a socket", "", nil},
		{"directory", sub, "a directory", "", nil},
		{"symlink to a FIFO", linkToFIFO, "a FIFO", linkToFIFO, nil},
		{"character device", chr, "a character device", "", chrErr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.skip != nil {
				t.Skipf("mknod: %v (needs root)", tt.skip)
			}
			before, err := os.Lstat(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			called := false
			err = Write(tt.path, 0o644, func(*os.File) error { called = true; return nil })
			var nr *NotRegularError
			if !errors.Is(err, ErrNotRegular) || !errors.As(err, &nr) || nr.Kind != tt.kind || nr.Link != tt.link {
				t.Fatalf("err = %v (%#v), want ErrNotRegular for %s, link %q", err, nr, tt.kind, tt.link)
			}
			if !strings.Contains(err.Error(), tt.kind) {
				t.Errorf("error %q does not say it is %s", err, tt.kind)
			}
			if called {
				t.Error("content was written before the target was checked")
			}
			after, err := os.Lstat(tt.path)
			if err != nil || after.Mode() != before.Mode() || !os.SameFile(before, after) {
				t.Errorf("target changed: %v -> %v (%v)", before.Mode(), after, err)
			}
			if _, err := Target(tt.path); !errors.Is(err, ErrNotRegular) {
				t.Errorf("Target: %v, want ErrNotRegular", err)
			}
		})
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// TestWriteThroughSymlink: a symlinked output has its target replaced and
// keeps its link (kstrip -o /dev/stdout replaced the /dev/stdout link).
func TestWriteThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	if err := os.WriteFile(real, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	chain := filepath.Join(dir, "chain")
	dangling := filepath.Join(dir, "dangling")
	for _, l := range [][2]string{{"real", link}, {"link", chain}, {"new", dangling}} {
		if err := os.Symlink(l[0], l[1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct{ path, target, content string }{
		{link, real, "one"},
		{chain, real, "two"},
		{dangling, filepath.Join(dir, "new"), "three"},
	} {
		if got, err := Target(tt.path); err != nil || got != tt.target {
			t.Errorf("Target(%s) = %q, %v; want %q", tt.path, got, err, tt.target)
		}
		if err := WriteFile(tt.path, []byte(tt.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if st, err := os.Lstat(tt.path); err != nil || st.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s is no longer a symlink: %v %v", tt.path, st.Mode(), err)
		}
		if b, _ := os.ReadFile(tt.target); string(b) != tt.content {
			t.Errorf("target %s holds %q, want %q", tt.target, b, tt.content)
		}
	}
	loop := filepath.Join(dir, "loop")
	os.Symlink("loop", loop)
	if err := WriteFile(loop, nil, 0o644); err == nil {
		t.Error("a symlink loop was written through")
	}
}

// TestWriteRefusesPipeThroughProcFd: /dev/stdout is a symlink to
// /proc/self/fd/1, which, for a pipe, reads as "pipe:[N]", no path. Built
// here with a pipe of the test's own and a symlink in a temporary
// directory (never the real /dev/stdout): refused as a FIFO, link kept.
func TestWriteRefusesPipeThroughProcFd(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	fd := fmt.Sprintf("/proc/self/fd/%d", w.Fd())
	if _, err := os.Lstat(fd); err != nil {
		t.Skipf("no /proc: %v", err)
	}
	stdout := filepath.Join(t.TempDir(), "stdout")
	if err := os.Symlink(fd, stdout); err != nil {
		t.Fatal(err)
	}
	err = WriteFile(stdout, []byte("kernel"), 0o644)
	var nr *NotRegularError
	if !errors.As(err, &nr) || nr.Kind != "a FIFO" {
		t.Fatalf("err = %v, want a FIFO refused", err)
	}
	if st, err := os.Lstat(stdout); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the symlink was replaced: %v %v", st, err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(stdout), ".*")); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestCheck: Check fails where Write would fail to begin, for root too
// (/proc/sys takes no new files), and leaves nothing behind.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	existing := filepath.Join(dir, "old")
	if err := os.WriteFile(existing, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		ok         bool
		is         error // nil: any error naming the path's directory
	}{
		{"new file", filepath.Join(dir, "new"), true, nil},
		{"existing file", existing, true, nil},
		{"missing directory", filepath.Join(dir, "missing", "x"), false, os.ErrNotExist},
		{"directory taking no files", "/proc/sys/smolvmm-check", false, nil},
		{"FIFO", fifo, false, ErrNotRegular},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.path)
			if tt.ok {
				if err != nil {
					t.Fatalf("Check(%s) = %v", tt.path, err)
				}
			} else if err == nil || tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("Check(%s) = %v, want an error (%v)", tt.path, err, tt.is)
			} else if de := (*DirError)(nil); errors.Is(err, fs.ErrNotExist) || tt.is == nil {
				// The directory is named, never the temporary file.
				if !errors.As(err, &de) || de.Dir != filepath.Dir(tt.path) || strings.Contains(err.Error(), ".tmp-") {
					t.Errorf("Check(%s) = %v, want a DirError naming %s, no temporary file", tt.path, err, filepath.Dir(tt.path))
				}
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Check created the file: %v", err)
	}
	if b, _ := os.ReadFile(existing); string(b) != "old" {
		t.Errorf("Check changed the file to %q", b)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// TestWriteLongName: a file whose name is valid but near NAME_MAX is
// written (the temporary's name, the base with ".tmp-" and more around
// it, was too long: "create a file in .: file name too long"), and two
// such names that differ only at the end get temporaries of their own.
func TestWriteLongName(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{maxTempBase, maxTempBase + 1, 250, 255} {
		name := filepath.Join(dir, strings.Repeat("k", n-1)+"x")
		if err := WriteFile(name, []byte("data"), 0o644); err != nil {
			t.Errorf("%d-byte name: %v", n, err)
			continue
		}
		if b, _ := os.ReadFile(name); string(b) != "data" {
			t.Errorf("%d-byte name: read %q", n, b)
		}
		if err := Check(name); err != nil {
			t.Errorf("%d-byte name: Check: %v", n, err)
		}
	}
	a, b := strings.Repeat("k", 254)+"a", strings.Repeat("k", 254)+"b"
	if pa, pb := tempPattern(a), tempPattern(b); pa == pb || len(pa)-1+10 > 255 {
		t.Errorf("patterns %q and %q: want two, each within NAME_MAX", pa, pb)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 4 {
		t.Errorf("left in the directory: %d entries, want the 4 files", len(ents))
	}
}

// A symlink in a sticky world-writable directory (as /tmp) is followed
// only when this process's user or the directory's owner owns it, as the
// kernel's fs.protected_symlinks would: another user's link there is
// refused (ErrUnsafeSymlink) and the file it names left alone. Before,
// root told to write /tmp/out replaced whatever file a link planted
// there named. Another user's link in a directory only its owner
// writes is the user's to have made, and is followed.
func TestWriteRefusesPlantedSymlink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the links are given to other users")
	}
	const other = 4242
	tests := []struct {
		name     string
		sticky   bool // the link's directory is 01777
		dirOwner int
		linkUID  int
		refused  bool
	}{
		{"planted link in /tmp-like dir", true, 0, other, true},
		{"own link in /tmp-like dir", true, 0, 0, false},
		{"link of the dir's owner", true, other, other, false},
		{"another's link in a private dir", false, 0, other, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			link, victim, _ := protlinktest.Plant(t, protlinktest.Link{Sticky: tt.sticky, DirOwner: tt.dirOwner, LinkUID: tt.linkUID, Name: "out"})
			err := WriteFile(link, []byte("new"), 0o644)
			b, _ := os.ReadFile(victim)
			if !tt.refused {
				if err != nil || string(b) != "new" {
					t.Fatalf("WriteFile: %v, the link's file holds %q; want it replaced", err, b)
				}
				return
			}
			if !errors.Is(err, ErrUnsafeSymlink) || !strings.Contains(fmt.Sprint(err), link) || !strings.Contains(fmt.Sprint(err), fmt.Sprintf("owned by uid %d", other)) {
				t.Errorf("WriteFile: %v; want ErrUnsafeSymlink naming %s and its owner", err, link)
			}
			if string(b) != "precious" {
				t.Errorf("the link's file holds %q, want it untouched", b)
			}
			if _, err := Target(link); !errors.Is(err, ErrUnsafeSymlink) {
				t.Errorf("Target: %v, want ErrUnsafeSymlink", err)
			}
		})
	}
}

// TestWriteLinkInLinkedDir: a relative link's target is taken from the
// link's real directory, as the kernel takes it. The link's directory
// reached through a symlink (linkdir -> real/deep) and a target with ".."
// (real/deep/out -> ../x) name real/x; joining the path's text gave ./x,
// and Write replaced that other file.
func TestWriteLinkInLinkedDir(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"real/deep", "deep"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range [][2]string{{"real/deep", "linkdir"}, {"../x", "real/deep/out"}, {"linkdir/out", "chain"}, {"../new", "real/deep/dangling"}} {
		if err := os.Symlink(l[0], filepath.Join(dir, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct{ name, path string }{
		{"link in a linked directory", "linkdir/out"},
		{"dot-dot after a linked directory", "linkdir/../deep/out"},
		{"chain through a linked directory", "chain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, decoy := filepath.Join(dir, "real", "x"), filepath.Join(dir, "x")
			for _, f := range []string{want, decoy} {
				if err := os.WriteFile(f, []byte("old"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(dir, "") + "/" + tt.path // unclean, as typed
			got, err := Target(path)
			if err != nil {
				t.Fatalf("Target(%s): %v", tt.path, err)
			}
			gst, err1 := os.Stat(got)
			wst, err2 := os.Stat(want)
			if err1 != nil || err2 != nil || !os.SameFile(gst, wst) {
				t.Errorf("Target(%s) = %s, want %s", tt.path, got, want)
			}
			if err := WriteFile(path, []byte("new"), 0o644); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(want); string(b) != "new" {
				t.Errorf("%s holds %q, want the new content", want, b)
			}
			if b, _ := os.ReadFile(decoy); string(b) != "old" {
				t.Errorf("%s, not the link's file, was replaced: holds %q", decoy, b)
			}
		})
	}
	// A dangling link's file is created where the kernel would create it.
	if err := WriteFile(filepath.Join(dir, "linkdir", "dangling"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "real", "new")); string(b) != "new" {
		t.Errorf("real/new holds %q (%v), want the new content", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); err == nil {
		t.Error("the dangling link's file was created beside linkdir")
	}
}

// TestWriteKeepsModeAndOwner: a replaced file keeps its permission bits
// and, where this process may give them (root), its owner and group; a
// new file gets perm. The replacement was created with perm and owned by
// the writer: kstrip -o over a 0600 file left it 0644, and root's kstrip
// of a user's kernel left it root's. Setuid, setgid and sticky bits are
// dropped, as the documentation now says: new content is not vouched for
// with the owner's rights.
func TestWriteKeepsModeAndOwner(t *testing.T) {
	dir := t.TempDir()
	const uid, gid = 4242, 4343
	root := os.Geteuid() == 0
	tests := []struct {
		name     string
		existing os.FileMode // 0: none
		chown    bool
		mode     os.FileMode
	}{
		{"new file", 0, false, 0o644},
		{"private file", 0o600, false, 0o600},
		{"executable", 0o751, false, 0o751},
		{"another user's file", 0o640, true, 0o640},
		{"setuid", 0o755 | os.ModeSetuid, false, 0o755},
		{"setgid", 0o750 | os.ModeSetgid, false, 0o750},
		{"sticky", 0o644 | os.ModeSticky, false, 0o644},
		{"another user's setuid file", 0o755 | os.ModeSetuid | os.ModeSetgid, true, 0o755},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.chown && !root {
				t.Skip("needs root to give the file to another user")
			}
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			if tt.existing != 0 {
				if err := os.WriteFile(path, []byte("old"), tt.existing); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tt.existing); err != nil {
					t.Fatal(err)
				}
			}
			if tt.chown {
				if err := os.Chown(path, uid, gid); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteFile(path, []byte("new"), 0o644); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			const bits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky
			if st.Mode()&bits != tt.mode {
				t.Errorf("mode %v, want %v", st.Mode()&bits, tt.mode)
			}
			sys := st.Sys().(*syscall.Stat_t)
			wantUID, wantGID := uint32(os.Geteuid()), uint32(os.Getegid())
			if tt.chown {
				wantUID, wantGID = uid, gid
			}
			if sys.Uid != wantUID || sys.Gid != wantGID {
				t.Errorf("owner %d:%d, want %d:%d", sys.Uid, sys.Gid, wantUID, wantGID)
			}
		})
	}
}

// TestWriteContextStops: a context that ended once the content was
// written, or while it was synced, let the rename go on, so a stopped
// build replaced its output; the output is now left as it was and the
// temporary file removed, unless the context ended after the rename.
func TestWriteContextStops(t *testing.T) {
	cause := errors.New("SIGINT received")
	tests := []struct {
		name    string
		during  bool   // cancel while write runs
		stage   string // else cancel at this CommitHook stage
		want    string // the file's content after
		stopped bool
	}{
		{"during the write", true, "", "old", true},
		{"right before the rename", false, CommitRename, "old", true},
		{"after the rename", false, CommitRenamed, "new", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "img")
			if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			CommitHook = func(stage string) {
				if stage == tt.stage {
					cancel(cause)
				}
			}
			defer func() { CommitHook = nil }()
			err := WriteContext(ctx, path, 0o644, func(f *os.File) error {
				if tt.during {
					cancel(cause)
				}
				_, err := f.Write([]byte("new"))
				return err
			})
			if tt.stopped != (err != nil) || tt.stopped && (!errors.Is(err, context.Canceled) || !errors.Is(err, cause)) {
				t.Errorf("err = %v; want stopped %v, matching the context's error and cause", err, tt.stopped)
			}
			if b, _ := os.ReadFile(path); string(b) != tt.want {
				t.Errorf("file holds %q, want %q", b, tt.want)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, ".img.tmp-*")); len(left) != 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}

// TestWriteNewFileUmask: a new file was chmod'ed to perm, so with umask
// 077 an image came out 0644, readable (and lockable) by every user; it
// now gets perm less the umask, as os.OpenFile gives. A replaced file
// keeps its own mode whatever the umask. The umask is the process's: no
// test of this package runs in parallel with this one.
func TestWriteNewFileUmask(t *testing.T) {
	tests := []struct {
		umask    int
		existing os.FileMode // 0: none
		want     os.FileMode
	}{
		{0o077, 0, 0o600},
		{0o027, 0, 0o640},
		{0o022, 0, 0o644},
		{0o077, 0o644, 0o644},
		{0o022, 0o600, 0o600},
	}
	dir := t.TempDir()
	for i, tt := range tests {
		t.Run(fmt.Sprintf("umask %03o existing %03o", tt.umask, tt.existing), func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprint(i))
			if tt.existing != 0 {
				if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tt.existing); err != nil {
					t.Fatal(err)
				}
			}
			old := syscall.Umask(tt.umask)
			err := WriteFile(path, []byte("new"), 0o644)
			syscall.Umask(old)
			if err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != tt.want {
				t.Errorf("mode %v, want %v", st.Mode().Perm(), tt.want)
			}
		})
	}
}
