package multiboot

import (
	"errors"

	"github.com/smolvmm/smolvmm/internal/bootargs"
	"github.com/smolvmm/smolvmm/internal/bootelf"
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
	// addresses, so there is no way to know where to load it. It is
	// netbsdboot.ErrNotELF too: both loaders read ELF alike.
	ErrNotELF = bootelf.ErrNotELF
	// ErrUnsupportedELF: a well-formed ELF file of a kind that cannot boot
	// here (ELF64, big-endian, not EM_386, not an executable).
	ErrUnsupportedELF = bootelf.ErrUnsupportedELF
	// ErrBadELF: a malformed ELF file (bad header sizes, no loadable
	// segment, filesz > memsz, entry outside every segment...).
	ErrBadELF = bootelf.ErrBadELF
	// ErrBadAOut: inconsistent a.out kludge addresses in the header.
	ErrBadAOut = errors.New("bad a.out kludge addresses")
	// ErrOverlap: two loadable segments overlap in physical memory.
	ErrOverlap = bootelf.ErrOverlap
	// ErrTruncated: the file ends before data its headers point at.
	ErrTruncated = bootelf.ErrTruncated
	// ErrLowMemory: a segment lies in the low 1 MiB, which holds the
	// VMM's firmware data and the loader's information area.
	ErrLowMemory = bootelf.ErrLowMemory
	// ErrTooLarge: guest memory is too small for what must be loaded.
	// Errors with it are *MemoryError values carrying the size needed.
	ErrTooLarge = bootelf.ErrTooLarge
	// ErrAddressSpace: guest memory larger than the 4 GiB a 32-bit guest
	// can address.
	ErrAddressSpace = bootelf.ErrAddressSpace
	// ErrCmdline: a command line (kernel or module) the guest could not
	// read back as given: too long, containing NUL, or a kernel name with
	// white space.
	ErrCmdline = errors.New("bad command line")
	// ErrAppend: with Options.NetBSD, an append line NetBSD would misread
	// (see Options.NetBSD). It is netbsdboot.ErrAppend too.
	ErrAppend = bootargs.ErrAppend
	// ErrNetBSDModules: with Options.NetBSD, boot modules, which
	// NetBSD's multiboot entry never reads (its native handoff passes
	// them).
	ErrNetBSDModules = errors.New("NetBSD's multiboot entry ignores boot modules")
	// ErrLowAreaFull: the loader's data does not fit in its low-memory
	// window [0x6000, 0x9F000).
	ErrLowAreaFull = errors.New("loader data does not fit in low memory")
)

// MemoryError reports that guest memory is too small (shared with the
// netbsdboot loader). It wraps ErrTooLarge.
type MemoryError = bootelf.MemoryError
