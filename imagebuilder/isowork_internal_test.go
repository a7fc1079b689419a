package imagebuilder

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/backend"
	"github.com/smolvmm/smolvmm/internal/staledir"
	"golang.org/x/sys/unix"
)

// snoopStorage is a data image's storage that calls snoop once, at the
// first write made through it.
type snoopStorage struct {
	backend.Storage
	snoop func()
}

func (s snoopStorage) Writable() (backend.WritableFile, error) {
	w, err := s.Storage.Writable()
	return snoopWriter{w, s.snoop}, err
}

type snoopWriter struct {
	backend.WritableFile
	snoop func()
}

func (w snoopWriter) WriteAt(p []byte, off int64) (int, error) {
	w.snoop()
	return w.WritableFile.WriteAt(p, off)
}

// TestISOWorkTreePrivate: the ISO 9660 work tree, a copy of the data
// directory made 0755 and 0644 throughout, was a 0755 directory of
// os.TempDir(), so any user could read a 0600 file of the directory
// while the image was built. Each entry the build makes in the temporary
// directory is now closed to other users, the copy is there, and nothing
// is left when the build ends.
func TestISOWorkTreePrivate(t *testing.T) {
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "secret.txt"), []byte("hush"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "data.iso")
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	snooped := false
	old := dataStorage
	dataStorage = func(f fs.File) backend.Storage {
		return snoopStorage{old(f), func() {
			if snooped {
				return
			}
			snooped = true
			es, err := os.ReadDir(tmp)
			if err != nil {
				t.Fatal(err)
			}
			copied := false
			for _, e := range es {
				st, err := os.Lstat(filepath.Join(tmp, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				if st.Mode().Perm()&0o077 != 0 {
					t.Errorf("%s in the temporary directory is %v: other users reach the copy", e.Name(), st.Mode())
				}
				if b, err := os.ReadFile(filepath.Join(tmp, e.Name(), isoWorkRoot, "secret.txt")); err == nil && string(b) == "hush" {
					copied = true
				}
			}
			if !copied {
				t.Errorf("no copy of secret.txt found in %s while the image was written: %v", tmp, es)
			}
		}}
	}
	defer func() { dataStorage = old }()
	if err := BuildDataImage(src, out, DataISO9660); err != nil {
		t.Fatal(err)
	}
	if !snooped {
		t.Fatal("the image was never written")
	}
	if es, _ := os.ReadDir(tmp); len(es) != 0 {
		t.Errorf("left in the temporary directory: %v", es)
	}
}

// TestRemoveDeadISOWork: a build killed left its work tree, a copy of the
// data directory, in os.TempDir() for good. The next ISO 9660 build now
// removes the trees whose lock no process holds, and only this user's:
// a live build's tree, another user's, and one without a lock (an older
// smolvmm's, or one being made) stay.
func TestRemoveDeadISOWork(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	mk := func(name string, mode os.FileMode, lock bool) string {
		dir := filepath.Join(tmp, name)
		if err := os.MkdirAll(filepath.Join(dir, isoWorkRoot), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, isoWorkRoot, "secret.txt"), []byte("hush"), 0o644); err != nil {
			t.Fatal(err)
		}
		if lock {
			if err := os.WriteFile(filepath.Join(dir, staledir.LockName), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	dead := mk(isoWorkPrefix+"1", 0o700, true)
	live := mk(isoWorkPrefix+"2", 0o700, true)
	held, err := os.Open(filepath.Join(live, staledir.LockName))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if err := unix.Flock(int(held.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	keep := []string{
		live,
		mk(isoWorkPrefix+"3", 0o700, false),
		mk(isoWorkPrefix+"4", 0o755, true),
		mk("other-dead", 0o700, true),
	}
	if os.Geteuid() == 0 {
		other := mk(isoWorkPrefix+"5", 0o700, true)
		if err := os.Chown(other, 4242, 4242); err != nil {
			t.Fatal(err)
		}
		keep = append(keep, other)
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := BuildDataImage(src, filepath.Join(t.TempDir(), "data.iso"), DataISO9660); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(dead); err == nil {
		t.Errorf("%s, a dead build's tree, is left", dead)
	}
	for _, dir := range keep {
		if _, err := os.Stat(filepath.Join(dir, isoWorkRoot, "secret.txt")); err != nil {
			t.Errorf("%s was removed: %v", strings.TrimPrefix(dir, tmp), err)
		}
	}
}
