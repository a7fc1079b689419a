package blk_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"log/slog"
	"testing"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

// FuzzRestore's guest: 128 KiB holding the disk's queue at PFN 1 with
// every available slot naming a request (64 two-buffer chains: a header,
// then 512 bytes and the status byte; reads, writes, flushes and GET_IDs
// of sectors past the 64-sector disk too), so that whatever indices the
// fuzzer restores, the restored device finds requests to serve; the
// fuzzer chooses avail.idx.
const (
	restoreMem     = 128 << 10
	restorePFN     = 1
	restoreHeaders = 0x3000
	restoreBufs    = 0x4000
	restoreChains  = blk.QueueSize / 2
)

var restoreTemplate = func() []byte {
	mem := guestmem.New(make([]byte, restoreMem))
	r, err := virtiotest.NewRing(mem, restorePFN, blk.QueueSize)
	if err != nil {
		panic(err)
	}
	types := []uint32{blk.TypeIn, blk.TypeOut, blk.TypeFlush, blk.TypeGetID}
	for i := range uint64(restoreChains) {
		var h [16]byte
		binary.LittleEndian.PutUint32(h[0:], types[i%4])
		binary.LittleEndian.PutUint64(h[8:], i*3)
		mem.WriteAt(h[:], int64(restoreHeaders+16*i))
		r.AddChain([]virtiotest.Buf{{Addr: restoreHeaders + 16*i, Len: 16}, {Addr: restoreBufs + 1024*i, Len: 513, Write: true}})
	}
	for i := range uint16(blk.QueueSize) {
		r.Publish(2 * (i % restoreChains))
	}
	r.SetAvailIdx(0)
	return mem.Bytes()
}()

// restoreImage is the disk's image every input starts from.
var restoreImage = pattern(diskSize, 7)

// FuzzRestore restores fuzzed transport state into a disk built as a
// machine builds one (over an in-memory image), as a restore does, then
// lets it serve the requests its restored indices find and lets the guest
// drive its registers (ops: offset, value, width per three bytes): no
// panic, no access outside the image, a read-only disk unchanged, every
// state it reaches one Restore accepts again, and a reset that takes it
// all down.
func FuzzRestore(f *testing.F) {
	// A live disk that served 5 requests, 2 more queued; one about to
	// wrap; a broken one; a read-only one whose restored requests write.
	f.Add(uint8(7), uint8(1), true, false, uint32(restorePFN), uint16(5), uint16(5), uint16(7), false, []byte{19, 0, 0x80, 16, 0, 1})
	f.Add(uint8(7), uint8(0), false, false, uint32(restorePFN), uint16(0xFFFE), uint16(0xFFFE), uint16(2), false, []byte{})
	f.Add(uint8(0x47), uint8(2), true, true, uint32(restorePFN), uint16(5), uint16(5), uint16(9), false, []byte{18, 0, 0})
	f.Add(uint8(7), uint8(0), false, false, uint32(restorePFN), uint16(1), uint16(1), uint16(6), true, []byte{8, 1, 2})
	f.Fuzz(func(t *testing.T, status, isr uint8, asserted, broken bool, pfn uint32, last, used, avail uint16, ro bool, ops []byte) {
		mem := guestmem.New(append([]byte(nil), restoreTemplate...))
		if err := mem.Write16(restorePFN*virtio.PageSize+16*blk.QueueSize+2, avail); err != nil {
			t.Fatal(err)
		}
		be := &memBackend{b: append([]byte(nil), restoreImage...)}
		d, err := blk.New(be, diskSize, blk.Options{ReadOnly: ro})
		if err != nil {
			t.Fatal(err)
		}
		irq := virtiotest.NewIRQ()
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		pd, err := virtio.NewPCIDevice(mem, d, irq, log)
		if err != nil {
			t.Fatal(err)
		}
		defer pd.Close()
		s := virtio.TransportState{Type: virtio.TypeBlock, Guest: d.Features(), Status: status, ISR: isr,
			Asserted: asserted, Broken: broken, Queues: []virtio.QueueState{{PFN: pfn, LastAvail: last, UsedIdx: used}}}
		if pd.Restore(s) != nil {
			return
		}
		pd.Start()
		pd.Serve()
		// A fresh disk's transport checks, without restoring, the state
		// this one reached.
		reached := func(when string) {
			resume := pd.Quiesce()
			got := pd.State()
			resume()
			if got.Asserted != irq.Level() {
				t.Fatalf("%s: state says asserted=%v, the line is %v", when, got.Asserted, irq.Level())
			}
			other, err := virtio.NewPCIDevice(mem, d, nil, log)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			if err := other.CheckState(got); err != nil {
				t.Fatalf("%s: the disk reached %+v, which Restore refuses: %v", when, got, err)
			}
		}
		reached("restored and served")
		regs := pd.BARDevice(0)
		bar := uint64(pd.BARSize())
		for n := 0; len(ops) >= 3 && n < 32; n++ {
			off, v, w := uint64(ops[0])%bar, ops[1], ops[2]
			ops = ops[3:]
			buf := make([]byte, []int{1, 2, 4}[w%3])
			if w&0x80 != 0 {
				regs.Read(off, buf)
				continue
			}
			for i := range buf {
				buf[i] = v
			}
			regs.Write(off, buf)
			pd.Serve()
		}
		reached("driven")
		if be.oob {
			t.Fatal("the disk accessed its image outside it")
		}
		if ro && !bytes.Equal(be.b, restoreImage) {
			t.Fatal("a read-only disk's image changed")
		}
		virtiotest.Driver{Regs: regs}.Write8(virtio.RegStatus, 0)
		resume := pd.Quiesce()
		got := pd.State()
		resume()
		if got.Status != 0 || got.ISR != 0 || got.Asserted || got.Broken || got.Queues[0] != (virtio.QueueState{}) || irq.Level() {
			t.Fatalf("after a reset: %+v, line %v", got, irq.Level())
		}
	})
}
