package multiboot

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error Load returns wraps one of them, so callers can
// tell the cases apart with errors.Is; the message adds what and where.
var (
	// ErrNotMultiboot: no valid multiboot v1 header in the first 8192 bytes.
	ErrNotMultiboot = errors.New("not a multiboot v1 kernel")
	// ErrBadChecksum: a header magic was found but its checksum is wrong.
	// Errors with it also wrap ErrNotMultiboot.
	ErrBadChecksum = errors.New("multiboot header checksum mismatch")
	// ErrHeaderTooFar: a valid header exists but starts beyond the first
	// 8192 bytes, where loaders do not look. Errors with it also wrap
	// ErrNotMultiboot.
	ErrHeaderTooFar = errors.New("multiboot header beyond the first 8192 bytes")
	// ErrUnsupportedFlags: the header requires a feature (bits 0-15) this
	// loader does not provide.
	ErrUnsupportedFlags = errors.New("unsupported required multiboot flags")
	// ErrNotELF: the image is not ELF and its header has no a.out kludge
	// addresses, so there is no way to know where to load it.
	ErrNotELF = errors.New("not an ELF file and no a.out kludge")
	// ErrUnsupportedELF: a well-formed ELF file of a kind that cannot boot
	// here (ELF64, big-endian, not EM_386, not an executable).
	ErrUnsupportedELF = errors.New("unsupported ELF file")
	// ErrBadELF: a malformed ELF file (bad header sizes, no loadable
	// segment, filesz > memsz, entry outside every segment...).
	ErrBadELF = errors.New("malformed ELF file")
	// ErrBadAOut: inconsistent a.out kludge addresses in the header.
	ErrBadAOut = errors.New("bad a.out kludge addresses")
	// ErrOverlap: two loadable segments overlap in physical memory.
	ErrOverlap = errors.New("overlapping segments")
	// ErrTruncated: the file ends before data its headers point at.
	ErrTruncated = errors.New("truncated kernel file")
	// ErrLowMemory: a segment lies in the low 1 MiB, which holds the
	// VMM's firmware data and the loader's information area.
	ErrLowMemory = errors.New("segment in the reserved low 1 MiB")
	// ErrTooLarge: guest memory is too small for what must be loaded.
	// Errors with it are *MemoryError values carrying the size needed.
	ErrTooLarge = errors.New("guest memory too small")
	// ErrAddressSpace: guest memory larger than the 4 GiB a 32-bit guest
	// can address.
	ErrAddressSpace = errors.New("guest memory beyond 4 GiB")
	// ErrCmdline: a command line (kernel or module) the guest could not
	// read back as given: too long, containing NUL, or a kernel name with
	// white space.
	ErrCmdline = errors.New("bad command line")
	// ErrLowAreaFull: the loader's data does not fit in its low-memory
	// window [0x6000, 0x9F000).
	ErrLowAreaFull = errors.New("loader data does not fit in low memory")
)

// MemoryError reports that guest memory is too small. It wraps ErrTooLarge.
type MemoryError struct {
	What string // what did not fit, e.g. "segment 1 [0x100000, 0x5a3000)"
	Need uint64 // bytes of guest memory needed to hold it (its end address)
	Have uint64 // bytes of guest memory available
}

// NeedMiB is Need rounded up to whole MiB: the smallest -m value that holds
// what the loader places (the kernel needs more at run time).
func (e *MemoryError) NeedMiB() uint64 { return (e.Need + mib - 1) / mib }

// Error says what did not fit and how much memory to give the guest.
func (e *MemoryError) Error() string {
	if e.Need > 1<<32 {
		return fmt.Sprintf("%v: %s ends at %#x, beyond the 4 GiB a 32-bit guest can address; the kernel is linked for another machine",
			ErrTooLarge, e.What, e.Need)
	}
	return fmt.Sprintf("%v: %s needs %d MiB of guest memory, have %d MiB; give the guest at least %d MiB",
		ErrTooLarge, e.What, e.NeedMiB(), e.Have/mib, e.NeedMiB())
}

// Unwrap lets errors.Is(err, ErrTooLarge) match.
func (e *MemoryError) Unwrap() error { return ErrTooLarge }
