package main

import (
	"io"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// qemuLockVM takes, on another open file description of image, the
// byte-range locks a running QEMU holds on a raw image it writes (its
// block/file-posix.c: read and write permissions on bytes 100 and 101,
// and write not shared on byte 201), and no flock.
func qemuLockVM(t *testing.T, image string) *os.File {
	t.Helper()
	f, err := os.Open(image)
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{100, 101, 201} {
		lk := unix.Flock_t{Type: unix.F_RDLCK, Whence: io.SeekStart, Start: off, Len: 1}
		if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
			f.Close()
			t.Fatalf("OFD lock on byte %d: %v", off, err)
		}
	}
	return f
}

// TestCheckNotInUseSeesQEMU: up's and mkimg -f's check that no VM uses
// the image took only smolvmm's flock, which a running QEMU does not
// take: the image was replaced under it. QEMU's byte-range locks now
// refuse it too, naming what they say.
func TestCheckNotInUseSeesQEMU(t *testing.T) {
	p := t.TempDir() + "/r.img"
	if err := os.WriteFile(p, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := checkNotInUse(p); err != nil {
		t.Fatalf("checkNotInUse of an unused image: %v", err)
	}
	q := qemuLockVM(t, p)
	defer q.Close()
	err := checkNotInUse(p)
	if err == nil || !strings.HasPrefix(err.Error(), "disk image "+p+" is in use by another VM: ") ||
		!strings.Contains(err.Error(), "writes it") || !strings.HasSuffix(err.Error(), ": stop that VM before replacing the image") {
		t.Errorf("checkNotInUse under QEMU's locks = %v\nwant it to say a program writes it, as its lock says, and to stop that VM", err)
	}
}
