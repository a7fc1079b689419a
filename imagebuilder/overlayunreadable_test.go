package imagebuilder_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder"
	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/internal/testcaps"
	"github.com/smolvmm/smolvmm/service"
)

// TestOverlayUnreadable: a file of the service the builder may not read
// is a *service.UnreadableError naming its host path. It was "service svc:
// openat etc/priv: permission denied", relative to the service, and a
// symlinked etc/rc whose file was refused said the link led out of the
// service directory, which it did not.
func TestOverlayUnreadable(t *testing.T) {
	for _, tc := range []struct {
		name, path string // path: made mode 0
		want       string // %s the service directory given to Load
	}{
		{"a file of etc/", "svc/etc/priv", "service svc: file %s/svc/etc/priv cannot be read: permission denied"},
		{"a directory of etc/", "svc/etc/sub", "service svc: directory %s/svc/etc/sub cannot be read: permission denied"},
		{"etc/rc", "svc/etc/rc", "service svc: file %s/svc/etc/rc cannot be read: permission denied"},
		{"the file of a symlinked etc/rc", "svc/rc.real", "service svc: file %s/svc/etc/rc cannot be read: permission denied"},
		{"a common file", "common/priv", "common files: file %s/common/priv cannot be read: permission denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, d := range []string{"svc/etc/sub", "common"} {
				if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range []string{"svc/etc/priv", "svc/etc/sub/f", "svc/rc.real", "common/priv"} {
				if err := os.WriteFile(filepath.Join(dir, f), []byte("sh\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			rc := "../rc.real" // a symlink, but where etc/rc itself is refused
			if tc.path == "svc/etc/rc" {
				if err := os.WriteFile(filepath.Join(dir, "svc/etc/rc"), []byte("sh\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			} else if err := os.Symlink(rc, filepath.Join(dir, "svc/etc/rc")); err != nil {
				t.Fatal(err)
			}
			s := loadService(t, "svc", dir)
			p := filepath.Join(dir, tc.path)
			if err := os.Chmod(p, 0); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(p, 0o755) })
			var err error
			testcaps.WithoutDAC(t, func() { err = imagebuilder.Overlay(fstree.New(), s, "") })
			want := fmt.Sprintf(tc.want, dir)
			var ue *service.UnreadableError
			if !errors.As(err, &ue) || !errors.Is(err, fs.ErrPermission) || err.Error() != want {
				t.Errorf("Overlay = %v, want an *UnreadableError %q", err, want)
			}
		})
	}
}
