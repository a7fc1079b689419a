package imagebuilder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestFullDiskMessage: a full file system under the image is said first,
// not hidden behind the name of a file inside the image ("/bin/sh:
// writing ..."), and the cause still matches ENOSPC.
func TestFullDiskMessage(t *testing.T) {
	out := filepath.Join(t.TempDir(), "root.img")
	err := writeAtomically(context.Background(), out, func(f *os.File) error {
		return fmt.Errorf("the image's /bin/sh: writing 13312 bytes at block 165: write %s: %w", f.Name(), syscall.ENOSPC)
	})
	want := "image " + out + ": the file system that holds it is full (free some space there, or write the image elsewhere): the image's /bin/sh: "
	if !errors.Is(err, syscall.ENOSPC) || !strings.HasPrefix(fmt.Sprint(err), want) {
		t.Errorf("err = %v\nwant ENOSPC and the prefix %q", err, want)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed write left %s: %v", out, err)
	}
}

// TestMissingSetNamedOnce: a set that is not there is named once.
func TestMissingSetNamedOnce(t *testing.T) {
	p := filepath.Join(t.TempDir(), "rescue.tgz")
	err := readSets(context.Background(), nil, []string{p}, nil)
	if want := "set " + p + ": stat: no such file or directory"; !errors.Is(err, os.ErrNotExist) || fmt.Sprint(err) != want {
		t.Errorf("readSets = %v, want %q", err, want)
	}
}
