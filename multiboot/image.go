package multiboot

import (
	"io"

	"github.com/smolvmm/smolvmm/internal/bootelf"
)

const (
	kib = 1 << 10
	mib = 1 << 20

	// lowReserved is the start of the kernel area: below it live the
	// VMM's IVT, BIOS data and firmware stubs and the loader's data.
	lowReserved = 1 * mib
)

// segment is one piece of the kernel image to place in guest memory.
type segment = bootelf.Segment

// image is a kernel parsed and checked but not yet written.
type image struct {
	format string
	segs   []segment
	entry  uint32 // physical
	syms   *symbols
	notes  []string
}

// parseImage lays the kernel out by the header's a.out kludge addresses
// when it has them, else by its ELF program headers, with ELF symbols.
func parseImage(r io.ReaderAt, size uint64, hdr Header, hdrOff uint64) (*image, error) {
	if hdr.Flags&FlagAOutKludge != 0 {
		return parseAOut(hdr, hdrOff, size)
	}
	im, eh, err := parseELF(r, size)
	if err != nil {
		return nil, err
	}
	var note string
	if im.syms, note, err = findSymbols(r, size, eh); err != nil {
		return nil, err
	}
	if note != "" {
		im.notes = append(im.notes, note)
	}
	return im, nil
}

// extent returns the lowest start and highest end of the segments.
func (im *image) extent() (start, end uint64) { return bootelf.Extent(im.segs) }

// checkPlacement refuses segments in the low 1 MiB and segments that
// overlap each other.
func (im *image) checkPlacement() error { return bootelf.CheckPlacement(im.segs) }

// readFull reads exactly len(p) bytes at off, treating a short read as a
// truncated file.
func readFull(r io.ReaderAt, p []byte, off uint64, what string) error {
	return bootelf.ReadFull(r, p, off, what)
}

// inFile checks that [off, off+n) lies within a file of size bytes.
func inFile(off, n, size uint64, what string) error { return bootelf.InFile(off, n, size, what) }
