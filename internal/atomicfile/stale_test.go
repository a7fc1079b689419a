package atomicfile

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/internal/testproc"
	"golang.org/x/sys/unix"
)

// TestMain runs the test binary as slowWriter when startSlowWriter
// starts it, else the tests.
func TestMain(m *testing.M) {
	if target := os.Getenv("ATOMICFILE_SLOW_TARGET"); target != "" {
		os.Exit(slowWriter(target))
	}
	os.Exit(m.Run())
}

// slowWriter writes target through Write from its standard input, which
// the test never closes, once it has said on standard output which
// temporary it writes.
func slowWriter(target string) int {
	err := Write(target, 0o644, func(f *os.File) error {
		if _, err := f.WriteString("partial"); err != nil {
			return err
		}
		os.Stdout.WriteString(f.Name() + "\n")
		_, err := io.Copy(f, os.Stdin)
		return err
	})
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 1
	}
	return 0
}

// startSlowWriter starts a process writing target through Write that
// does not end by itself, and returns it and its temporary's name, once
// that temporary is being written.
func startSlowWriter(t *testing.T, target string) (*exec.Cmd, string) {
	t.Helper()
	return testproc.StartHolder(t, "ATOMICFILE_SLOW_TARGET="+target)
}

// A run killed while it wrote (SIGKILL, the OOM killer) left its
// temporary beside the target for good (a killed up left a 68 MB
// .rescue.img.tmp-N): the next Write of the same target removes it, and
// keeps what is not such a temporary of a run gone: one being written
// now, locked; another target's; a name of another pattern; a symbolic
// link or a directory of the pattern; another user's.
func TestWriteRemovesKilledRunsTemporaries(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "img")
	if err := os.WriteFile(target, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The live one first: a writer starting removes a killed one's.
	_, live := startSlowWriter(t, target)
	killed, stale := startSlowWriter(t, target)
	if err := killed.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed.Wait()
	probe, err := os.Open(live)
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	if err := unix.Flock(int(probe.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != unix.EWOULDBLOCK {
		t.Fatalf("the live writer's temporary is not locked (flock: %v)", err)
	}

	keep := []string{"img", filepath.Base(live)}
	for _, tt := range []struct {
		name string
		make func(path string) error
	}{
		{".other.tmp-17", func(p string) error { return os.WriteFile(p, nil, 0o600) }},
		{".img.tmp-17x", func(p string) error { return os.WriteFile(p, nil, 0o600) }},
		{".img.tmp-", func(p string) error { return os.WriteFile(p, nil, 0o600) }},
		{".img.tmp-18", func(p string) error { return os.Symlink(target, p) }},
		{".img.tmp-19", func(p string) error { return os.Mkdir(p, 0o700) }},
	} {
		if err := tt.make(filepath.Join(dir, tt.name)); err != nil {
			t.Fatal(err)
		}
		keep = append(keep, tt.name)
	}
	if os.Getuid() == 0 {
		other := filepath.Join(dir, ".img.tmp-20")
		if err := os.WriteFile(other, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(other, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		keep = append(keep, filepath.Base(other))
	}
	if _, err := os.Lstat(stale); err != nil {
		t.Fatalf("the killed writer left no temporary: %v", err)
	}

	if err := WriteFile(target, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(target); string(b) != "new" {
		t.Errorf("target holds %q, want %q", b, "new")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	slices.Sort(got)
	slices.Sort(keep)
	if !slices.Equal(got, keep) {
		t.Errorf("after the next Write the directory holds %q, want %q (%s removed)", got, keep, filepath.Base(stale))
	}
}

// A temporary that another run's removeStaleTemps removed between its
// creation and its lock is not written: createTemp makes another.
func TestLockTempSeesRemoval(t *testing.T) {
	for _, removed := range []bool{false, true} {
		f, err := os.Create(filepath.Join(t.TempDir(), ".img.tmp-1"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if removed {
			os.Remove(f.Name())
		}
		lock, kept, err := lockTemp(f)
		if err != nil {
			t.Fatal(err)
		}
		if kept == removed {
			t.Errorf("removed %v: lockTemp says kept %v", removed, kept)
		}
		if kept && lock != nil {
			lock.Close()
		}
	}
}
