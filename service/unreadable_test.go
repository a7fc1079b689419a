package service_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/internal/testcaps"
	"github.com/smolvmm/smolvmm/service"
)

// TestLoadUnreadable: a part of a host service directory the user may not
// read is an *UnreadableError naming it by its host path, the first
// directory on the way that refused its search, or the entry. They were
// "service my in D: openat my: permission denied" and, for a file of
// the service, "openat etc/priv: permission denied", a path relative to
// the service, which left the user to find which directory's.
func TestLoadUnreadable(t *testing.T) {
	tests := []struct {
		name string
		svc  string      // the service loaded: my when empty
		path string      // below the directory given to Load, made unreadable
		mode os.FileMode // given to it
		read func(s *service.Service) error
		want string // the error, %s the directory given to Load
	}{
		{"the service's directory", "", "my", 0, nil, "service my: directory %s/my cannot be read: permission denied"},
		{"the service's directory, search only", "", "my", 0o111, nil, "service my: directory %s/my cannot be read: permission denied"},
		// A refusal is no link's doing: it was "link links to my: links
		// in a service directory are followed only to paths inside D".
		{"a linked service's directory", "link", "my", 0, nil, "service link: directory %s/link cannot be read: permission denied"},
		{"the service directory", "", ".", 0, nil, "service directory: directory %s cannot be read: permission denied"},
		{"etc/", "", "my/etc", 0, nil, "service %[1]s/my: directory %[1]s/my/etc cannot be read: permission denied"},
		{"etc/, read only", "", "my/etc", 0o444, nil, "service %[1]s/my: directory %[1]s/my/etc cannot be read: permission denied"},
		{"postinst/", "", "my/postinst", 0, nil, "service %[1]s/my: directory %[1]s/my/postinst cannot be read: permission denied"},
		{"service.conf", "", "my/service.conf", 0, nil, "service %[1]s/my: file %[1]s/my/service.conf cannot be read: permission denied"},
		{"common/", "", "common", 0, nil, "common files: directory %s/common cannot be read: permission denied"},
		{"a file of etc/", "", "my/etc/priv", 0, func(s *service.Service) error {
			_, err := fs.ReadFile(s.FS, "etc/priv")
			return err
		}, "file %s/my/etc/priv cannot be read: permission denied"},
		{"a directory of etc/, walked", "", "my/etc/sub", 0, func(s *service.Service) error {
			return fs.WalkDir(s.FS, "etc", func(_ string, _ fs.DirEntry, err error) error { return err })
		}, "directory %s/my/etc/sub cannot be read: permission denied"},
		{"a file beneath a directory of etc/ without search", "", "my/etc/sub", 0o444, func(s *service.Service) error {
			return fs.WalkDir(s.FS, "etc", func(_ string, d fs.DirEntry, err error) error {
				if err == nil {
					_, err = d.Info()
				}
				return err
			})
		}, "directory %s/my/etc/sub cannot be read: permission denied"},
		{"a common file", "", "common/priv", 0, func(s *service.Service) error {
			_, err := fs.ReadFile(s.Common, "priv")
			return err
		}, "file %s/common/priv cannot be read: permission denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, d := range []string{"my/etc/sub", "my/postinst", "common"} {
				if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range []string{"my/etc/rc", "my/etc/priv", "my/etc/sub/f", "my/service.conf", "common/priv"} {
				if err := os.WriteFile(filepath.Join(dir, f), []byte("size=64\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Symlink("my", filepath.Join(dir, "link")); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, tt.path)
			if err := os.Chmod(p, tt.mode); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(p, 0o755) })
			var err error
			testcaps.WithoutDAC(t, func() {
				var s *service.Service
				name := tt.svc
				if name == "" {
					name = "my"
				}
				if s, err = service.Load(name, dir); err == nil && tt.read != nil {
					err = tt.read(s)
				}
			})
			want := fmt.Sprintf(tt.want, dir)
			var ue *service.UnreadableError
			if !errors.As(err, &ue) || !errors.Is(err, fs.ErrPermission) || err.Error() != want {
				t.Errorf("got %v, want an *UnreadableError %q", err, want)
			}
		})
	}
}
