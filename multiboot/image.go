package multiboot

import (
	"fmt"
	"io"
)

const (
	kib = 1 << 10
	mib = 1 << 20

	// lowReserved is the start of the kernel area: below it live the
	// VMM's IVT, BIOS data and firmware stubs and the loader's data.
	lowReserved = 1 * mib
)

// segment is one piece of the kernel image to place in guest memory.
type segment struct {
	name              string // for errors: "segment 2" or "a.out image"
	fileOff, fileSize uint64
	addr, memSize     uint64 // physical; memSize >= fileSize, the rest is BSS
}

func (s segment) end() uint64 { return s.addr + s.memSize }

func (s segment) String() string {
	return fmt.Sprintf("%s [%#x, %#x)", s.name, s.addr, s.end())
}

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
func (im *image) extent() (start, end uint64) {
	start = ^uint64(0)
	for _, s := range im.segs {
		start = min(start, s.addr)
		end = max(end, s.end())
	}
	return start, end
}

// checkPlacement refuses segments in the low 1 MiB and segments that
// overlap each other.
func (im *image) checkPlacement() error {
	for i, s := range im.segs {
		if s.addr < lowReserved {
			return fmt.Errorf("%w: %s starts below %#x, where the VMM keeps the interrupt table, BIOS data and the loader's information area; link the kernel at 1 MiB or above",
				ErrLowMemory, s, lowReserved)
		}
		for _, t := range im.segs[:i] {
			if s.addr < t.end() && t.addr < s.end() {
				return fmt.Errorf("%w: %s and %s share physical memory", ErrOverlap, t, s)
			}
		}
	}
	return nil
}

// readFull reads exactly len(p) bytes at off, treating a short read as a
// truncated file.
func readFull(r io.ReaderAt, p []byte, off uint64, what string) error {
	n, err := r.ReadAt(p, int64(off))
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w: %s: read %d of %d bytes at file offset %#x", ErrTruncated, what, n, len(p), off)
	}
	return fmt.Errorf("reading %s at file offset %#x: %w", what, off, err)
}

// inFile checks that [off, off+n) lies within a file of size bytes.
func inFile(off, n, size uint64, what string) error {
	if off > size || n > size-off {
		return fmt.Errorf("%w: %s at file offset %#x+%#x runs past the end of the %#x-byte file",
			ErrTruncated, what, off, n, size)
	}
	return nil
}
