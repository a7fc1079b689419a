package net

import (
	"bytes"
	"testing"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/virtiotest"
)

// FuzzParseMAC checks that any --mac value either fails with ErrBadMAC or
// gives a unicast, non-zero 6-byte address that prints and parses back.
func FuzzParseMAC(f *testing.F) {
	for _, s := range []string{"52:54:00:12:34:56", "52-54-00-ab-cd-ef", "0000.5e00.5301", "01:00:5e:00:00:01", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMAC(s)
		if err != nil {
			return
		}
		if len(m) != 6 || m[0]&1 != 0 || m.String() == "00:00:00:00:00:00" {
			t.Fatalf("ParseMAC(%q) = %s: invalid address accepted", s, m)
		}
		if back, err := ParseMAC(m.String()); err != nil || back.String() != m.String() {
			t.Fatalf("ParseMAC(%q) = %s does not round-trip: %v", s, m, err)
		}
	})
}

// FuzzRxLayout delivers one frame into a receive chain of arbitrary
// writable buffers, each followed by guard bytes, and checks the result:
// a frame that fits is written whole behind a zero header, one that does
// not is dropped and counted, a chain without room for a header is given
// back empty, and no guard byte ever changes.
func FuzzRxLayout(f *testing.F) {
	f.Add([]byte{10, 200}, uint16(60))
	f.Add([]byte{5, 5, 5, 5, 5}, uint16(14))
	f.Add([]byte{255, 255, 255, 255, 255, 255, 255, 255}, uint16(1514))
	f.Add([]byte{0, 30}, uint16(100))
	// The chain's room one byte short of the frame and its header, and
	// exactly that.
	f.Add([]byte{10}, uint16(71))
	f.Add([]byte{10}, uint16(70))
	f.Fuzz(func(t *testing.T, lens []byte, frameLen uint16) {
		if len(lens) == 0 || len(lens) > 16 || frameLen < 14 || frameLen > 4000 {
			return
		}
		bufLens := make([]int, len(lens))
		for i, l := range lens {
			bufLens[i] = int(l) * 8
		}
		checkRxLayout(t, bufLens, int(frameLen))
	})
}

// TestRxRoomBoundary: checkRxLayout on the byte-exact edges of a
// chain's room (the fuzzer's buffers are multiples of 8 bytes): room for
// the headers less a byte (the chain given back empty), room for the
// frame less a byte (dropped, the chain kept) and exactly room for it.
func TestRxRoomBoundary(t *testing.T) {
	for _, tc := range []struct {
		name     string
		bufs     []int
		frameLen int
	}{
		{"headers less a byte", []int{HeaderSize + EthernetHeaderSize - 1}, 14},
		{"headers less a byte, split", []int{HeaderSize, EthernetHeaderSize - 1}, 14},
		{"headers exactly", []int{HeaderSize + EthernetHeaderSize}, 14},
		{"headers, frame a byte longer", []int{HeaderSize + EthernetHeaderSize}, 15},
		{"frame less a byte", []int{HeaderSize + 70 - 1}, 70},
		{"frame exactly", []int{HeaderSize + 70}, 70},
		{"frame less a byte, split", []int{HeaderSize, 30, 1513 - 30}, 1514},
		{"frame exactly, split", []int{HeaderSize - 3, 30, 1514 + 3 - 30}, 1514},
	} {
		t.Run(tc.name, func(t *testing.T) { checkRxLayout(t, tc.bufs, tc.frameLen) })
	}
}

// checkRxLayout delivers a frame of frameLen bytes into a receive chain
// of writable buffers of bufLens bytes, each followed by guard bytes, and
// checks the result: a frame that fits is written whole behind a zero
// header, one that does not is dropped and counted, a chain without room
// for the headers is given back empty, and no guard byte ever changes.
func checkRxLayout(t *testing.T, bufLens []int, frameLen int) {
	t.Helper()
	const guard = 16
	mem := guestmem.New(make([]byte, 1<<20))
	alloc := virtiotest.NewAlloc(mem, 0x1000)
	pfn := alloc.Pages(2)
	ring, err := virtiotest.NewRing(mem, pfn, 16)
	if err != nil {
		t.Fatal(err)
	}
	q, _ := virtio.NewQueue(mem, 16)
	if err := q.SetPFN(pfn); err != nil {
		t.Fatal(err)
	}
	var bufs []virtiotest.Buf
	var room int
	for _, n := range bufLens {
		a := alloc.Take(uint64(n+guard), 1)
		s, _ := mem.Slice(a, uint64(n+guard))
		for i := range s {
			s[i] = 0xEE
		}
		bufs = append(bufs, virtiotest.Buf{Addr: a, Len: uint32(n), Write: true})
		room += n
	}
	ring.Publish(ring.AddChain(bufs))

	d, err := New(newFakeBackend(), testMAC)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	fr := frame(frameLen, byte(frameLen))
	d.frames <- append([]byte(nil), fr...)
	if err := d.Process(RxQueue, q); err != nil {
		t.Fatal(err)
	}

	var got []byte
	for _, b := range bufs {
		s, _ := mem.Slice(b.Addr, uint64(b.Len)+guard)
		got = append(got, s[:b.Len]...)
		for _, g := range s[b.Len:] {
			if g != 0xEE {
				t.Fatalf("guard byte after the buffer at %#x changed", b.Addr)
			}
		}
	}
	_, used, ok := ring.NextUsed()
	st := d.Stats()
	switch {
	case room < HeaderSize+EthernetHeaderSize:
		if !ok || used != 0 || st.RxBadChains != 1 || st.RxTooLong != 0 {
			t.Fatalf("chain of %d bytes: used %v len %d, stats %+v; want returned empty", room, ok, used, st)
		}
	case room < HeaderSize+frameLen:
		if ok || st.RxTooLong != 1 || st.RxBadChains != 0 {
			t.Fatalf("%d-byte frame in %d bytes: used %v, stats %+v; want dropped, chain kept", frameLen, room, ok, st)
		}
	default:
		want := append(make([]byte, HeaderSize), fr...)
		if !ok || int(used) != len(want) || !bytes.Equal(got[:len(want)], want) || st.RxFrames != 1 {
			t.Fatalf("%d-byte frame in %d bytes: used %v len %d, stats %+v; want %d bytes delivered intact", frameLen, room, ok, used, st, len(want))
		}
	}
}
