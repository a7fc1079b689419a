package fstree

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestAddDirChanged changes a host tree while AddDir reads it, between
// its look at an entry and its open, as a user who can write in the tree
// could while root builds from it: a file or directory swapped for a
// symlink out of the tree, or for a FIFO. Each must be refused naming the
// entry, nothing from outside may reach the tree, and nothing may block.
func TestAddDirChanged(t *testing.T) {
	const secret = "ROOT-ONLY-SECRET-3b8f0e21"
	tests := []struct {
		name, entry string
		change      func(hp, outside string) error
		want        string
	}{
		{"file became a symlink out", "etc/motd", func(hp, outside string) error {
			tmp := hp + ".tmp"
			if err := os.Symlink(filepath.Join(outside, "secret"), tmp); err != nil {
				return err
			}
			return os.Rename(tmp, hp)
		}, "is not a regular file: it is a symlink"},
		{"file became a FIFO", "etc/motd", func(hp, _ string) error {
			if err := os.Remove(hp); err != nil {
				return err
			}
			return syscall.Mkfifo(hp, 0o644)
		}, "is not a regular file: it is a FIFO"},
		{"directory became a symlink out", "var", func(hp, outside string) error {
			if err := os.RemoveAll(hp); err != nil {
				return err
			}
			return os.Symlink(outside, hp)
		}, "is not a directory: it is a symlink"},
		{"directory became a FIFO", "var", func(hp, _ string) error {
			if err := os.RemoveAll(hp); err != nil {
				return err
			}
			return syscall.Mkfifo(hp, 0o644)
		}, "is not a directory: it is a FIFO"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			dir, outside := filepath.Join(base, "set"), filepath.Join(base, "outside")
			for p, s := range map[string]string{
				filepath.Join(dir, "etc/motd"):     "hello\n",
				filepath.Join(dir, "var/db/x"):     "x\n",
				filepath.Join(outside, "secret"):   secret,
				filepath.Join(outside, "db/x"):     secret,
				filepath.Join(outside, "db/other"): secret,
			} {
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			afterHostLstat = func(p string) {
				if p == tt.entry {
					if err := tt.change(filepath.Join(dir, filepath.FromSlash(p)), outside); err != nil {
						t.Error(err)
					}
				}
			}
			defer func() { afterHostLstat = nil }()
			tr := New()
			err := tr.AddDir(dir)
			tr.Walk(func(p string, n *Node) error {
				if n.Type == Regular && bytes.Contains(n.Content(), []byte(secret)) {
					t.Errorf("/%s holds the content of a file outside the tree", p)
				}
				return nil
			})
			if err == nil {
				t.Fatalf("read a changed tree; want an error saying %q", tt.want)
			}
			for _, w := range []string{filepath.Join(dir, filepath.FromSlash(tt.entry)), "changed while it was read", tt.want} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
