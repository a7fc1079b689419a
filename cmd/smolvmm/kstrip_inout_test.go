package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/kstrip/kstriptest"
)

// TestKstripOutputIsKeepList: kstrip -K FILE -o FILE replaced the keep
// list with the stripped kernel, status 0 ("wrote keep.txt"), and so did
// -o through a symlink or a hard link to it, or with -f. An -o that is
// the -K file is refused, status 2, whatever -f says, before anything is
// written; -o KERNEL is kstrip's in-place edit and stays allowed.
func TestKstripOutputIsKeepList(t *testing.T) {
	kern := testKernel(t, kstriptest.Options{Bits: 32})
	const keepText = "mainbus\ncpu\npci\nisa\n"
	tests := []struct {
		name  string
		out   func(dir, keep string) string // the path given to -o
		force bool
	}{
		{"same path", func(dir, keep string) string { return keep }, false},
		{"same path, -f", func(dir, keep string) string { return keep }, true},
		{"relative path", func(dir, keep string) string { return "./" + filepath.Base(keep) }, false},
		{"symlink", func(dir, keep string) string {
			l := filepath.Join(dir, "link")
			if err := os.Symlink(keep, l); err != nil {
				t.Fatal(err)
			}
			return l
		}, true},
		{"hard link", func(dir, keep string) string {
			l := filepath.Join(dir, "hard")
			if err := os.Link(keep, l); err != nil {
				t.Fatal(err)
			}
			return l
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			keep := filepath.Join(dir, "keep.txt")
			if err := os.WriteFile(keep, []byte(keepText), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Chdir(dir)
			out := tt.out(dir, keep)
			args := []string{"-K", keep, "-o", out}
			if tt.force {
				args = append(args, "-f")
			}
			stdout, stderr, code := runKstripCLI(append(args, kern)...)
			want := "-o " + out + ": this is the -K file " + keep + ", which it would overwrite: give another file"
			if code != 2 || !strings.Contains(stderr, want) {
				t.Errorf("exit %d, want 2 and %q; stdout:\n%s\nstderr:\n%s", code, want, stdout, stderr)
			}
			if got, _ := os.ReadFile(keep); string(got) != keepText {
				t.Errorf("the keep list now holds %.20q", got)
			}
		})
	}
	// The kernel named as -o too is the in-place edit.
	t.Run("-o KERNEL", func(t *testing.T) {
		k := filepath.Join(t.TempDir(), "netbsd")
		old := mustRead(t, kern)
		if err := os.WriteFile(k, old, 0o644); err != nil {
			t.Fatal(err)
		}
		_, stderr, code := runKstripCLI("-o", k, k)
		got := mustRead(t, k)
		if code != 0 || !bytes.HasPrefix(got, []byte("\x7fELF")) || bytes.Equal(got, old) {
			t.Errorf("exit %d, kernel changed %v; want 0 and the kernel stripped:\n%s", code, !bytes.Equal(got, old), stderr)
		}
	})
}
