package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/imagebuilder"
	"github.com/smolvmm/smolvmm/imagebuilder/testsets"
	"github.com/smolvmm/smolvmm/kstrip"
	"github.com/smolvmm/smolvmm/kstrip/kstriptest"
)

// specialFiles makes, in a temporary directory, one file of each kind that
// atomic replacement must leave alone, and symlinks to a regular file and
// to a FIFO. The character device (like /dev/full, 1,7) exists only where
// mknod works (root); its entry is "" otherwise. Nothing outside the
// directory is touched.
func specialFiles(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	m := map[string]string{
		"fifo": filepath.Join(dir, "fifo"), "dir": filepath.Join(dir, "dir"),
		"socket": filepath.Join(dir, "sock"), "chr": filepath.Join(dir, "full"),
		"regular": filepath.Join(dir, "regular"), "link": filepath.Join(dir, "link"),
		"link-to-fifo": filepath.Join(dir, "link-to-fifo"),
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(unix.Mkfifo(m["fifo"], 0o644))
	must(os.Mkdir(m["dir"], 0o755))
	ln, err := net.Listen("unix", m["socket"])
	must(err)
	t.Cleanup(func() { ln.Close() })
	must(os.WriteFile(m["regular"], []byte("old"), 0o644))
	must(os.Symlink("regular", m["link"]))
	must(os.Symlink("fifo", m["link-to-fifo"]))
	if unix.Mknod(m["chr"], unix.S_IFCHR|0o666, int(unix.Mkdev(1, 7))) != nil {
		m["chr"] = ""
	}
	return m
}

// sameNode fails unless path is still the node it was (same inode, type).
func sameNode(t *testing.T, path string, before os.FileInfo) {
	t.Helper()
	after, err := os.Lstat(path)
	if err != nil || !os.SameFile(before, after) || after.Mode() != before.Mode() {
		t.Errorf("%s was replaced: %v -> %v (%v)", path, before.Mode(), after, err)
	}
}

func TestKstripOutputs(t *testing.T) {
	kern := testKernel(t, kstriptest.Options{Bits: 32})
	want := libStrip(t, kern, kstrip.Plan{Strip: true, Keep: kstrip.DefaultKeep, IgnoreUnknown: true})
	orig := mustRead(t, kern)
	f := specialFiles(t)
	for _, tc := range []struct{ name, out, kind string }{
		{"FIFO", f["fifo"], "is a FIFO"},
		{"directory", f["dir"], "is a directory"},
		{"socket", f["socket"], "is a socket"},
		{"character device", f["chr"], "is a character device"},
		{"symlink to a FIFO", f["link-to-fifo"], "(through symlink " + f["link-to-fifo"] + ") is a FIFO"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.out == "" {
				t.Skip("mknod needs root")
			}
			before, err := os.Lstat(tc.out)
			if err != nil {
				t.Fatal(err)
			}
			_, stderr, code := runKstripCLI("-o", tc.out, kern)
			if code != 1 || !strings.Contains(stderr, tc.kind) || !strings.Contains(stderr, "not a regular file") {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, stderr, tc.kind)
			}
			sameNode(t, tc.out, before)
			if !bytes.Equal(mustRead(t, kern), orig) {
				t.Error("the input kernel changed")
			}
		})
	}
	t.Run("symlink", func(t *testing.T) {
		// Its target an older kernel: -o replaces no other file without -f.
		if err := os.WriteFile(f["regular"], orig, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, stderr, code := runKstripCLI("-o", f["link"], kern); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if st, err := os.Lstat(f["link"]); err != nil || st.Mode()&os.ModeSymlink == 0 {
			t.Errorf("the symlink was replaced: %v %v", st.Mode(), err)
		}
		if !bytes.Equal(mustRead(t, f["regular"]), want) {
			t.Error("the symlink's target does not hold the stripped kernel")
		}
	})
	t.Run("in place through a symlink", func(t *testing.T) {
		dir := t.TempDir()
		real, link := filepath.Join(dir, "netbsd-real"), filepath.Join(dir, "netbsd")
		if err := os.WriteFile(real, orig, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Symlink("netbsd-real", link)
		if _, stderr, code := runKstripCLI(link); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 || !bytes.Equal(mustRead(t, real), want) {
			t.Errorf("link %v (%v), or its target not stripped", st.Mode(), err)
		}
	})
	t.Run("stdout", func(t *testing.T) {
		t.Chdir(t.TempDir()) // a file named "-" would show here
		stdout, stderr, code := runKstripCLI("-o", "-", kern)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if !bytes.Equal([]byte(stdout), want) {
			t.Errorf("stdout holds %d bytes, want the %d of the stripped kernel (and nothing else)", len(stdout), len(want))
		}
		if !strings.Contains(stderr, "wrote standard output") {
			t.Errorf("the summary is not on stderr: %q", stderr)
		}
		if ents, _ := os.ReadDir("."); len(ents) != 0 {
			t.Errorf("files written: %v", ents)
		}
		if !bytes.Equal(mustRead(t, kern), orig) {
			t.Error("the input kernel changed")
		}
	})
	for _, args := range [][]string{{"-o", "-", "--json"}, {"-o", "-", "--list"}} {
		if _, stderr, code := runKstripCLI(append(args, kern)...); code != 2 || !strings.Contains(stderr, "-o -") {
			t.Errorf("%v: exit %d, stderr %q; want 2 naming -o -", args, code, stderr)
		}
	}
}

// TestMkimgNeedsInit: a set without init (base without rescue, say)
// built an image NetBSD cannot start, and mkimg called it done.
func TestMkimgNeedsInit(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	b, err := testsets.Bytes([]testsets.Entry{{
		Hdr:  tar.Header{Typeflag: tar.TypeReg, Name: "./bin/cat", Mode: 0o555, Size: 3},
		Data: []byte("cat"),
	}}, "tgz")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("noinit.tgz", b, 0o644); err != nil {
		t.Fatal(err)
	}
	err = mkimg(context.Background(), fakeFlags{"sets": []string{"noinit.tgz"}, "timestamp": "1700000000"}, io.Discard)
	if !errors.Is(err, imagebuilder.ErrNoInit) || !strings.Contains(err.Error(), "/sbin/init") {
		t.Fatalf("mkimg: %v, want ErrNoInit", err)
	}
	if _, err := os.Stat("root.img"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("root.img was written: %v", err)
	}
}
