package virtio_test

import (
	"errors"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

// truncatedMemory maps a file of memSize bytes privately as guest memory
// (as a restore maps its snapshot file) and returns it with the file, for
// the test to cut.
func truncatedMemory(t *testing.T) (*guestmem.Memory, *os.File) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "mem"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := f.Truncate(memSize); err != nil {
		t.Fatal(err)
	}
	b, err := unix.Mmap(int(f.Fd()), 0, memSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(b) })
	return guestmem.New(b), f
}

// TestProcessMemoryFault: a device whose Process touches a guest page cut
// from the file the memory maps (SIGBUS, which recover cannot catch
// unless it is made a panic) breaks the device with a MemoryFaultError
// and tells the fault handler, instead of killing the process; a page the
// below the file's new end is served as before. (A truncation unmaps the
// pages past the end from private mappings even where they were
// copied on write.)
func TestProcessMemoryFault(t *testing.T) {
	const cut = 0x80000 // the file's size after the truncation
	for _, tc := range []struct {
		name      string
		buf       uint64
		wantFault bool
	}{
		{"buffer past the file's end", cut + 0x1000, true},
		{"buffer below the file's end", cut - 0x1000, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem, f := truncatedMemory(t)
			r := newRigOn(t, newFakeDev(), mem)
			var faults []error
			r.pd.SetOnFault(func(err error) { faults = append(faults, err) })
			if _, err := r.drv.Attach(0, r.pfns); err != nil {
				t.Fatal(err)
			}
			if tc.buf < cut {
				// Copied on write: still gone if it were past the end.
				if err := mem.Write8(tc.buf, 1); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.Truncate(cut); err != nil {
				t.Fatal(err)
			}
			ring := r.rings[0]
			ring.Publish(ring.AddChain([]virtiotest.Buf{{Addr: tc.buf, Len: 32, Write: true}}))
			// On this goroutine, no notify: the worker never serves it.
			r.pd.Serve()
			if debug.SetPanicOnFault(false) {
				t.Error("Serve left its caller's goroutine panicking on faults")
			}
			if !tc.wantFault {
				if r.pd.Broken() || len(faults) != 0 {
					t.Fatalf("broken %v, faults %v; want the request served", r.pd.Broken(), faults)
				}
				if _, n, ok := ring.NextUsed(); !ok || n != 32 {
					t.Fatalf("used: %d bytes, %v; want the 32-byte buffer", n, ok)
				}
				return
			}
			var mfe *virtio.MemoryFaultError
			if len(faults) != 1 || !errors.As(faults[0], &mfe) || !errors.Is(faults[0], virtio.ErrMemoryFault) || mfe.Queue != 0 {
				t.Fatalf("faults %v; want one MemoryFaultError on queue 0", faults)
			}
			if base := uintptr(unsafePointer(mem.Bytes())); mfe.Addr != base+uintptr(tc.buf) {
				t.Errorf("fault at %#x; want the buffer's page, %#x", mfe.Addr, base+uintptr(tc.buf))
			}
			if !r.pd.Broken() {
				t.Error("the device is not broken")
			}
			// The chain taken is never given back; a snapshot records
			// it not taken, a state another device restores.
			st := r.pd.State()
			if q := st.Queues[0]; q.LastAvail != q.UsedIdx || q.UsedIdx != 0 {
				t.Errorf("broken device's queue 0 recorded %+v, want last_avail = used idx = 0", q)
			}
			other, _ := stateRig(t, guestmem.New(make([]byte, memSize)), newFakeDev())
			if err := other.CheckState(st); err != nil {
				t.Errorf("the broken device's state is refused: %v", err)
			}
		})
	}
}

// unsafePointer is the address of b's first byte.
func unsafePointer(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }
