package imagebuilder

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/service"
)

// TestMergeStageChanged changes the staging tree while mergeStage reads
// it back, between its look at an entry and its read, as a process a
// postinst script left running (as nobody) could: a file or directory
// swapped for a symlink out of the staging root or for a FIFO. Each must
// be refused naming the entry; nothing from outside may reach the tree,
// and nothing may block.
func TestMergeStageChanged(t *testing.T) {
	tests := []struct {
		name, entry string // entry: the staged path changed
		change      func(hp, outside string) error
		want        []string
	}{
		{"file became a symlink out", "etc/motd", func(hp, outside string) error {
			tmp := hp + ".tmp"
			if err := os.Symlink(filepath.Join(outside, "secret"), tmp); err != nil {
				return err
			}
			return os.Rename(tmp, hp)
		}, []string{"/etc/motd", "changed after the postinst scripts ended", "a symlink"}},
		{"file became a FIFO", "etc/motd", func(hp, _ string) error {
			if err := os.Remove(hp); err != nil {
				return err
			}
			return syscall.Mkfifo(hp, 0o644)
		}, []string{"/etc/motd", "changed after the postinst scripts ended", "a FIFO"}},
		{"directory became a symlink out", "var", func(hp, outside string) error {
			if err := os.RemoveAll(hp); err != nil {
				return err
			}
			return os.Symlink(outside, hp)
		}, []string{"/var", "changed after the postinst scripts ended", "a symlink"}},
		{"directory became a FIFO", "var", func(hp, _ string) error {
			if err := os.RemoveAll(hp); err != nil {
				return err
			}
			return syscall.Mkfifo(hp, 0o644)
		}, []string{"/var", "changed after the postinst scripts ended", "a FIFO"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			stage, outside := filepath.Join(base, "root"), filepath.Join(base, "outside")
			for _, d := range []string{"etc", "var/db"} {
				if err := os.MkdirAll(filepath.Join(stage, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for p, s := range map[string]string{
				filepath.Join(stage, "etc/motd"):   "hello\n",
				filepath.Join(stage, "var/db/x"):   "x\n",
				filepath.Join(outside, "secret"):   secretText,
				filepath.Join(outside, "db/x"):     secretText,
				filepath.Join(outside, "db/other"): secretText,
			} {
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			afterStageLstat = func(p string) {
				if p == tt.entry {
					if err := tt.change(filepath.Join(stage, filepath.FromSlash(p)), outside); err != nil {
						t.Error(err)
					}
				}
			}
			defer func() { afterStageLstat = nil }()
			root, err := mergeStage(context.Background(), fstree.New(), stage, "", nil, stageClock{})
			if root != nil {
				tr := fstree.New()
				tr.Root = root
				tr.Walk(func(p string, n *fstree.Node) error {
					if n.Type == fstree.Regular && bytes.Contains(n.Content(), []byte(secretText)) {
						t.Errorf("/%s holds the content of a file outside the staging root", p)
					}
					return nil
				})
			}
			if err == nil {
				t.Fatalf("merged a changed staging tree; want an error saying %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestPostinstStagedPrivately: the staging tree is written (by path, as
// root when root builds) while no other user can reach it. Its directories
// belong to the scripts' user, who could otherwise swap one for a symlink
// that a write, chown or chmod of its content follows.
func TestPostinstStagedPrivately(t *testing.T) {
	svc := scriptService(t, "true\n")
	tr := fstree.New()
	tr.Put("etc/motd", fstree.NewFile(0o644, []byte("hello\n")))
	called := false
	duringStaging = func(tmp string) {
		called = true
		st, err := os.Stat(tmp)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o077 != 0 || st.Sys().(*syscall.Stat_t).Uid != uint32(os.Geteuid()) {
			t.Errorf("staging in %s of mode %v, owner %d: others can reach the tree while it is written", tmp, st.Mode(), st.Sys().(*syscall.Stat_t).Uid)
		}
	}
	defer func() { duringStaging = nil }()
	if err := RunPostinst(context.Background(), tr, svc, nil); err != nil {
		t.Fatal(err)
	}
	if !called {
		t.Fatal("the staging hook never ran")
	}
}

// TestStageChangedCause: an entry the build may not read back is said to
// be unreadable, with its mode, not blamed on a process left running (a
// build not run as root read a staged mode 0000 file that way).
func TestStageChangedCause(t *testing.T) {
	for _, tc := range []struct {
		name    string
		was     fs.FileMode
		err     error
		want    []string
		wantNot string
	}{
		{"unreadable file", 0, &fs.PathError{Op: "open", Path: "/s/root/etc/secret", Err: syscall.EACCES},
			[]string{"/etc/secret, a regular file of mode 0: ", "without read", "permission denied"}, "process"},
		{"unsearchable directory", fs.ModeDir | 0o333, &fs.PathError{Op: "open", Path: "/s/root/etc/secret", Err: syscall.EACCES},
			[]string{"/etc/secret, a directory of mode 0333: ", "without read", "permission denied"}, "process"},
		{"gone", 0o644, &fs.PathError{Op: "open", Path: "/s/root/etc/secret", Err: syscall.ENOENT},
			[]string{"/etc/secret changed after the postinst scripts ended (did one leave a process running?): it was a regular file"}, "permission"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := stageChanged("etc/secret", tc.was, tc.err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v: does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), tc.wantNot) {
				t.Errorf("%v: says %q", err, tc.wantNot)
			}
			if !errors.Is(err, tc.err.(*fs.PathError).Err) {
				t.Errorf("%v: does not match %v", err, tc.err)
			}
		})
	}
}

// scriptService is a service "svc" whose one postinst script is script.
func scriptService(t *testing.T, script string) *service.Service {
	t.Helper()
	return scriptsService(t, map[string]string{"x.sh": script}) // postinstuser_internal_test.go
}
