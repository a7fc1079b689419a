package blk_test

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

// Stats counts the writes answered OK and their bytes; reads, flushes,
// GET_ID and refused or failed writes are not counted.
func TestStatsCountWrites(t *testing.T) {
	type req struct {
		typ     uint32
		sector  uint64
		sectors int // of data
	}
	for _, tc := range []struct {
		name     string
		ro       bool
		writeErr error
		reqs     []req
		want     blk.Stats
	}{
		{"nothing", false, nil, nil, blk.Stats{}},
		{"reads, flush, GET_ID", false, nil, []req{{blk.TypeIn, 0, 1}, {blk.TypeIn, 3, 2}, {blk.TypeFlush, 0, 0}, {blk.TypeGetID, 0, 0}}, blk.Stats{}},
		{"writes", false, nil, []req{{blk.TypeOut, 0, 1}, {blk.TypeOut, 5, 3}, {blk.TypeIn, 5, 3}}, blk.Stats{Writes: 2, BytesWritten: 4 * 512}},
		{"past the end", false, nil, []req{{blk.TypeOut, diskSize/512 - 1, 2}, {blk.TypeOut, 1, 1}}, blk.Stats{Writes: 1, BytesWritten: 512}},
		{"read-only", true, nil, []req{{blk.TypeOut, 0, 1}}, blk.Stats{}},
		{"host error", false, unix.ENOSPC, []req{{blk.TypeOut, 0, 1}}, blk.Stats{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := &failingBackend{memBackend: newMemBackend(diskSize), write: tc.writeErr}
			d, err := blk.New(be, diskSize, blk.Options{ReadOnly: tc.ro})
			if err != nil {
				t.Fatal(err)
			}
			r := newBlkRig(t, d)
			for _, q := range tc.reqs {
				bufs := []virtiotest.Buf{{Addr: r.header(q.typ, q.sector), Len: 16}}
				switch q.typ {
				case blk.TypeIn:
					bufs = append(bufs, virtiotest.Buf{Addr: r.alloc.Take(uint64(512*q.sectors), 512), Len: uint32(512 * q.sectors), Write: true})
				case blk.TypeOut:
					bufs = append(bufs, virtiotest.Buf{Addr: r.alloc.Take(uint64(512*q.sectors), 512), Len: uint32(512 * q.sectors)})
				case blk.TypeGetID:
					bufs = append(bufs, virtiotest.Buf{Addr: r.alloc.Take(blk.SerialLen, 1), Len: blk.SerialLen, Write: true})
				}
				bufs = append(bufs, virtiotest.Buf{Addr: r.status(), Len: 1, Write: true})
				r.submit(t, bufs, false)
			}
			if got := d.Stats(); got != tc.want {
				t.Errorf("Stats() = %+v, want %+v", got, tc.want)
			}
		})
	}
}
