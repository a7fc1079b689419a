package multiboot

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

// patchShdr returns the standard image with the given fields (byte
// offsets) of section i's header set.
func patchShdr(i int, fields map[int]uint32) []byte {
	b := stdELF().build()
	sh := b[shdrOffset(b)+uint64(elfShdrSize*i):]
	for off, v := range fields {
		binary.LittleEndian.PutUint32(sh[off:], v)
	}
	return b
}

// TestSymbolsLeftOut checks the cases where the kernel boots without
// symbols, with a warning saying why, instead of getting tables it would
// misread.
func TestSymbolsLeftOut(t *testing.T) {
	patch := patchShdr
	tests := []struct {
		name, warning string
		image         []byte
	}{
		{"symtab linked to a non-string table", "section 2 (SHT_SYMTAB) links to section 1", patch(tSecSymtab, map[int]uint32{shLink: tSecText})},
		{"symtab link out of range", "links to section 9", patch(tSecSymtab, map[int]uint32{shLink: 9})},
		// NetBSD tests sh_type & SHT_SYMTAB: a SHT_DYNAMIC (6) section with
		// a link before .symtab would be taken as the symbol table.
		{"NetBSD would pick an earlier section", "pick section 1", patch(tSecText, map[int]uint32{shType: 6, shLink: tSecStrtab})},
		{"earlier section with a dangling link", "pick section 1", patch(tSecText, map[int]uint32{shType: 3, shLink: 99})},
		// Section 5 of 5 is the first past the table.
		{"symtab link e_shnum", "links to section 5", patch(tSecSymtab, map[int]uint32{shLink: tShnum})},
		{"earlier section linked to e_shnum", "pick section 1", patch(tSecText, map[int]uint32{shType: 3, shLink: tShnum})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mem := newMem(testMem)
			p, err := Load(mem, bytes.NewReader(tc.image), int64(len(tc.image)), Options{})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if p.Symbols || p.End != p.KernelEnd {
				t.Errorf("Symbols %v, End %#x: want no symbols placed after the kernel end %#x", p.Symbols, p.End, p.KernelEnd)
			}
			if flags, _ := mem.Read32(uint64(p.EBX)); flags&InfoELFShdr != 0 {
				t.Errorf("info flags %#x announce section headers", flags)
			}
			if len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], tc.warning) {
				t.Errorf("warnings %q, want one mentioning %q", p.Warnings, tc.warning)
			}
		})
	}
}

// BenchmarkLoad measures loading the standard test kernel (3 KiB image with
// symbols, one module) into 4 MiB of guest memory.
func BenchmarkLoad(b *testing.B) {
	img := stdELF().build()
	mem := newMem(testMem)
	opts := Options{KernelName: "netbsd", Append: "console=com root=ld0a", Modules: []Module{{Name: "m", Data: make([]byte, 4096)}}}
	b.SetBytes(int64(len(img)))
	for b.Loop() {
		if _, err := Load(mem, bytes.NewReader(img), int64(len(img)), opts); err != nil {
			b.Fatal(err)
		}
	}
}
