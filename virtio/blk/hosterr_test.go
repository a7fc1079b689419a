package blk_test

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
	"golang.org/x/sys/unix"
)

// failingBackend is a memBackend whose reads, writes or syncs fail with
// the error set for them.
type failingBackend struct {
	*memBackend
	mu                  sync.Mutex
	read, write, syncer error
}

func (f *failingBackend) fail(which *error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return *which
}

func (f *failingBackend) ReadAt(p []byte, off int64) (int, error) {
	if err := f.fail(&f.read); err != nil {
		return 0, err
	}
	return f.memBackend.ReadAt(p, off)
}

func (f *failingBackend) WriteAt(p []byte, off int64) (int, error) {
	if err := f.fail(&f.write); err != nil {
		return 0, err
	}
	return f.memBackend.WriteAt(p, off)
}

func (f *failingBackend) Sync() error {
	if err := f.fail(&f.syncer); err != nil {
		return fmt.Errorf("fdatasync disk.img: %w", err)
	}
	return f.memBackend.Sync()
}

// newLoggedRig is newBlkRig with the transport logging to a virtiotest.Log.
func newLoggedRig(t *testing.T, disk *blk.Disk) (*blkRig, *virtiotest.Log) {
	t.Helper()
	log := &virtiotest.Log{}
	r := newBlkRigLogged(t, disk, guestmem.New(make([]byte, guestMem)), slog.New(slog.NewTextHandler(log, nil)))
	return r, log
}

// request submits one request of typ at sector with 512 bytes of data
// (none for a flush) and returns its status.
func (r *blkRig) request(t *testing.T, typ uint32, sector uint64) uint8 {
	t.Helper()
	st := r.status()
	bufs := []virtiotest.Buf{{Addr: r.header(typ, sector), Len: 16}}
	switch typ {
	case blk.TypeIn:
		bufs = append(bufs, virtiotest.Buf{Addr: r.alloc.Take(512, 512), Len: 512, Write: true})
	case blk.TypeOut:
		bufs = append(bufs, virtiotest.Buf{Addr: r.alloc.Take(512, 512), Len: 512})
	}
	bufs = append(bufs, virtiotest.Buf{Addr: st, Len: 1, Write: true})
	r.submit(t, bufs, false)
	s, _ := r.mem.Read8(st)
	return s
}

// An error of the image on the host (a full disk, a failing one) reaches
// the guest as IOERR, which NetBSD reports only as "error writing fsbn":
// the host log says what failed, where and why, once per operation and
// errno, and a flush keeps fdatasync's error.
func TestHostIOErrorsLogged(t *testing.T) {
	type step struct {
		typ    uint32
		sector uint64
		read   error
		write  error
		sync   error
	}
	for _, tc := range []struct {
		name  string
		steps []step
		want  []string // each logged once, in this order
	}{
		{"write ENOSPC", []step{{typ: blk.TypeOut, sector: 3, write: unix.ENOSPC}, {typ: blk.TypeOut, sector: 9, write: unix.ENOSPC}},
			[]string{"op=write offset=1536 bytes=512 err=\"no space left on device\""}},
		{"write ENOSPC then EDQUOT", []step{{typ: blk.TypeOut, sector: 1, write: unix.ENOSPC}, {typ: blk.TypeOut, sector: 2, write: unix.EDQUOT}},
			[]string{"op=write offset=512 bytes=512 err=\"no space left on device\"", "op=write offset=1024 bytes=512 err=\"disk quota exceeded\""}},
		{"read EIO", []step{{typ: blk.TypeIn, sector: 5, read: unix.EIO}},
			[]string{"op=read offset=2560 bytes=512 err=\"input/output error\""}},
		{"flush EIO", []step{{typ: blk.TypeFlush, sync: unix.EIO}, {typ: blk.TypeFlush, sync: unix.EIO}},
			[]string{"op=flush err=\"fdatasync disk.img: input/output error\""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := &failingBackend{memBackend: newMemBackend(diskSize)}
			d, err := blk.New(be, diskSize, blk.Options{})
			if err != nil {
				t.Fatal(err)
			}
			r, log := newLoggedRig(t, d)
			for _, s := range tc.steps {
				be.mu.Lock()
				be.read, be.write, be.syncer = s.read, s.write, s.sync
				be.mu.Unlock()
				if st := r.request(t, s.typ, s.sector); st != blk.StatusIOErr {
					t.Errorf("status %d, want IOERR", st)
				}
			}
			got := log.String()
			if n := strings.Count(got, "level=WARN"); n != len(tc.want) {
				t.Errorf("%d warnings, want %d:\n%s", n, len(tc.want), got)
			}
			for _, w := range tc.want {
				if strings.Count(got, w) != 1 {
					t.Errorf("log does not say %q once:\n%s", w, got)
				}
			}
		})
	}
}

// An image shrunk under an open disk fails reads past its new end: the
// warning names the image.
func TestHostIOErrorNamesImage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shrunk.img")
	if err := os.WriteFile(path, make([]byte, diskSize), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := blk.Open(path, blk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, log := newLoggedRig(t, d)
	if err := os.Truncate(path, 1024); err != nil {
		t.Fatal(err)
	}
	if st := r.request(t, blk.TypeIn, 10); st != blk.StatusIOErr {
		t.Errorf("status %d, want IOERR", st)
	}
	got := log.String()
	if !strings.Contains(got, "image="+path) || !strings.Contains(got, "op=read offset=5120 bytes=512") {
		t.Errorf("log does not name the image, operation and offset:\n%s", got)
	}
}

// A write to an image shrunk under an open disk is refused, past the new
// end or before it: pwrite past the end would grow the file again with a
// hole, and what was cut off would read back as zeros. The image keeps
// its new size, and the read path's warning says why.
func TestWriteToShrunkImageFails(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sector uint64
		want   string
	}{
		{"past the new end", 10, "op=write offset=5120 bytes=512"},
		{"inside the new end", 1, "op=write offset=512 bytes=512"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "shrunk.img")
			if err := os.WriteFile(path, make([]byte, diskSize), 0o644); err != nil {
				t.Fatal(err)
			}
			d, err := blk.Open(path, blk.Options{})
			if err != nil {
				t.Fatal(err)
			}
			r, log := newLoggedRig(t, d)
			const shrunk = 1024
			if err := os.Truncate(path, shrunk); err != nil {
				t.Fatal(err)
			}
			if st := r.request(t, blk.TypeOut, tc.sector); st != blk.StatusIOErr {
				t.Errorf("status %d, want IOERR", st)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Size() != shrunk {
				t.Errorf("image is %d bytes after the write, want %d (unchanged)", st.Size(), shrunk)
			}
			got := log.String()
			if strings.Count(got, "level=WARN") != 1 || !strings.Contains(got, "image="+path) || !strings.Contains(got, tc.want) ||
				!strings.Contains(got, "the guest's request gets an I/O error") {
				t.Errorf("log does not warn once naming the image, %q and the I/O error:\n%s", tc.want, got)
			}
			if w := d.Stats().Writes; w != 0 {
				t.Errorf("%d writes counted, want 0", w)
			}
		})
	}
}

// TestWriteAfterHiddenTailCut: an image whose size is no whole number of
// sectors hides its last bytes from the guest; cutting those alone off
// is no shrinking of the disk, whose writes go on, while cutting into
// its last sector is.
func TestWriteAfterHiddenTailCut(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  int64 // the image's size after the cut
		want uint8
	}{
		{"the hidden tail", diskSize, blk.StatusOK},
		{"into the last sector", diskSize - 1, blk.StatusIOErr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tail.img")
			if err := os.WriteFile(path, make([]byte, diskSize+100), 0o644); err != nil {
				t.Fatal(err)
			}
			d, err := blk.Open(path, blk.Options{})
			if err != nil {
				t.Fatal(err)
			}
			r, log := newLoggedRig(t, d)
			if err := os.Truncate(path, tc.cut); err != nil {
				t.Fatal(err)
			}
			if st := r.request(t, blk.TypeOut, 1); st != tc.want {
				t.Errorf("status %d, want %d; log:\n%s", st, tc.want, log)
			}
		})
	}
}
