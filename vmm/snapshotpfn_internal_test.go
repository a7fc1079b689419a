package vmm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/snapshot"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/blk"
)

// TestSnapshotWaitsForPFNHalf: a snapshot asked for while the guest has
// written one half of a queue PFN, held because it alone names no RAM (the
// VGA hole), is taken only once the guest wrote the other half, with the
// rings where both place them: a snapshot between the two would restore
// the rings' old place and merge the second half with it. A guest that
// never writes the rest gets the snapshot refused, after a while, and
// runs on.
func TestSnapshotWaitsForPFNHalf(t *testing.T) {
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err != nil {
		t.Skipf("KVM unusable here (%v)", err)
	} else {
		f.Close()
	}
	const pfn = 0x100A0 // 256 MiB + 0xA0000: RAM; its low half alone is the VGA hole
	for _, tc := range []struct {
		name     string
		complete bool // the guest writes the high half
	}{
		{"the guest writes the other half", true},
		{"the guest never writes it", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wait := settleWait
			if tc.complete {
				settleWait = time.Minute
			} else {
				settleWait = 50 * time.Millisecond
			}
			defer func() { settleWait = wait }()
			img := filepath.Join(t.TempDir(), "disk.img")
			if err := os.WriteFile(img, make([]byte, 4096), 0o644); err != nil {
				t.Fatal(err)
			}
			running := make(chan struct{})
			m, err := New(Config{Kernel: "spin", KernelImage: spinGuest(), MemoryMiB: 260, Disks: []blk.Spec{{Path: img}},
				OnEvent: func(e Event) {
					if e.Phase == PhaseFirstRun {
						close(running)
					}
				}})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			ctx, cancel := context.WithCancel(context.Background())
			ran := make(chan error, 1)
			go func() {
				_, err := m.Run(ctx)
				ran <- err
			}()
			defer func() {
				cancel()
				<-ran
			}()
			<-running
			bar, _ := m.virtio[0].dev.PCIConfig().BAR(0)
			out := func(off uint64, v uint16, n int) {
				var b [2]byte
				binary.LittleEndian.PutUint16(b[:], v)
				m.pio.Write(bar+off, b[:n])
			}
			out(virtio.RegStatus, virtio.StatusAcknowledge|virtio.StatusDriver, 1)
			out(virtio.RegQueueSelect, 0, 2)
			out(virtio.RegQueuePFN, pfn&0xFFFF, 2)

			type result struct {
				buf bytes.Buffer
				err error
			}
			done := make(chan *result, 1)
			go func() {
				r := &result{}
				_, r.err = m.Snapshot(&r.buf)
				done <- r
			}()
			var r *result
			if tc.complete {
				select {
				case r = <-done:
					t.Fatalf("snapshot taken between the halves of a PFN (err %v)", r.err)
				case <-time.After(200 * time.Millisecond):
				}
				out(virtio.RegQueuePFN+2, pfn>>16, 2)
			}
			select {
			case r = <-done:
			// Writing 260 MiB takes seconds under -race on a loaded
			// host (14 s was seen): the bound only turns a hang into a
			// failure.
			case <-time.After(time.Minute):
				t.Fatal("snapshot not taken a minute after the PFN was settled")
			}
			if !tc.complete {
				if !errors.Is(r.err, virtio.ErrPFNHeld) {
					t.Fatalf("snapshot with a PFN half written for ever: %v; want ErrPFNHeld", r.err)
				}
				t.Logf("refused: %v", r.err)
				select {
				case err := <-ran:
					t.Fatalf("the guest stopped: %v", err)
				default:
				}
				return
			}
			if r.err != nil {
				t.Fatal(r.err)
			}
			_, section, err := snapshot.Read(bytes.NewReader(r.buf.Bytes()), int64(r.buf.Len()))
			if err != nil {
				t.Fatal(err)
			}
			st, err := decodeState(section)
			if err != nil {
				t.Fatal(err)
			}
			if got := st.Virtio[0].Queues[0].PFN; got != pfn {
				t.Errorf("snapshot's queue 0 PFN %#x, want %#x", got, uint32(pfn))
			}
		})
	}
}
