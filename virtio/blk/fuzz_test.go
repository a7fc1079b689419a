package blk_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

// FuzzBlkRequest builds one request from the input, submits it to a disk
// over an in-memory image that records out-of-range accesses, and checks:
// no panic, termination, no access outside the image or guest memory, a
// status byte the spec allows, no successful transfer outside the disk or
// with data in the wrong direction, and no change to a read-only disk.
//
// layout is read in groups of three bytes per descriptor (length low,
// length high, flags: bit 0 device-writable); the first descriptor points
// at the 16-byte header. opts bit 0 makes the chain indirect, bit 1 the
// disk read-only.
func FuzzBlkRequest(f *testing.F) {
	f.Add(uint32(blk.TypeIn), uint64(0), []byte{16, 0, 0, 0, 2, 1, 1, 0, 1}, uint8(0))
	f.Add(uint32(blk.TypeOut), uint64(62), []byte{16, 0, 0, 0, 4, 0, 1, 0, 1}, uint8(1))
	f.Add(uint32(blk.TypeOut), uint64(63), []byte{16, 2, 0, 1, 0, 1}, uint8(2))
	f.Add(uint32(blk.TypeFlush), uint64(0), []byte{16, 0, 0, 1, 0, 1}, uint8(0))
	f.Add(uint32(blk.TypeGetID), uint64(0), []byte{16, 0, 0, 21, 0, 1}, uint8(1))
	f.Add(uint32(blk.TypeIn), ^uint64(0), []byte{16, 0, 0, 0, 2, 1, 1, 0, 1}, uint8(0))
	f.Add(uint32(99), uint64(0), []byte{8, 0, 0, 1, 0, 1}, uint8(0))
	f.Add(uint32(blk.TypeBarrier|blk.TypeOut), uint64(62), []byte{16, 0, 0, 0, 4, 0, 1, 0, 1}, uint8(2))
	f.Add(uint32(blk.TypeBarrier|blk.TypeIn), uint64(0), []byte{16, 0, 0, 0, 2, 1, 1, 0, 1}, uint8(1))
	f.Add(uint32(blk.TypeBarrier|blk.TypeFlush), uint64(0), []byte{16, 0, 0, 1, 0, 1}, uint8(0))
	f.Fuzz(func(t *testing.T, typ uint32, sector uint64, layout []byte, opts uint8) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			blkRequest(t, typ, sector, layout, opts)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("request did not terminate")
		}
	})
}

func blkRequest(t *testing.T, typ uint32, sector uint64, layout []byte, opts uint8) {
	const (
		memSize  = 256 << 10
		hdrAt    = 0x10000
		bufBase  = 0x14000
		bufSpace = 0x4000
		maxDescs = 8
	)
	mem := guestmem.New(make([]byte, memSize))
	var h [16]byte
	binary.LittleEndian.PutUint32(h[0:], typ)
	binary.LittleEndian.PutUint64(h[8:], sector)
	mem.WriteAt(h[:], hdrAt)
	var bufs []virtiotest.Buf
	for i := 0; i+2 < len(layout) && len(bufs) < maxDescs; i += 3 {
		n := uint32(binary.LittleEndian.Uint16(layout[i:])) % (bufSpace + 1)
		addr := uint64(bufBase + bufSpace*len(bufs))
		if len(bufs) == 0 {
			addr, n = hdrAt, min(n, bufSpace)
		}
		bufs = append(bufs, virtiotest.Buf{Addr: addr, Len: n, Write: layout[i+2]&1 != 0})
	}
	if len(bufs) == 0 {
		return
	}
	// The device reads the header as the first 16 readable bytes, which
	// may come from later buffers when the first is short (merged layouts).
	var eff []byte
	for _, b := range bufs {
		if !b.Write {
			p, _ := mem.Slice(b.Addr, uint64(b.Len))
			eff = append(eff, p...)
		}
	}
	if len(eff) >= 16 {
		typ, sector = binary.LittleEndian.Uint32(eff), binary.LittleEndian.Uint64(eff[8:])
	}
	// BARRIER is a flag on the type: an IN or OUT with it moves data
	// like one without, and the checks below hold for it too.
	typ &^= blk.TypeBarrier
	be := newMemBackend(diskSize)
	copy(be.b, pattern(diskSize, 100))
	ro := opts&2 != 0
	d, err := blk.New(be, diskSize, blk.Options{ReadOnly: ro})
	if err != nil {
		t.Fatal(err)
	}
	q, _ := virtio.NewQueue(mem, blk.QueueSize)
	q.SetFeatures(virtio.Bit(virtio.FeatureIndirectDesc))
	ring, _ := virtiotest.NewRing(mem, 1, blk.QueueSize)
	if err := q.SetPFN(1); err != nil {
		t.Fatal(err)
	}
	if opts&1 != 0 {
		ring.Publish(ring.AddIndirect(0xF000, bufs))
	} else {
		ring.Publish(ring.AddChain(bufs))
	}
	if err := d.Process(0, q); err != nil {
		if !errors.Is(err, virtio.ErrRing) {
			t.Fatalf("Process: %v (not a ring violation)", err)
		}
		return // a misordered chain: refused as a whole, nothing done
	}
	if be.oob {
		t.Fatal("backend accessed outside the image")
	}
	_, used, ok := ring.NextUsed()
	if !ok {
		t.Fatal("request not returned to the used ring")
	}
	var rdLen, wrLen uint64
	var last virtiotest.Buf
	for _, b := range bufs {
		if b.Write {
			wrLen += uint64(b.Len)
			if b.Len > 0 {
				last = b
			}
		} else {
			rdLen += uint64(b.Len)
		}
	}
	if uint64(used) > wrLen {
		t.Fatalf("used length %d > writable length %d", used, wrLen)
	}
	if used == 0 {
		if wrLen != 0 {
			t.Fatal("used length 0 although a status byte existed")
		}
		return
	}
	status, _ := mem.Read8(last.Addr + uint64(last.Len) - 1)
	if status > blk.StatusUnsupp {
		t.Fatalf("status %d", status)
	}
	if status == blk.StatusOK && (typ == blk.TypeIn || typ == blk.TypeOut) {
		data := wrLen - 1
		if typ == blk.TypeOut {
			data = rdLen - 16
		}
		if typ == blk.TypeIn && rdLen != 16 || typ == blk.TypeOut && wrLen != 1 {
			t.Fatalf("type %d with %d readable and %d writable bytes: data in the wrong direction succeeded", typ, rdLen, wrLen)
		}
		if sector > diskSize/512 || data > diskSize-sector*512 || data%512 != 0 {
			t.Fatalf("type %d sector %d, %d bytes: succeeded outside the disk", typ, sector, data)
		}
	}
	if ro && !bytes.Equal(be.b, pattern(diskSize, 100)) {
		t.Fatal("read-only disk changed")
	}
}
