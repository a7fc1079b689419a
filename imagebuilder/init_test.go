package imagebuilder_test

import (
	"archive/tar"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder"
	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/imagebuilder/testsets"
)

func TestFindInit(t *testing.T) {
	exe := func() *fstree.Node { return fstree.NewFile(0o555, []byte("init")) }
	tests := []struct {
		name  string
		nodes map[string]*fstree.Node
		want  string // the init found; "" for none
		why   string // part of the error when none
	}{
		{"sbin/init", map[string]*fstree.Node{"sbin/init": exe()}, "/sbin/init", ""},
		{"oinit", map[string]*fstree.Node{"sbin/oinit": exe()}, "/sbin/oinit", ""},
		{"init.bak", map[string]*fstree.Node{"sbin/init.bak": exe()}, "/sbin/init.bak", ""},
		{"rescue only", map[string]*fstree.Node{"rescue/init": exe()}, "/rescue/init", ""},
		{"first wins", map[string]*fstree.Node{"rescue/init": exe(), "sbin/init.bak": exe()}, "/sbin/init.bak", ""},
		{"absolute symlink", map[string]*fstree.Node{"sbin/init": fstree.NewSymlink("/rescue/init"), "rescue/init": exe()}, "/sbin/init", ""},
		{"sbin a symlink to rescue", map[string]*fstree.Node{"sbin": fstree.NewSymlink("rescue"), "rescue/init": exe()}, "/sbin/init", ""},
		{"relative symlink up", map[string]*fstree.Node{"sbin/init": fstree.NewSymlink("../rescue/init"), "rescue/init": exe()}, "/sbin/init", ""},
		// The kernel resolves ".." at the root to the root.
		{"relative symlink above the root", map[string]*fstree.Node{"sbin/init": fstree.NewSymlink("../../../../rescue/init"), "rescue/init": exe()}, "/sbin/init", ""},
		{"sbin climbing above the root", map[string]*fstree.Node{"sbin": fstree.NewSymlink("../../rescue"), "rescue/init": exe()}, "/sbin/init", ""},
		{"empty tree", nil, "", "/sbin/init: not found"},
		{"not executable", map[string]*fstree.Node{"sbin/init": fstree.NewFile(0o644, []byte("x"))}, "", "/sbin/init: not executable"},
		{"a directory", map[string]*fstree.Node{"sbin/init": fstree.NewDir(0o755)}, "", "/sbin/init: a directory"},
		{"dangling symlink", map[string]*fstree.Node{"sbin/init": fstree.NewSymlink("/rescue/init")}, "", "/sbin/init: /rescue not found"},
		{"symlink loop", map[string]*fstree.Node{"sbin/init": fstree.NewSymlink("init")}, "", "too many symlinks"},
		{"rescue is a file", map[string]*fstree.Node{"rescue": exe()}, "", "/rescue/init: /rescue is not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := fstree.New()
			for p, n := range tt.nodes {
				if err := tr.Put(p, n); err != nil {
					t.Fatal(err)
				}
			}
			got, err := imagebuilder.FindInit(tr)
			if tt.want != "" {
				if err != nil || got != tt.want {
					t.Fatalf("FindInit = %q, %v; want %s", got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, imagebuilder.ErrNoInit) || !strings.Contains(err.Error(), tt.why) {
				t.Fatalf("FindInit = %q, %v; want ErrNoInit saying %q", got, err, tt.why)
			}
			// Each path is said once, with what stands there.
			for _, p := range imagebuilder.InitPaths {
				if n := len(regexp.MustCompile(regexp.QuoteMeta(p)+`($|[^.\w])`).FindAllString(err.Error(), -1)); n != 1 {
					t.Errorf("FindInit's error names %s %d times, want once: %v", p, n, err)
				}
			}
		})
	}
}

// TestBuildNeedsInit: a set without init (a base.tgz without rescue, say)
// makes an image NetBSD cannot start: refused, nothing written.
func TestBuildNeedsInit(t *testing.T) {
	set, err := testsets.Bytes([]testsets.Entry{{
		Hdr:  tar.Header{Typeflag: tar.TypeReg, Name: "./etc/motd", Mode: 0o644, Size: 6},
		Data: []byte("hello\n"),
	}}, "tar")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "noinit.tar")
	if err := os.WriteFile(p, set, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "root.img")
	cfg := imagebuilder.Config{Sets: []string{p}, Service: loadService(t, "rescue", ""), SizeMB: 10, Timestamp: ts}
	err = imagebuilder.Build(context.Background(), cfg, out)
	if !errors.Is(err, imagebuilder.ErrNoInit) || !strings.Contains(err.Error(), "/rescue/init") {
		t.Fatalf("Build: %v, want ErrNoInit naming /rescue/init", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an image was written: %v", err)
	}
}
