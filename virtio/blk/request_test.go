package blk_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

const diskSize = 64 * 512

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

func TestRequests(t *testing.T) {
	type result struct {
		status  uint8
		usedLen uint32
	}
	ro := blk.Options{ReadOnly: true, Serial: "ro-disk"}
	rw := blk.Options{Serial: "SER-0123456789abcdef"}
	for _, tc := range []struct {
		name     string
		opts     blk.Options
		indirect bool
		// build returns the chain and the address of the status byte.
		build func(r *blkRig) ([]virtiotest.Buf, uint64)
		want  result
		check func(t *testing.T, r *blkRig, be *memBackend)
	}{
		{name: "IN two sectors", opts: rw, build: func(r *blkRig) ([]virtiotest.Buf, uint64) {
			st := r.status()
			return []virtiotest.Buf{{Addr: r.header(blk.TypeIn, 3), Len: 16}, {Addr: 0x200000, Len: 1024, Write: true}, {Addr: st, Len: 1, Write: true}}, st
		}, want: result{blk.StatusOK, 1025}, check: func(t *testing.T, r *blkRig, be *memBackend) {
			got, _ := r.mem.Slice(0x200000, 1024)
			if !bytes.Equal(got, be.b[3*512:5*512]) {
				t.Error("IN data differs from the image")
			}
		}},
		{name: "IN indirect, 4 KiB segments like ld(4)", opts: rw, indirect: true, build: func(r *blkRig) ([]virtiotest.Buf, uint64) {
			st := r.status()
			return []virtiotest.Buf{{Addr: r.header(blk.TypeIn, 8), Len: 16}, {Addr: 0x201000, Len: 4096, Write: true}, {Addr: 0x200000, Len: 4096, Write: true}, {Addr: st, Len: 1, Write: true}}, st
		}, want: result{blk.StatusOK, 8193}, check: func(t *testing.T, r *blkRig, be *memBackend) {
			a, _ := r.mem.Slice(0x201000, 4096)
			b, _ := r.mem.Slice(0x200000, 4096)
			if !bytes.Equal(a, be.b[8*512:16*512]) || !bytes.Equal(b, be.b[16*512:24*512]) {
				t.Error("scattered IN data differs from the image")
			}
		}},
		{name: "IN data and status merged", opts: rw, build: func(r *blkRig) ([]virtiotest.Buf, uint64) {
			return []virtiotest.Buf{{Addr: r.header(blk.TypeIn, 1), Len: 16}, {Addr: 0x200000, Len: 513, Write: true}}, 0x200000 + 512
		}, want: result{blk.StatusOK, 513}, check: func(t *testing.T, r *blkRig, be *memBackend) {
			got, _ := r.mem.Slice(0x200000, 512)
			if !bytes.Equal(got, be.b[512:1024]) {
				t.Error("IN data differs")
			}
		}},
		{name: "OUT", opts: rw, build: func(r *blkRig) ([]virtiotest.Buf, uint64) {
			r.mem.WriteAt(pattern(1024, 9), 0x200000)
			st := r.status()
			return []virtiotest.Buf{{Addr: r.header(blk.TypeOut, 62), Len: 16}, {Addr: 0x200000, Len: 1024}, {Addr: st, Len: 1, Write: true}}, st
		}, want: result{blk.StatusOK, 1}, check: func(t *testing.T, r *blkRig, be *memBackend) {
			if !bytes.Equal(be.b[62*512:], pattern(1024, 9)) {
				t.Error("OUT data not in the image")
			}
		}},
		{name: "OUT header and data merged, indirect", opts: rw, indirect: true, build: func(r *blkRig) ([]virtiotest.Buf, uint64) {
			hdr := r.header(blk.TypeOut, 5)
			at := r.alloc.Take(16+512, 16)
			h, _ := r.mem.Slice(hdr, 16)
			r.mem.WriteAt(h, int64(at))
			r.mem.WriteAt(pattern(512, 3), int64(at+16))
			st := r.status()
			return []virtiotest.Buf{{Addr: at, Len: 16 + 512}, {Addr: st, Len: 1, Write: true}}, st
		}, want: result{blk.StatusOK, 1}, check: func(t *testing.T, r *blkRig, be *memBackend) {
			if !bytes.Equal(be.b[5*512:6*512], pattern(512, 3)) {
				t.Error("merged OUT data not in the image")
			}
		}},
		{name: "FLUSH syncs before the status", opts: rw, build: func(r *blkRig) ([]virtiotest.Buf, uint64) {
			st := r.status()
			return []virtiotest.Buf{{Addr: r.header(blk.TypeFlush, 0), Len: 16}, {Addr: st, Len: 1, Write: true}}, st
		}, want: result{blk.StatusOK, 1}, check: func(t *testing.T, r *blkRig, be *memBackend) {
			if be.syncs != 1 {
				t.Errorf("%d syncs, want 1", be.syncs)
			}
		}},
		{name: "GET_ID", opts: rw, build: func(r *blkRig) ([]virtiotest.Buf, uint64) {
			st := r.status()
			return []virtiotest.Buf{{Addr: r.header(blk.TypeGetID, 0), Len: 16}, {Addr: 0x200000, Len: 20, Write: true}, {Addr: st, Len: 1, Write: true}}, st
		}, want: result{blk.StatusOK, 21}, check: func(t *testing.T, r *blkRig, be *memBackend) {
			got, _ := r.mem.Slice(0x200000, 20)
			if string(got) != "SER-0123456789abcdef" {
				t.Errorf("serial %q", got)
			}
		}},
		{name: "GET_ID short serial is NUL padded", opts: ro, build: func(r *blkRig) ([]virtiotest.Buf, uint64) {
			r.mem.WriteAt(bytes.Repeat([]byte{0xEE}, 20), 0x200000)
			st := r.status()
			return []virtiotest.Buf{{Addr: r.header(blk.TypeGetID, 0), Len: 16}, {Addr: 0x200000, Len: 20, Write: true}, {Addr: st, Len: 1, Write: true}}, st
		}, want: result{blk.StatusOK, 21}, check: func(t *testing.T, r *blkRig, be *memBackend) {
			got, _ := r.mem.Slice(0x200000, 20)
			if string(got) != "ro-disk\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" {
				t.Errorf("serial %q", got)
			}
		}},
		{name: "IN past the end", opts: rw, build: func(r *blkRig) ([]virtiotest.Buf, uint64) {
			st := r.status()
			return []virtiotest.Buf{{Addr: r.header(blk.TypeIn, 63), Len: 16}, {Addr: 0x200000, Len: 1024, Write: true}, {Addr: st, Len: 1, Write: true}}, st
		}, want: result{blk.StatusIOErr, 1}},
		{name: "IN at the capacity", opts: rw, build: func(r *blkRig) ([]virtiotest.Buf, uint64) {
			st := r.status()
			return []virtiotest.Buf{{Addr: r.header(blk.TypeIn, 64), Len: 16}, {Addr: 0x200000, Len: 512, Write: true}, {Addr: st, Len: 1, Write: true}}, st
		}, want: result{blk.StatusIOErr, 1}},
		{name: "OUT past the end is not performed", opts: rw, build: func(r *blkRig) ([]virtiotest.Buf, uint64) {
			r.mem.WriteAt(pattern(1024, 1), 0x200000)
			st := r.status()
			return []virtiotest.Buf{{Addr: r.header(blk.TypeOut, 63), Len: 16}, {Addr: 0x200000, Len: 1024}, {Addr: st, Len: 1, Write: true}}, st
		}, want: result{blk.StatusIOErr, 1}, check: func(t *testing.T, r *blkRig, be *memBackend) {
			if !bytes.Equal(be.b[63*512:], pattern(diskSize, 100)[63*512:]) {
				t.Error("part of an out-of-range OUT was written")
			}
		}},
		{name: "sector overflows 64 bits", opts: rw, build: func(r *blkRig) ([]virtiotest.Buf, uint64) {
			st := r.status()
			return []virtiotest.Buf{{Addr: r.header(blk.TypeOut, 1<<55), Len: 16}, {Addr: 0x200000, Len: 512}, {Addr: st, Len: 1, Write: true}}, st
		}, want: result{blk.StatusIOErr, 1}},
		{name: "sector max uint64", opts: rw, build: func(r *blkRig) ([]virtiotest.Buf, uint64) {
			st := r.status()
			return []virtiotest.Buf{{Addr: r.header(blk.TypeIn, ^uint64(0)), Len: 16}, {Addr: 0x200000, Len: 512, Write: true}, {Addr: st, Len: 1, Write: true}}, st
		}, want: result{blk.StatusIOErr, 1}},
		{name: "length not a multiple of 512", opts: rw, build: func(r *blkRig) ([]virtiotest.Buf, uint64) {
			st := r.status()
			return []virtiotest.Buf{{Addr: r.header(blk.TypeIn, 0), Len: 16}, {Addr: 0x200000, Len: 100, Write: true}, {Addr: st, Len: 1, Write: true}}, st
		}, want: result{blk.StatusIOErr, 1}},
		{name: "OUT to a read-only disk", opts: ro, build: func(r *blkRig) ([]virtiotest.Buf, uint64) {
			r.mem.WriteAt(pattern(512, 1), 0x200000)
			st := r.status()
			return []virtiotest.Buf{{Addr: r.header(blk.TypeOut, 0), Len: 16}, {Addr: 0x200000, Len: 512}, {Addr: st, Len: 1, Write: true}}, st
		}, want: result{blk.StatusIOErr, 1}, check: func(t *testing.T, r *blkRig, be *memBackend) {
			if !bytes.Equal(be.b[:512], pattern(512, 100)) {
				t.Error("read-only image changed")
			}
		}},
		{name: "IN from a read-only disk", opts: ro, build: func(r *blkRig) ([]virtiotest.Buf, uint64) {
			st := r.status()
			return []virtiotest.Buf{{Addr: r.header(blk.TypeIn, 0), Len: 16}, {Addr: 0x200000, Len: 512, Write: true}, {Addr: st, Len: 1, Write: true}}, st
		}, want: result{blk.StatusOK, 513}},
		// Data in the wrong direction fails the request; before, span
		// found no data to check and answered OK having moved nothing.
		{name: "OUT with its data writable", opts: rw, build: func(r *blkRig) ([]virtiotest.Buf, uint64) {
			r.mem.WriteAt(pattern(512, 1), 0x200000)
			st := r.status()
			return []virtiotest.Buf{{Addr: r.header(blk.TypeOut, 2), Len: 16}, {Addr: 0x200000, Len: 512, Write: true}, {Addr: st, Len: 1, Write: true}}, st
		}, want: result{blk.StatusIOErr, 1}, check: func(t *testing.T, r *blkRig, be *memBackend) {
			if !bytes.Equal(be.b, pattern(diskSize, 100)) {
				t.Error("image changed")
			}
		}},
		{name: "OUT with a writable byte before the status", opts: rw, build: func(r *blkRig) ([]virtiotest.Buf, uint64) {
			r.mem.WriteAt(pattern(512, 1), 0x200000)
			st := r.alloc.Take(2, 1)
			r.mem.WriteAt([]byte{0xFF, 0xFF}, int64(st))
			return []virtiotest.Buf{{Addr: r.header(blk.TypeOut, 2), Len: 16}, {Addr: 0x200000, Len: 512}, {Addr: st, Len: 2, Write: true}}, st + 1
		}, want: result{blk.StatusIOErr, 1}, check: func(t *testing.T, r *blkRig, be *memBackend) {
			if !bytes.Equal(be.b, pattern(diskSize, 100)) {
				t.Error("image changed")
			}
		}},
		{name: "IN with its data readable", opts: rw, build: func(r *blkRig) ([]virtiotest.Buf, uint64) {
			st := r.status()
			return []virtiotest.Buf{{Addr: r.header(blk.TypeIn, 2), Len: 16}, {Addr: 0x200000, Len: 512}, {Addr: st, Len: 1, Write: true}}, st
		}, want: result{blk.StatusIOErr, 1}},
		{name: "IN with readable bytes after the header", opts: rw, build: func(r *blkRig) ([]virtiotest.Buf, uint64) {
			st := r.status()
			return []virtiotest.Buf{{Addr: r.header(blk.TypeIn, 2), Len: 16 + 512}, {Addr: 0x200000, Len: 512, Write: true}, {Addr: st, Len: 1, Write: true}}, st
		}, want: result{blk.StatusIOErr, 1}},
		{name: "unsupported type", opts: rw, build: func(r *blkRig) ([]virtiotest.Buf, uint64) {
			st := r.status()
			return []virtiotest.Buf{{Addr: r.header(11, 0), Len: 16}, {Addr: st, Len: 1, Write: true}}, st
		}, want: result{blk.StatusUnsupp, 1}},
		{name: "header too short", opts: rw, build: func(r *blkRig) ([]virtiotest.Buf, uint64) {
			st := r.status()
			return []virtiotest.Buf{{Addr: r.header(blk.TypeIn, 0), Len: 8}, {Addr: st, Len: 1, Write: true}}, st
		}, want: result{blk.StatusIOErr, 1}},
		// A byte short of a header: the 16th byte, the sector's last,
		// is not there; a request that would succeed fails.
		{name: "GET_ID with a 15-byte header", opts: rw, build: func(r *blkRig) ([]virtiotest.Buf, uint64) {
			st := r.status()
			return []virtiotest.Buf{{Addr: r.header(blk.TypeGetID, 0), Len: 15}, {Addr: 0x200000, Len: 20, Write: true}, {Addr: st, Len: 1, Write: true}}, st
		}, want: result{blk.StatusIOErr, 1}},
		{name: "FLUSH with a 15-byte header", opts: rw, build: func(r *blkRig) ([]virtiotest.Buf, uint64) {
			st := r.status()
			return []virtiotest.Buf{{Addr: r.header(blk.TypeFlush, 0), Len: 15}, {Addr: st, Len: 1, Write: true}}, st
		}, want: result{blk.StatusIOErr, 1}, check: func(t *testing.T, r *blkRig, be *memBackend) {
			if be.syncs != 0 {
				t.Errorf("%d syncs for a refused FLUSH, want 0", be.syncs)
			}
		}},
		{name: "header in a writable buffer", opts: rw, build: func(r *blkRig) ([]virtiotest.Buf, uint64) {
			st := r.status()
			return []virtiotest.Buf{{Addr: r.header(blk.TypeIn, 0), Len: 16, Write: true}, {Addr: st, Len: 1, Write: true}}, st
		}, want: result{blk.StatusIOErr, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := newMemBackend(diskSize)
			copy(be.b, pattern(diskSize, 100))
			d, err := blk.New(be, diskSize, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			r := newBlkRig(t, d)
			bufs, st := tc.build(r)
			if tc.name == "FLUSH syncs before the status" {
				be.onSync = func() {
					if s, _ := r.mem.Read8(st); s != 0xFF {
						t.Errorf("status byte %#x already written during the sync", s)
					}
				}
			}
			n := r.submit(t, bufs, tc.indirect)
			s, _ := r.mem.Read8(st)
			if (result{s, n}) != tc.want {
				t.Errorf("status %d, used len %d; want %d, %d", s, n, tc.want.status, tc.want.usedLen)
			}
			if tc.check != nil {
				tc.check(t, r, be)
			}
			if be.oob {
				t.Error("the device accessed the backend outside the image")
			}
			if r.pd.Broken() {
				t.Error("a bad request broke the device; it should fail alone")
			}
		})
	}
}

func TestNoStatusByte(t *testing.T) {
	be := newMemBackend(diskSize)
	d, _ := blk.New(be, diskSize, blk.Options{})
	r := newBlkRig(t, d)
	r.mem.WriteAt(pattern(512, 1), 0x200000)
	n := r.submit(t, []virtiotest.Buf{{Addr: r.header(blk.TypeOut, 0), Len: 16}, {Addr: 0x200000, Len: 512}}, false)
	if n != 0 {
		t.Errorf("used len %d, want 0", n)
	}
	if be.b[0] != 0 {
		t.Error("a request with no status byte was performed")
	}
}

func TestConfigAndFeatures(t *testing.T) {
	for _, ro := range []bool{false, true} {
		d, _ := blk.New(newMemBackend(diskSize+100), diskSize+100, blk.Options{ReadOnly: ro})
		r := newBlkRig(t, d)
		// 64-bit capacity read as two 32-bit halves, as NetBSD does.
		capacity := uint64(r.drv.Read32(20)) | uint64(r.drv.Read32(24))<<32
		if capacity != 64 {
			t.Errorf("capacity %d sectors, want 64 (a trailing partial sector is not exposed)", capacity)
		}
		if got := r.drv.Read32(28); got != blk.SizeMax {
			t.Errorf("size_max %d", got)
		}
		if got := r.drv.Read32(32); got != blk.SegMax || got > blk.QueueSize-2 {
			t.Errorf("seg_max %d", got)
		}
		f := r.drv.Read32(0)
		want := uint32(1<<1 | 1<<2 | 1<<9 | 1<<28)
		if ro {
			want |= 1 << 5
		}
		if f != want {
			t.Errorf("ro=%v: features %#x, want %#x (no BLK_SIZE, no GEOMETRY)", ro, f, want)
		}
		if pid := r.pd.PCIConfig(); pid == nil {
			t.Fatal("no config")
		}
		var id [4]byte
		r.pd.PCIConfig().Read(0, id[:])
		if id != [4]byte{0xF4, 0x1A, 0x01, 0x10} {
			t.Errorf("vendor/device % x, want f4 1a 01 10", id)
		}
	}
}

func TestNewRejectsTinyDisk(t *testing.T) {
	if _, err := blk.New(newMemBackend(100), 100, blk.Options{}); err == nil {
		t.Error("a disk smaller than a sector was accepted")
	}
	if _, err := blk.New(newMemBackend(512), 512, blk.Options{Serial: "this serial is far too long"}); err == nil {
		t.Error("a 27-byte serial was accepted")
	}
}

// TestRequestSizeLimit: a request's data may not exceed what SIZE_MAX and
// SEG_MAX allow. A guest reusing one large buffer in every descriptor of a
// chain could otherwise ask for gigabytes in one request, and the worker,
// which Close waits for, would move them all.
func TestRequestSizeLimit(t *testing.T) {
	const size = 4 << 20
	for _, tc := range []struct {
		name string
		n    int // descriptors of 1 MiB, all at the same address
		typ  uint32
		want uint8
	}{
		{"IN at the limit", 2, blk.TypeIn, blk.StatusOK},
		{"IN past the limit", 3, blk.TypeIn, blk.StatusIOErr},
		{"OUT past the limit", 3, blk.TypeOut, blk.StatusIOErr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := newMemBackend(size)
			d, err := blk.New(be, size, blk.Options{})
			if err != nil {
				t.Fatal(err)
			}
			r := newBlkRig(t, d)
			st := r.status()
			bufs := []virtiotest.Buf{{Addr: r.header(tc.typ, 0), Len: 16}}
			for range tc.n {
				bufs = append(bufs, virtiotest.Buf{Addr: 0x200000, Len: 1 << 20, Write: tc.typ == blk.TypeIn})
			}
			bufs = append(bufs, virtiotest.Buf{Addr: st, Len: 1, Write: true})
			r.submit(t, bufs, true)
			if s, _ := r.mem.Read8(st); s != tc.want {
				t.Errorf("status %d, want %d", s, tc.want)
			}
		})
	}
}

// TestDMAIntoMemoryHole: guest memory as the VMM gives it has no RAM at
// the VGA window 0xA0000-0xBFFFF (the guest reads all ones there). A
// request whose data or status lies there, even in part, is refused like
// one whose buffer is past the end of RAM: the device is broken, nothing
// is used, and neither the image nor the window's bytes change, where it
// used to answer OK with the data out of the guest's sight.
func TestDMAIntoMemoryHole(t *testing.T) {
	hole := guestmem.Range{Start: 0xA0000, End: 0xC0000}
	for _, tc := range []struct {
		name string
		// build returns the chain (the status byte last).
		build func(r *blkRig) []virtiotest.Buf
		ok    bool
	}{
		{"IN into the window", func(r *blkRig) []virtiotest.Buf {
			return []virtiotest.Buf{{Addr: r.header(blk.TypeIn, 0), Len: 16}, {Addr: 0xA0000, Len: 512, Write: true}, {Addr: r.status(), Len: 1, Write: true}}
		}, false},
		{"IN past the end of RAM, for comparison", func(r *blkRig) []virtiotest.Buf {
			return []virtiotest.Buf{{Addr: r.header(blk.TypeIn, 0), Len: 16}, {Addr: guestMem, Len: 512, Write: true}, {Addr: r.status(), Len: 1, Write: true}}
		}, false},
		{"IN running into the window", func(r *blkRig) []virtiotest.Buf {
			return []virtiotest.Buf{{Addr: r.header(blk.TypeIn, 0), Len: 16}, {Addr: 0x9FE00, Len: 1024, Write: true}, {Addr: r.status(), Len: 1, Write: true}}
		}, false},
		{"IN, status byte in the window", func(r *blkRig) []virtiotest.Buf {
			return []virtiotest.Buf{{Addr: r.header(blk.TypeIn, 0), Len: 16}, {Addr: 0x200000, Len: 512, Write: true}, {Addr: 0xBFFFF, Len: 1, Write: true}}
		}, false},
		{"OUT from the window", func(r *blkRig) []virtiotest.Buf {
			return []virtiotest.Buf{{Addr: r.header(blk.TypeOut, 0), Len: 16}, {Addr: 0xB0000, Len: 512}, {Addr: r.status(), Len: 1, Write: true}}
		}, false},
		{"IN on either side of the window", func(r *blkRig) []virtiotest.Buf {
			return []virtiotest.Buf{{Addr: r.header(blk.TypeIn, 0), Len: 16}, {Addr: 0x9FE00, Len: 512, Write: true}, {Addr: 0xC0000, Len: 512, Write: true}, {Addr: r.status(), Len: 1, Write: true}}
		}, true},
	} {
		for _, indirect := range []bool{false, true} {
			name := tc.name
			if indirect {
				name += ", indirect"
			}
			t.Run(name, func(t *testing.T) {
				be := newMemBackend(diskSize)
				copy(be.b, pattern(diskSize, 5))
				d, err := blk.New(be, diskSize, blk.Options{})
				if err != nil {
					t.Fatal(err)
				}
				mem := guestmem.New(make([]byte, guestMem), hole)
				r := newBlkRigOn(t, d, mem)
				window := mem.Bytes()[hole.Start:hole.End]
				for i := range window {
					window[i] = 0xFF // what the guest reads there
				}
				bufs := tc.build(r)
				head := r.ring.Add(r.alloc, bufs, indirect)
				r.ring.Publish(head)
				r.drv.Notify(0)
				if tc.ok {
					if _, _, err := r.ring.WaitUsed(virtiotest.Patience); err != nil {
						t.Fatal(err)
					}
					if s, _ := mem.Read8(bufs[len(bufs)-1].Addr); s != blk.StatusOK || r.pd.Broken() {
						t.Fatalf("status %d, broken %v; want OK", s, r.pd.Broken())
					}
					return
				}
				deadline := time.Now().Add(virtiotest.Patience)
				for !r.pd.Broken() {
					if time.Now().After(deadline) {
						s, _ := mem.Read8(bufs[len(bufs)-1].Addr)
						t.Fatalf("device not broken: used idx %d, status %d", r.ring.UsedIdx(), s)
					}
					time.Sleep(100 * time.Microsecond)
				}
				if r.ring.UsedIdx() != 0 {
					t.Error("the request was used")
				}
				if !bytes.Equal(be.b, pattern(diskSize, 5)) {
					t.Error("the image changed")
				}
				if !bytes.Equal(window, bytes.Repeat([]byte{0xFF}, len(window))) {
					t.Error("the device wrote into the window")
				}
			})
		}
	}
}

// NetBSD's ld(4) reads the legacy writeback byte (config offset 32)
// whatever features were agreed, and reports the disk's write cache
// enabled only when it is non-zero: the disk has a write-back cache with
// flush, so it reads 1, and a driver's write to it (CONFIG_WCE is not
// offered) changes nothing. The topology between blk_size and writeback
// reads zero.
func TestConfigWriteback(t *testing.T) {
	d, _ := blk.New(newMemBackend(diskSize), diskSize, blk.Options{})
	r := newBlkRig(t, d)
	for _, tc := range []struct {
		name string
		off  uint64 // in the device configuration
		size int
		want uint32
	}{
		{"blk_size", 20, 4, blk.SectorSize},
		{"topology physical_block_exp", 24, 1, 0},
		{"topology alignment_offset", 25, 1, 0},
		{"topology min_io_size", 26, 2, 0},
		{"topology opt_io_size", 28, 4, 0},
		{"writeback", 32, 1, 1},
	} {
		at := virtio.RegConfig + tc.off
		var got uint32
		switch tc.size {
		case 1:
			got = uint32(r.drv.Read8(at))
		case 2:
			got = uint32(r.drv.Read16(at))
		case 4:
			got = r.drv.Read32(at)
		}
		if got != tc.want {
			t.Errorf("%s (config offset %d) reads %d, want %d", tc.name, tc.off, got, tc.want)
		}
	}
	r.drv.Write8(virtio.RegConfig+32, 0)
	if got := r.drv.Read8(virtio.RegConfig + 32); got != 1 {
		t.Errorf("writeback reads %d after a driver wrote 0, want 1 (not writable)", got)
	}
	if f := r.drv.Read32(virtio.RegHostFeatures); f&(1<<11) != 0 {
		t.Errorf("features %#x offer CONFIG_WCE", f)
	}
}
