package imagebuilder

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"golang.org/x/sys/unix"
)

// TestPostinstDropACLsFails: removing the staging directory's ACLs (see
// dropACLs) fails only for a reason other than there being none or no
// ACLs on the file system, with an error naming the directory and the
// ACL, and the scripts do not run; the staging directory is removed.
func TestPostinstDropACLsFails(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  syscall.Errno // removexattr's, for the default ACL
		want string        // the error's end, "" for none
	}{
		{"none", unix.ENODATA, ""},
		{"no ACLs here", unix.EOPNOTSUPP, ""},
		{"refused", unix.EPERM, "removexattr system.posix_acl_default DIR: operation not permitted"},
		{"failed", unix.EIO, "removexattr system.posix_acl_default DIR: input/output error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// One the scripts' user (when root builds, another) may reach.
			tmp, err := os.MkdirTemp("", "tmpdir-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(tmp) })
			if err := os.Chmod(tmp, 0o755); err != nil {
				t.Fatal(err)
			}
			if tmp, err = filepath.EvalSymlinks(tmp); err != nil {
				t.Fatal(err)
			}
			svc := scriptService(t, "mkdir ran\n")
			t.Setenv("TMPDIR", tmp)
			var dir string
			removexattr = func(path, attr string) error {
				if attr != "system.posix_acl_default" {
					return unix.ENODATA
				}
				dir = path
				return tc.err
			}
			t.Cleanup(func() { removexattr = unix.Removexattr })
			tr := fstree.New()
			err = RunPostinst(context.Background(), tr, svc, nil)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := tr.Get("ran"); err != nil {
					t.Errorf("the script did not run: %v", err)
				}
				return
			}
			want := "postinst staging: removing the ACL the staging directory inherited: " + strings.ReplaceAll(tc.want, "DIR", dir)
			if err == nil || err.Error() != want || !errors.Is(err, tc.err) {
				t.Errorf("got %v, want %q matching %v", err, want, tc.err)
			}
			if !strings.HasPrefix(dir, filepath.Join(tmp, stagePrefix)) {
				t.Errorf("removexattr on %q, want the staging directory in %s", dir, tmp)
			}
			if _, err := tr.Get("ran"); err == nil {
				t.Error("the script ran")
			}
			if es, _ := os.ReadDir(tmp); len(es) != 0 {
				t.Errorf("%s holds %v after the step, want nothing", tmp, es)
			}
		})
	}
}
