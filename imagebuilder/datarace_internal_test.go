package imagebuilder

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// secretText stands for a root-only file outside the shared directory: it
// must never reach a data image.
const secretText = "ROOT-ONLY-SECRET-7c1e5b9d"

// raceShare makes a shared directory and, beside it, an outside directory
// laid out like its sub directory but holding the secret in every file.
func raceShare(t *testing.T) (dir, outside string) {
	t.Helper()
	base := t.TempDir()
	dir, outside = filepath.Join(base, "share"), filepath.Join(base, "outside")
	for _, root := range []string{dir, outside} {
		if err := os.MkdirAll(filepath.Join(root, "sub", "deeper"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "hello.txt"), "hello from the host\n")
	write(filepath.Join(dir, "sub", "deeper", "file.dat"), strings.Repeat("shared data ", 1000))
	write(filepath.Join(outside, "secret"), secretText)
	write(filepath.Join(outside, "sub", "deeper", "file.dat"), strings.Repeat(secretText, 480)) // the same size
	return dir, outside
}

// TestDataChangedBeforeCopy changes the shared directory between the scan
// that plans a data image and the copy, as a user racing a root build
// could: an entry swapped for a symlink out of the directory, a FIFO or a
// directory, a directory swapped for a symlink, a file resized or removed.
// Each must be refused with an error naming the entry; no byte of the
// outside file may reach the image, and nothing may block.
func TestDataChangedBeforeCopy(t *testing.T) {
	mustDo := func(t *testing.T, errs ...error) {
		t.Helper()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name   string
		change func(t *testing.T, dir, outside string)
		want   []string // in the error
	}{
		{"file became a symlink out", func(t *testing.T, dir, outside string) {
			tmp := filepath.Join(dir, ".tmp")
			mustDo(t, os.Symlink(filepath.Join(outside, "secret"), tmp), os.Rename(tmp, filepath.Join(dir, "hello.txt")))
		}, []string{"hello.txt", "changed while the image was built", "a symlink"}},
		{"file became a FIFO", func(t *testing.T, dir, _ string) {
			p := filepath.Join(dir, "hello.txt")
			mustDo(t, os.Remove(p), syscall.Mkfifo(p, 0o644))
		}, []string{"hello.txt", "changed while the image was built", "a FIFO"}},
		{"file became a directory", func(t *testing.T, dir, _ string) {
			p := filepath.Join(dir, "hello.txt")
			mustDo(t, os.Remove(p), os.Mkdir(p, 0o755))
		}, []string{"hello.txt", "changed while the image was built", "a directory"}},
		{"directory became a symlink out", func(t *testing.T, dir, outside string) {
			p := filepath.Join(dir, "sub")
			mustDo(t, os.RemoveAll(p), os.Symlink(filepath.Join(outside, "sub"), p))
		}, []string{"sub", "changed while the image was built", "a symlink"}},
		{"directory became a FIFO", func(t *testing.T, dir, _ string) {
			p := filepath.Join(dir, "sub")
			mustDo(t, os.RemoveAll(p), syscall.Mkfifo(p, 0o644))
		}, []string{"sub", "changed while the image was built", "a FIFO"}},
		{"file grew", func(t *testing.T, dir, _ string) {
			mustDo(t, os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello from the host, and more\n"), 0o644))
		}, []string{"hello.txt", "changed while the image was built", "20 bytes", "30 bytes"}},
		{"file shrank", func(t *testing.T, dir, _ string) {
			mustDo(t, os.Truncate(filepath.Join(dir, "sub", "deeper", "file.dat"), 10))
		}, []string{filepath.Join("sub", "deeper", "file.dat"), "changed while the image was built", "12000 bytes", "10 bytes"}},
		{"file removed", func(t *testing.T, dir, _ string) {
			mustDo(t, os.Remove(filepath.Join(dir, "hello.txt")))
		}, []string{"hello.txt", "no such file"}},
	}
	for _, tt := range tests {
		for _, fsType := range []string{DataFAT32, DataISO9660} {
			t.Run(tt.name+"/"+fsType, func(t *testing.T) {
				// The image a refused build leaves half-written, read back.
				dir, outside := raceShare(t)
				root, err := openDataRoot(dir)
				if err != nil {
					t.Fatal(err)
				}
				defer root.Close()
				es, err := scanData(root, fsType == DataFAT32, nil)
				if err != nil {
					t.Fatal(err)
				}
				tt.change(t, dir, outside)
				f, err := os.Create(filepath.Join(t.TempDir(), "d.img"))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				err = writeDataImage(context.Background(), f, root, es, fsType, dataSize(es, fsType), time.Now())
				checkRefused(t, err, tt.want)
				img, rerr := os.ReadFile(f.Name())
				if rerr != nil {
					t.Fatal(rerr)
				}
				if bytes.Contains(img, []byte(secretText)) {
					t.Error("the image holds the content of a file outside the shared directory")
				}

				// Through the exported build, changed at the same point:
				// refused, and no image left.
				dir, outside = raceShare(t)
				afterDataScan = func() { tt.change(t, dir, outside) }
				defer func() { afterDataScan = nil }()
				out := filepath.Join(t.TempDir(), "d.img")
				checkRefused(t, BuildDataImageContext(context.Background(), dir, out, fsType, 0), tt.want)
				if _, err := os.Lstat(out); err == nil {
					t.Error("a refused build left an image behind")
				}
			})
		}
	}
}

func checkRefused(t *testing.T, err error, want []string) {
	t.Helper()
	if err == nil {
		t.Errorf("built an image from a changed directory; want an error saying %q", want)
		return
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}
