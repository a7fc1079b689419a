package fstree

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestAddDirWarnsUserOwned reads a directory set as users other than and
// as root: one warning, with the count, when the set's entries belong to
// the reading user who is not root (a user's own extraction, which lost
// the release's owners and setuid bits), none otherwise. The directory
// named itself does not count: a user's directory may hold a set that
// root extracted.
func TestAddDirWarnsUserOwned(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"usr/bin/su", "usr/bin/passwd", "etc/motd"} {
		hp := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(hp, []byte(p), 0o555); err != nil {
			t.Fatal(err)
		}
	}
	owner := os.Geteuid()
	if owner == 0 {
		// As root, the set is made a user's, as that user's tar leaves it.
		owner = 4321
		err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
			if err != nil || p == dir {
				return err
			}
			return os.Lchown(p, owner, owner)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		reader int
		want   string // in the one warning; "" for none
	}{
		{"the set's user", owner, "6 entries belong to uid " + strconv.Itoa(owner) + ", the user building the image"},
		{"root", 0, ""},
		{"another user", owner + 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func(old func() int) { euid = old }(euid)
			euid = func() int { return tc.reader }
			tr := New()
			if err := tr.AddDir(dir); err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if len(tr.Warnings) != 0 {
					t.Errorf("warnings %q, want none", tr.Warnings)
				}
				return
			}
			if len(tr.Warnings) != 1 || !strings.HasPrefix(tr.Warnings[0], dir+": "+tc.want) ||
				!strings.Contains(tr.Warnings[0], "setuid and setgid bits") || !strings.Contains(tr.Warnings[0], "tar -xpf") {
				t.Errorf("warnings %q, want one starting %q", tr.Warnings, dir+": "+tc.want)
			}
		})
	}
}
