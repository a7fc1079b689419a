package blk_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

// TestDataOnCutPage: a request whose data buffer lies on a guest page
// cut from the file guest memory maps (a restored guest's snapshot file,
// truncated), which preadv and pwritev into the image meet as EFAULT,
// breaks the disk with an error wrapping virtio.ErrMemoryFault and tells
// the fault handler, as a copy meeting SIGBUS there does; it is not
// answered IOERR as if the image had failed. Below the file's new end,
// requests are served as before.
func TestDataOnCutPage(t *testing.T) {
	const cut = 2 << 20 // the memory file's size after the truncation
	tests := []struct {
		name  string
		typ   uint32
		data  uint64
		fault bool
	}{
		{"read into a cut page", blk.TypeIn, cut + 0x1000, true},
		{"write from a cut page", blk.TypeOut, cut + 0x1000, true},
		{"read below the cut", blk.TypeIn, cut - 0x1000, false},
		{"write below the cut", blk.TypeOut, cut - 0x1000, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "mem"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := f.Truncate(guestMem); err != nil {
				t.Fatal(err)
			}
			b, err := unix.Mmap(int(f.Fd()), 0, guestMem, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Munmap(b)
			img := filepath.Join(t.TempDir(), "disk.img")
			if err := os.WriteFile(img, make([]byte, 1<<20), 0o644); err != nil {
				t.Fatal(err)
			}
			disk, err := blk.Open(img, blk.Options{}) // a file: preadv and pwritev
			if err != nil {
				t.Fatal(err)
			}
			r := newBlkRigOn(t, disk, guestmem.New(b))
			faults := make(chan error, 4)
			r.pd.SetOnFault(func(err error) { faults <- err })
			if err := f.Truncate(cut); err != nil {
				t.Fatal(err)
			}
			st := r.status()
			bufs := []virtiotest.Buf{{Addr: r.header(tt.typ, 0), Len: blk.HeaderSize},
				{Addr: tt.data, Len: 512, Write: tt.typ == blk.TypeIn}, {Addr: st, Len: 1, Write: true}}
			if !tt.fault {
				r.submit(t, bufs, false)
				if s, _ := r.mem.Read8(st); s != blk.StatusOK || r.pd.Broken() || len(faults) != 0 {
					t.Fatalf("status %d, broken %v, %d faults; want the request served", s, r.pd.Broken(), len(faults))
				}
				return
			}
			r.ring.Publish(r.ring.Add(r.alloc, bufs, false))
			r.drv.Notify(0)
			select {
			case err := <-faults:
				if !errors.Is(err, virtio.ErrMemoryFault) || !errors.Is(err, unix.EFAULT) {
					t.Errorf("fault %v; want one wrapping ErrMemoryFault and EFAULT", err)
				}
			case <-time.After(virtiotest.Patience):
				s, _ := r.mem.Read8(st)
				t.Fatalf("no fault reported (status %d, broken %v)", s, r.pd.Broken())
			}
			if !r.pd.Broken() {
				t.Error("the disk is not broken after a fault on guest memory")
			}
			if s, _ := r.mem.Read8(st); s != 0xFF {
				t.Errorf("status byte %d; want it untouched (0xff): the request is not the guest's to retry", s)
			}
		})
	}
}
