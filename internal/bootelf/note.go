package bootelf

import (
	"fmt"
	"io"
)

// maxNoteBytes bounds how much of one note section or segment is read:
// kernels carry a few dozen bytes of notes.
const maxNoteBytes = 64 << 10

// MaxNotesTotal bounds the note bytes FindNote reads over all areas: any
// number of section headers may name the same or overlapping note bytes,
// and reading each would cost the host far more memory and time than the
// file's size.
const MaxNotesTotal = 256 << 10

// Note is one ELF note.
type Note struct {
	Name string // without its NUL
	Type uint32 // n_type
	Desc []byte // the descriptor, without its padding
}

// noteArea is a note section or PT_NOTE segment.
type noteArea struct {
	off, n  uint64
	index   int
	segment bool
}

func (a noteArea) String() string {
	if a.segment {
		return fmt.Sprintf("PT_NOTE segment %d", a.index)
	}
	return fmt.Sprintf("note section %d", a.index)
}

// FindNote returns the first note that want accepts, given its name
// (without its NUL), type and descriptor, in the SHT_NOTE sections, or in
// the PT_NOTE segments when the file has no note sections, and whether
// there is one. Areas are read in header order, each distinct (offset,
// size) once, up to the note wanted: malformed areas read before it are
// errors, areas larger than 64 KiB are skipped, and more than
// MaxNotesTotal bytes to read is an error.
func FindNote(r io.ReaderAt, size uint64, h Header, progs []Prog, secs []Section, want func(name []byte, typ uint32, desc []byte) bool) (Note, bool, error) {
	var areas []noteArea
	for _, s := range secs {
		if s.Type == SHTNote {
			areas = append(areas, noteArea{s.Offset, s.Size, s.Index, false})
		}
	}
	if len(areas) == 0 {
		for _, p := range progs {
			if p.Type == PTNote {
				areas = append(areas, noteArea{p.Offset, p.Filesz, p.Index, true})
			}
		}
	}
	seen := make(map[[2]uint64]bool)
	var buf []byte
	var total uint64
	for _, a := range areas {
		if a.n > maxNoteBytes || seen[[2]uint64{a.off, a.n}] {
			continue
		}
		seen[[2]uint64{a.off, a.n}] = true
		if err := InFile(a.off, a.n, size, a.String()); err != nil {
			return Note{}, false, err
		}
		if total += a.n; total > MaxNotesTotal {
			return Note{}, false, fmt.Errorf("%w: reading %s would take the notes read past %d KiB without the note looked for (a kernel carries a few hundred bytes of notes)",
				ErrBadELF, a, MaxNotesTotal>>10)
		}
		// One buffer for every area, grown to the largest (never by
		// more than total): what is found is copied out.
		if uint64(cap(buf)) < a.n {
			buf = make([]byte, a.n)
		}
		buf = buf[:a.n]
		if err := ReadFull(r, buf, a.off, a.String()); err != nil {
			return Note{}, false, err
		}
		var found Note
		ok := false
		err := eachNote(h, buf, a.String(), func(nm []byte, t uint32, desc []byte) bool {
			if want(nm, t, desc) {
				found, ok = Note{Name: string(nm), Type: t, Desc: append([]byte(nil), desc...)}, true
			}
			return !ok
		})
		if err != nil || ok {
			return found, ok, err
		}
	}
	return Note{}, false, nil
}

// eachNote decodes {namesz, descsz, type, name, desc} records, name and
// desc each padded to 4 bytes (NetBSD's kernels use 4-byte notes on both
// classes), calling f with each one's name (without its NUL), type and
// descriptor, slices of b, until it returns false.
func eachNote(h Header, b []byte, what string, f func(name []byte, typ uint32, desc []byte) bool) error {
	o := h.Order()
	for off := uint64(0); off < uint64(len(b)); {
		if uint64(len(b))-off < 12 {
			return fmt.Errorf("%w: %s: %d stray bytes at its end", ErrBadELF, what, uint64(len(b))-off)
		}
		namesz, descsz, typ := uint64(o.Uint32(b[off:])), uint64(o.Uint32(b[off+4:])), o.Uint32(b[off+8:])
		off += 12
		nameEnd := off + namesz
		descOff := off + AlignUp(namesz, 4)
		descEnd := descOff + descsz
		if namesz > uint64(len(b)) || descsz > uint64(len(b)) || descEnd > uint64(len(b)) {
			return fmt.Errorf("%w: %s: a note's name (%d bytes) and descriptor (%d bytes) run past its %d bytes",
				ErrBadELF, what, namesz, descsz, len(b))
		}
		name := b[off:nameEnd]
		if n := len(name); n > 0 && name[n-1] == 0 {
			name = name[:n-1]
		}
		if !f(name, typ, b[descOff:descEnd]) {
			return nil
		}
		off = AlignUp(descEnd, 4)
	}
	return nil
}
