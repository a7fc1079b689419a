package hostdir

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// tree makes a directory holding one entry of each kind the opens meet,
// and a file outside it that links point at.
func tree(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	dir := filepath.Join(base, "d")
	for _, err := range []error{
		os.Mkdir(dir, 0o755),
		os.WriteFile(filepath.Join(base, "outside"), []byte("outside"), 0o600),
		os.WriteFile(filepath.Join(dir, "file"), []byte("inside"), 0o644),
		os.Mkdir(filepath.Join(dir, "sub"), 0o755),
		os.Symlink("../outside", filepath.Join(dir, "link-file")),
		os.Symlink(base, filepath.Join(dir, "link-dir")),
		syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	// A socket, where the path fits in sun_path.
	if l, err := net.Listen("unix", filepath.Join(dir, "sock")); err == nil {
		t.Cleanup(func() { l.Close() })
	}
	return dir
}

func TestOpen(t *testing.T) {
	dir := tree(t)
	root, st, err := OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if Mode(&st).Type() != fs.ModeDir {
		t.Fatalf("root: mode %v", Mode(&st))
	}
	tests := []struct {
		name     string
		wantDir  bool
		wantKind string // in the *KindError; "" opens
	}{
		{"file", false, ""},
		{"sub", true, ""},
		{"file", true, "is not a directory: it is a regular file"},
		{"sub", false, "is not a regular file: it is a directory"},
		{"link-file", false, "is not a regular file: it is a symlink"},
		{"link-dir", true, "is not a directory: it is a symlink"},
		{"fifo", false, "is not a regular file: it is a FIFO"},
		{"fifo", true, "is not a directory: it is a FIFO"},
		{"sock", false, "is not a regular file: it is a socket"},
	}
	for _, tt := range tests {
		if tt.name == "sock" {
			if _, err := os.Lstat(filepath.Join(dir, "sock")); err != nil {
				continue // no socket could be made here
			}
		}
		var f io.Closer
		var err error
		if tt.wantDir {
			f, _, err = root.OpenDir(tt.name)
		} else {
			var file *os.File
			file, _, err = root.OpenFile(tt.name)
			if err == nil {
				b, rerr := io.ReadAll(file)
				if rerr != nil || string(b) != "inside" {
					t.Errorf("%s: read %q %v, want %q", tt.name, b, rerr, "inside")
				}
				f = file
			}
		}
		if tt.wantKind == "" {
			if err != nil {
				t.Errorf("open %s (dir %v): %v", tt.name, tt.wantDir, err)
			} else {
				f.Close()
			}
			continue
		}
		var ke *KindError
		if !errors.As(err, &ke) || !strings.Contains(err.Error(), tt.wantKind) || !strings.Contains(err.Error(), filepath.Join(dir, tt.name)) {
			t.Errorf("open %s (dir %v): %v, want a *KindError saying %q", tt.name, tt.wantDir, err, tt.wantKind)
		}
		if err == nil {
			f.Close()
		}
	}
	// Only single names: nothing reaches past the directory by a path.
	for _, name := range []string{"", ".", "..", "sub/../file", "/etc/passwd"} {
		if f, _, err := root.OpenFile(name); err == nil {
			f.Close()
			t.Errorf("OpenFile(%q) opened", name)
		}
	}
}

func TestNames(t *testing.T) {
	root, _, err := OpenRoot(tree(t))
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for range 2 { // read again from the start
		names, err := root.Names()
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Join(names, " ")
		if want := "fifo file link-dir link-file"; !strings.HasPrefix(got, want) {
			t.Errorf("names %q, want them sorted, from %q", got, want)
		}
	}
	if target, err := root.Readlink("link-file"); err != nil || target != "../outside" {
		t.Errorf("Readlink: %q %v", target, err)
	}
}

// TestWalk: every entry once, a directory before what it holds, in name
// order; directories and files opened (a file's content read from File),
// links and FIFOs only looked at; an entry swapped for a symlink between
// the look and the open ends the walk through changed.
func TestWalk(t *testing.T) {
	dir := tree(t)
	if err := os.WriteFile(filepath.Join(dir, "sub", "inner"), []byte("in sub"), 0o644); err != nil {
		t.Fatal(err)
	}
	root, _, err := OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var got []string
	visit := func(e Entry) error {
		kind := Mode(e.St).Type().String()
		if e.File != nil {
			b, err := io.ReadAll(e.File)
			if err != nil {
				return err
			}
			kind += " " + string(b)
		}
		got = append(got, e.Rel+": "+kind)
		return nil
	}
	noChange := func(rel string, was fs.FileMode, err error) error {
		t.Errorf("%s changed (was %v): %v", rel, was, err)
		return err
	}
	if err := Walk(context.Background(), root, visit, noChange, nil); err != nil {
		t.Fatal(err)
	}
	want := []string{"fifo: p---------", "file: ---------- inside", "link-dir: L---------", "link-file: L---------"}
	if _, err := os.Lstat(filepath.Join(dir, "sock")); err == nil {
		want = append(want, "sock: S---------")
	}
	want = append(want, "sub: d---------", "sub/inner: ---------- in sub")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("walk:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	swap := func(rel string) {
		if rel == "file" {
			p := filepath.Join(dir, "file")
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("../outside", p); err != nil {
				t.Fatal(err)
			}
		}
	}
	var changedRel string
	changed := func(rel string, was fs.FileMode, err error) error {
		changedRel = rel
		if was.Type() != 0 {
			t.Errorf("%s was %v, want a regular file", rel, was)
		}
		return errors.New("changed")
	}
	got = nil
	if err := Walk(context.Background(), root, visit, changed, swap); err == nil || changedRel != "file" {
		t.Errorf("walk over a file swapped for a symlink: %v (changed %q), want it refused", err, changedRel)
	}
	for _, g := range got {
		if strings.Contains(g, "outside") {
			t.Errorf("visited %q: the outside file was read", g)
		}
	}
}
