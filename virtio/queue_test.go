package virtio_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

const memSize = 1 << 20

// setup returns fake guest memory, a queue of size entries placed at PFN 1
// with indirect descriptors agreed, and the driver's view of the same ring.
func setup(t testing.TB, size uint16) (*guestmem.Memory, *virtio.Queue, *virtiotest.Ring, *virtiotest.Alloc) {
	t.Helper()
	mem := guestmem.New(make([]byte, memSize))
	q, err := virtio.NewQueue(mem, size)
	if err != nil {
		t.Fatal(err)
	}
	q.SetFeatures(virtio.Bit(virtio.FeatureIndirectDesc))
	a := virtiotest.NewAlloc(mem, 4096)
	pfn := a.Pages((virtio.RingBytes(size) + 4095) / 4096)
	r, err := virtiotest.NewRing(mem, pfn, size)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.SetPFN(pfn); err != nil {
		t.Fatal(err)
	}
	return mem, q, r, a
}

func TestNewQueueSize(t *testing.T) {
	mem := guestmem.New(make([]byte, 4096))
	for _, tc := range []struct {
		size uint16
		ok   bool
	}{{0, false}, {1, true}, {3, false}, {100, false}, {128, true}, {256, true}, {32768, true}, {65535, false}} {
		_, err := virtio.NewQueue(mem, tc.size)
		if (err == nil) != tc.ok {
			t.Errorf("NewQueue(%d): err %v, want ok=%v", tc.size, err, tc.ok)
		}
	}
}

func TestLegacyLayout(t *testing.T) {
	// Legacy layout for 128 entries: table 2048 bytes, avail right after
	// (2048 + 4 + 256 + 2 = 2310), used at the next page: 4096; the used
	// ring is 4 + 1024 + 2 bytes.
	if got := virtio.RingBytes(128); got != 4096+4+8*128+2 {
		t.Errorf("RingBytes(128) = %d, want %d", got, 4096+4+8*128+2)
	}
	// 256 entries: table 4096, avail to 4096+4+512+2 = 4614, used at 8192.
	if got := virtio.RingBytes(256); got != 8192+4+8*256+2 {
		t.Errorf("RingBytes(256) = %d", got)
	}
	_, q, r, _ := setup(t, 128)
	if r.Desc != uint64(q.PFN())*4096 || r.Avail != r.Desc+2048 || r.Used != r.Desc+4096 {
		t.Errorf("layout desc %#x avail %#x used %#x", r.Desc, r.Avail, r.Used)
	}
}

func TestSetPFN(t *testing.T) {
	mem := guestmem.New(make([]byte, 64*1024))
	q, _ := virtio.NewQueue(mem, 128)
	for _, tc := range []struct {
		name  string
		pfn   uint32
		ready bool
	}{
		{"fits", 1, true},
		{"near the end", 14, true},            // 14*4096 + 5126 <= 64 KiB
		{"used ring past the end", 15, false}, // avail fits, used does not
		{"far outside", 0xFFFFFFFF, false},
		{"zero takes it down", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := q.SetPFN(tc.pfn)
			if q.Ready() != tc.ready {
				t.Fatalf("Ready = %v, want %v (err %v)", q.Ready(), tc.ready, err)
			}
			if !tc.ready && tc.pfn != 0 && !errors.Is(err, virtio.ErrRing) {
				t.Fatalf("err = %v, want ErrRing", err)
			}
		})
	}
	if _, _, err := q.Pop(); !errors.Is(err, virtio.ErrNotReady) {
		t.Errorf("Pop on a queue that is down: %v, want ErrNotReady", err)
	}
	if err := q.Push(0, 0); !errors.Is(err, virtio.ErrNotReady) {
		t.Errorf("Push on a queue that is down: %v, want ErrNotReady", err)
	}
}

func TestPopValidChains(t *testing.T) {
	for _, tc := range []struct {
		name     string
		indirect bool
		bufs     []virtiotest.Buf
	}{
		{"single readable", false, []virtiotest.Buf{{Addr: 0x20000, Len: 16}}},
		{"single writable", false, []virtiotest.Buf{{Addr: 0x20000, Len: 1, Write: true}}},
		{"blk-like", false, []virtiotest.Buf{{Addr: 0x20000, Len: 16}, {Addr: 0x30000, Len: 4096, Write: true}, {Addr: 0x21000, Len: 1, Write: true}}},
		{"zero length buffer", false, []virtiotest.Buf{{Addr: 0x20000, Len: 0}, {Addr: 0x20000, Len: 1, Write: true}}},
		{"indirect blk-like", true, []virtiotest.Buf{{Addr: 0x20000, Len: 16}, {Addr: 0x30000, Len: 4096}, {Addr: 0x31000, Len: 4096}, {Addr: 0x21000, Len: 1, Write: true}}},
		{"full queue direct", false, nBufs(8)},
		{"indirect of queue size", true, nBufs(8)},
		{"last byte of memory", false, []virtiotest.Buf{{Addr: memSize - 1, Len: 1, Write: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, q, r, a := setup(t, 8)
			head := r.Add(a, tc.bufs, tc.indirect)
			r.Publish(head)
			c, ok, err := q.Pop()
			if err != nil || !ok {
				t.Fatalf("Pop: ok %v err %v", ok, err)
			}
			if c.Head != head {
				t.Errorf("head %d, want %d", c.Head, head)
			}
			want := make([]virtio.Desc, len(tc.bufs))
			for i, b := range tc.bufs {
				want[i] = virtio.Desc{Addr: b.Addr, Len: b.Len, Write: b.Write}
			}
			if !reflect.DeepEqual(c.Descs, want) {
				t.Errorf("descs %+v, want %+v", c.Descs, want)
			}
			if _, ok, err := q.Pop(); ok || err != nil {
				t.Errorf("second Pop: ok %v err %v, want empty", ok, err)
			}
		})
	}
}

func nBufs(n int) []virtiotest.Buf {
	b := make([]virtiotest.Buf, n)
	for i := range b {
		b[i] = virtiotest.Buf{Addr: 0x40000 + 0x100*uint64(i), Len: 0x100, Write: i >= n/2}
	}
	return b
}

func TestPopRejects(t *testing.T) {
	const size = 8
	rd := func(addr uint64) virtiotest.Buf { return virtiotest.Buf{Addr: addr, Len: 16} }
	wr := func(addr uint64) virtiotest.Buf { return virtiotest.Buf{Addr: addr, Len: 16, Write: true} }
	for _, tc := range []struct {
		name  string
		rule  string // what the error must say: the rule that refused the chain
		build func(r *virtiotest.Ring, a *virtiotest.Alloc)
	}{
		{"head index >= size", "(queue): descriptor index 8 >= table size 8", func(r *virtiotest.Ring, _ *virtiotest.Alloc) { r.Publish(size) }},
		{"head index 0xFFFF", "(queue): descriptor index 65535 >= table size 8", func(r *virtiotest.Ring, _ *virtiotest.Alloc) { r.Publish(0xFFFF) }},
		{"next index >= size", "chain at head 0 (queue): descriptor index 8 >= table size 8", func(r *virtiotest.Ring, _ *virtiotest.Alloc) {
			r.WriteDesc(r.Desc, 0, 0x20000, 16, virtio.DescNext, size)
			r.Publish(0)
		}},
		{"self loop", "chain at head 3 (queue): chain longer than its table (8 entries)", func(r *virtiotest.Ring, _ *virtiotest.Alloc) {
			r.WriteDesc(r.Desc, 3, 0x20000, 16, virtio.DescNext, 3)
			r.Publish(3)
		}},
		{"two-descriptor loop", "(queue): chain longer than its table (8 entries)", func(r *virtiotest.Ring, _ *virtiotest.Alloc) {
			r.WriteDesc(r.Desc, 0, 0x20000, 16, virtio.DescNext, 1)
			r.WriteDesc(r.Desc, 1, 0x20000, 16, virtio.DescNext, 0)
			r.Publish(0)
		}},
		{"chain longer than the queue", "(queue): chain longer than its table (8 entries)", func(r *virtiotest.Ring, _ *virtiotest.Alloc) {
			for i := uint16(0); i < size; i++ {
				r.WriteDesc(r.Desc, i, 0x20000, 16, virtio.DescNext, (i+1)%size)
			}
			r.Publish(0)
		}},
		// A loop is refused at its 9th descriptor, the first past the
		// table: read, the 9th (descriptor 0 again, readable after the
		// writable ones) would be refused for its direction instead.
		// TestPopValidChains takes a chain of all 8.
		{"loop refused at the descriptor past the table", "chain at head 0 (queue): chain longer than its table (8 entries)", func(r *virtiotest.Ring, _ *virtiotest.Alloc) {
			r.WriteDesc(r.Desc, 0, 0x20000, 16, virtio.DescNext, 1)
			for i := uint16(1); i < size; i++ {
				r.WriteDesc(r.Desc, i, 0x20000, 16, virtio.DescNext|virtio.DescWrite, (i+1)%size)
			}
			r.Publish(0)
		}},
		{"buffer past end of memory", "(queue): descriptor 0: buffer: guest range [0xffff8, +0x10): outside guest memory", func(r *virtiotest.Ring, _ *virtiotest.Alloc) {
			r.Publish(r.AddChain([]virtiotest.Buf{{Addr: memSize - 8, Len: 16}}))
		}},
		{"buffer address far outside", "(queue): descriptor 0: buffer: guest range [0x10000000000, +0x1): outside guest memory", func(r *virtiotest.Ring, _ *virtiotest.Alloc) {
			r.Publish(r.AddChain([]virtiotest.Buf{{Addr: 1 << 40, Len: 1}}))
		}},
		{"address plus length overflows", "(queue): descriptor 0: buffer: guest range [0xfffffffffffffff0, +0x20): outside guest memory", func(r *virtiotest.Ring, _ *virtiotest.Alloc) {
			r.Publish(r.AddChain([]virtiotest.Buf{{Addr: 0xFFFFFFFFFFFFFFF0, Len: 0x20}}))
		}},
		{"readable after writable", "(queue): descriptor 2 is device-readable after a device-writable one", func(r *virtiotest.Ring, _ *virtiotest.Alloc) {
			r.Publish(r.AddChain([]virtiotest.Buf{rd(0x20000), wr(0x21000), rd(0x22000)}))
		}},
		{"readable after writable in indirect", "(indirect table): descriptor 1 is device-readable after a device-writable one", func(r *virtiotest.Ring, a *virtiotest.Alloc) {
			r.Publish(r.AddIndirect(a.Take(48, 16), []virtiotest.Buf{wr(0x21000), rd(0x22000), wr(0x23000)}))
		}},
		{"indirect length not a multiple of 16", "indirect table length 24 is not a non-zero multiple of 16", func(r *virtiotest.Ring, a *virtiotest.Alloc) {
			r.WriteDesc(r.Desc, 0, a.Take(64, 16), 24, virtio.DescIndirect, 0)
			r.Publish(0)
		}},
		{"indirect length 0", "indirect table length 0 is not a non-zero multiple of 16", func(r *virtiotest.Ring, a *virtiotest.Alloc) {
			r.WriteDesc(r.Desc, 0, a.Take(64, 16), 0, virtio.DescIndirect, 0)
			r.Publish(0)
		}},
		{"indirect with NEXT", "indirect descriptor 0 also has NEXT", func(r *virtiotest.Ring, a *virtiotest.Alloc) {
			tbl := a.Take(16, 16)
			r.WriteDesc(tbl, 0, 0x20000, 16, 0, 0)
			r.WriteDesc(r.Desc, 0, tbl, 16, virtio.DescIndirect|virtio.DescNext, 1)
			r.WriteDesc(r.Desc, 1, 0x20000, 16, 0, 0)
			r.Publish(0)
		}},
		{"nested indirect", "(indirect table): indirect descriptor inside an indirect table", func(r *virtiotest.Ring, a *virtiotest.Alloc) {
			inner, outer := a.Take(16, 16), a.Take(16, 16)
			r.WriteDesc(inner, 0, 0x20000, 16, 0, 0)
			r.WriteDesc(outer, 0, inner, 16, virtio.DescIndirect, 0)
			r.WriteDesc(r.Desc, 0, outer, 16, virtio.DescIndirect, 0)
			r.Publish(0)
		}},
		{"indirect table outside memory", "(queue): indirect table: guest range [0xffff0, +0x20): outside guest memory", func(r *virtiotest.Ring, _ *virtiotest.Alloc) {
			r.WriteDesc(r.Desc, 0, memSize-16, 32, virtio.DescIndirect, 0)
			r.Publish(0)
		}},
		{"indirect table larger than the queue", "indirect table of 9 entries exceeds the queue size 8", func(r *virtiotest.Ring, a *virtiotest.Alloc) {
			r.Publish(r.AddIndirect(a.Take(16*(size+1), 16), nBufs(size+1)))
		}},
		{"loop in indirect table", "(indirect table): chain longer than its table (2 entries)", func(r *virtiotest.Ring, a *virtiotest.Alloc) {
			tbl := a.Take(32, 16)
			r.WriteDesc(tbl, 0, 0x20000, 16, virtio.DescNext, 1)
			r.WriteDesc(tbl, 1, 0x20000, 16, virtio.DescNext, 0)
			r.WriteDesc(r.Desc, 0, tbl, 32, virtio.DescIndirect, 0)
			r.Publish(0)
		}},
		{"loop in indirect table refused past its size", "(indirect table): chain longer than its table (2 entries)", func(r *virtiotest.Ring, a *virtiotest.Alloc) {
			tbl := a.Take(32, 16)
			r.WriteDesc(tbl, 0, 0x20000, 16, virtio.DescNext, 1)
			r.WriteDesc(tbl, 1, 0x20000, 16, virtio.DescNext|virtio.DescWrite, 0)
			r.WriteDesc(r.Desc, 0, tbl, 32, virtio.DescIndirect, 0)
			r.Publish(0)
		}},
		{"indirect next index >= table size", "(indirect table): descriptor index 2 >= table size 2", func(r *virtiotest.Ring, a *virtiotest.Alloc) {
			tbl := a.Take(32, 16)
			r.WriteDesc(tbl, 0, 0x20000, 16, virtio.DescNext, 2)
			r.WriteDesc(tbl, 1, 0x20000, 16, 0, 0)
			r.WriteDesc(r.Desc, 0, tbl, 32, virtio.DescIndirect, 0)
			r.Publish(0)
		}},
		{"indirect buffer outside memory", "(indirect table): descriptor 0: buffer: guest range [0x100000, +0x1): outside guest memory", func(r *virtiotest.Ring, a *virtiotest.Alloc) {
			r.Publish(r.AddIndirect(a.Take(16, 16), []virtiotest.Buf{{Addr: memSize, Len: 1}}))
		}},
		{"avail idx jumps by more than the size", "avail idx 9 is 9 entries ahead of the device's 0 (queue size 8)", func(r *virtiotest.Ring, _ *virtiotest.Alloc) {
			r.SetAvailIdx(size + 1)
		}},
		{"avail idx goes backwards", "avail idx 65535 is 65535 entries ahead of the device's 0 (queue size 8)", func(r *virtiotest.Ring, _ *virtiotest.Alloc) {
			r.SetAvailIdx(0xFFFF)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, q, r, a := setup(t, size)
			tc.build(r, a)
			c, ok, err := q.Pop()
			if !errors.Is(err, virtio.ErrRing) || ok {
				t.Fatalf("Pop = %+v, ok %v, err %v; want an ErrRing error", c, ok, err)
			}
			if !strings.Contains(err.Error(), tc.rule) {
				t.Errorf("Pop refused with %q; want the rule %q", err, tc.rule)
			}
			// A buffer or table outside memory wraps the cause, as a
			// queue PFN's does.
			if strings.Contains(tc.rule, "outside guest memory") && !errors.Is(err, guestmem.ErrOutOfRange) {
				t.Errorf("Pop refused with %q, which does not wrap guestmem.ErrOutOfRange", err)
			}
		})
	}
}

func TestPopFullRing(t *testing.T) {
	// An avail idx exactly one queue ahead is legal: every entry is used.
	_, q, r, _ := setup(t, 4)
	for i := 0; i < 4; i++ {
		r.Publish(r.AddChain([]virtiotest.Buf{{Addr: 0x20000, Len: 1, Write: true}}))
	}
	for i := 0; i < 4; i++ {
		if _, ok, err := q.Pop(); !ok || err != nil {
			t.Fatalf("Pop %d: ok %v err %v", i, ok, err)
		}
	}
	if _, ok, err := q.Pop(); ok || err != nil {
		t.Fatalf("Pop after the ring was drained: ok %v err %v", ok, err)
	}
}

func TestPushPublishesUsed(t *testing.T) {
	_, q, r, _ := setup(t, 4)
	// Run past the 16-bit index wrap to prove the indices are modular.
	for i := 0; i < 70000; i++ {
		head := r.AddChain([]virtiotest.Buf{{Addr: 0x20000, Len: 8, Write: true}})
		r.Publish(head)
		c, ok, err := q.Pop()
		if !ok || err != nil {
			t.Fatalf("request %d: Pop ok %v err %v", i, ok, err)
		}
		if err := q.Push(c.Head, uint32(i)); err != nil {
			t.Fatal(err)
		}
		id, n, ok := r.NextUsed()
		if !ok || id != uint32(head) || n != uint32(i) {
			t.Fatalf("request %d: used (%d, %d, %v), want (%d, %d, true)", i, id, n, ok, head, i)
		}
	}
	if r.UsedIdx() != uint16(70000%65536) {
		t.Errorf("used.idx %d, want %d", r.UsedIdx(), 70000%65536)
	}
	if err := q.Push(4, 0); err == nil {
		t.Error("Push of head 4 on a queue of 4: no error")
	}
}

func TestNeedsInterrupt(t *testing.T) {
	for _, tc := range []struct {
		name   string
		flags  uint16
		push   bool
		expect bool
	}{
		{"pushed, interrupts wanted", 0, true, true},
		{"pushed, NO_INTERRUPT", 1, true, false},
		{"nothing pushed", 0, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, q, r, _ := setup(t, 4)
			r.SetAvailFlags(tc.flags)
			if tc.push {
				r.Publish(r.AddChain([]virtiotest.Buf{{Addr: 0x20000, Len: 1, Write: true}}))
				c, _, _ := q.Pop()
				if err := q.Push(c.Head, 1); err != nil {
					t.Fatal(err)
				}
			}
			if got := q.NeedsInterrupt(); got != tc.expect {
				t.Fatalf("NeedsInterrupt = %v, want %v", got, tc.expect)
			}
			if q.NeedsInterrupt() {
				t.Fatal("second NeedsInterrupt with nothing new pushed = true")
			}
		})
	}
}

func TestSegments(t *testing.T) {
	mem, q, r, _ := setup(t, 4)
	copy(mem.Bytes()[0x20000:], "header..")
	r.Publish(r.AddChain([]virtiotest.Buf{{Addr: 0x20000, Len: 8}, {Addr: 0x21000, Len: 0, Write: true}, {Addr: 0x22000, Len: 3, Write: true}}))
	c, _, err := q.Pop()
	if err != nil {
		t.Fatal(err)
	}
	rd, err := c.Segments(nil, false)
	if err != nil || len(rd) != 1 || string(rd[0]) != "header.." {
		t.Fatalf("readable segments %q, err %v", rd, err)
	}
	wr, _ := c.Segments(nil, true)
	if len(wr) != 1 || len(wr[0]) != 3 {
		t.Fatalf("writable segments %q: want one of 3 bytes (empty ones skipped)", wr)
	}
	if c.ReadableLen() != 8 || c.WritableLen() != 3 {
		t.Errorf("lengths %d/%d, want 8/3", c.ReadableLen(), c.WritableLen())
	}
}

func TestSegmentsMergeAdjacent(t *testing.T) {
	mem, q, r, _ := setup(t, 8)
	r.Publish(r.AddChain([]virtiotest.Buf{
		{Addr: 0x20000, Len: 16},                                                         // header, not adjacent to the data
		{Addr: 0x30000, Len: 4096, Write: true}, {Addr: 0x31000, Len: 4096, Write: true}, // adjacent: one slice
		{Addr: 0x40000, Len: 4096, Write: true}, // gap: a new slice
		{Addr: 0x41000, Len: 1, Write: true},    // adjacent again
	}))
	c, _, err := q.Pop()
	if err != nil {
		t.Fatal(err)
	}
	wr, err := c.Segments(nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(wr) != 2 || len(wr[0]) != 8192 || len(wr[1]) != 4097 {
		t.Fatalf("segments of lengths %d, want [8192 4097]", lens(wr))
	}
	wr[0][8191] = 7
	if b, _ := mem.Read8(0x31FFF); b != 7 {
		t.Error("merged slice does not alias guest memory")
	}
}

func lens(s [][]byte) []int {
	var n []int
	for _, b := range s {
		n = append(n, len(b))
	}
	return n
}

// vgaWindow is the hole the VMM leaves in guest memory: the guest reads
// all ones there, so the device must not take rings or buffers from it.
var vgaWindow = guestmem.Range{Start: 0xA0000, End: 0xC0000}

// TestMemoryHoles: rings, descriptor tables and buffers that touch a hole
// of guest memory are refused as a corrupt ring, exactly as those past the
// end of RAM are; the RAM on either side serves.
func TestMemoryHoles(t *testing.T) {
	const size = 8
	for _, tc := range []struct {
		name string
		pfn  uint32 // 0: the ring at PFN 1
		bufs []virtiotest.Buf
		ind  uint64 // indirect table address (0: a direct chain)
		rule string // "": served
	}{
		{name: "rings at PFN 0xA0", pfn: 0xA0, rule: "queue PFN 0xa0: rings of 8 entries at 0xa0000: guest range [0xa0000, +0x1046): outside guest memory (no RAM at [0xa0000, 0xc0000))"},
		{name: "used ring running into the window", pfn: 0x9F, rule: "queue PFN 0x9f"},
		{name: "rings above the window", pfn: 0xC0},
		{name: "buffer in the window", bufs: []virtiotest.Buf{{Addr: 0xA0000, Len: 512, Write: true}},
			rule: "(queue): descriptor 0: buffer: guest range [0xa0000, +0x200): outside guest memory"},
		{name: "buffer running into the window", bufs: []virtiotest.Buf{{Addr: 0x9FF00, Len: 512, Write: true}},
			rule: "(queue): descriptor 0: buffer: guest range [0x9ff00, +0x200)"},
		{name: "buffer ending in the window's last byte", bufs: []virtiotest.Buf{{Addr: 0xBFF00, Len: 256}},
			rule: "(queue): descriptor 0: buffer: guest range [0xbff00, +0x100)"},
		{name: "buffers on either side", bufs: []virtiotest.Buf{{Addr: 0x9FE00, Len: 512}, {Addr: 0xC0000, Len: 512, Write: true}}},
		{name: "indirect table in the window", bufs: []virtiotest.Buf{{Addr: 0x20000, Len: 16}}, ind: 0xB0000,
			rule: "(queue): indirect table: guest range [0xb0000, +0x10): outside guest memory"},
		{name: "indirect buffer in the window", bufs: []virtiotest.Buf{{Addr: 0x20000, Len: 16}, {Addr: 0xA8000, Len: 4096, Write: true}}, ind: 0x30000,
			rule: "(indirect table): descriptor 1: buffer: guest range [0xa8000, +0x1000)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := guestmem.New(make([]byte, memSize), vgaWindow)
			q, err := virtio.NewQueue(mem, size)
			if err != nil {
				t.Fatal(err)
			}
			q.SetFeatures(virtio.Bit(virtio.FeatureIndirectDesc))
			pfn := tc.pfn
			if pfn == 0 {
				pfn = 1
			}
			err = q.SetPFN(pfn)
			if len(tc.bufs) == 0 {
				if tc.rule == "" && (err != nil || !q.Ready()) {
					t.Fatalf("SetPFN(%#x): %v, ready %v", pfn, err, q.Ready())
				}
				if tc.rule != "" && (!errors.Is(err, virtio.ErrRing) || !errors.Is(err, guestmem.ErrOutOfRange) || q.Ready() || !strings.Contains(err.Error(), tc.rule)) {
					t.Fatalf("SetPFN(%#x): %v, ready %v; want an ErrRing and ErrOutOfRange error saying %q", pfn, err, q.Ready(), tc.rule)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// The driver side writes the ring in the backing bytes: a
			// hostile guest's ring is not checked by anyone but the device.
			r, err := virtiotest.NewRing(guestmem.New(mem.Bytes()), pfn, size)
			if err != nil {
				t.Fatal(err)
			}
			if tc.ind != 0 {
				r.Publish(r.AddIndirect(tc.ind, tc.bufs))
			} else {
				r.Publish(r.AddChain(tc.bufs))
			}
			c, ok, err := q.Pop()
			if tc.rule == "" {
				if err != nil || !ok || len(c.Descs) != len(tc.bufs) {
					t.Fatalf("Pop = %+v, ok %v, err %v; want the chain served", c, ok, err)
				}
				return
			}
			if !errors.Is(err, virtio.ErrRing) || ok {
				t.Fatalf("Pop = %+v, ok %v, err %v; want an ErrRing error", c, ok, err)
			}
			if !strings.Contains(err.Error(), tc.rule) {
				t.Errorf("Pop refused with %q; want %q", err, tc.rule)
			}
			if !errors.Is(err, guestmem.ErrOutOfRange) {
				t.Errorf("Pop refused with %q, which does not wrap guestmem.ErrOutOfRange", err)
			}
		})
	}
}
