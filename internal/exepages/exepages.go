// Package exepages lets a long-running process give up its mappings of its
// own executable's read-only segments (code and read-only data) once it is
// set up.
//
// A VMM process executes a small part of its binary after setup: the vCPU
// loop, a few device models and the Go runtime. Yet its resident set holds
// much more of it: every package initialiser, the flag parser and the
// set-up code ran once, and each page fault on the executable maps up to
// 16 neighbouring pages from the page cache at once (the kernel's fault
// around). Dropping those mappings (madvise MADV_DONTNEED) leaves the
// pages in the page cache, shared with every other process running the
// binary, and maps back from there only what runs again: the resident set
// becomes the working set, and the dropped pages, mapped by nobody, are the
// first the kernel may reclaim under memory pressure.
//
// Only a statically linked executable qualifies: its read-only segments
// hold exactly the file's bytes, so a page dropped and mapped again is the
// same page. In a dynamically linked one, the loader's relocations may
// have written to pages of a segment that is read-only when it runs.
package exepages

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Segment is the page-aligned range of one read-only loadable segment of
// the running executable.
type Segment struct {
	Start, End uintptr // its first address and the one after its last
	// Executable is set for code (PF_X).
	Executable bool
}

// Len is the segment's length in bytes.
func (s Segment) Len() uintptr { return s.End - s.Start }

// ErrDynamic is returned for a dynamically linked executable, whose
// read-only segments may hold pages its loader wrote.
var ErrDynamic = errors.New("the executable is dynamically linked: its read-only segments may hold relocated pages")

// Program header values from the ELF specification.
const (
	atPhdr  = 3 // AT_PHDR: address of the program headers in memory
	atPhent = 4 // AT_PHENT: size of one
	atPhnum = 5 // AT_PHNUM: how many
)

// ReadOnly returns the running executable's read-only loadable segments,
// read from its program headers in memory (the auxiliary vector's AT_PHDR):
// no file is opened.
func ReadOnly() ([]Segment, error) {
	auxv, err := unix.Auxv()
	if err != nil {
		return nil, fmt.Errorf("auxiliary vector: %w", err)
	}
	var phdr, phent, phnum uintptr
	for _, kv := range auxv {
		switch kv[0] {
		case atPhdr:
			phdr = kv[1]
		case atPhent:
			phent = kv[1]
		case atPhnum:
			phnum = kv[1]
		}
	}
	progs, err := programHeaders(phdr, phent, phnum)
	if err != nil {
		return nil, err
	}
	return readOnlySegments(progs, phdr, uintptr(os.Getpagesize()))
}

// programHeaders reads the phnum program headers at address phdr, the
// kernel's own mapping of the executable's first page(s).
func programHeaders(phdr, phent, phnum uintptr) ([]elf.ProgHeader, error) {
	if phdr == 0 || phnum == 0 {
		return nil, fmt.Errorf("auxiliary vector: AT_PHDR %#x, AT_PHNUM %d: no program headers", phdr, phnum)
	}
	var size uintptr
	switch unsafe.Sizeof(uintptr(0)) {
	case 8:
		size = unsafe.Sizeof(elf.Prog64{})
	default:
		size = unsafe.Sizeof(elf.Prog32{})
	}
	if phent != size {
		return nil, fmt.Errorf("auxiliary vector: AT_PHENT %d, want %d for this word size", phent, size)
	}
	progs := make([]elf.ProgHeader, phnum)
	for i := range progs {
		addr := phdr + uintptr(i)*phent
		// A kernel-given address inside a mapping that lives as long as
		// the process; the double indirection keeps vet's unsafeptr
		// check, meant for Go-allocated memory, out of it.
		p := *(*unsafe.Pointer)(unsafe.Pointer(&addr))
		if size == unsafe.Sizeof(elf.Prog64{}) {
			h := (*elf.Prog64)(p)
			progs[i] = elf.ProgHeader{Type: elf.ProgType(h.Type), Flags: elf.ProgFlag(h.Flags), Off: h.Off,
				Vaddr: h.Vaddr, Filesz: h.Filesz, Memsz: h.Memsz}
		} else {
			h := (*elf.Prog32)(p)
			progs[i] = elf.ProgHeader{Type: elf.ProgType(h.Type), Flags: elf.ProgFlag(h.Flags), Off: uint64(h.Off),
				Vaddr: uint64(h.Vaddr), Filesz: uint64(h.Filesz), Memsz: uint64(h.Memsz)}
		}
	}
	return progs, nil
}

// readOnlySegments picks the loadable segments that are not writable, page
// aligned inward so that no page of a neighbouring segment is included.
// phdr is where the program headers are mapped: in a static executable,
// loaded at its link addresses, it lies inside the first loaded segment.
func readOnlySegments(progs []elf.ProgHeader, phdr, page uintptr) ([]Segment, error) {
	headersLoaded := false
	for _, p := range progs {
		switch p.Type {
		case elf.PT_DYNAMIC, elf.PT_INTERP:
			return nil, ErrDynamic
		case elf.PT_LOAD:
			if uint64(phdr) >= p.Vaddr && uint64(phdr) < p.Vaddr+p.Filesz {
				headersLoaded = true
			}
		}
	}
	if !headersLoaded {
		return nil, fmt.Errorf("program headers at %#x are in no loaded segment: the executable is not at its link addresses", phdr)
	}
	var segs []Segment
	for _, p := range progs {
		if p.Type != elf.PT_LOAD || p.Flags&elf.PF_W != 0 || p.Memsz == 0 {
			continue
		}
		start := (uintptr(p.Vaddr) + page - 1) &^ (page - 1)
		end := uintptr(p.Vaddr+p.Memsz) &^ (page - 1)
		if end <= start {
			continue
		}
		segs = append(segs, Segment{Start: start, End: end, Executable: p.Flags&elf.PF_X != 0})
	}
	return segs, nil
}

// Release drops this process's page mappings of the executable's read-only
// segments and returns how many bytes of address space that covered. What
// runs or is read afterwards maps back from the page cache on first touch,
// as after exec. A debugger's breakpoints written into the code are undone.
func Release() (uintptr, error) {
	segs, err := ReadOnly()
	if err != nil {
		return 0, err
	}
	var total uintptr
	for _, s := range segs {
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, s.Start, s.Len(), unix.MADV_DONTNEED); errno != 0 {
			return total, fmt.Errorf("madvise(%#x, %d, MADV_DONTNEED): %w", s.Start, s.Len(), errno)
		}
		total += s.Len()
	}
	return total, nil
}
