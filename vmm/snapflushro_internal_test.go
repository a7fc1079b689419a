package vmm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

// einvalSync is an image in memory whose fdatasync fails with EINVAL, as
// on squashfs or iso9660, which have no fsync.
type einvalSync struct {
	mu sync.Mutex
	b  []byte
}

func (e *einvalSync) ReadAt(p []byte, off int64) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return copy(p, e.b[off:]), nil
}

func (e *einvalSync) WriteAt(p []byte, off int64) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return copy(e.b[off:], p), nil
}

func (e *einvalSync) Sync() error { return fmt.Errorf("fdatasync ro.img: %w", unix.EINVAL) }

// guestFlush sends the disk behind pd one FLUSH as a guest driver would
// and returns its status.
func guestFlush(t *testing.T, mem *guestmem.Memory, pd *virtio.PCIDevice) uint8 {
	t.Helper()
	drv := virtiotest.Driver{Regs: pd.BARDevice(0)}
	a := virtiotest.NewAlloc(mem, 4096)
	pfn := a.Pages(2)
	ring, err := virtiotest.NewRing(mem, pfn, drv.QueueSize(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := drv.Attach(0xFFFFFFFF, []uint32{pfn}); err != nil {
		t.Fatal(err)
	}
	hdr, st := a.Take(blk.HeaderSize, 16), a.Take(1, 1)
	var h [blk.HeaderSize]byte
	binary.LittleEndian.PutUint32(h[0:], blk.TypeFlush)
	if _, err := mem.WriteAt(h[:], int64(hdr)); err != nil {
		t.Fatal(err)
	}
	if err := mem.Write8(st, 0xFF); err != nil {
		t.Fatal(err)
	}
	ring.Publish(ring.AddChain([]virtiotest.Buf{{Addr: hdr, Len: blk.HeaderSize}, {Addr: st, Len: 1, Write: true}}))
	drv.Notify(0)
	if _, _, err := ring.WaitUsed(virtiotest.Patience); err != nil {
		t.Fatalf("the FLUSH was not answered: %v", err)
	}
	s, err := mem.Read8(st)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A read-only disk whose image's file system has no fsync (squashfs,
// iso9660: fdatasync fails with EINVAL) does not refuse snapshots after
// the guest flushed it (NetBSD's ld(4) flushes on unmount): its FLUSH is
// answered OK without a sync. A read-write disk over the same image is
// refused, naming it.
func TestSnapshotNotRefusedForReadOnlyDiskFlush(t *testing.T) {
	for _, tc := range []struct {
		name       string
		ro         bool
		wantStatus uint8
		wantRefuse bool
	}{
		{"read-only", true, blk.StatusOK, false},
		{"read-write", false, blk.StatusIOErr, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const size = 64 << 10
			d, err := blk.New(&einvalSync{b: make([]byte, size)}, size, blk.Options{ReadOnly: tc.ro})
			if err != nil {
				t.Fatal(err)
			}
			mem := guestmem.New(make([]byte, 1<<20))
			pd, err := virtio.NewPCIDevice(mem, d, virtiotest.NewIRQ(), slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			defer pd.Close()
			if st := guestFlush(t, mem, pd); st != tc.wantStatus {
				t.Errorf("FLUSH status %d, want %d", st, tc.wantStatus)
			}
			m := &Machine{cfg: Config{Devices: []virtio.Device{d}}, virtio: []*virtioSlot{{dev: pd}}}
			err = m.flushFailed()
			var fe *DiskFlushError
			switch {
			case tc.wantRefuse && (!errors.As(err, &fe) || fe.Disk != "Devices[0]" || !errors.Is(err, unix.EINVAL)):
				t.Errorf("flushFailed() = %v, want a *DiskFlushError for Devices[0] wrapping EINVAL", err)
			case !tc.wantRefuse && err != nil:
				t.Errorf("flushFailed() = %v, want nil: a read-only disk's flush does not refuse snapshots", err)
			}
		})
	}
}
