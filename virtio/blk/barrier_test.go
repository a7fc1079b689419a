package blk_test

import (
	"bytes"
	"testing"

	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

// TestBarrierTypes: Linux's virtio_blk up to 2.6.36 ORs the legacy BARRIER
// bit (0x80000000) into the type of a barrier request whether or not
// F_BARRIER was agreed, so with FLUSH its pre- and post-flushes come
// as 0x80000004 and the barrier write as 0x80000001; older drivers send
// FLUSH_OUT (5) for a flush. Each used to be answered UNSUPP, which fails
// the bio and aborts an ext3/ext4 journal. The bit is a flag on the type:
// the base type is served, and a base type the disk does not serve stays
// UNSUPP with or without it. GET_ID with the bit is served too: no driver
// is known to send it, but the bit is defined on every type, and ordering
// a request that neither reads nor writes the image costs nothing, where
// refusing it would be a special case of the rule.
func TestBarrierTypes(t *testing.T) {
	const barrier = 0x80000000
	ro := blk.Options{ReadOnly: true}
	rw := blk.Options{Serial: "barrier-serial"}
	image := pattern(diskSize, 100)
	for _, tc := range []struct {
		name string
		opts blk.Options
		typ  uint32
		// data is the chain's data buffer: its length and, for an OUT,
		// what the guest put in it (nil: no data buffer).
		data       []byte
		write      bool // the data buffer is device-writable
		wantStatus uint8
		wantUsed   uint32
		wantSyncs  int
		// wantGuest is what the data buffer holds afterwards (nil: not
		// checked); wantImage what the image holds.
		wantGuest []byte
		wantImage []byte
	}{
		{name: "OUT with BARRIER writes", opts: rw, typ: barrier | blk.TypeOut, data: pattern(1024, 9),
			wantStatus: blk.StatusOK, wantUsed: 1,
			wantImage: append(append(append([]byte{}, image[:4*512]...), pattern(1024, 9)...), image[6*512:]...)},
		{name: "IN with BARRIER reads", opts: rw, typ: barrier | blk.TypeIn, data: make([]byte, 1024), write: true,
			wantStatus: blk.StatusOK, wantUsed: 1025, wantGuest: image[4*512 : 6*512], wantImage: image},
		{name: "FLUSH with BARRIER syncs", opts: rw, typ: barrier | blk.TypeFlush,
			wantStatus: blk.StatusOK, wantUsed: 1, wantSyncs: 1, wantImage: image},
		{name: "FLUSH_OUT syncs", opts: rw, typ: 5,
			wantStatus: blk.StatusOK, wantUsed: 1, wantSyncs: 1, wantImage: image},
		{name: "FLUSH_OUT with BARRIER syncs", opts: rw, typ: barrier | 5,
			wantStatus: blk.StatusOK, wantUsed: 1, wantSyncs: 1, wantImage: image},
		{name: "FLUSH_OUT on a read-only disk, no sync", opts: ro, typ: 5,
			wantStatus: blk.StatusOK, wantUsed: 1, wantImage: image},
		{name: "GET_ID with BARRIER", opts: rw, typ: barrier | blk.TypeGetID, data: bytes.Repeat([]byte{0xEE}, 20), write: true,
			wantStatus: blk.StatusOK, wantUsed: 21, wantGuest: []byte("barrier-serial\x00\x00\x00\x00\x00\x00"), wantImage: image},
		{name: "OUT with BARRIER to a read-only disk", opts: ro, typ: barrier | blk.TypeOut, data: pattern(512, 9),
			wantStatus: blk.StatusIOErr, wantUsed: 1, wantImage: image},
		{name: "BARRIER with an unknown base type", opts: rw, typ: barrier | 9,
			wantStatus: blk.StatusUnsupp, wantUsed: 1, wantImage: image},
		{name: "unknown type", opts: rw, typ: 9,
			wantStatus: blk.StatusUnsupp, wantUsed: 1, wantImage: image},
		{name: "SCSI_CMD with BARRIER", opts: rw, typ: barrier | 2,
			wantStatus: blk.StatusUnsupp, wantUsed: 1, wantImage: image},
		{name: "another high bit is no BARRIER", opts: rw, typ: 0x40000000 | blk.TypeOut, data: pattern(512, 9),
			wantStatus: blk.StatusUnsupp, wantUsed: 1, wantImage: image},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := newMemBackend(diskSize)
			copy(be.b, image)
			d, err := blk.New(be, diskSize, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			r := newBlkRig(t, d)
			const dataAt = 0x200000
			bufs := []virtiotest.Buf{{Addr: r.header(tc.typ, 4), Len: 16}}
			if tc.data != nil {
				r.mem.WriteAt(tc.data, dataAt)
				bufs = append(bufs, virtiotest.Buf{Addr: dataAt, Len: uint32(len(tc.data)), Write: tc.write})
			}
			st := r.status()
			bufs = append(bufs, virtiotest.Buf{Addr: st, Len: 1, Write: true})
			n := r.submit(t, bufs, false)
			if s, _ := r.mem.Read8(st); s != tc.wantStatus || n != tc.wantUsed {
				t.Errorf("type %#x: status %d, used len %d; want %d, %d", tc.typ, s, n, tc.wantStatus, tc.wantUsed)
			}
			if be.syncs != tc.wantSyncs {
				t.Errorf("type %#x: %d syncs, want %d", tc.typ, be.syncs, tc.wantSyncs)
			}
			if tc.wantGuest != nil {
				if got, _ := r.mem.Slice(dataAt, uint64(len(tc.wantGuest))); !bytes.Equal(got, tc.wantGuest) {
					t.Errorf("type %#x: guest buffer starts % x, want % x", tc.typ, got[:min(len(got), 20)], tc.wantGuest[:min(len(tc.wantGuest), 20)])
				}
			}
			if !bytes.Equal(be.b, tc.wantImage) {
				t.Errorf("type %#x: the image is not what it should be", tc.typ)
			}
			if be.oob || r.pd.Broken() {
				t.Errorf("type %#x: out-of-range access %v, device broken %v", tc.typ, be.oob, r.pd.Broken())
			}
		})
	}
}
