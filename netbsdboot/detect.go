package netbsdboot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/smolvmm/smolvmm/internal/bootelf"
)

// NetBSD's ident note: name "NetBSD", type 1 (ELF_NOTE_TYPE_NETBSD_TAG),
// a 4-byte __NetBSD_Version__ (sys/sys/exec_elf.h; /boot reads it at
// sys/lib/libsa/loadfile_elf32.c:629-636).
const (
	noteName = "NetBSD"
	noteType = 1
)

// Ident is what Detect learns from a NetBSD kernel file.
type Ident struct {
	// Version is __NetBSD_Version__, e.g. 599001500 for 5.99.15.
	Version uint32
	// Class is 32 or 64; Machine the ELF e_machine.
	Class   int
	Machine uint16
}

// Release formats Version as NetBSD does: "5.99.15", "9.1".
func (id Ident) Release() string {
	v := id.Version
	major, minor, patch := v/100000000, v/1000000%100, v/100%100
	if minor == 99 || patch != 0 {
		return fmt.Sprintf("%d.%d.%d", major, minor, patch)
	}
	return fmt.Sprintf("%d.%d", major, minor)
}

// Detect reports whether the file is an ELF file with NetBSD's ident note,
// whatever its machine. It fails with ErrNotNetBSD (and ErrNotELF when the
// file is not ELF at all) otherwise, except for an ELF file that ends
// before its section header table or a note it points at: that fails with
// ErrTruncated alone, being maybe a NetBSD kernel cut short.
func Detect(r io.ReaderAt, size int64) (Ident, error) {
	if size < 0 {
		return Ident{}, fmt.Errorf("%w: negative file size %d", ErrNotNetBSD, size)
	}
	h, err := readHeader(r, uint64(size))
	if err != nil {
		return Ident{}, err
	}
	return detect(r, uint64(size), h)
}

// readHeader reads the ELF header; a file that is not ELF is not NetBSD's,
// an ELF file cut short within its header is only that.
func readHeader(r io.ReaderAt, size uint64) (bootelf.Header, error) {
	h, err := bootelf.ReadHeader(r, size)
	switch {
	case errors.Is(err, ErrTruncated):
		return h, err
	case err != nil:
		return h, fmt.Errorf("%w: %w", ErrNotNetBSD, err)
	}
	return h, nil
}

func detect(r io.ReaderAt, size uint64, h bootelf.Header) (Ident, error) {
	id := Ident{Class: 32, Machine: h.Machine}
	if h.Class == bootelf.Class64 {
		id.Class = 64
	}
	// A file cut short says nothing of whether it is NetBSD's: it is
	// named for what it is, not as another kind of file.
	noNote := func(err error) error {
		if errors.Is(err, ErrTruncated) {
			return fmt.Errorf("looking for NetBSD's ident note in an ELF%d file for %s: %w", id.Class, bootelf.MachineName(h.Machine), err)
		}
		return fmt.Errorf("%w: looking for its ident note: %w", ErrNotNetBSD, err)
	}
	var progs []bootelf.Prog
	var progErr error
	if h.Phnum != 0 {
		// Program headers only matter here for PT_NOTE, read when no
		// section is a note; a bad table is otherwise reported when
		// the kernel is loaded.
		progs, progErr = h.Progs(r, size)
	}
	secs, _, err := h.Sections(r, size)
	if err != nil {
		return id, noNote(err)
	}
	if progErr != nil && !slices.ContainsFunc(secs, func(s bootelf.Section) bool { return s.Type == bootelf.SHTNote }) {
		return id, noNote(progErr)
	}
	// The first ident note with a 4-byte version: looking no further
	// bounds what a file of many note headers costs.
	n, ok, err := bootelf.FindNote(r, size, h, progs, secs, func(name []byte, typ uint32, desc []byte) bool {
		return string(name) == noteName && typ == noteType && len(desc) == 4
	})
	if err != nil {
		return id, noNote(err)
	}
	if ok {
		var o binary.ByteOrder = h.Order()
		id.Version = o.Uint32(n.Desc)
		return id, nil
	}
	return id, fmt.Errorf("%w: an ELF%d file for %s without NetBSD's ident note (.note.netbsd.ident: name \"NetBSD\", type 1)",
		ErrNotNetBSD, id.Class, bootelf.MachineName(h.Machine))
}
