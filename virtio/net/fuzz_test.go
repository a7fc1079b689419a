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
	f.Fuzz(func(t *testing.T, lens []byte, frameLen uint16) {
		if len(lens) == 0 || len(lens) > 16 || frameLen < 14 || frameLen > 4000 {
			return
		}
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
		for _, l := range lens {
			n := int(l) * 8
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
		fr := frame(int(frameLen), byte(frameLen))
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
		case room < HeaderSize+14:
			if !ok || used != 0 || st.RxBadChains != 1 {
				t.Fatalf("chain of %d bytes: used %v len %d, stats %+v; want returned empty", room, ok, used, st)
			}
		case room < HeaderSize+int(frameLen):
			if ok || st.RxTooLong != 1 {
				t.Fatalf("%d-byte frame in %d bytes: used %v, stats %+v; want dropped, chain kept", frameLen, room, ok, st)
			}
		default:
			want := append(make([]byte, HeaderSize), fr...)
			if !ok || int(used) != len(want) || !bytes.Equal(got[:len(want)], want) {
				t.Fatalf("%d-byte frame in %d bytes: used %v len %d; want %d bytes delivered intact", frameLen, room, ok, used, len(want))
			}
		}
	})
}
