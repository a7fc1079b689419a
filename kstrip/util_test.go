package kstrip

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"strconv"
	"testing"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// swapToBigEndian rewrites a little-endian 32-bit kernel as big-endian:
// ELF header, program and section headers, the symbol table and the
// cfdata table with its cfparents. Enough for debug/elf and Parse.
func swapToBigEndian(t *testing.T, le []byte, k *Kernel) []byte {
	t.Helper()
	b := append([]byte(nil), le...)
	f, err := elf.NewFile(bytes.NewReader(le))
	if err != nil {
		t.Fatal(err)
	}
	sw16 := func(off uint64) { binary.BigEndian.PutUint16(b[off:], binary.LittleEndian.Uint16(le[off:])) }
	sw32 := func(off uint64) { binary.BigEndian.PutUint32(b[off:], binary.LittleEndian.Uint32(le[off:])) }
	b[elf.EI_DATA] = byte(elf.ELFDATA2MSB)
	// Elf32_Ehdr after e_ident: half, half, word, addr, off, off, word, then six halves.
	for _, o := range []uint64{16, 18} {
		sw16(o)
	}
	for _, o := range []uint64{20, 24, 28, 32, 36} {
		sw32(o)
	}
	for o := uint64(40); o < 52; o += 2 {
		sw16(o)
	}
	phoff := uint64(binary.LittleEndian.Uint32(le[28:]))
	for i := uint64(0); i < uint64(len(f.Progs)); i++ {
		for w := uint64(0); w < 8; w++ {
			sw32(phoff + i*32 + w*4)
		}
	}
	shoff := uint64(binary.LittleEndian.Uint32(le[32:]))
	for i := uint64(0); i < uint64(len(f.Sections)); i++ {
		for w := uint64(0); w < 10; w++ {
			sw32(shoff + i*40 + w*4)
		}
	}
	for _, s := range f.Sections {
		if s.Type == elf.SHT_NOTE {
			// Build's one note: namesz, descsz, type, "NetBSD\0\0", desc.
			for _, w := range []uint64{0, 4, 8, 20} {
				sw32(s.Offset + w)
			}
		}
		if s.Type != elf.SHT_SYMTAB {
			continue
		}
		for o := s.Offset; o < s.Offset+s.Size; o += 16 {
			sw32(o)
			sw32(o + 4)
			sw32(o + 8)
			sw16(o + 14)
		}
	}
	parents := map[uint64]bool{}
	for _, e := range k.Entries {
		o := uint64(e.Offset)
		for _, w := range []uint64{0, 4, 12, 16, 20} {
			sw32(o + w)
		}
		if k.lay.packed {
			// cf_unit:24 takes the word's high bits on big-endian ports:
			// the unit's bytes reverse, cf_fstate stays in byte 11.
			b[o+8], b[o+10] = le[o+10], le[o+8]
		} else {
			sw16(o + 8)
			sw16(o + 10)
		}
		if p := uint64(binary.LittleEndian.Uint32(le[o+20:])); p != 0 {
			parents[p] = true
		}
	}
	for va := range parents {
		off, _, err := k.amap.offset(va)
		if err != nil {
			t.Fatal(err)
		}
		sw32(off)
		sw32(off + 4)
		sw32(off + 8)
	}
	return b
}
