package staledir

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMakeInFailureRemoves: a MakeIn that fails after making its
// directory removes it, and its lock.new, even for want of a descriptor
// (EMFILE): it removed nothing (the deferred RemoveAll was given the
// "" its error return had set), and left an empty directory, or one
// holding lock.new, that no RemoveDead took.
func TestMakeInFailureRemoves(t *testing.T) {
	for _, tt := range []struct {
		name string
		fail func(t *testing.T) (undo func())
	}{
		{"no descriptor for lock.new", func(t *testing.T) func() {
			// The lowest free number becomes the limit: the next
			// open fails with EMFILE.
			f, err := os.Open(os.DevNull)
			if err != nil {
				t.Fatal(err)
			}
			next := uint64(f.Fd())
			f.Close()
			var saved unix.Rlimit
			if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &saved); err != nil {
				t.Fatal(err)
			}
			low := saved
			low.Cur = next
			if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
				t.Fatal(err)
			}
			return func() { unix.Setrlimit(unix.RLIMIT_NOFILE, &saved) }
		}},
		{"rename refused", func(*testing.T) func() {
			saved := rename
			rename = func(string, string) error { return unix.EIO }
			return func() { rename = saved }
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			undo := tt.fail(t)
			dir, lock, err := MakeIn(tmp, "p-*", []byte("note"))
			undo()
			if err == nil {
				lock.Close()
				t.Fatalf("MakeIn made %s, want its failure", dir)
			}
			es, rerr := os.ReadDir(tmp)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if len(es) != 0 {
				t.Errorf("MakeIn failed (%v) and left %s", err, es[0].Name())
			}
		})
	}
}

// TestRemoveDeadUnfinished: a directory without its lock in place, left
// by a maker that died before renaming lock.new into place, is removed
// once untouched for UnfinishedAge when its lock.new is free, or when
// it is empty; one younger (a live maker may be between its mkdir and
// its open, or its open and its flock), one whose lock.new is locked,
// and one holding something else are kept.
func TestRemoveDeadUnfinished(t *testing.T) {
	old := time.Now().Add(-UnfinishedAge - time.Second)
	tests := []struct {
		name string
		make func(t *testing.T, dir string) // dir exists, empty
		age  time.Time                      // set on dir and its entries; zero: now
		kept bool
	}{
		{"lock.new free, old", writeNew, old, false},
		{"lock.new free, young", writeNew, time.Time{}, true},
		{"lock.new held, old", func(t *testing.T, dir string) {
			writeNew(t, dir)
			f, err := os.Open(filepath.Join(dir, LockName+".new"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
				t.Fatal(err)
			}
		}, old, true},
		{"lock.new a symlink, old", func(t *testing.T, dir string) {
			target := filepath.Join(t.TempDir(), "file")
			if err := os.WriteFile(target, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, filepath.Join(dir, LockName+".new")); err != nil {
				t.Fatal(err)
			}
		}, old, true},
		{"empty, old", func(*testing.T, string) {}, old, false},
		{"empty, young", func(*testing.T, string) {}, time.Time{}, true},
		{"another file, old", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "data"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, old, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			dir := filepath.Join(tmp, "p-42")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			tt.make(t, dir)
			if !tt.age.IsZero() {
				es, err := os.ReadDir(dir)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range es {
					p := filepath.Join(dir, e.Name())
					if err := unix.Lutimes(p, []unix.Timeval{unix.NsecToTimeval(tt.age.UnixNano()), unix.NsecToTimeval(tt.age.UnixNano())}); err != nil {
						t.Fatal(err)
					}
				}
				if err := os.Chtimes(dir, tt.age, tt.age); err != nil {
					t.Fatal(err)
				}
			}
			RemoveDeadIn(tmp, "p-", 0o077, func(string, []byte) { t.Error("before called for a directory without its lock") })
			_, err := os.Lstat(dir)
			if kept := err == nil; kept != tt.kept {
				t.Errorf("kept %v, want %v (%v)", kept, tt.kept, err)
			}
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
		})
	}
}

// TestRemoveDeadMakingMeanwhile: RemoveDead run while MakeIn makes
// directories of its prefix never removes one (each was young and
// unlocked between its mkdir and its flock) nor makes one fail.
func TestRemoveDeadMakingMeanwhile(t *testing.T) {
	tmp := t.TempDir()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				RemoveDeadIn(tmp, "p-", 0o077, nil)
			}
		}
	}()
	defer func() { close(stop); <-done }()
	for range 300 {
		dir, lock, err := MakeIn(tmp, "p-*", []byte("note"))
		if err != nil {
			t.Fatalf("MakeIn: %v", err)
		}
		if b, err := os.ReadFile(filepath.Join(dir, LockName)); err != nil || string(b) != "note" {
			t.Fatalf("%s's lock holds %q (%v), want %q", dir, b, err, "note")
		}
		os.RemoveAll(dir)
		lock.Close()
	}
}

// writeNew writes dir's lock.new, as MakeIn does before it locks it.
func writeNew(t *testing.T, dir string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, LockName+".new"), []byte("note"), 0o600); err != nil {
		t.Fatal(err)
	}
}
