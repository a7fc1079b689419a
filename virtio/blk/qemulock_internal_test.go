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

// Where flock is a byte-range lock on the server (NFS, SMB), another VM's
// flock is a lock over the whole file: lockQEMU, only looking there,
// refused a second read-only attach of one image ("writes it, as its
// byte-range lock on byte 101 says"), which the flock had let through.
// A whole-file lock is the flock's to judge; QEMU's single bytes are
// still refused.
func TestLockQEMUWithoutTakingWholeFileLock(t *testing.T) {
	for _, tt := range []struct {
		name     string
		whole    int16 // the other VM's flock as the server holds it
		readOnly bool
	}{
		{"read-only beside a read-only VM", unix.F_RDLCK, true},
		{"read-write beside a read-only VM", unix.F_RDLCK, false},
		{"read-only beside a read-write VM", unix.F_WRLCK, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
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
			disk, other, qemu := open(), open(), open()
			lk := unix.Flock_t{Type: tt.whole, Start: 0, Len: 0}
			if err := unix.FcntlFlock(other.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
				t.Fatal(err)
			}
			if err := lockQEMU(disk, p, tt.readOnly, false); err != nil {
				t.Fatalf("lockQEMU beside another VM's whole-file lock: %v, want it left to the flock", err)
			}
			if tt.whole == unix.F_WRLCK {
				return // QEMU's read lock cannot be had beside it
			}
			qlk := unix.Flock_t{Type: unix.F_RDLCK, Start: 101, Len: 1}
			if err := unix.FcntlFlock(qemu.Fd(), unix.F_OFD_SETLK, &qlk); err != nil {
				t.Fatal(err)
			}
			other.Close() // GETLK reports one conflict: QEMU's alone now
			if err := lockQEMU(disk, p, tt.readOnly, false); !errors.Is(err, ErrInUse) {
				t.Errorf("lockQEMU with QEMU's byte 101 locked: %v, want ErrInUse", err)
			}
		})
	}
}
