package netbsdboot

import (
	"errors"

	"github.com/smolvmm/smolvmm/internal/bootargs"
	"github.com/smolvmm/smolvmm/internal/bootelf"
	"github.com/smolvmm/smolvmm/internal/kernelimage"
)

// Sentinel errors. Every error Load returns wraps one of them.
var (
	// ErrNotNetBSD: the file is not an ELF file carrying NetBSD's ident
	// note (name "NetBSD", type 1).
	ErrNotNetBSD = errors.New("not a NetBSD kernel")
	// ErrMachine: a NetBSD kernel for a machine other than i386 or amd64.
	ErrMachine = errors.New("NetBSD kernel for another machine")
	// ErrKASLR: an amd64 NetBSD kernel linked relocatable for KASLR
	// (GENERIC_KASLR), which only NetBSD's prekern loads. Errors with it
	// also wrap ErrUnsupportedELF. It is also kstrip.ErrKASLR: both
	// refuse the same kernel.
	ErrKASLR = kernelimage.ErrKASLR
	// ErrXenPV: a NetBSD kernel built for Xen's paravirtualised guests
	// (XEN3_DOMU, XEN3PAE_DOMU, XEN3_DOM0), which only Xen starts. Errors
	// with it also wrap ErrUnsupportedELF.
	ErrXenPV = errors.New("NetBSD Xen PV kernel")
	// ErrAppend: a boot flag or key=value word the handoff cannot pass as
	// given (unknown flag, bad console address, a root device the kernel
	// would misread, such as ld0 without a partition). It is also
	// multiboot.ErrAppend: both protocols read the line alike.
	ErrAppend = bootargs.ErrAppend
	// ErrModule: a module that cannot be passed (unknown type, path too
	// long for the 80-byte field, overlapping the kernel), or a kmod
	// NetBSD's module loader would refuse and boot without: one not for
	// the kernel's class and machine, one whose sections kobj_load
	// refuses (ErrKmodDamaged), one of another release (ErrKmodVersion),
	// one amd64's module_map has no room to link (with ErrBootMap).
	ErrModule = errors.New("bad boot module")
	// ErrKmodDamaged: a kmod cut short (shorter than its ELF header, or a
	// section header table or section the loader reads past its end),
	// stripped of its symbol table, or whose section headers kobj_load
	// refuses otherwise (two symbol tables, one linking no string table,
	// bad e_shentsize, e_shnum, e_shoff or e_shstrndx, no code); wrapped
	// with ErrModule.
	ErrKmodDamaged = errors.New("damaged kmod")
	// ErrKmodVersion: a kmod built for a NetBSD release whose kmods
	// the kernel's module loader refuses (its mi_version against the
	// kernel's __NetBSD_Version__); wrapped with ErrModule.
	ErrKmodVersion = errors.New("kmod built for another NetBSD release")
	// ErrModuleType: a module type that is none of kmod, fs, splash or
	// rndseed (wrapped with ErrModule).
	ErrModuleType = errors.New("unknown module type")
	// ErrBootMap: what is loaded ends past what the kernel's locore maps
	// at boot (BootMapAMD64, BootMapI386), whatever the guest's memory,
	// or, for amd64, the kmods' linked copies do not fit in what that
	// mapping leaves past everything loaded (the kernel's module_map).
	// Wrapped with ErrModule when a module is the cause.
	ErrBootMap = errors.New("beyond the kernel's bootstrap mapping")
	// ErrTooManyModules: the bootinfo records do not fit in what the
	// kernel copies.
	ErrTooManyModules = errors.New("too many boot modules")

	// The ELF errors shared with the multiboot loader.
	ErrNotELF         = bootelf.ErrNotELF
	ErrUnsupportedELF = bootelf.ErrUnsupportedELF
	ErrBadELF         = bootelf.ErrBadELF
	ErrTruncated      = bootelf.ErrTruncated
	ErrOverlap        = bootelf.ErrOverlap
	ErrLowMemory      = bootelf.ErrLowMemory
	ErrTooLarge       = bootelf.ErrTooLarge
	ErrAddressSpace   = bootelf.ErrAddressSpace
)

// MemoryError reports that guest memory is too small; it wraps ErrTooLarge
// and is the type multiboot.MemoryError also names.
type MemoryError = bootelf.MemoryError
