package netbsdboot

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/smolvmm/smolvmm/bootplan"
	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/internal/bootelf"
)

// Where the loader's own data goes: the same window as the multiboot
// loader's, clear of the VMM's IVT and BIOS data below it and of its
// firmware area from 0xA0000.
const (
	LowAreaStart = 0x6000
	LowAreaEnd   = 0x9F000
	// StackTop is the top of the stack page [LowAreaStart, StackTop).
	// /boot's startprog puts the six arguments at the top of base memory
	// (sys/arch/i386/stand/lib/startprog.S:72-94, exec.c:564-565); smolvmm
	// keeps them in its loader window instead.
	StackTop = 0x7000
	// Stack is ESP at entry: a return address, then the six arguments.
	Stack = StackTop - 4*(1+bootNArgs)
	// BootinfoAddr is where the bootinfo table {nentries, entry[]} starts;
	// the records follow it.
	BootinfoAddr = StackTop
)

const (
	bootNArgs = 6 // BOOT_NARGS, exec.c:114
	pageShift = 12
	pageSize  = 1 << pageShift

	// EntryMask is /boot's LOADADDR(): it loads and enters kernels at
	// their address & 0x07ffffff (sys/arch/x86/include/loadfile_machdep.h:40,
	// loadfile_elf32.c:804).
	EntryMask = 0x07ffffff

	// BiosBaseMem is biosbasemem, the KiB below 640 KiB that INT 12h
	// reports (exec.c:382, 511).
	BiosBaseMem = 640

	// BootinfoMaxSize is how many bytes of bootinfo (the count and the
	// records) the kernel copies: 4096 up to NetBSD 7
	// (krytarowski/netbsd-current-src-sys arch/x86/include/bootinfo.h:220),
	// 16384 in 9.x (sys/arch/x86/include/bootinfo.h:254). The kernel
	// silently drops the records past it (sys/arch/i386/i386/machdep.c:345),
	// so the loader refuses to build more than the smaller size.
	BootinfoMaxSize = 4096
	// maxEntries is BTINFO_MAX (sys/arch/i386/stand/lib/bootinfo.h:38).
	maxEntries = 64
)

// How much of physical memory from 0 a NetBSD 9.1 kernel's locore maps at
// boot: it puts its bootstrap page tables at the page-rounded end of what
// was loaded (the esym stack argument, or BTINFO_MODULELIST's endpa) and
// maps everything up to them, then the ISA hole. What is loaded must end,
// page rounded, within it. Each is computed for the largest u-area
// (UPAGES) of any kernel configuration, so that it holds for every one.
const (
	// iomSize is the ISA I/O memory hole locore maps after its tables:
	// IOM_END - IOM_BEGIN (sys/dev/isa/isareg.h:156-158).
	iomSize = 0x100000 - 0xa0000

	// amd64TableSize is amd64's TABLESIZE (sys/arch/amd64/amd64/locore.S:
	// 193-212): NKL4_KIMG_ENTRIES (1) + TABLE_L3_ENTRIES (2, as
	// L3_SLOT_KERNBASE = pl3_pi(0xffffffff80000000) = 510 > 0) +
	// TABLE_L2_ENTRIES (NKL2_KIMG_ENTRIES + 1 = 49, as L2_SLOT_KERNBASE =
	// 0) + 1 + UPAGES (at most 8, with KASAN or KLEAK:
	// sys/arch/amd64/include/param.h:66-72) pages
	// (sys/arch/amd64/include/pmap.h:140-142).
	amd64TableSize = (1 + 2 + 49 + 1 + 8) << pageShift
	// BootMapAMD64 is amd64's BOOTMAP_VA_SIZE (locore.S:215-216):
	// NKL2_KIMG_ENTRIES (48) page tables of 2 MiB (L2_SHIFT 21,
	// sys/arch/amd64/include/pte.h:79) less TABLESIZE and the ISA hole,
	// 0x5f63000 (0x5f67000 for GENERIC's 4-page u-area). locore skips
	// the whole module list when endpa, page rounded, exceeds it
	// (locore.S:491-499), and its page tables past it would map less
	// than what lies below them (locore.S:627-640, 668-731).
	BootMapAMD64 = 48<<21 - amd64TableSize - iomSize

	// i386's locore sizes its tables to what was loaded (nkptp[1],
	// sys/arch/i386/i386/locore.S:641-666) but enters them in the page
	// directory from KERNBASE (0xc0000000) on (:746-751): nkptp[1]
	// page tables of NBPD_L2 bytes, one more than cover the tables'
	// end, must fit in the 1 GiB above KERNBASE, or they overwrite
	// what follows the page directory. With PAE (NBPD_L2 2 MiB,
	// PDP_SIZE 4, one more page for L3, pages of tables twice as large
	// :648-656) the tables are at most (4 + 3 + 1 + 512) * 8 KiB for
	// a 3-page u-area (sys/arch/i386/include/param.h:94-100); without
	// it (NBPD_L2 4 MiB) at most (1 + 3 + 256) * 4 KiB. PAE's is the
	// smaller limit.
	i386TableSize = (4 + 3 + 1 + 512) << (pageShift + 1)
	// BootMapI386 is how far i386's locore can map what was loaded
	// and its tables: 1 GiB less one 2 MiB page table and the tables.
	BootMapI386 = 1<<30 - 2<<20 - i386TableSize
)

// Bootinfo record types (sys/arch/x86/include/bootinfo.h:29-43).
const (
	BtinfoBootpath    = 0
	BtinfoRootDevice  = 1
	BtinfoConsole     = 6
	BtinfoSymtab      = 8
	BtinfoMemmap      = 9
	BtinfoModuleList  = 11
	BtinfoFramebuffer = 12
)

// Record sizes, common header {len, type} included (bootinfo.h:51-215).
const (
	modEntrySize     = 80 + 4 + 4 + 4 // struct bi_modulelist_entry
	memmapEntrySize  = 20             // struct bi_memmap_entry, packed
	framebufferSize  = 56             // struct btinfo_framebuffer
	bootpathSize     = 80
	consoleNameSize  = 16
	rootDeviceSize   = 16
	recordHeaderSize = 8
)

// Options says what the kernel is told besides itself.
type Options struct {
	// KernelName is BTINFO_BOOTPATH, the kernel's file name ("netbsd"
	// when empty).
	KernelName string
	// Append carries boot flags and the console and root device, written
	// as for a multiboot kernel: "-s console=com root=ld0a".
	Append string
	// Modules are loaded page aligned after the kernel's symbols.
	Modules []Module
	// Headroom is how many bytes of RAM must stay free above everything
	// placed: locore builds its bootstrap page tables there.
	Headroom uint64
}

// Load places the NetBSD kernel read from kernel (size bytes), its symbols
// and modules into mem as /boot does, writes the bootinfo records and the
// stack arguments, and returns the plan. The layout is checked before
// anything is written, so a refused kernel leaves mem untouched unless
// reading the file fails midway.
func Load(mem *guestmem.Memory, kernel io.ReaderAt, size int64, opts Options) (bootplan.Plan, error) {
	memSize := mem.Size()
	if memSize > 1<<32 {
		return bootplan.Plan{}, fmt.Errorf("%w: %d MiB of guest memory; a 32-bit entry addresses at most 4096 MiB", ErrAddressSpace, memSize>>20)
	}
	if size < 0 {
		return bootplan.Plan{}, fmt.Errorf("%w: negative file size %d", ErrNotNetBSD, size)
	}
	usize := uint64(size)
	h, err := readHeader(kernel, usize)
	if err != nil {
		return bootplan.Plan{}, err
	}
	id, err := detect(kernel, usize, h)
	if err != nil && h.Type == typeRel && errors.Is(err, ErrNotNetBSD) {
		// What a kernel module is, and never a kernel: checkMachine
		// says so of one with the ident note.
		return bootplan.Plan{}, fmt.Errorf("%w: %w: an ELF%d relocatable object (e_type 1, ET_REL) for %s without NetBSD's ident note, as a kernel module is: not a kernel",
			ErrNotNetBSD, ErrUnsupportedELF, id.Class, bootelf.MachineName(h.Machine))
	}
	if err != nil {
		return bootplan.Plan{}, err
	}
	if err := checkMachine(kernel, usize, h, id); err != nil {
		return bootplan.Plan{}, err
	}
	k, err := parseKernel(kernel, usize, h)
	if err != nil {
		return bootplan.Plan{}, err
	}
	k.version = id.Version
	args, err := ParseAppend(opts.Append)
	if err != nil {
		return bootplan.Plan{}, err
	}
	k.warnings = append(k.warnings, args.Warnings...)
	lay, err := layOut(k, opts, memSize)
	if err != nil {
		return bootplan.Plan{}, err
	}
	notes, err := moduleNotes(kernel, usize, h, k, lay)
	if err != nil {
		return bootplan.Plan{}, err
	}
	k.warnings = append(k.warnings, notes...)
	low, err := lay.lowArea(k, args, opts, memSize)
	if err != nil {
		return bootplan.Plan{}, err
	}
	// Everything fits: write.
	if err := bootelf.WriteSegments(mem, kernel, k.segs); err != nil {
		return bootplan.Plan{}, err
	}
	if err := k.syms.write(mem, kernel); err != nil {
		return bootplan.Plan{}, err
	}
	for i, m := range lay.mods {
		if _, err := mem.WriteAt(m.Data, int64(lay.modAddrs[i])); err != nil {
			return bootplan.Plan{}, fmt.Errorf("placing module %d (%s): %w", i, m.Name, err)
		}
	}
	if _, err := mem.WriteAt(low, LowAreaStart); err != nil {
		return bootplan.Plan{}, fmt.Errorf("placing the stack and bootinfo: %w", err)
	}

	format := "elf32"
	if h.Class == bootelf.Class64 {
		format = "elf64"
	}
	return bootplan.Plan{
		Protocol: bootplan.NetBSD,
		EIP:      k.entry, ESP: Stack,
		KernelStart: uint32(k.start), KernelEnd: uint32(k.end), End: uint32(lay.endpa),
		Format: format, Symbols: k.syms.symtab,
		Regions:  lay.regions(k, uint64(len(low))),
		Warnings: k.warnings,
		// Each says a word of the append line went nowhere, or that
		// the console is one nobody sees.
		Notices: k.warnings,
	}, nil
}

// checkMachine accepts i386 ELF32 and amd64 ELF64 executables.
func checkMachine(r io.ReaderAt, size uint64, h bootelf.Header, id Ident) error {
	want := uint16(bootelf.Mach386)
	if h.Class == bootelf.Class64 {
		want = bootelf.MachAMD64
	}
	if h.Machine != want || h.Data != bootelf.DataLSB {
		return fmt.Errorf("%w: a NetBSD %s kernel for %s (ELF%d); this loader boots i386 (ELF32) and amd64 (ELF64) kernels",
			ErrMachine, id.Release(), bootelf.MachineName(h.Machine), id.Class)
	}
	if h.Type == typeRel && h.Class == bootelf.Class64 && isKASLR(r, size, h) {
		// amd64's KASLR kernel is linked with -r -d
		// (sys/arch/amd64/conf/Makefile.amd64:76-78): the prekern
		// (sys/arch/amd64/stand/prekern/elf.c:57) relocates it and
		// enters it at locore's start.
		return fmt.Errorf("%w: %w: a NetBSD %s amd64 kernel linked relocatable (e_type 1, ET_REL) for KASLR (as GENERIC_KASLR is): only NetBSD's prekern loads it, at an address of its choosing; /boot and this loader load only a kernel linked at a fixed address (ET_EXEC)",
			ErrUnsupportedELF, ErrKASLR, id.Release())
	}
	if h.Type != bootelf.TypeExec {
		// loadfile_static wants ET_EXEC (loadfile_elf32.c:702-705).
		return fmt.Errorf("%w: e_type %d, want 2 (ET_EXEC): a NetBSD kernel module or object, not a kernel", ErrUnsupportedELF, h.Type)
	}
	if why := xenPV(r, size, h); why != "" {
		// A XENPV kernel is linked with p_paddr = p_vaddr
		// (kern.ldscript.Xen) and starts with paging on, in a domain
		// Xen has built; entered as /boot enters a kernel, it can
		// only crash.
		machine := "i386"
		if h.Class == bootelf.Class64 {
			machine = "amd64"
		}
		return fmt.Errorf("%w: %w: a NetBSD %s %s kernel for Xen PV (it has %s): only the Xen hypervisor starts it, as a paravirtualised guest; on a plain PC such as this machine it crashes at once",
			ErrUnsupportedELF, ErrXenPV, id.Release(), machine, why)
	}
	return nil
}

// Xen's ELF note types (xen/include/public/elfnote.h).
const (
	xenNoteEntry       = 1  // XEN_ELFNOTE_ENTRY: the PV entry point
	xenNotePhys32Entry = 18 // XEN_ELFNOTE_PHYS32_ENTRY: the PVH one
)

// xenPV says what marks the kernel as one for Xen PV, or "" if nothing
// does. i386's XENPV kernels carry a __xen_guest string (9.1
// i386/locore.S:259-276). amd64's put their Xen notes, PV entry point
// included, in .note.Xen (amd64/locore.S:283-316: ELFNOTE pushes that
// section, so __xen_guest is left empty and the linker drops it). A
// kernel that can also start as a PVH guest, as a GENERIC with XENPVHVM
// may, has a PHYS32_ENTRY note too and boots on a PC; without Xen notes
// (9.1's XENPVHVM emits none) it is a plain kernel. Areas it cannot read
// count as holding nothing: the loader's own reading reports them.
func xenPV(r io.ReaderAt, size uint64, h bootelf.Header) string {
	if sectionHasData(r, size, h, "__xen_guest") {
		return "a __xen_guest section, as i386's XEN3PAE_DOMU and XEN3PAE_DOM0 do"
	}
	progs, _ := h.Progs(r, size)
	secs, _, _ := h.Sections(r, size)
	var entry, pvh bool
	look := func(name []byte, typ uint32, _ []byte) bool {
		if string(name) == "Xen" {
			entry = entry || typ == xenNoteEntry
			pvh = pvh || typ == xenNotePhys32Entry
		}
		return false
	}
	// The note sections first, then the PT_NOTE segments, which
	// FindNote reads only when it is given no sections.
	bootelf.FindNote(r, size, h, progs, secs, look)
	bootelf.FindNote(r, size, h, progs, nil, look)
	if entry && !pvh {
		return "a Xen PV entry point note, XEN_ELFNOTE_ENTRY, and no PVH one, XEN_ELFNOTE_PHYS32_ENTRY, as amd64's XEN3_DOMU and XEN3_DOM0 do"
	}
	return ""
}

// sectionHasData says whether the file has a section called name with
// bytes in the file. A section header table it cannot read counts as
// none: the loader's own reading of it reports what is wrong.
func sectionHasData(r io.ReaderAt, size uint64, h bootelf.Header, name string) bool {
	secs, _, err := h.Sections(r, size)
	if err != nil || int(h.Shstrndx) == 0 || int(h.Shstrndx) >= len(secs) {
		return false
	}
	names := secs[h.Shstrndx]
	// A kernel's name table is a few hundred bytes; a hostile file's
	// is not read whole.
	const maxNames = 1 << 16
	if names.Type == sectionNobits || names.Size > maxNames || bootelf.InFile(names.Offset, names.Size, size, "section name table") != nil {
		return false
	}
	strtab := make([]byte, names.Size)
	if bootelf.ReadFull(r, strtab, names.Offset, "section name table") != nil {
		return false
	}
	for _, s := range secs {
		if s.Type != sectionNobits && s.Size > 0 && bootelf.SectionName(strtab, s) == name {
			return true
		}
	}
	return false
}

// sectionNobits is SHT_NOBITS: a section with no bytes in the file.
const sectionNobits = 8

// isKASLR says whether h, an ELF64 relocatable object with NetBSD's ident
// note, defines locore's start (sys/arch/amd64/amd64/locore.S:436), as
// the KASLR kernel does; a kernel module defines no start (and the note
// comes from the kernel's vers.c, sys/conf/newvers.sh:269-279).
func isKASLR(r io.ReaderAt, size uint64, h bootelf.Header) bool {
	secs, _, err := h.Sections(r, size)
	if err != nil {
		return false
	}
	syms, _, err := h.LookupSymbols(r, size, secs, "start")
	_, ok := syms["start"]
	return err == nil && ok
}

// kernel is a parsed and checked NetBSD kernel.
type kernel struct {
	class64    bool // amd64
	segs       []bootelf.Segment
	secs       []bootelf.Section // for its symbols
	start, end uint64
	entry      uint32
	syms       *symArea
	warnings   []string
	version    uint32 // __NetBSD_Version__, from the ident note
}

func parseKernel(r io.ReaderAt, size uint64, h bootelf.Header) (*kernel, error) {
	progs, err := h.Progs(r, size)
	if err != nil {
		return nil, err
	}
	segs, err := bootelf.LoadSegments(progs, size, true)
	if err != nil {
		return nil, err
	}
	if len(segs) == 0 {
		return nil, fmt.Errorf("%w: no PT_LOAD segment with a non-zero p_memsz and any of PF_R, PF_W, PF_X among %d program headers", ErrBadELF, h.Phnum)
	}
	var warnings []string
	for i := range segs {
		// /boot reads each segment to p_vaddr, not p_paddr
		// (sys/lib/libsa/loadfile_elf32.c:736-737, readfile_global's
		// READ), and READ puts it at LOADADDR's p_vaddr & 0x07ffffff
		// (sys/arch/x86/include/loadfile_machdep.h:40,42; the offset is
		// 0 from the BIOS /boot, sys/arch/i386/stand/boot/boot2.c:283,
		// stand/lib/exec.c:413-414): the same rule as the entry point's
		// (MARK_ENTRY, loadfile_elf32.c:804). p_paddr is never read.
		s := &segs[i]
		if a := s.Vaddr & EntryMask; a != s.Addr {
			warnings = append(warnings, fmt.Sprintf("%s: p_paddr %#x ignored: loaded at p_vaddr %#x & %#x = %#x, as NetBSD's /boot loads it",
				s.Name, s.Addr, s.Vaddr, EntryMask, a))
			s.Addr = a
		}
	}
	for _, s := range segs {
		// Placed below 128 MiB, a segment ends past 4 GiB only by its
		// size: the file is wrong, not the machine it is for. The size
		// is checked first: moved to p_vaddr's address, a segment whose
		// p_paddr + p_memsz did not wrap around may.
		if s.MemSize > 1<<32 {
			return nil, fmt.Errorf("%w: %s: p_memsz %#x at %#x ends past the 4 GiB a 32-bit kernel addresses",
				ErrBadELF, s.Name, s.MemSize, s.Addr)
		}
		if s.End() > 1<<32 {
			return nil, fmt.Errorf("%w: %s: p_memsz %#x at %#x ends at %#x, past the 4 GiB a 32-bit kernel addresses",
				ErrBadELF, s.Name, s.MemSize, s.Addr, s.End())
		}
	}
	if err := bootelf.CheckPlacement(segs); err != nil {
		return nil, err
	}
	k := &kernel{class64: h.Class == bootelf.Class64, segs: segs, warnings: warnings}
	k.start, k.end = bootelf.Extent(segs)
	// The entry point: e_entry with /boot's mask (loadfile_elf32.c:804);
	// for amd64 that is the 32-bit start in locore.S.
	entry := h.Entry & EntryMask
	inside := false
	for _, s := range segs {
		if entry >= s.Addr && entry < s.End() {
			inside = true
		}
	}
	if !inside {
		return nil, fmt.Errorf("%w: entry point e_entry %#x & %#x = %#x lies in no loaded segment", ErrBadELF, h.Entry, EntryMask, entry)
	}
	k.entry = uint32(entry)
	secs, raw, err := h.Sections(r, size)
	if err != nil {
		return nil, err
	}
	k.secs = secs
	if k.syms, err = planSymbols(r, size, h, secs, raw, k.end); err != nil {
		return nil, err
	}
	k.warnings = append(k.warnings, k.syms.notices...)
	if !k.syms.symtab && len(k.syms.notices) == 0 {
		k.warnings = append(k.warnings, "the kernel has no symbol table (SHT_SYMTAB): ddb, ksyms and module linking will lack symbols")
	}
	return k, nil
}

// layout is where the symbols' end and the modules go.
type layout struct {
	symEnd   uint64 // BTINFO_SYMTAB esym: the symbol area's end
	endpa    uint64 // BTINFO_MODULELIST endpa and the esym stack argument: past the last module
	mods     []Module
	modTypes []ModuleType
	modAddrs []uint64
}

// placed is a module laid out, for the checks on the whole layout.
type placed struct {
	what       string
	start, end uint64
}

func layOut(k *kernel, opts Options, memSize uint64) (*layout, error) {
	// MARK_END rounded to an int (exec.c:450-452): BTINFO_SYMTAB's esym
	// (exec.c:542), and where the modules start.
	l := &layout{symEnd: bootelf.AlignUp(k.syms.end, 4), mods: make([]Module, len(opts.Modules))}
	var all []placed // what may overlap the kernel: symbols and modules
	parts := []string{fmt.Sprintf("the kernel [%#x, %#x)", k.start, k.end), fmt.Sprintf("its symbols [%#x, %#x)", k.syms.start, l.symEnd)}
	top := l.symEnd
	limit := min(memSize, math.MaxUint32)
	var kmods []kmodAlloc // what each kmod takes of amd64's module_map
	for i, m := range opts.Modules {
		// Decompressed first: the type is decided, and the module
		// placed, by what the kernel will get.
		// Bounded by the memory left, not all of it: N modules must
		// not cost the host N times the guest's memory before the last
		// is refused.
		var left uint64
		if at := bootelf.AlignUp(top, pageSize); at < limit {
			left = limit - at
		}
		data, err := m.contents(i, left)
		if err != nil {
			return nil, err
		}
		m.Data = data
		l.mods[i] = m
		t, err := m.resolve(i)
		if err != nil {
			return nil, err
		}
		switch t {
		case ModuleELF:
			var alloc kobjAlloc
			alloc, err = m.checkKmod(i, k)
			kmods = append(kmods, kmodAlloc{i, m.Name, alloc})
		case ModuleRnd:
			var note string
			note, err = m.checkRndSeed(i, k.version)
			if note != "" {
				k.warnings = append(k.warnings, note)
			}
		}
		if err != nil {
			return nil, err
		}
		if len(m.Name) > maxModulePath || m.Name == "" || strings.IndexByte(m.Name, 0) >= 0 {
			return nil, fmt.Errorf("%w: module %d: path %q is %d bytes; the module list's path field holds 1 to %d (80 with the NUL)",
				ErrModule, i, m.Name, len(m.Name), maxModulePath)
		}
		// Each module at the next page (exec.c:745), right after the
		// previous one's bytes (exec.c:777-778).
		addr := bootelf.AlignUp(top, pageSize)
		top = addr + uint64(len(m.Data))
		l.modTypes = append(l.modTypes, t)
		l.modAddrs = append(l.modAddrs, addr)
		all = append(all, placed{fmt.Sprintf("module %d (%s, %d bytes) at %#x", i, m.Name, len(m.Data), addr), addr, top})
		parts = append(parts, fmt.Sprintf("module %d (%s, %d bytes) [%#x, %#x)", i, m.Name, len(m.Data), addr, top))
	}
	l.endpa = top // exec.c:781
	if err := k.checkBootMap(l.endpa, all); err != nil {
		return nil, err
	}
	if k.class64 {
		if err := checkModuleMap(l.endpa, kmods); err != nil {
			return nil, err
		}
	}
	for _, p := range all {
		for _, s := range k.segs {
			if p.start < s.End() && s.Addr < p.end {
				return nil, fmt.Errorf("%w: %w: %s overlaps the kernel's %s", ErrModule, ErrOverlap, p.what, s)
			}
		}
	}
	// Everything is placed in order, up to top: what needs more memory
	// than there is is the whole layout, whichever part crosses the end.
	// Above it locore builds its bootstrap tables, which grow with it.
	headroom := max(opts.Headroom, k.bootTables(top))
	if need := top + headroom; need > limit {
		return nil, &MemoryError{What: bootelf.LayoutWhat(parts, headroom), Need: need, Have: memSize}
	}
	return l, nil
}

// bootTables is how many bytes above end (the last module's end, or the
// symbols') the kernel's locore takes for its bootstrap page tables and
// proc0's stack, page rounding included. amd64's are of a fixed size
// (amd64TableSize). i386's grow with what was loaded
// (sys/arch/i386/i386/locore.S:638-666): nkptp[1] page tables covering the
// tables' own end, plus one, besides PDP_SIZE directory pages and UPAGES
// of stack; with PAE, one more L3 page and every page twice as large.
// PAE with a 3-page u-area is assumed, the larger: NBPD_L2 2 MiB, PDP_SIZE 4.
func (k *kernel) bootTables(end uint64) uint64 {
	esi := bootelf.AlignUp(end, pageSize)
	if k.class64 {
		return esi - end + amd64TableSize
	}
	const l2 = 2 << 20
	ptps := (esi+l2-1)/l2 + 1
	for {
		size := (4 + 3 + 1 + ptps) << (pageShift + 1)
		need := (esi+size+l2-1)/l2 + 1
		if need == ptps {
			return esi - end + size
		}
		ptps = need
	}
}

// checkBootMap refuses a layout ending, page rounded, past what the
// kernel's locore maps at boot (BootMapAMD64, BootMapI386): raising guest
// memory does not help it. The first module to end past it is named, or
// the kernel and its symbols when no module does.
func (k *kernel) checkBootMap(endpa uint64, mods []placed) error {
	limit, arch, why := uint64(BootMapI386), "i386", "its bootstrap page tables would overrun its page directory"
	if k.class64 {
		limit, arch, why = BootMapAMD64, "amd64", "it would skip the whole module list, and its bootstrap page tables would lie past what it maps"
	}
	if bootelf.AlignUp(endpa, pageSize) <= limit {
		return nil
	}
	what := fmt.Sprintf("the kernel and its symbols end at %#x", endpa)
	wrap := ErrBootMap
	for _, m := range mods {
		if bootelf.AlignUp(m.end, pageSize) > limit {
			what, wrap = fmt.Sprintf("%s ends at %#x", m.what, m.end), fmt.Errorf("%w: %w", ErrModule, ErrBootMap)
			break
		}
	}
	return fmt.Errorf("%w: %s, past %#x (%.1f MiB), the most of memory NetBSD's %s locore maps at boot: %s",
		wrap, what, limit, float64(limit)/(1<<20), arch, why)
}

// kmodAlloc is what module i, a kmod called name, takes of module_map.
type kmodAlloc struct {
	i     int
	name  string
	alloc kobjAlloc
}

// checkModuleMap refuses (ErrModule, ErrBootMap) the first of an amd64
// kernel's kmods that would find no room in its module_map, what is
// loaded ending at endpa, whose page rounding checkBootMap found within
// BootMapAMD64. amd64 links modules within 2 GiB of the kernel, in
// module_map (9.1 sys/arch/amd64/amd64/machdep.c:384-395), the rest of
// the 96 MiB locore maps at boot: from atdevbase + IOM_SIZE (:1583),
// atdevbase being KERNBASE + the page-rounded endpa (locore.S:644-647)
// + TABLESIZE (:868-871), to KERNBASE + NKL2_KIMG_ENTRIES * NBPD_L2
// (machdep.c:1584), so BOOTMAP_VA_SIZE less the page-rounded endpa.
// BootMapAMD64 counts the largest u-area, so this leaves up to 16 KiB
// less than a GENERIC kernel has: a kmod within that of the limit is
// refused though it would fit. module_init_md primes the kmods in the
// module list's order (x86_machdep.c:231-243) and each one kobj_load
// links takes its data, read-only data and code from module_map
// (subr_kobj.c:424-462), where a boot module stays (kern_module.c:
// 1428-1444); nothing takes module_map before them (the map is set up
// empty, machdep.c:392, and module_init_md runs from module_init,
// kern_module.c:418). A kmod finding no room fails "out of memory",
// which module_init_md ignores: the kernel boots without it. i386 links
// modules in kernel_map (kern_module.c:410-411), which has room.
func checkModuleMap(endpa uint64, kmods []kmodAlloc) error {
	size := uint64(BootMapAMD64) - bootelf.AlignUp(endpa, pageSize)
	var taken uint64
	var before []string
	for _, m := range kmods {
		need := m.alloc.mapBytes()
		if need <= size-taken {
			taken += need
			before = append(before, fmt.Sprintf("module %d (%s)", m.i, m.name))
			continue
		}
		left := size - taken
		share := ""
		if len(before) > 0 {
			share = fmt.Sprintf(" (module_map holds %d bytes, of which the kmods before it, %s, take %d)", size, joinAnd(before), taken)
		}
		return fmt.Errorf("%w: %w: module %d (%s), a kmod, needs %d bytes (%.1f MiB) of the amd64 kernel's module_map to be linked (code %d, read-only data %d, data %d bytes, as kobj_load sums them, each page rounded), but only %d bytes (%.1f MiB) are left%s: module_map is what remains of the %#x bytes locore maps at boot past its bootstrap tables, the ISA hole and what was loaded (ending at %#x); kobj_load would fail (\"out of memory\") and the kernel would boot without it",
			ErrModule, ErrBootMap, m.i, m.name, need, float64(need)/(1<<20), m.alloc.text, m.alloc.rodata, m.alloc.data,
			left, float64(left)/(1<<20), share, 48<<21, endpa)
	}
	return nil
}

// joinAnd lists items as "a", "a and b", "a, b and c".
func joinAnd(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

// record is one bootinfo record: its type and what follows the common
// {len, type} header.
type record struct {
	typ  uint32
	body []byte
}

// lowArea builds the stack page and the bootinfo table and records, as
// one block to write at LowAreaStart.
func (l *layout) lowArea(k *kernel, args BootArgs, opts Options, memSize uint64) ([]byte, error) {
	le := binary.LittleEndian
	var recs []record

	// BTINFO_CONSOLE first, as exec.c:479 adds it.
	con := make([]byte, consoleNameSize+8)
	copy(con, args.Console)
	le.PutUint32(con[16:], args.ConsoleAddr)
	le.PutUint32(con[20:], args.ConsoleSpeed)
	recs = append(recs, record{BtinfoConsole, con})

	// BTINFO_BOOTPATH: the kernel's file name (devopen.c:141-142).
	name := opts.KernelName
	if name == "" {
		name = "netbsd"
	}
	if len(name) > bootpathSize-1 {
		k.warnings = append(k.warnings, fmt.Sprintf("the kernel's name is cut to %d bytes in BTINFO_BOOTPATH", bootpathSize-1))
		name = name[:bootpathSize-1]
	}
	bp := make([]byte, bootpathSize)
	copy(bp, name)
	recs = append(recs, record{BtinfoBootpath, bp})

	// BTINFO_ROOTDEVICE: the root device the append line names; the
	// kernel matches a disk by driver, unit and partition, and takes any
	// other name (a wedge's, an interface's) as rootspec
	// (sys/arch/x86/x86/x86_autoconf.c:355-387).
	if args.Root != "" {
		rd := make([]byte, rootDeviceSize)
		copy(rd, args.Root)
		recs = append(recs, record{BtinfoRootDevice, rd})
	}

	// BTINFO_MEMMAP: the map every protocol gives (exec.c:433).
	mm := bootelf.MemoryMap(memSize)
	mb := make([]byte, 4+memmapEntrySize*len(mm))
	le.PutUint32(mb, uint32(len(mm)))
	for i, e := range mm {
		p := mb[4+i*memmapEntrySize:]
		le.PutUint64(p, e.Base)
		le.PutUint64(p[8:], e.Length)
		le.PutUint32(p[16:], e.Type)
	}
	recs = append(recs, record{BtinfoMemmap, mb})

	// BTINFO_MODULELIST, even empty, as module_init always builds it
	// (exec.c:703-781, added at 525).
	ml := make([]byte, 8+modEntrySize*len(l.mods))
	le.PutUint32(ml, uint32(len(l.mods)))
	le.PutUint32(ml[4:], uint32(l.endpa))
	for i, m := range l.mods {
		p := ml[8+i*modEntrySize:]
		copy(p[:80], m.Name)
		le.PutUint32(p[80:], uint32(l.modTypes[i]))
		le.PutUint32(p[84:], uint32(len(m.Data)))
		le.PutUint32(p[88:], uint32(l.modAddrs[i]))
	}
	recs = append(recs, record{BtinfoModuleList, ml})

	// BTINFO_SYMTAB: nsym 1, ssym the header copy, esym the end
	// (exec.c:540-543, loadfile_elf32.c:805-807).
	st := make([]byte, 12)
	le.PutUint32(st, 1)
	le.PutUint32(st[4:], uint32(k.syms.start))
	le.PutUint32(st[8:], uint32(l.symEnd))
	recs = append(recs, record{BtinfoSymtab, st})

	// BTINFO_FRAMEBUFFER with no framebuffer (physaddr 0), as /boot adds
	// it when no VESA mode was set (exec.c:546-548).
	recs = append(recs, record{BtinfoFramebuffer, make([]byte, framebufferSize-recordHeaderSize)})

	// The table, then the records, 4-byte aligned.
	total := 4
	for _, r := range recs {
		total += recordHeaderSize + len(r.body)
	}
	if total > BootinfoMaxSize || len(recs) > maxEntries {
		fixed := total - len(l.mods)*modEntrySize
		return nil, fmt.Errorf("%w: %d modules make %d bytes of bootinfo records; the kernel copies at most %d bytes, room for %d modules",
			ErrTooManyModules, len(l.mods), total, BootinfoMaxSize, (BootinfoMaxSize-fixed)/modEntrySize)
	}
	tableLen := 4 + 4*len(recs)
	b := make([]byte, StackTop-LowAreaStart+tableLen, StackTop-LowAreaStart+total+4*len(recs))
	table := b[StackTop-LowAreaStart:]
	le.PutUint32(table, uint32(len(recs)))
	for i, r := range recs {
		addr := LowAreaStart + uint64(len(b))
		le.PutUint32(table[4+4*i:], uint32(addr))
		hdr := make([]byte, recordHeaderSize)
		le.PutUint32(hdr, uint32(recordHeaderSize+len(r.body)))
		le.PutUint32(hdr[4:], r.typ)
		b = append(b, hdr...)
		b = append(b, r.body...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
	}
	if LowAreaStart+uint64(len(b)) > LowAreaEnd {
		return nil, fmt.Errorf("%w: the bootinfo records end at %#x, past %#x", ErrTooManyModules, LowAreaStart+len(b), LowAreaEnd)
	}

	// The stack: a return address the kernel discards, then the six
	// arguments (exec.c:506-511; i386 locore.S:374-381, amd64
	// locore.S:443-454). esym is the end of everything loaded
	// (docs/NETBSD-BOOT-NOTES.md, "NetBSD's own /boot handoff", says
	// why), where /boot passes marks[MARK_END], the
	// symbols' end rounded to an int (exec.c:450-452, 509, before
	// module_init at 515): the kernel takes its
	// symbols from BTINFO_SYMTAB (i386 machdep.c:1079-1085) and puts its
	// bootstrap tables past esym, then past endpa when set (i386
	// locore.S:620-635), so either works; without modules they agree.
	// biosextmem: /boot's getextmemx takes the largest of INT 15h AH=88h,
	// E801 and the E820 entry that starts at 1 MiB
	// (sys/arch/i386/stand/lib/getextmemx.c:38-93); for RAM contiguous from
	// 1 MiB to the top, as smolvmm's map says, E801 and E820 both give
	// (top - 1 MiB) in KiB (the E820 value only below 2 GiB, where its
	// signed int holds it; E801 up to 4 GiB), and the 16-bit AH=88h value
	// never exceeds them.
	extmem := (memSize - bootelf.LowReserved) / 1024
	words := []uint32{
		0,               // return address
		args.Howto,      // boothowto
		0,               // bootdev: unused by the kernel (exec.c:507)
		BootinfoAddr,    // bootinfo
		uint32(l.endpa), // esym: end of the symbols, or of the last module
		uint32(extmem),  // biosextmem: KiB from 1 MiB to the top of RAM
		BiosBaseMem,     // biosbasemem
	}
	for i, w := range words {
		le.PutUint32(b[Stack-LowAreaStart+4*i:], w)
	}
	return b, nil
}

// regions lists what Load writes, in address order.
func (l *layout) regions(k *kernel, lowLen uint64) []bootplan.Region {
	rs := []bootplan.Region{
		{Addr: LowAreaStart, Len: StackTop - LowAreaStart, What: "stack: return address, boothowto, bootdev, bootinfo, esym, biosextmem, biosbasemem"},
		{Addr: BootinfoAddr, Len: lowLen - (StackTop - LowAreaStart), What: "bootinfo table and records"},
	}
	for _, s := range k.segs {
		rs = append(rs, bootplan.Region{Addr: s.Addr, Len: s.MemSize, What: s.Name})
	}
	rs = append(rs, bootplan.Region{Addr: k.syms.start, Len: k.syms.end - k.syms.start,
		What: "symbols: ELF header copy, section headers, section names, symbol and string tables, CTF"})
	for i, m := range l.mods {
		rs = append(rs, bootplan.Region{Addr: l.modAddrs[i], Len: uint64(len(m.Data)), What: fmt.Sprintf("module %s (%s)", m.Name, l.modTypes[i])})
	}
	slices.SortStableFunc(rs, func(a, b bootplan.Region) int { return cmp.Compare(a.Addr, b.Addr) })
	return rs
}
