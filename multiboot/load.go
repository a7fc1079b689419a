package multiboot

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/smolvmm/smolvmm/bootplan"
	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/internal/bootargs"
	"github.com/smolvmm/smolvmm/internal/bootelf"
)

// Options says what the guest is told besides the kernel itself.
type Options struct {
	// KernelName is the command line's first word, which kernels skip as
	// their file name: the kernel file's base name. Empty means "kernel".
	KernelName string
	// Append is the rest of the command line, e.g. "console=com root=ld0a".
	Append string
	// NetBSD says the kernel is NetBSD's, which reads Append its own way:
	// the loader then refuses what netbsdboot refuses (a root= the
	// kernel would misread, such as ld0 without a partition; an unknown
	// boot flag; a console= other than com or pc, a console_addr= other
	// than the machine's serial port 0x3f8, a console_speed= the kernel
	// cannot set, each of which leaves the guest printing nothing) and
	// gathers the flags of every -xyz word into one word right after the
	// kernel name, the only place NetBSD's multiboot entry looks for
	// them. Each word NetBSD ignores, and the first with a '/', which
	// it takes as its boot path, gets a notice (see Plan.Notices).
	// Other kernels get Append as it stands. With NetBSD, Modules
	// must be empty: NetBSD's multiboot entry never reads the module list
	// (NetBSD 9.1 arch/i386/i386/multiboot.c), so the kernel would run
	// without them, and its bootstrap page tables overwrite them.
	NetBSD bool
	// Modules are optional boot modules, loaded page-aligned after the
	// kernel and its symbols.
	Modules []Module
	// Headroom is how many bytes of RAM must stay free above everything
	// the loader places. NetBSD's locore builds its bootstrap page tables
	// and proc0's stack right there, before it has a console: too little
	// RAM above the kernel kills it silently, so refuse that here.
	Headroom uint64
}

// Module is a boot module. The guest sees its command line as "Name Args"
// (just "Name" when Args is empty).
type Module struct {
	Name string
	Data []byte // the module's bytes, loaded as they are
	Args string
}

// Plan is what the VMM applies to the boot vCPU: EIP=Entry, EAX, EBX, flat
// 32-bit protected mode, paging and interrupts off.
type Plan struct {
	Entry, EAX, EBX uint32
	// KernelStart and KernelEnd bound the loaded image, BSS included.
	KernelStart, KernelEnd uint32
	// End is the first byte after everything the loader placed at or above
	// 1 MiB (image, symbols, modules).
	End uint32
	// Format is "elf" or "aout-kludge".
	Format string
	// Symbols reports that the ELF symbol and string tables were loaded and
	// announced (info flag 0x20).
	Symbols bool
	// Warnings lists what the loader chose to leave out and why (e.g.
	// symbols it could not pass safely), for verbose output.
	Warnings []string
	// Notices are the Warnings a user should see without verbose output:
	// a NetBSD kernel given no console= starts on a display the machine
	// does not have, and prints nothing; a word of Append it ignores
	// would change nothing (a "single" boots multi-user); a word with a
	// '/' becomes its boot path.
	Notices []string
	// Regions lists every range of guest memory the loader wrote, in
	// address order.
	Regions []bootplan.Region
}

// Stack is the ESP the multiboot entry gets (the protocol leaves it
// undefined): the top of the VMM's reserved pages, just below the loader's
// window.
const Stack = LowAreaStart

// Boot returns the plan in the form every protocol shares.
func (p Plan) Boot() bootplan.Plan {
	format := p.Format
	if format == "elf" {
		format = "elf32"
	}
	return bootplan.Plan{
		Protocol: bootplan.Multiboot,
		EIP:      p.Entry, ESP: Stack, EAX: p.EAX, EBX: p.EBX,
		KernelStart: p.KernelStart, KernelEnd: p.KernelEnd, End: p.End,
		Format: format, Symbols: p.Symbols,
		Regions: p.Regions, Warnings: p.Warnings, Notices: p.Notices,
	}
}

// Load places the multiboot v1 kernel read from kernel (size bytes) and
// everything it is given into mem, and returns the boot plan. It checks the
// whole layout before writing, so a refused kernel leaves mem untouched
// unless reading the file fails midway.
func Load(mem *guestmem.Memory, kernel io.ReaderAt, size int64, opts Options) (Plan, error) {
	memSize := mem.Size()
	if memSize > 1<<32 {
		return Plan{}, fmt.Errorf("%w: %d MiB of guest memory; a 32-bit guest addresses at most 4096 MiB", ErrAddressSpace, memSize/mib)
	}
	hdr, hdrOff, err := FindHeader(kernel, size)
	if err != nil {
		return Plan{}, err
	}
	if err := hdr.Check(); err != nil {
		return Plan{}, err
	}
	if opts.NetBSD && len(opts.Modules) > 0 {
		return Plan{}, netbsdModulesError(opts.Modules)
	}
	cmdline, notices, err := commandLine(opts)
	if err != nil {
		return Plan{}, err
	}
	im, err := parseImage(kernel, uint64(size), hdr, uint64(hdrOff))
	if err != nil {
		return Plan{}, err
	}
	if hdr.Flags&FlagVideoMode != 0 {
		im.notes = append([]string{fmt.Sprintf("the kernel asks for a %dx%dx%d video mode (header flag bit 2); this machine has no framebuffer, so no video information is passed",
			hdr.Width, hdr.Height, hdr.Depth)}, im.notes...)
	}
	if err := im.checkPlacement(); err != nil {
		return Plan{}, err
	}

	lay, err := layOut(im, opts, memSize)
	if err != nil {
		return Plan{}, err
	}
	infoAddr, err := lay.buildLowArea(im, cmdline, memSize)
	if err != nil {
		return Plan{}, err
	}
	if err := lay.write(mem, kernel, im); err != nil {
		return Plan{}, err
	}
	return Plan{
		Entry: im.entry, EAX: BootloaderMagic, EBX: infoAddr,
		KernelStart: uint32(lay.kernelStart), KernelEnd: uint32(lay.kernelEnd), End: uint32(lay.top),
		Format: im.format, Symbols: im.syms != nil, Warnings: append(notices, im.notes...),
		Notices: notices, Regions: lay.regions(im),
	}, nil
}

// netbsdModulesError refuses mods for a NetBSD kernel: loaded and listed,
// they would go unseen, the guest failing later for want of them (a
// miniroot.kmod left out ends at the root device prompt) with nothing to
// say why.
func netbsdModulesError(mods []Module) error {
	names := make([]string, len(mods))
	for i, m := range mods {
		names[i] = m.Name
	}
	what := "boot modules"
	if len(mods) == 1 {
		what = "boot module"
	}
	return fmt.Errorf("%w: the kernel never reads the multiboot module list, so it would not see its %d %s (%s)",
		ErrNetBSDModules, len(mods), what, strings.Join(names, ", "))
}

// commandLine builds "<KernelName> <Append>" (Append arranged for NetBSD
// when the kernel is NetBSD's) and checks it survives the guest's copy.
func commandLine(opts Options) ([]byte, []string, error) {
	name := opts.KernelName
	if name == "" {
		name = "kernel"
	}
	if strings.ContainsAny(name, " \t\n\r\v\f") {
		return nil, nil, fmt.Errorf("%w: kernel name %q contains white space, but the guest takes the command line's first word as the kernel name; rename the file", ErrCmdline, name)
	}
	var notices []string
	rest := opts.Append
	if opts.NetBSD {
		l, err := bootargs.Parse(rest)
		if err != nil {
			return nil, nil, err
		}
		rest = l.Multiboot()
		// The words NetBSD ignores: unnoticed, "single" would boot
		// multi-user and init=/sbin/init become the boot path
		// (setup_bootpath runs for a loader name that sorts after
		// "GNU GRUB ", as LoaderName does: multiboot.c:493-494).
		notices = l.Unread(bootargs.MultibootEntry, name)
		if !l.Has("console") {
			// setup_console (multiboot.c) then leaves the console on
			// the display, which this machine does not have.
			notices = append(notices, "no console= given: the kernel's console is pc, a display this machine does not have, so it will print nothing; console=com puts it on the serial line")
		}
	}
	s := name
	if rest != "" {
		s += " " + rest
	}
	if len(s) > maxCmdlineSize {
		return nil, nil, fmt.Errorf("%w: command line %q... is %d bytes; the limit is %d (NetBSD copies 255 bytes including the NUL); shorten the append string",
			ErrCmdline, s[:40], len(s), maxCmdlineSize)
	}
	b, err := cstring(s, "command line")
	return b, notices, err
}

// layout is where everything goes, decided before anything is written.
type layout struct {
	kernelStart, kernelEnd, top uint64
	mods                        []Module
	modAddrs                    []uint64
	low                         lowArea
}

// layOut places symbols and modules after the image and checks that all of
// it fits in guest memory and below 4 GiB.
func layOut(im *image, opts Options, memSize uint64) (*layout, error) {
	l := &layout{mods: opts.Modules}
	l.kernelStart, l.kernelEnd = im.extent()
	l.top = l.kernelEnd
	limit := min(memSize, math.MaxUint32)
	for _, s := range im.segs {
		// Loaded at p_paddr: a segment past 4 GiB is placed there by
		// its link, whatever the memory.
		if s.End() > 1<<32 {
			return nil, &MemoryError{What: s.String(), Need: s.End(), Have: memSize}
		}
	}
	parts := []string{fmt.Sprintf("the kernel [%#x, %#x)", l.kernelStart, l.kernelEnd)}
	if im.syms != nil {
		l.top = im.syms.place(l.kernelEnd)
		parts = append(parts, fmt.Sprintf("its symbol and string tables [%#x, %#x)", im.syms.symAddr, l.top))
	}
	for i, m := range opts.Modules {
		addr := alignUp(l.top, 4096)
		l.modAddrs = append(l.modAddrs, addr)
		l.top = addr + uint64(len(m.Data))
		parts = append(parts, fmt.Sprintf("module %d (%s, %d bytes) [%#x, %#x)", i, m.Name, len(m.Data), addr, l.top))
	}
	// Everything is placed in order, up to top: what needs more memory
	// than there is is the whole layout, whichever part crosses the end.
	if need := l.top + opts.Headroom; need > limit {
		return nil, &MemoryError{What: bootelf.LayoutWhat(parts, opts.Headroom), Need: need, Have: memSize}
	}
	return l, nil
}

// buildLowArea lays out the information structure and what it points to in
// the low-memory window and returns the structure's address.
func (l *layout) buildLowArea(im *image, cmdline []byte, memSize uint64) (uint32, error) {
	info := make([]byte, InfoSize)
	put := func(off int, v uint32) { binary.LittleEndian.PutUint32(info[off:], v) }
	a := &l.low
	infoAddr, err := a.add(info, 16, "information structure")
	if err != nil {
		return 0, err
	}
	flags := uint32(InfoMemory | InfoCmdline | InfoMmap | InfoLoaderName)
	put(InfoOffMemLower, lowMemTop/kib)
	put(InfoOffMemUpper, uint32((memSize-lowReserved)/kib))

	mmap := encodeMmap(memoryMap(memSize))
	addr, err := a.add(mmap, 8, "memory map")
	if err != nil {
		return 0, err
	}
	put(InfoOffMmapLength, uint32(len(mmap)))
	put(InfoOffMmapAddr, addr)

	if addr, err = a.add(cmdline, 4, "command line"); err != nil {
		return 0, err
	}
	put(InfoOffCmdline, addr)
	if addr, err = a.add([]byte(LoaderName+"\x00"), 4, "loader name"); err != nil {
		return 0, err
	}
	put(InfoOffLoaderName, addr)

	if s := im.syms; s != nil {
		if addr, err = a.add(s.shdrs, 4, fmt.Sprintf("section header table (%d entries)", s.num)); err != nil {
			return 0, err
		}
		flags |= InfoELFShdr
		put(InfoOffShdrNum, s.num)
		put(InfoOffShdrSize, elfShdrSize)
		put(InfoOffShdrAddr, addr)
		put(InfoOffShdrShndx, s.shndx)
	}

	if len(l.mods) > 0 {
		arr := make([]byte, len(l.mods)*modEntrySize)
		arrAddr, err := a.add(arr, 4, fmt.Sprintf("module list (%d entries)", len(l.mods)))
		if err != nil {
			return 0, err
		}
		for i, m := range l.mods {
			line := m.Name
			if m.Args != "" {
				line += " " + m.Args
			}
			what := fmt.Sprintf("module %d command line", i)
			str, err := cstring(line, what)
			if err != nil {
				return 0, err
			}
			if addr, err = a.add(str, 1, what); err != nil {
				return 0, err
			}
			e := arr[i*modEntrySize:]
			binary.LittleEndian.PutUint32(e, uint32(l.modAddrs[i]))
			binary.LittleEndian.PutUint32(e[4:], uint32(l.modAddrs[i])+uint32(len(m.Data)))
			binary.LittleEndian.PutUint32(e[8:], addr)
		}
		flags |= InfoMods
		put(InfoOffModsCount, uint32(len(l.mods)))
		put(InfoOffModsAddr, arrAddr)
	}
	put(InfoOffFlags, flags)
	return infoAddr, nil
}

// regions lists what write writes, in address order.
func (l *layout) regions(im *image) []bootplan.Region {
	rs := []bootplan.Region{{Addr: LowAreaStart, Len: l.low.end() - LowAreaStart, What: "multiboot information, memory map, command line"}}
	for _, s := range im.segs {
		rs = append(rs, bootplan.Region{Addr: s.Addr, Len: s.MemSize, What: s.Name})
	}
	if s := im.syms; s != nil {
		rs = append(rs, bootplan.Region{Addr: s.symAddr, Len: s.strAddr + s.strLen - s.symAddr, What: "symbol and string tables"})
	}
	for i, m := range l.mods {
		rs = append(rs, bootplan.Region{Addr: l.modAddrs[i], Len: uint64(len(m.Data)), What: "module " + m.Name})
	}
	slices.SortStableFunc(rs, func(a, b bootplan.Region) int { return cmp.Compare(a.Addr, b.Addr) })
	return rs
}

// write copies everything into guest memory: segments with their BSS
// zeroed, symbols, modules, and the low-memory data (its window's used part
// zeroed first so gaps are deterministic).
func (l *layout) write(mem *guestmem.Memory, kernel io.ReaderAt, im *image) error {
	if err := bootelf.WriteSegments(mem, kernel, im.segs); err != nil {
		return err
	}
	if s := im.syms; s != nil {
		for _, t := range []struct {
			addr, off, n uint64
			what         string
		}{
			{s.symAddr, s.symOff, s.symLen, fmt.Sprintf("symbol table (section %d)", s.symIdx)},
			{s.strAddr, s.strOff, s.strLen, fmt.Sprintf("string table (section %d)", s.strIdx)},
		} {
			dst, err := mem.Slice(t.addr, t.n)
			if err != nil {
				return fmt.Errorf("placing %s: %w", t.what, err)
			}
			if err := readFull(kernel, dst, t.off, t.what); err != nil {
				return err
			}
		}
	}
	for i, m := range l.mods {
		if _, err := mem.WriteAt(m.Data, int64(l.modAddrs[i])); err != nil {
			return fmt.Errorf("placing module %d (%s): %w", i, m.Name, err)
		}
	}
	used, err := mem.Slice(LowAreaStart, l.low.end()-LowAreaStart)
	if err != nil {
		return fmt.Errorf("placing the information structure: %w", err)
	}
	clear(used)
	for _, it := range l.low.items {
		if _, err := mem.WriteAt(it.data, int64(it.addr)); err != nil {
			return fmt.Errorf("placing loader data at %#x: %w", it.addr, err)
		}
	}
	return nil
}
