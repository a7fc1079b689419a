package blk

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// Where flock is a byte-range lock on the server (NFS), lockQEMU only
// looks: it takes no lock of its own, and still refuses an image QEMU
// writes.
func TestLockQEMUWithoutTaking(t *testing.T) {
	p := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(p, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	open := func() *os.File {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	disk, other := open(), open()
	if err := lockQEMU(disk, p, false, false); err != nil {
		t.Fatalf("lockQEMU on a free image: %v", err)
	}
	for _, off := range []int64{100, 101, 200, 201} {
		lk := unix.Flock_t{Type: unix.F_WRLCK, Start: off, Len: 1}
		if err := unix.FcntlFlock(other.Fd(), unix.F_OFD_GETLK, &lk); err != nil {
			t.Fatal(err)
		}
		if lk.Type != unix.F_UNLCK {
			t.Errorf("byte %d locked, want no lock taken", off)
		}
	}
	lk := unix.Flock_t{Type: unix.F_RDLCK, Start: 101, Len: 1}
	if err := unix.FcntlFlock(other.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		t.Fatal(err)
	}
	for _, ro := range []bool{false, true} {
		if err := lockQEMU(disk, p, ro, false); !errors.Is(err, ErrInUse) {
			t.Errorf("lockQEMU (read-only %v) with byte 101 locked: %v, want ErrInUse", ro, err)
		}
	}
}
