package blk_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/virtio/blk"
)

// QEMU's lock bytes (its block/file-posix.c): 100+p for each permission
// p it holds, 200+p for each it shares with no one; p 0 is reading, 1
// writing.
const (
	readByte, writeByte             = 100, 101
	noReadersByte, noWritersByte    = 200, 201
	qemuReadWrite, qemuReadOnly     = "100,101,201", "100,201"
	qemuShareRW, qemuForbidsReaders = "100,101", "100,200"
)

// tempImage is a fresh 1 MiB image.
func tempImage(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(p, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// otherDescription opens path again, read-write (a write lock needs
// it): a description of its own, as another program's would be.
func otherDescription(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// ofdLock takes on f an OFD lock of typ on each byte of list ("100,201").
func ofdLock(t *testing.T, f *os.File, typ int16, list string) {
	t.Helper()
	for _, b := range strings.Split(list, ",") {
		off, err := strconv.ParseInt(b, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		lk := unix.Flock_t{Type: typ, Start: off, Len: 1}
		if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
			t.Fatalf("lock byte %d: %v", off, err)
		}
	}
}

// lockedBytes is which of QEMU's bytes 100, 101, 200 and 201 another
// description than f's sees locked, probing as QEMU does (F_OFD_GETLK
// for a write lock).
func lockedBytes(t *testing.T, f *os.File) []int64 {
	t.Helper()
	var held []int64
	for _, off := range []int64{readByte, writeByte, noReadersByte, noWritersByte} {
		lk := unix.Flock_t{Type: unix.F_WRLCK, Start: off, Len: 1}
		if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk); err != nil {
			t.Fatal(err)
		}
		if lk.Type != unix.F_UNLCK {
			held = append(held, off)
		}
	}
	return held
}

// An open disk holds the byte-range locks QEMU holds on a raw drive
// without share-rw, so that QEMU sees it: reading (100), writing (101)
// unless read-only, and letting no one else write (201). Close releases
// them.
func TestOpenTakesQEMULocks(t *testing.T) {
	for _, tc := range []struct {
		name string
		ro   bool
		want []int64
	}{
		{"read-write", false, []int64{readByte, writeByte, noWritersByte}},
		{"read-only", true, []int64{readByte, noWritersByte}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tempImage(t)
			d, err := blk.Open(p, blk.Options{ReadOnly: tc.ro})
			if err != nil {
				t.Fatal(err)
			}
			probe := otherDescription(t, p)
			if got := lockedBytes(t, probe); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("locked bytes %v, want %v", got, tc.want)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			if got := lockedBytes(t, probe); len(got) != 0 {
				t.Errorf("after Close, locked bytes %v, want none", got)
			}
		})
	}
}

// Another program's byte-range locks, as QEMU takes them, refuse an open
// that would write an image it uses, or use one it lets no one else write
// or read: the error names the holder and the lock. Those that leave
// the disk alone (a read-only QEMU beside a read-only disk) do not.
func TestOpenRefusesQEMULocks(t *testing.T) {
	self := "process " + strconv.Itoa(os.Getpid()) + " ("
	for _, tc := range []struct {
		name  string
		typ   int16
		bytes string
		ro    bool
		want  string // in the error; "" for an open that succeeds
	}{
		{"QEMU read-write, disk read-write", unix.F_RDLCK, qemuReadWrite, false, "writes it, as its byte-range lock on byte 101 says"},
		{"QEMU read-write, disk read-only", unix.F_RDLCK, qemuReadWrite, true, "writes it, as its byte-range lock on byte 101 says"},
		{"QEMU read-only, disk read-write", unix.F_RDLCK, qemuReadOnly, false, "lets no other program write it, as its byte-range lock on byte 201 says"},
		{"QEMU read-only, disk read-only", unix.F_RDLCK, qemuReadOnly, true, ""},
		{"QEMU share-rw, disk read-write", unix.F_RDLCK, qemuShareRW, false, "writes it, as its byte-range lock on byte 101 says"},
		{"no readers, disk read-only", unix.F_RDLCK, qemuForbidsReaders, true, "lets no other program read it, as its byte-range lock on byte 200 says"},
		{"a write lock, disk read-only", unix.F_WRLCK, "100", true, "holds a write lock on its byte 100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tempImage(t)
			ofdLock(t, otherDescription(t, p), tc.typ, tc.bytes)
			d, err := blk.Open(p, blk.Options{ReadOnly: tc.ro})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Open: %v, want it to open", err)
				}
				d.Close()
				return
			}
			if err == nil {
				d.Close()
				t.Fatalf("Open succeeded, want it refused: %s", tc.want)
			}
			want := "disk image " + p + " is in use by another VM: " + self
			if !errors.Is(err, blk.ErrInUse) || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open: %v\nwant ErrInUse, %q and %q", err, want, tc.want)
			}
		})
	}
}
