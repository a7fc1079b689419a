package netbsdboot

import (
	"encoding/binary"
	"fmt"
	"io"

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
// file is not ELF at all) otherwise.
func Detect(r io.ReaderAt, size int64) (Ident, error) {
	if size < 0 {
		return Ident{}, fmt.Errorf("%w: negative file size %d", ErrNotNetBSD, size)
	}
	h, err := bootelf.ReadHeader(r, uint64(size))
	if err != nil {
		return Ident{}, fmt.Errorf("%w: %w", ErrNotNetBSD, err)
	}
	return detect(r, uint64(size), h)
}

func detect(r io.ReaderAt, size uint64, h bootelf.Header) (Ident, error) {
	id := Ident{Class: 32, Machine: h.Machine}
	if h.Class == bootelf.Class64 {
		id.Class = 64
	}
	var progs []bootelf.Prog
	if h.Phnum != 0 {
		// Program headers only matter here for PT_NOTE; a bad table is
		// reported when the kernel is loaded.
		progs, _ = h.Progs(r, size)
	}
	secs, _, err := h.Sections(r, size)
	if err != nil {
		return id, fmt.Errorf("%w: looking for its ident note: %w", ErrNotNetBSD, err)
	}
	notes, err := bootelf.Notes(r, size, h, progs, secs)
	if err != nil {
		return id, fmt.Errorf("%w: looking for its ident note: %w", ErrNotNetBSD, err)
	}
	var o binary.ByteOrder = h.Order()
	for _, n := range notes {
		if n.Name == noteName && n.Type == noteType && len(n.Desc) == 4 {
			id.Version = o.Uint32(n.Desc)
			return id, nil
		}
	}
	return id, fmt.Errorf("%w: an ELF%d file for %s without NetBSD's ident note (.note.netbsd.ident: name \"NetBSD\", type 1)",
		ErrNotNetBSD, id.Class, bootelf.MachineName(h.Machine))
}
