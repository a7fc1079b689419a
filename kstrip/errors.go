package kstrip

import (
	"errors"

	"github.com/smolvmm/smolvmm/internal/kernelimage"
	"github.com/smolvmm/smolvmm/internal/regfile"
)

// Errors Parse wraps, so callers and tests can tell bad inputs apart.
var (
	// ErrNotELF: the file is not an ELF image.
	ErrNotELF = errors.New("not an ELF file")
	// ErrTruncated: the file has ELF's magic, but a header it locates
	// runs past the file's end (a copy cut short).
	ErrTruncated = errors.New("truncated ELF file")
	// ErrMalformed: the file has ELF's magic, but its headers or its
	// symbol table cannot be read, or the headers describe no kernel
	// (hundreds of loadable segments).
	ErrMalformed = errors.New("malformed ELF file")
	// ErrNotExec: the ELF file is not an executable (e_type ET_EXEC), as
	// every NetBSD kernel linked at a fixed address is: a kernel module,
	// another object, or a KASLR kernel (ErrKASLR).
	ErrNotExec = errors.New("not an executable ELF file")
	// ErrKASLR: an amd64 NetBSD kernel linked relocatable for KASLR
	// (GENERIC_KASLR), whose cfdata has no address until NetBSD's prekern
	// places it. Errors with it also wrap ErrNotExec. It is also
	// netbsdboot.ErrKASLR: both refuse the same kernel.
	ErrKASLR = kernelimage.ErrKASLR
	// ErrNoSymbols: the kernel has no symbol table (it was stripped).
	ErrNoSymbols = errors.New("no symbol table")
	// ErrNoCfdata: the symbol table has no cfdata symbol.
	ErrNoCfdata = errors.New("no cfdata symbol")
	// ErrNotMapped: an address lies outside every loaded, file-backed segment.
	ErrNotMapped = errors.New("address outside every loaded segment")
	// ErrNoTerminator: the table does not end with an all-zero entry
	// inside its segment, or within the most entries a table may have.
	ErrNoTerminator = errors.New("no all-zero terminator")
	// ErrLayout: the cfdata table does not read as the struct cfdata of
	// the kernel's NetBSD release, or of either release when the kernel
	// does not say which it is (NetBSD 10 changed where cf_fstate is).
	ErrLayout = errors.New("cfdata layout unknown")
	// ErrBadString: a name pointer does not lead to a NUL-terminated string.
	ErrBadString = errors.New("bad string")
	// ErrUnknownName: a keep, enable or disable name matches no entry.
	ErrUnknownName = errors.New("unknown name")
	// ErrConfigFile: a keep list is written as a kernel configuration
	// file (config(5): "options INSECURE", "com0 at isa?"), not as names.
	ErrConfigFile = errors.New("a kernel configuration file, not a list of names")
	// ErrNothingKept: a strip was given keep or enable names and none of
	// them matches an entry (all ignored as unknown), so it would disable
	// every entry but the root, which would attach nothing.
	ErrNothingKept = errors.New("no keep or enable name matches an entry")
	// ErrTooLarge: ReadFile was given a file larger than MaxImage, which
	// no kernel is; it is refused before it is read.
	ErrTooLarge = regfile.ErrTooLarge
)
