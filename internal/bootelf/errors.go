package bootelf

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors, re-exported by the loaders (multiboot.ErrBadELF is
// ErrBadELF): errors.Is works whichever package a caller names.
var (
	// ErrNotELF: the file does not start with the ELF magic.
	ErrNotELF = errors.New("not an ELF file")
	// ErrUnsupportedELF: a well-formed ELF file of a kind that cannot boot
	// here (wrong class, big-endian, wrong machine, not an executable).
	ErrUnsupportedELF = errors.New("unsupported ELF file")
	// ErrBadELF: a malformed ELF file (bad header sizes, no loadable
	// segment, filesz > memsz, entry outside every segment...).
	ErrBadELF = errors.New("malformed ELF file")
	// ErrTruncated: the file ends before data its headers point at.
	ErrTruncated = errors.New("truncated kernel file")
	// ErrOverlap: two loadable segments overlap in physical memory.
	ErrOverlap = errors.New("overlapping segments")
	// ErrLowMemory: a segment lies in the low 1 MiB, which holds the
	// VMM's firmware data and the loader's information area.
	ErrLowMemory = errors.New("segment in the reserved low 1 MiB")
	// ErrTooLarge: guest memory is too small for what must be loaded.
	// Errors with it are *MemoryError values carrying the size needed.
	ErrTooLarge = errors.New("guest memory too small")
	// ErrAddressSpace: guest memory larger than the 4 GiB a 32-bit guest
	// can address.
	ErrAddressSpace = errors.New("guest memory beyond 4 GiB")
)

// MiB is a mebibyte.
const MiB = 1 << 20

// MemoryError reports that guest memory is too small. It wraps ErrTooLarge.
type MemoryError struct {
	What string // what did not fit, e.g. "segment 1 [0x100000, 0x5a3000)"
	Need uint64 // bytes of guest memory needed to hold it (its end address)
	Have uint64 // bytes of guest memory available
}

// NeedMiB is Need rounded up to whole MiB: the smallest memory size that
// holds what the loader places (the kernel needs more at run time).
func (e *MemoryError) NeedMiB() uint64 { return (e.Need + MiB - 1) / MiB }

// Error says what did not fit and how much memory it needs: what to
// give the guest is the caller's to say (NeedMiB).
func (e *MemoryError) Error() string {
	if e.Need > 1<<32 {
		return fmt.Sprintf("%v: %s ends at %#x, beyond the 4 GiB a 32-bit guest can address; the kernel is linked for another machine",
			ErrTooLarge, e.What, e.Need)
	}
	return fmt.Sprintf("%v: %s needs %d MiB of guest memory, have %d MiB",
		ErrTooLarge, e.What, e.NeedMiB(), e.Have/MiB)
}

// Unwrap lets errors.Is(err, ErrTooLarge) match.
func (e *MemoryError) Unwrap() error { return ErrTooLarge }

// LayoutWhat is a MemoryError's What for a whole layout: the parts a
// loader places, in order, then the headroom it keeps free above them.
// Memory too small for any one part is too small for the whole, whose end
// is the memory needed: naming one part with the whole's size misleads.
func LayoutWhat(parts []string, headroom uint64) string {
	s := "the kernel's layout (" + strings.Join(parts, ", ")
	if headroom > 0 {
		s += fmt.Sprintf(", then %d KiB free for the kernel's bootstrap page tables", headroom>>10)
	}
	return s + ")"
}
