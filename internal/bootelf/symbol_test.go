package bootelf

import (
	"bytes"
	"errors"
	"testing"

	"github.com/smolvmm/smolvmm/internal/bootelf/elftest"
)

// LookupSymbols finds defined symbols by name in either class and byte
// order, says when there is no symbol table, and refuses one past the
// file's end.
func TestLookupSymbols(t *testing.T) {
	syms := []elftest.Sym{
		{Name: "undef", Value: 0, Shndx: 0},
		{Name: "start", Value: 0xc0100000, Size: 0x10, Shndx: 1},
		{Name: "undef", Value: 0xc0100040, Size: 4, Shndx: 1}, // defined later: this one counts
		{Name: "start", Value: 0xc0100080, Shndx: 1},          // the first defined wins
	}
	file := func(class byte, big, withSyms bool) []byte {
		f := elftest.File{Class: class, BigEndian: big, Entry: 0xc0100000,
			Segs: []elftest.Seg{{Vaddr: 0xc0100000, Paddr: 0x100000, Data: []byte{0xf4}}},
			Secs: []elftest.Sec{{Name: ".text", Type: 1, Data: []byte{0xf4}}}}
		if withSyms {
			sym, str := elftest.Symtab(class, big, syms)
			f.Secs = append(f.Secs, elftest.Sec{Name: ".symtab", Type: 2, Data: sym, Link: 3, Info: 1},
				elftest.Sec{Name: ".strtab", Type: 3, Data: str})
		}
		return f.Build()
	}
	for _, tc := range []struct {
		name     string
		image    []byte
		ok       bool
		found    map[string]Symbol
		truncate bool
	}{
		{"ELF32", file(1, false, true), true, map[string]Symbol{"start": {0xc0100000, 0x10, 1}, "undef": {0xc0100040, 4, 1}}, false},
		{"ELF64 big-endian", file(2, true, true), true, map[string]Symbol{"start": {0xc0100000, 0x10, 1}, "undef": {0xc0100040, 4, 1}}, false},
		{"no symbol table", file(1, false, false), false, nil, false},
		{"symbol table past the end", file(1, false, true), false, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ReadHeader(bytes.NewReader(tc.image), uint64(len(tc.image)))
			if err != nil {
				t.Fatal(err)
			}
			secs, _, err := h.Sections(bytes.NewReader(tc.image), uint64(len(tc.image)))
			if err != nil {
				t.Fatal(err)
			}
			size := uint64(len(tc.image))
			if tc.truncate {
				secs[2].Offset = size - 4
			}
			found, ok, err := h.LookupSymbols(bytes.NewReader(tc.image), size, secs, "start", "undef", "absent")
			if tc.truncate {
				if !errors.Is(err, ErrTruncated) {
					t.Fatalf("error %v, want ErrTruncated", err)
				}
				return
			}
			if err != nil || ok != tc.ok || len(found) != len(tc.found) {
				t.Fatalf("found %v, %v, %v; want %v, %v", found, ok, err, tc.found, tc.ok)
			}
			for n, s := range tc.found {
				if found[n] != s {
					t.Errorf("%s: %+v, want %+v", n, found[n], s)
				}
			}
		})
	}
}
