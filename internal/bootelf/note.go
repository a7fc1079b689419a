package bootelf

import (
	"fmt"
	"io"
)

// maxNoteBytes bounds how much of one note section or segment is read:
// kernels carry a few dozen bytes of notes.
const maxNoteBytes = 64 << 10

// Note is one ELF note.
type Note struct {
	Name string // without its NUL
	Type uint32
	Desc []byte
}

// Notes returns the notes of every SHT_NOTE section, or of every PT_NOTE
// segment when the file has no note sections, with where each was found.
// Malformed note areas are errors; areas larger than 64 KiB are skipped.
func Notes(r io.ReaderAt, size uint64, h Header, progs []Prog, secs []Section) ([]Note, error) {
	type area struct {
		off, n uint64
		what   string
	}
	var areas []area
	for _, s := range secs {
		if s.Type == SHTNote {
			areas = append(areas, area{s.Offset, s.Size, fmt.Sprintf("note section %d", s.Index)})
		}
	}
	if len(areas) == 0 {
		for _, p := range progs {
			if p.Type == PTNote {
				areas = append(areas, area{p.Offset, p.Filesz, fmt.Sprintf("PT_NOTE segment %d", p.Index)})
			}
		}
	}
	var notes []Note
	for _, a := range areas {
		if a.n > maxNoteBytes {
			continue
		}
		if err := InFile(a.off, a.n, size, a.what); err != nil {
			return nil, err
		}
		b := make([]byte, a.n)
		if err := ReadFull(r, b, a.off, a.what); err != nil {
			return nil, err
		}
		ns, err := parseNotes(h, b, a.what)
		if err != nil {
			return nil, err
		}
		notes = append(notes, ns...)
	}
	return notes, nil
}

// parseNotes decodes {namesz, descsz, type, name, desc} records, name and
// desc each padded to 4 bytes (NetBSD's kernels use 4-byte notes on both
// classes).
func parseNotes(h Header, b []byte, what string) ([]Note, error) {
	o := h.Order()
	var notes []Note
	for off := uint64(0); off < uint64(len(b)); {
		if uint64(len(b))-off < 12 {
			return nil, fmt.Errorf("%w: %s: %d stray bytes at its end", ErrBadELF, what, uint64(len(b))-off)
		}
		namesz, descsz, typ := uint64(o.Uint32(b[off:])), uint64(o.Uint32(b[off+4:])), o.Uint32(b[off+8:])
		off += 12
		nameEnd := off + namesz
		descOff := off + AlignUp(namesz, 4)
		descEnd := descOff + descsz
		if namesz > uint64(len(b)) || descsz > uint64(len(b)) || descEnd > uint64(len(b)) {
			return nil, fmt.Errorf("%w: %s: a note's name (%d bytes) and descriptor (%d bytes) run past its %d bytes",
				ErrBadELF, what, namesz, descsz, len(b))
		}
		name := b[off:nameEnd]
		if n := len(name); n > 0 && name[n-1] == 0 {
			name = name[:n-1]
		}
		notes = append(notes, Note{Name: string(name), Type: typ, Desc: b[descOff:descEnd]})
		off = AlignUp(descEnd, 4)
	}
	return notes, nil
}
