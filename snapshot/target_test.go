package snapshot

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/internal/protlink/protlinktest"
)

// dirNames lists dir's entries, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// writeString is a Target.Write callback that writes s.
func writeString(s string) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := io.WriteString(w, s)
		return err
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestTargetReplace: a committed snapshot replaces the file (or creates
// it), a symlink keeps pointing at the new file, and Close leaves nothing
// beside it.
func TestTargetReplace(t *testing.T) {
	tests := []struct {
		name    string
		old     bool // a file is there already
		symlink bool // the path given is a symlink to it
	}{
		{"new file", false, false},
		{"existing file", true, false},
		{"symlink to a file", true, true},
		{"dangling symlink", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "f.snap")
			if tt.old {
				if err := os.WriteFile(file, []byte("old"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			path, want := file, []string{"f.snap"}
			if tt.symlink {
				path = filepath.Join(dir, "link.snap")
				if err := os.Symlink("f.snap", path); err != nil {
					t.Fatal(err)
				}
				want = []string{"f.snap", "link.snap"}
			}
			tg, err := OpenTarget(path)
			if tt.symlink && !tt.old {
				// A dangling link is not followed into a file it
				// would create: refused, the link kept.
				if err == nil {
					tg.Close()
					t.Fatal("OpenTarget of a dangling symlink succeeded")
				}
				if got := dirNames(t, dir); !slices.Equal(got, []string{"link.snap"}) {
					t.Fatalf("left %q; want only the link", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := tg.Write(writeString("new")); err != nil {
				t.Fatal(err)
			}
			if !tg.Close() {
				t.Fatal("Close reports no commit")
			}
			if got := mustRead(t, file); got != "new" {
				t.Fatalf("%s holds %q; want %q", file, got, "new")
			}
			if got := dirNames(t, dir); !slices.Equal(got, want) {
				t.Fatalf("left %q; want %q", got, want)
			}
			if tt.symlink {
				if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSymlink == 0 {
					t.Fatalf("%s: %v, %v; want it still a symlink", path, fi, err)
				}
			}
		})
	}
}

// TestTargetLocked: a file another holder locks (exclusive: a machine's
// disk; shared: a machine restored from it) is refused with ErrInUse
// naming the holder, and left as it was with nothing beside it.
func TestTargetLocked(t *testing.T) {
	for _, how := range []int{unix.LOCK_EX, unix.LOCK_SH} {
		t.Run(map[int]string{unix.LOCK_EX: "exclusive", unix.LOCK_SH: "shared"}[how], func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f.snap")
			if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := unix.Flock(int(f.Fd()), how); err != nil {
				t.Fatal(err)
			}
			tg, err := OpenTarget(path)
			if err == nil {
				tg.Close()
				t.Fatal("OpenTarget of a locked file succeeded")
			}
			var te *TargetError
			if !errors.Is(err, ErrInUse) || !errors.As(err, &te) || te.Path != path {
				t.Fatalf("err %v; want a TargetError of %s wrapping ErrInUse", err, path)
			}
			if _, serr := os.Stat("/proc/locks"); serr == nil {
				if pid := "process " + strconv.Itoa(os.Getpid()); !strings.Contains(te.Holder, pid) || !strings.Contains(err.Error(), pid) {
					t.Fatalf("err %q, holder %q; want it named %q", err, te.Holder, pid)
				}
			}
			if got := mustRead(t, path); got != "old" {
				t.Fatalf("%s holds %q; want it untouched", path, got)
			}
			if got := dirNames(t, dir); !slices.Equal(got, []string{"f.snap"}) {
				t.Fatalf("left %q; want only f.snap", got)
			}
		})
	}
}

// mknodNull makes a character device like /dev/null at p (as root).
func mknodNull(p string) error {
	err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3)))
	if errors.Is(err, unix.EPERM) {
		return errSkip
	}
	return err
}

// errSkip is a fixture's "cannot be made here" (a device, not as root).
var errSkip = errors.New("fixture needs root")

// TestTargetNotRegular: a path naming a directory or a FIFO is refused
// (ErrNotRegular) without waiting for a FIFO's writer, and left as it was.
func TestTargetNotRegular(t *testing.T) {
	tests := []struct {
		name string
		make func(path string) error
	}{
		{"directory", func(p string) error { return os.Mkdir(p, 0o755) }},
		{"fifo", func(p string) error { return unix.Mkfifo(p, 0o644) }},
		{"device", mknodNull},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f.snap")
			if err := tt.make(path); errors.Is(err, errSkip) {
				t.Skip(err)
			} else if err != nil {
				t.Fatal(err)
			}
			tg, err := OpenTarget(path)
			if err == nil {
				tg.Close()
				t.Fatal("OpenTarget succeeded")
			}
			if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), path) {
				t.Fatalf("err %v; want ErrNotRegular naming %s", err, path)
			}
			if got := dirNames(t, dir); !slices.Equal(got, []string{"f.snap"}) {
				t.Fatalf("left %q; want only f.snap", got)
			}
		})
	}
}

// committedTarget opens a Target of path and commits "one"; Close comes
// with the test's end.
func committedTarget(t *testing.T, path string) *Target {
	t.Helper()
	tg, err := OpenTarget(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	if err := tg.Write(writeString("one")); err != nil {
		t.Fatal(err)
	}
	return tg
}

// holdShared locks path shared, as a machine restored from it does, until
// the returned file is closed (at the test's end at the latest).
func holdShared(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		t.Fatalf("shared lock on a committed snapshot: %v", err)
	}
	return f
}

// TestTargetExchange: the second commit exchanges the file with the
// spare, which then holds the first snapshot; a spare a machine restored
// from still holds is not written over (ErrInUse, the file kept); Close
// removes the spare.
func TestTargetExchange(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.snap")
	tg := committedTarget(t, path)
	// A machine restored from the first snapshot.
	restored := holdShared(t, path)
	if err := tg.Write(writeString("two")); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, path); got != "two" {
		t.Fatalf("after the second commit %s holds %q; want %q", path, got, "two")
	}
	names := dirNames(t, dir)
	if len(names) != 2 {
		t.Fatalf("after two commits: %q; want the file and the spare", names)
	}
	spare := filepath.Join(dir, names[0])
	if got := mustRead(t, spare); got != "one" {
		t.Fatalf("spare %s holds %q; want the first snapshot", spare, got)
	}
	// The third would go over the first, which is held.
	called := false
	err := tg.Write(func(w io.Writer) error { called = true; return writeString("three")(w) })
	if !errors.Is(err, ErrInUse) || called {
		t.Fatalf("third snapshot over a held spare: %v (callback called: %v); want ErrInUse before writing", err, called)
	}
	if got := mustRead(t, path); got != "two" {
		t.Fatalf("a refused snapshot left %s holding %q", path, got)
	}
	restored.Close()
	if err := tg.Write(writeString("four")); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, path); got != "four" {
		t.Fatalf("%s holds %q; want %q", path, got, "four")
	}
	if !tg.Close() {
		t.Fatal("Close reports no commit")
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{"f.snap"}) {
		t.Fatalf("after Close: %q; want only f.snap", got)
	}
}

// TestTargetFailedWrite: a write that fails leaves the file as it was
// (or absent) and, at Close, nothing beside it; after a commit a failed
// write leaves the committed snapshot.
func TestTargetFailedWrite(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name   string
		old    bool
		before int // commits before the failing write
	}{
		{"no file", false, 0},
		{"existing file", true, 0},
		{"after a commit", true, 1},
		{"after an exchange", true, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f.snap")
			want := "old"
			if tt.old {
				if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			tg, err := OpenTarget(path)
			if err != nil {
				t.Fatal(err)
			}
			for i := range tt.before {
				want = fmt.Sprint("snapshot ", i)
				if err := tg.Write(writeString(want)); err != nil {
					t.Fatal(err)
				}
			}
			err = tg.Write(func(w io.Writer) error {
				if _, err := io.WriteString(w, "partial"); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("Write: %v; want the callback's error", err)
			}
			if committed := tg.Close(); committed != (tt.before > 0) {
				t.Fatalf("Close reports committed %v after %d commits", committed, tt.before)
			}
			if !tt.old {
				if got := dirNames(t, dir); len(got) != 0 {
					t.Fatalf("left %q; want nothing", got)
				}
				return
			}
			if got := mustRead(t, path); got != want {
				t.Fatalf("%s holds %q; want %q", path, got, want)
			}
			if got := dirNames(t, dir); !slices.Equal(got, []string{"f.snap"}) {
				t.Fatalf("left %q; want only f.snap", got)
			}
		})
	}
}

// TestTargetFailedWriteFreesSpace: a write that fails part way leaves
// no byte of it in the temporaries while the Target stays open (a full
// disk stays full until Close otherwise), and the next write commits.
func TestTargetFailedWriteFreesSpace(t *testing.T) {
	boom := errors.New("boom")
	for _, before := range []int{0, 1, 2} { // commits before: none, the first (rename), an exchange
		t.Run(fmt.Sprint(before, " commits before"), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f.snap")
			tg, err := OpenTarget(path)
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			for i := range before {
				if err := tg.Write(writeString(fmt.Sprint("snapshot ", i))); err != nil {
					t.Fatal(err)
				}
			}
			err = tg.Write(func(w io.Writer) error {
				if _, err := w.Write(make([]byte, 256<<10)); err != nil {
					return err
				}
				if _, err := w.(io.Seeker).Seek(1<<20, io.SeekCurrent); err != nil {
					return err
				}
				if _, err := io.WriteString(w, "partial"); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("Write: %v; want the callback's error", err)
			}
			for _, name := range dirNames(t, dir) {
				if name == "f.snap" {
					continue
				}
				var st unix.Stat_t
				if err := unix.Stat(filepath.Join(dir, name), &st); err != nil {
					t.Fatal(err)
				}
				if st.Size != 0 || st.Blocks != 0 {
					t.Errorf("after a failed write, temporary %s holds %d bytes in %d blocks; want none", name, st.Size, st.Blocks)
				}
			}
			if err := tg.Write(writeString("after")); err != nil {
				t.Fatalf("the write after a failed one: %v", err)
			}
			if got := mustRead(t, path); got != "after" {
				t.Fatalf("%s holds %q; want %q", path, got, "after")
			}
		})
	}
}

// TestTargetAllowUser: a directory the user may not write in is refused
// (ErrDirPermission), one it owns is not, and the temporaries become the
// user's.
func TestTargetAllowUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	const uid, gid = 65534, 65534
	for _, owned := range []bool{false, true} {
		t.Run(map[bool]string{false: "root's directory", true: "the user's"}[owned], func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "d")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if owned {
				if err := os.Chown(dir, uid, gid); err != nil {
					t.Fatal(err)
				}
			}
			tg, err := OpenTarget(filepath.Join(dir, "f.snap"))
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			err = tg.AllowUser(uid, gid)
			if owned != (err == nil) || (!owned && !errors.Is(err, ErrDirPermission)) {
				t.Fatalf("AllowUser: %v; want ErrDirPermission only in root's directory", err)
			}
			if owned {
				for _, name := range dirNames(t, dir) {
					var st unix.Stat_t
					if err := unix.Stat(filepath.Join(dir, name), &st); err != nil || st.Uid != uid || st.Gid != gid {
						t.Fatalf("%s: %v, owner %d:%d; want %d:%d", name, err, st.Uid, st.Gid, uid, gid)
					}
				}
			}
		})
	}
}

// deadPID returns the PID of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if !errors.Is(unix.Kill(pid, 0), unix.ESRCH) {
		t.Skipf("PID %d of an exited process is in use again", pid)
	}
	return pid
}

// TestTargetStale: OpenTarget removes the temporaries of a writer whose
// process is gone and which no one holds locked, and keeps every other
// file: a live PID's (PID 1, as a jailed writer's names), a dead PID's
// still locked (a machine restored from it), names that are not its
// temporaries, and what is not a regular file.
func TestTargetStale(t *testing.T) {
	dead := deadPID(t)
	tmp := func(pid int, n string) string { return fmt.Sprintf(".f.snap.%d.%s.tmp", pid, n) }
	tests := []struct {
		name string
		file string
		make func(path string) error
		lock int // flock the test holds on it, 0 for none
		kept bool
	}{
		{"dead writer's", tmp(dead, "123"), nil, 0, false},
		{"dead writer's, locked shared", tmp(dead, "124"), nil, unix.LOCK_SH, true},
		{"dead writer's, locked exclusive", tmp(dead, "125"), nil, unix.LOCK_EX, true},
		{"PID 1's", tmp(1, "126"), nil, 0, true},
		{"live process's", tmp(os.Getppid(), "127"), nil, 0, true},
		{"this process's", tmp(os.Getpid(), "128"), nil, 0, true},
		{"without a PID", ".f.snap.129.tmp", nil, 0, true},
		{"another file's", fmt.Sprintf(".g.snap.%d.130.tmp", dead), nil, 0, true},
		{"not a number", fmt.Sprintf(".f.snap.%d.x1.tmp", dead), nil, 0, true},
		{"a directory", tmp(dead, "131"), func(p string) error { return os.Mkdir(p, 0o755) }, 0, true},
		{"a symlink", tmp(dead, "132"), func(p string) error { return os.Symlink("f.snap", p) }, 0, true},
		{"a FIFO", tmp(dead, "133"), func(p string) error { return unix.Mkfifo(p, 0o644) }, 0, true},
		{"a device", tmp(dead, "134"), mknodNull, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f.snap")
			if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			stale := filepath.Join(dir, tt.file)
			mk := tt.make
			if mk == nil {
				mk = func(p string) error { return os.WriteFile(p, []byte("stale"), 0o644) }
			}
			if err := mk(stale); errors.Is(err, errSkip) {
				t.Skip(err)
			} else if err != nil {
				t.Fatal(err)
			}
			if tt.lock != 0 {
				f, err := os.Open(stale)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if err := unix.Flock(int(f.Fd()), tt.lock); err != nil {
					t.Fatal(err)
				}
			}
			tg, err := OpenTarget(path)
			if err != nil {
				t.Fatal(err)
			}
			_, err = os.Lstat(stale)
			tg.Close()
			if kept := err == nil; kept != tt.kept {
				t.Fatalf("%s after OpenTarget: %v; want kept %v", tt.file, err, tt.kept)
			}
			want := []string{"f.snap"}
			if tt.kept {
				want = append(want, tt.file)
				slices.Sort(want)
			}
			if got := dirNames(t, dir); !slices.Equal(got, want) {
				t.Fatalf("after Close: %q; want %q", got, want)
			}
		})
	}
}

// TestTargetLiveSpareKept: a live writer's temporaries stay locked for its
// whole life, before and after commits, so that a writer that cannot see
// its process (in another PID namespace) leaves them alone and the live
// writer can go on exchanging.
func TestTargetLiveSpareKept(t *testing.T) {
	defer func(f func(int) bool) { processGone = f }(processGone)
	processGone = func(int) bool { return true } // as from another PID namespace
	for commits := range 4 {
		t.Run(fmt.Sprint(commits, " commits"), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f.snap")
			tg, err := OpenTarget(path)
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			for i := range commits {
				if err := tg.Write(writeString(fmt.Sprint(i))); err != nil {
					t.Fatal(err)
				}
			}
			before := dirNames(t, dir)
			d, err := os.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			other := &Target{names: &DirRenamer{dir: d}, name: "f.snap"}
			other.removeStale()
			if got := dirNames(t, dir); !slices.Equal(got, before) {
				t.Fatalf("another writer's cleanup left %q of %q", got, before)
			}
			if err := tg.Write(writeString("last")); err != nil {
				t.Fatalf("a commit after another writer's cleanup: %v", err)
			}
			if got := mustRead(t, path); got != "last" {
				t.Fatalf("%s holds %q", path, got)
			}
		})
	}
}

// TestTargetCreateRace: a temporary another writer's cleanup removes
// between its creation and its lock (that writer, in another PID
// namespace, sees no process of its PID) is made again, and the Target
// works.
func TestTargetCreateRace(t *testing.T) {
	defer func(f func(int) bool) { processGone = f }(processGone)
	processGone = func(int) bool { return true }
	defer func() { afterCreate = nil }()
	dir := t.TempDir()
	path := filepath.Join(dir, "f.snap")
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	removed := 0
	afterCreate = func(name string) {
		if removed < 2 {
			(&Target{names: &DirRenamer{dir: d}, name: "f.snap"}).removeStale()
			if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
				t.Fatalf("the cleanup kept %s, unlocked", name)
			}
			removed++
		}
	}
	tg, err := OpenTarget(path)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	afterCreate = nil
	for _, s := range []string{"one", "two"} {
		if err := tg.Write(writeString(s)); err != nil {
			t.Fatalf("writing %q: %v", s, err)
		}
	}
	if got := mustRead(t, path); got != "two" {
		t.Fatalf("%s holds %q", path, got)
	}
	if !tg.Close() {
		t.Fatal("Close reports no commit")
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{"f.snap"}) {
		t.Fatalf("after Close: %q; want only f.snap", got)
	}
}

// TestTargetSecondWriterRefused: while a Target has committed a snapshot
// it may write over again, another Target of the same file is refused
// (ErrInUse): the two would replace each other's snapshots.
func TestTargetSecondWriterRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.snap")
	committedTarget(t, path)
	if other, err := OpenTarget(path); !errors.Is(err, ErrInUse) {
		if err == nil {
			other.Close()
		}
		t.Fatalf("a second Target of a file another one writes: %v; want ErrInUse", err)
	}
}

// TestTargetRefusedKeepsSpareLocked: a snapshot refused because a machine
// restored from the spare holds it leaves the spare locked by the writer
// (a failed flock conversion drops the lock it had), so that another
// writer's cleanup keeps it once the machine is gone.
func TestTargetRefusedKeepsSpareLocked(t *testing.T) {
	defer func(f func(int) bool) { processGone = f }(processGone)
	processGone = func(int) bool { return true } // as from another PID namespace
	dir := t.TempDir()
	path := filepath.Join(dir, "f.snap")
	tg := committedTarget(t, path)
	restored := holdShared(t, path)
	if err := tg.Write(writeString("two")); err != nil {
		t.Fatal(err)
	}
	if err := tg.Write(writeString("three")); !errors.Is(err, ErrInUse) {
		t.Fatalf("over a held spare: %v; want ErrInUse", err)
	}
	restored.Close()
	before := dirNames(t, dir)
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	(&Target{names: &DirRenamer{dir: d}, name: "f.snap"}).removeStale()
	if got := dirNames(t, dir); !slices.Equal(got, before) {
		t.Fatalf("another writer's cleanup left %q of %q", got, before)
	}
	if err := tg.Write(writeString("four")); err != nil {
		t.Fatal(err)
	}
}

// TestTargetWriterHoles: a snapshot written through a TargetWriter by the
// package's Write reads back, its zero pages holes the writer could seek
// over.
func TestTargetWriterHoles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.snap")
	tg, err := OpenTarget(path)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	mem := make([]byte, 64*PageSize)
	mem[5*PageSize] = 1
	w := tg.NewWriter()
	_, err = Write(w, NIC{}, []byte("{}"), mem)
	if err := w.Finish(err); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.VerifyMemory(); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	if used := st.Blocks * 512; used >= int64(len(mem)) {
		t.Fatalf("%s uses %d bytes for %d of memory: the zero pages were written, not skipped", path, used, len(mem))
	}
}

// TestTargetSymlinkOwner: a symlink in a sticky directory others may
// write to (as /tmp) is followed only when this process's user or the
// directory's owner owns it, as fs.protected_symlinks has the kernel
// do: another user's link there is refused (ErrUnsafeSymlink) and the
// file it names left alone. A dangling link is refused
// (ErrDanglingSymlink) naming what it points to.
func TestTargetSymlinkOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the links are given to other users")
	}
	const other = 4242
	tests := []struct {
		name     string
		sticky   bool // the link's directory is 01777
		dirOwner int  // its owner
		linkUID  int  // the link's owner
		dangling bool
		want     error // nil: the snapshot replaces the file linked to
	}{
		{"own link in /tmp-like dir", true, 0, 0, false, nil},
		{"planted link in /tmp-like dir", true, 0, other, false, ErrUnsafeSymlink},
		{"link of the dir's owner", true, other, other, false, nil},
		{"another's link in a private dir", false, 0, other, false, nil},
		{"own dangling link", true, 0, 0, true, ErrDanglingSymlink},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			link, victim, dir := protlinktest.Plant(t, protlinktest.Link{Sticky: tt.sticky, DirOwner: tt.dirOwner, LinkUID: tt.linkUID, Dangling: tt.dangling, Name: "s.snap"})
			tg, err := OpenTarget(link)
			if tt.want != nil {
				if err == nil {
					tg.Close()
				}
				if !errors.Is(err, tt.want) || !strings.Contains(fmt.Sprint(err), link) {
					t.Fatalf("OpenTarget: %v; want %v naming %s", err, tt.want, link)
				}
				if !tt.dangling {
					if got := mustRead(t, victim); got != "precious" {
						t.Fatalf("%s holds %q", victim, got)
					}
				}
				if got := dirNames(t, dir); !slices.Equal(got, []string{"s.snap"}) {
					t.Fatalf("left %q beside the link; want only it", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := tg.Write(writeString("new")); err != nil {
				t.Fatal(err)
			}
			tg.Close()
			if got := mustRead(t, victim); got != "new" {
				t.Fatalf("%s holds %q; want the snapshot", victim, got)
			}
		})
	}
}

// countingRenamer counts the calls a Target makes of its Renamer.
type countingRenamer struct {
	r                        *DirRenamer
	checks, commits, discard int
}

func (c *countingRenamer) Check() error   { c.checks++; return c.r.Check() }
func (c *countingRenamer) Commit() error  { c.commits++; return c.r.Commit() }
func (c *countingRenamer) Discard() error { c.discard++; return c.r.Discard() }

// TestTargetUseRenamer: a Target handed to another Renamer (as to a
// process that holds its directory) commits and removes through it
// only, having closed its own descriptor of the directory, and the
// results are those of a Target that renames itself.
func TestTargetUseRenamer(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.snap")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	tg, err := OpenTarget(path)
	if err != nil {
		t.Fatal(err)
	}
	d, files, ok := tg.Names()
	if !ok || files.File != "f.snap" || d.Name() != dir {
		t.Fatalf("Names: %v %+v %v", d, files, ok)
	}
	fd, err := unix.Dup(int(d.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	ren := &countingRenamer{r: NewDirRenamer(os.NewFile(uintptr(fd), dir), files)}
	defer ren.r.Close()
	tg.UseRenamer(ren)
	if _, _, ok := tg.Names(); ok {
		t.Fatal("Names after UseRenamer: still held")
	}
	for _, s := range []string{"one", "two", "three"} {
		if err := tg.Write(writeString(s)); err != nil {
			t.Fatalf("writing %q: %v", s, err)
		}
		if got := mustRead(t, path); got != s {
			t.Fatalf("%s holds %q; want %q", path, got, s)
		}
	}
	if !tg.Close() {
		t.Fatal("Close reports no commit")
	}
	if ren.checks != 3 || ren.commits != 3 || ren.discard != 1 {
		t.Fatalf("%d checks, %d commits, %d discards through the renamer; want 3, 3, 1", ren.checks, ren.commits, ren.discard)
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{"f.snap"}) {
		t.Fatalf("left %q", got)
	}
}

// TestTargetDirSymlinkOwner: a symlink among the directories of the path,
// not only at its end, is held to fs.protected_symlinks' rule: another
// user's link in a sticky directory others may write to (tmp/sub ->
// victimdir) is refused (ErrUnsafeSymlink), naming it, and nothing is
// written in the directory it names, also when the path is reached through
// a link of the user's own; the user's own link there, or the directory
// owner's, is followed. Before, only the path's last component was
// checked, and with fs.protected_symlinks=0 a root snapshot wrote
// victimdir/x.snap.
func TestTargetDirSymlinkOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the links are given to other users")
	}
	const other = 4242
	tests := []struct {
		name     string
		dirOwner int  // the sticky directory's owner
		linkUID  int  // the owner of its link sub -> victimdir
		viaLink  bool // the path given is an own link to tmp/sub/x.snap
		refused  bool
	}{
		{"planted directory link", 0, other, false, true},
		{"planted directory link behind an own link", 0, other, true, true},
		{"own directory link", 0, 0, false, false},
		{"directory owner's link", other, other, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			top := t.TempDir()
			victimDir, sticky := filepath.Join(top, "victimdir"), filepath.Join(top, "tmp")
			for _, d := range []string{victimDir, sticky} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			victim := filepath.Join(victimDir, "x.snap")
			if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(sticky, 0o777|os.ModeSticky); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(sticky, tt.dirOwner, tt.dirOwner); err != nil {
				t.Fatal(err)
			}
			sub := filepath.Join(sticky, "sub")
			if err := os.Symlink(victimDir, sub); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(sub, tt.linkUID, tt.linkUID); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(sub, "x.snap")
			if tt.viaLink {
				own := filepath.Join(top, "own.snap")
				if err := os.Symlink(path, own); err != nil {
					t.Fatal(err)
				}
				path = own
			}
			tg, err := OpenTarget(path)
			if tt.refused {
				if err == nil {
					tg.Close()
				}
				if !errors.Is(err, ErrUnsafeSymlink) || !strings.Contains(fmt.Sprint(err), sub) {
					t.Fatalf("OpenTarget(%s): %v; want %v naming %s", path, err, ErrUnsafeSymlink, sub)
				}
				if got := mustRead(t, victim); got != "precious" {
					t.Fatalf("%s holds %q", victim, got)
				}
				if got := dirNames(t, victimDir); !slices.Equal(got, []string{"x.snap"}) {
					t.Fatalf("left %q in %s; want only x.snap", got, victimDir)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := tg.Write(writeString("new")); err != nil {
				t.Fatal(err)
			}
			tg.Close()
			if got := mustRead(t, victim); got != "new" {
				t.Fatalf("%s holds %q; want the snapshot", victim, got)
			}
		})
	}
}

// TestTargetDirSwapRace: a link another user planted in a sticky
// directory others may write to is never followed, even while its name
// and that of a directory of theirs are swapped (renameat2
// RENAME_EXCHANGE) as OpenTarget resolves the path: no Target gets the
// link's directory, and nothing is created there. Resolving a path by
// name after checking it once let 1 in 60 OpenTargets write there.
func TestTargetDirSwapRace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the link to another user")
	}
	top := t.TempDir()
	victim := filepath.Join(top, "victim")
	race := filepath.Join(top, "tmp")
	sub := filepath.Join(race, "sub")
	lnk := filepath.Join(race, "lnk")
	for _, err := range []error{
		os.Mkdir(victim, 0o755),
		os.Mkdir(race, 0o755),
		os.Chmod(race, 0o777|os.ModeSticky),
		os.Mkdir(sub, 0o755),
		os.Chown(sub, 65534, 65534),
		os.Symlink(victim, lnk),
		os.Lchown(lnk, 65534, 65534),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	var vst unix.Stat_t
	if err := unix.Stat(victim, &vst); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = unix.Renameat2(unix.AT_FDCWD, sub, unix.AT_FDCWD, lnk, unix.RENAME_EXCHANGE)
		}
	}()
	hits, opened := 0, 0
	for range 2000 {
		tg, err := OpenTarget(filepath.Join(sub, "f.snap"))
		if err != nil {
			continue
		}
		opened++
		d, _, _ := tg.Names()
		var st unix.Stat_t
		if err := unix.Fstat(int(d.Fd()), &st); err == nil && st.Dev == vst.Dev && st.Ino == vst.Ino {
			hits++
		}
		tg.Close()
	}
	close(stop)
	<-done
	if names := dirNames(t, victim); hits != 0 || len(names) != 0 {
		t.Fatalf("%d of %d Targets in the link's directory; %d files left there: %q", hits, opened, len(names), names[:min(len(names), 3)])
	}
	t.Logf("%d of 2000 opened", opened)
}

// TestTargetResolvePaths: the descriptor walk finds the file the kernel
// would through relative links, links to links and a link's "..", and
// refuses a loop of links (ELOOP) and a path through a file.
func TestTargetResolvePaths(t *testing.T) {
	top := t.TempDir()
	real := filepath.Join(top, "real")
	for _, err := range []error{
		os.MkdirAll(filepath.Join(real, "deep"), 0o755),
		os.Symlink("real/deep", filepath.Join(top, "dl")),     // a directory link, relative
		os.Symlink("../f.snap", filepath.Join(real, "up")),    // a file link through ".."
		os.Symlink("up", filepath.Join(real, "chain")),        // a link to a link
		os.Symlink("loop2", filepath.Join(top, "loop1")),      // a loop
		os.Symlink("loop1", filepath.Join(top, "loop2")),      //
		os.WriteFile(filepath.Join(top, "plain"), nil, 0o644), // not a directory
		os.WriteFile(filepath.Join(top, "f.snap"), nil, 0o644),
		os.Symlink(filepath.Join(real, "up"), filepath.Join(top, "abs")), // absolute
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		path    string
		dir     string // the Target's directory, or "" for an error
		file    string
		op      string // the error's Op
		wantErr error
	}{
		{"plain", filepath.Join(real, "f.snap"), real, "f.snap", "", nil},
		{"through a directory link", filepath.Join(top, "dl", "f.snap"), filepath.Join(real, "deep"), "f.snap", "", nil},
		{"directory link's ..", top + "/dl/../f.snap", real, "f.snap", "", nil},
		{"link through ..", filepath.Join(real, "up"), top, "f.snap", "", nil},
		{"link to a link", filepath.Join(real, "chain"), top, "f.snap", "", nil},
		{"absolute link", filepath.Join(top, "abs"), top, "f.snap", "", nil},
		{"loop", filepath.Join(top, "loop1"), "", "", "resolve symlink", unix.ELOOP},
		{"loop among directories", filepath.Join(top, "loop1", "f.snap"), "", "", "resolve symlink", unix.ELOOP},
		{"through a file", filepath.Join(top, "plain", "f.snap"), "", "", "its directory", unix.ENOTDIR},
		{"no directory", filepath.Join(top, "none", "f.snap"), "", "", "its directory", unix.ENOENT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg, err := OpenTarget(tt.path)
			if tt.wantErr != nil {
				var te *TargetError
				if !errors.As(err, &te) || te.Op != tt.op || !errors.Is(err, tt.wantErr) {
					t.Fatalf("OpenTarget(%s): %v; want %s: %v", tt.path, err, tt.op, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			d, files, _ := tg.Names()
			file := files.File
			var got, want unix.Stat_t
			if err := unix.Fstat(int(d.Fd()), &got); err != nil {
				t.Fatal(err)
			}
			if err := unix.Stat(tt.dir, &want); err != nil {
				t.Fatal(err)
			}
			if got.Dev != want.Dev || got.Ino != want.Ino || file != tt.file || tg.DirName() != tt.dir {
				t.Fatalf("OpenTarget(%s): directory %s (inode %d), file %s; want %s (inode %d), %s", tt.path, tg.DirName(), got.Ino, file, tt.dir, want.Ino, tt.file)
			}
		})
	}
}
