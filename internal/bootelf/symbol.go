package bootelf

import (
	"bytes"
	"fmt"
	"io"
)

// Symbol is a symbol table entry a lookup found.
type Symbol struct {
	Value, Size uint64 // st_value and st_size
	Shndx       uint16 // section index; 0 (SHN_UNDEF) for an undefined symbol
}

// LookupSymbols finds names in the file's first symbol table (SHT_SYMTAB)
// that links to a string table, among secs (as Sections returns them). It
// returns the names found, each at its first defined entry, and whether
// there was such a table: without one nothing can be said of the file's
// symbols. A table or string table past the end of the file is an error.
func (h Header) LookupSymbols(r io.ReaderAt, size uint64, secs []Section, names ...string) (map[string]Symbol, bool, error) {
	var symtab, strtab *Section
	for i := range secs {
		s := &secs[i]
		if i == 0 || s.Type != SHTSymtab || s.Link == 0 || uint64(s.Link) >= uint64(len(secs)) || secs[s.Link].Type != SHTStrtab {
			continue
		}
		symtab, strtab = s, &secs[s.Link]
		break
	}
	if symtab == nil {
		return nil, false, nil
	}
	what := fmt.Sprintf("symbol table (section %d)", symtab.Index)
	strWhat := fmt.Sprintf("string table (section %d)", strtab.Index)
	if err := InFile(symtab.Offset, symtab.Size, size, what); err != nil {
		return nil, false, err
	}
	if err := InFile(strtab.Offset, strtab.Size, size, strWhat); err != nil {
		return nil, false, err
	}
	syms := make([]byte, symtab.Size)
	if err := ReadFull(r, syms, symtab.Offset, what); err != nil {
		return nil, false, err
	}
	strs := make([]byte, strtab.Size)
	if err := ReadFull(r, strs, strtab.Offset, strWhat); err != nil {
		return nil, false, err
	}
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	entSize := 16
	if h.Class == Class64 {
		entSize = 24
	}
	o := h.Order()
	found := map[string]Symbol{}
	for p := syms; len(p) >= entSize && len(found) < len(want); p = p[entSize:] {
		var s Symbol
		nameOff := uint64(o.Uint32(p))
		if h.Class == Class64 {
			s = Symbol{Value: o.Uint64(p[8:]), Size: o.Uint64(p[16:]), Shndx: o.Uint16(p[6:])}
		} else {
			s = Symbol{Value: uint64(o.Uint32(p[4:])), Size: uint64(o.Uint32(p[8:])), Shndx: o.Uint16(p[14:])}
		}
		if s.Shndx == 0 || nameOff >= uint64(len(strs)) {
			continue
		}
		name := strs[nameOff:]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		if n := string(name); want[n] {
			if _, dup := found[n]; !dup {
				found[n] = s
			}
		}
	}
	return found, true, nil
}
