package netbsdboot

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/smolvmm/smolvmm/internal/bootelf"
	"github.com/smolvmm/smolvmm/internal/kernelimage"
)

// ModuleType is a boot module's bi_modulelist_entry type
// (sys/arch/x86/include/bootinfo.h:186-190).
type ModuleType int

// Module types. /boot decides the type by the command that named the file
// (sys/arch/i386/stand/boot/boot2.c:154-159: load, splash, rndseed, fs;
// sys/arch/i386/stand/lib/exec.c:169-191 and 758-773), not by its content.
const (
	ModuleAuto  ModuleType = 0 // decide from the content: an ELF file is a kmod, anything else is refused
	ModuleELF   ModuleType = 1 // BI_MODULE_ELF: a kernel module (.kmod), /boot's "load"; an ELF relocatable object (ET_REL) for the kernel's class and machine, whole and with one symbol table, as NetBSD's module loader takes no other
	ModuleImage ModuleType = 2 // BI_MODULE_IMAGE: a splash image, /boot's "splash"
	ModuleRnd   ModuleType = 3 // BI_MODULE_RND: an entropy seed, /boot's "rndseed": RndSeedSize bytes with a matching SHA-1 digest, as rndctl -S saves it
	ModuleFS    ModuleType = 4 // BI_MODULE_FS: a file system image, /boot's "fs"
)

// String returns the name ParseModuleType accepts first.
func (t ModuleType) String() string {
	switch t {
	case ModuleAuto:
		return "auto"
	case ModuleELF:
		return "kmod"
	case ModuleImage:
		return "splash"
	case ModuleRnd:
		return "rndseed"
	case ModuleFS:
		return "fs"
	}
	return fmt.Sprintf("ModuleType(%d)", int(t))
}

// ParseModuleType reads a module type: "" (auto), "kmod" or "load" (ELF),
// "fs", "splash" or "image", "rndseed" or "rnd": /boot's command names and
// the bootinfo names.
func ParseModuleType(s string) (ModuleType, error) {
	switch strings.ToLower(s) {
	case "", "auto":
		return ModuleAuto, nil
	case "kmod", "load", "elf":
		return ModuleELF, nil
	case "fs":
		return ModuleFS, nil
	case "splash", "image":
		return ModuleImage, nil
	case "rndseed", "rnd":
		return ModuleRnd, nil
	}
	return ModuleAuto, fmt.Errorf("%w: type %q: %w: want kmod, fs, splash or rndseed", ErrModule, s, ErrModuleType)
}

// Module is a boot module: a file /boot would load after the kernel.
type Module struct {
	// Name is the path the kernel sees in the module list (80-byte field).
	Name string
	// Data is the file's bytes; gzipped ones are decompressed by Load
	// before the type is decided (see contents). An empty module is
	// refused.
	Data []byte
	// Type is the module's type; ModuleAuto decides it from Data.
	Type ModuleType
}

// maxModulePath is the longest path bi_modulelist_entry.path holds with
// its NUL (bootinfo.h:181); /boot cuts longer ones (exec.c:755), which
// would hide a wrong name, so they are refused.
const maxModulePath = 79

// contents returns the module's bytes as the kernel gets them: /boot opens
// every file through libsa's transparent gzip reader
// (sys/arch/i386/stand/boot/Makefile.boot:82 builds libsa with
// SA_USE_CREAD; sys/lib/libsa/cread.c:261-290 checks each file for the gzip
// magic, :189-254, and inflates it on read) and module_init reads a module
// to its end (sys/arch/i386/stand/lib/exec.c:739-749), so a gzipped module
// reaches the kernel decompressed, whatever its type: the members one
// after another, then any bytes after them that are not gzip data as they
// stand (kernelimage.Gunzip). limit bounds the decompressed size: the
// guest memory left where the module goes. An empty module is refused: it
// holds nothing the kernel could use.
func (m Module) contents(i int, limit uint64) ([]byte, error) {
	if len(m.Data) == 0 {
		return nil, fmt.Errorf("%w: module %d (%s) is empty", ErrModule, i, m.Name)
	}
	if !kernelimage.IsGzip(m.Data) {
		return m.Data, nil
	}
	out, err := kernelimage.Gunzip(m.Data, limit)
	if errors.Is(err, kernelimage.ErrTooLarge) {
		return nil, fmt.Errorf("%w: %w: module %d (%s) expands past the %d MiB of guest memory left for it once decompressed",
			ErrModule, ErrTooLarge, i, m.Name, limit>>20)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: module %d (%s) starts as gzip data: %w", ErrModule, i, m.Name, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: module %d (%s) is empty once decompressed", ErrModule, i, m.Name)
	}
	return out, nil
}

// resolve returns the module's type, deciding ModuleAuto by content.
func (m Module) resolve(i int) (ModuleType, error) {
	switch m.Type {
	case ModuleELF, ModuleImage, ModuleRnd, ModuleFS:
		return m.Type, nil
	case ModuleAuto:
		if len(m.Data) >= 4 && string(m.Data[:4]) == "\x7fELF" {
			return ModuleELF, nil
		}
		return 0, fmt.Errorf("%w: module %d (%s) is not an ELF kernel module; say what it is: fs (a file system image), splash or rndseed",
			ErrModule, i, m.Name)
	}
	return 0, fmt.Errorf("%w: module %d (%s): type %d unknown (want 1-4)", ErrModule, i, m.Name, int(m.Type))
}

// ELF values a kernel module's header must hold besides those bootelf
// names (sys/sys/exec_elf.h).
const (
	typeRel    = 1 // ET_REL
	mach486    = 6 // EM_486, which i386 kernels take as EM_386
	versionCur = 1 // EV_CURRENT
)

// elfTypes names e_type values, for a module that is no module.
var elfTypes = map[uint16]string{
	0: "an ELF file of no type (ET_NONE)",
	1: "a relocatable object (ET_REL, a kernel module)",
	2: "an executable (ET_EXEC), not a kernel module",
	3: "a shared object (ET_DYN), not a kernel module",
	4: "a core file (ET_CORE), not a kernel module",
}

// checkKmod refuses a kmod the kernel's module loader would refuse:
// kobj_load (sys/kern/subr_kobj.c:189-218) wants the ELF magic, EI_VERSION
// and e_version EV_CURRENT, e_type ET_REL and an e_machine of the kernel's
// own (sys/arch/{i386,amd64}/include/elf_machdep.h: EM_386 or EM_486 for
// i386, EM_X86_64 for amd64), read with the kernel's ELF class and byte
// order, then sections it can read whole (checkKobj). It reports the
// failure and boots on without the module, which the guest then lacks (a
// miniroot.kmod refused ends at the root device prompt), so such a module
// is refused before the VM starts, as is one built for a NetBSD version
// the kernel refuses (checkKmodVersion). It returns what kobj_load would
// allocate for the kmod, for layOut to check against amd64's module_map
// (checkModuleMap), once it knows where what is loaded ends.
func (m Module) checkKmod(i int, k *kernel) (kobjAlloc, error) {
	kernelWhat, hdrSize := "an i386 kernel (ELF32, e_machine 3)", 52
	if k.class64 {
		kernelWhat, hdrSize = "an amd64 kernel (ELF64, e_machine 62)", 64
	}
	b := m.Data
	var why string
	switch {
	case len(b) < 4 || string(b[:4]) != "\x7fELF":
		why = "it is not an ELF file"
	case len(b) < hdrSize:
		why = fmt.Sprintf("it is %d bytes, shorter than the kernel's %d-byte ELF header", len(b), hdrSize)
		return kobjAlloc{}, kmodError(i, m.Name, kernelWhat, why, true)
	}
	if why != "" {
		return kobjAlloc{}, kmodError(i, m.Name, kernelWhat, why, false)
	}
	class, data, identVersion := b[4], b[5], b[6]
	// x86 kernels read the header little-endian; a big-endian
	// module's fields read byte-swapped, and fail below.
	le := binary.LittleEndian
	typ, mach, version := le.Uint16(b[16:]), le.Uint16(b[18:]), le.Uint32(b[20:])
	bits := map[byte]string{bootelf.Class32: "ELF32", bootelf.Class64: "ELF64"}[class]
	if bits == "" {
		bits = fmt.Sprintf("EI_CLASS %d", class)
	}
	wantMach, wantClass := mach == bootelf.Mach386 || mach == mach486, class == bootelf.Class32
	if k.class64 {
		wantMach, wantClass = mach == bootelf.MachAMD64, class == bootelf.Class64
	}
	switch {
	case data != bootelf.DataLSB:
		why = fmt.Sprintf("it is not little-endian (EI_DATA %d, want 1)", data)
	case typ != typeRel:
		why = elfTypes[typ]
		if why == "" {
			why = fmt.Sprintf("e_type %d, not a kernel module", typ)
		}
		why = "it is " + why
	case !wantMach || !wantClass:
		why = fmt.Sprintf("it is a kernel module for %s (%s)", bootelf.MachineName(mach), bits)
	case identVersion != versionCur || version != versionCur:
		why = fmt.Sprintf("its ELF version is %d (EI_VERSION) and %d (e_version), not 1 (EV_CURRENT)", identVersion, version)
	default:
		alloc, why, msg := checkKobj(b, k.class64)
		if why != "" {
			return kobjAlloc{}, kobjError(i, m.Name, why, msg)
		}
		return alloc, m.checkKmodVersion(i, k.version)
	}
	return kobjAlloc{}, kmodError(i, m.Name, kernelWhat, why, false)
}

// kmodError says why module i, a kmod, cannot go to the kernel; damaged:
// it is cut short (ErrKmodDamaged).
func kmodError(i int, name, kernelWhat, why string, damaged bool) error {
	sentinel := ErrModule
	if damaged {
		sentinel = fmt.Errorf("%w: %w", ErrModule, ErrKmodDamaged)
	}
	return fmt.Errorf("%w: module %d (%s), a kmod, does not suit %s: %s; NetBSD's module loader takes only relocatable objects (ET_REL) for the kernel's own machine, and the kernel would boot without it",
		sentinel, i, name, kernelWhat, why)
}

// ELF values kobj_load's section checks need (sys/sys/exec_elf.h).
const (
	shtRela      = 4     // SHT_RELA
	shtRel       = 9     // SHT_REL
	shfWrite     = 1     // SHF_WRITE
	shfExecinstr = 4     // SHF_EXECINSTR
	elfMaxShnum  = 32768 // ELF_MAXSHNUM (9.1 exec_elf.h:1292)
)

// sectionTypes names the sh_type values kobj_load tells apart.
var sectionTypes = map[uint32]string{
	0:                   "SHT_NULL",
	bootelf.SHTProgbits: "SHT_PROGBITS",
	bootelf.SHTSymtab:   "SHT_SYMTAB",
	bootelf.SHTStrtab:   "SHT_STRTAB",
	shtRela:             "SHT_RELA",
	bootelf.SHTNote:     "SHT_NOTE",
	shtNobits:           "SHT_NOBITS",
	shtRel:              "SHT_REL",
}

// kobjSection is a section header's fields kobj_load reads.
type kobjSection struct {
	name, typ           uint32
	flags, offset, size uint64
	link, info          uint32
	addralign           uint64
}

// kobjAlloc is what kobj_load allocates from module_map for a kmod's
// SHT_PROGBITS and SHT_NOBITS sections, allocated or not: the sums it
// makes of its code (SHF_EXECINSTR), read-only data (no SHF_WRITE) and
// data, each section aligned to its sh_addralign first (9.1
// sys/kern/subr_kobj.c:393-416).
type kobjAlloc struct{ text, rodata, data uint64 }

// mapBytes is the module_map space the kmod takes: each sum page rounded,
// as uvm_km_alloc is asked for it (subr_kobj.c:425, 441, 456), none for a
// sum of 0 (:424, 440). It saturates where a size from a hostile header
// would overflow: such a kmod fits nowhere.
func (a kobjAlloc) mapBytes() uint64 {
	var total uint64
	for _, n := range []uint64{a.text, a.rodata, a.data} {
		if n > math.MaxUint64-(pageSize-1) {
			return math.MaxUint64
		}
		total = satAdd(total, bootelf.AlignUp(n, pageSize))
	}
	return total
}

// satAdd is a + b, or the largest uint64 when that overflows.
func satAdd(a, b uint64) uint64 {
	if a > math.MaxUint64-b {
		return math.MaxUint64
	}
	return a + b
}

// kobjShort is what kobj_read_mem prints of a read past a boot module's
// end (9.1 sys/kern/subr_kobj.c:1135-1138).
const kobjShort = "preloaded object short"

// checkKobj repeats what kobj_load (9.1 sys/kern/subr_kobj.c:154-570)
// checks of the sections of b, a kmod whose ELF header checkKmod found
// right for the kernel (class64: an amd64 one): it returns why the
// loader would refuse it ("" when it would not) and the loader's
// message. Every read kobj_load makes of a boot module goes through
// kobj_read_mem (:1127-1138), which refuses one past the module's end
// ("preloaded object short"): a module cut short, or whose headers point
// past it. Relocating and resolving symbols, which come after, are left
// to the kernel. It also returns what kobj_load would allocate for the
// sections (alloc), when it would not refuse them.
func checkKobj(b []byte, class64 bool) (alloc kobjAlloc, why, msg string) {
	le := binary.LittleEndian
	fileSize := uint64(len(b))
	shoff, shentsize, shnum, shstrndx := uint64(le.Uint32(b[32:])), le.Uint16(b[46:]), le.Uint16(b[48:]), le.Uint16(b[50:])
	// sizeof Elf_Shdr, Elf_Sym, Elf_Rel, Elf_Rela; kobj_load's size_t
	// arithmetic is the kernel's word.
	shdrSize, symSize, relSize, relaSize, bits, word := uint16(40), uint64(16), uint64(8), uint64(12), 32, uint64(math.MaxUint32)
	if class64 {
		shoff, shentsize, shnum, shstrndx = le.Uint64(b[40:]), le.Uint16(b[58:]), le.Uint16(b[60:]), le.Uint16(b[62:])
		shdrSize, symSize, relSize, relaSize, bits, word = 64, 24, 16, 24, 64, math.MaxUint64
	}
	switch { // :229-233
	case shnum == 0:
		return kobjAlloc{}, "it has no sections (e_shnum 0)", "bad sizes"
	case shnum > elfMaxShnum:
		return kobjAlloc{}, fmt.Sprintf("it has %d sections (e_shnum), more than the %d (ELF_MAXSHNUM) the loader takes", shnum, elfMaxShnum), "bad sizes"
	case shoff == 0:
		return kobjAlloc{}, "it has no section header table (e_shoff 0)", "bad sizes"
	case shentsize != shdrSize:
		return kobjAlloc{}, fmt.Sprintf("its section headers are %d bytes (e_shentsize), not the %d of an ELF%d section header", shentsize, shdrSize, bits), "bad sizes"
	}
	// :234-241
	if !inData(shoff, uint64(shnum)*uint64(shdrSize), fileSize) {
		return kobjAlloc{}, fmt.Sprintf("its section header table, %d headers of %d bytes at offset %#x, runs past the module's %d bytes", shnum, shdrSize, shoff, fileSize), kobjShort
	}
	secs := make([]kobjSection, shnum)
	for i := range secs {
		h := b[shoff+uint64(i)*uint64(shdrSize):]
		s := kobjSection{name: le.Uint32(h), typ: le.Uint32(h[4:])}
		if class64 {
			s.flags, s.offset, s.size, s.link, s.info, s.addralign = le.Uint64(h[8:]), le.Uint64(h[24:]), le.Uint64(h[32:]), le.Uint32(h[40:]), le.Uint32(h[44:]), le.Uint64(h[48:])
		} else {
			s.flags, s.offset, s.size, s.link, s.info, s.addralign = uint64(le.Uint32(h[8:])), uint64(le.Uint32(h[16:])), uint64(le.Uint32(h[20:])), le.Uint32(h[24:]), le.Uint32(h[28:]), uint64(le.Uint32(h[32:]))
		}
		secs[i] = s
	}
	// Section names, for the messages only: the loader needs none.
	var names []byte
	if shstrndx != 0 && shstrndx < shnum {
		if s := secs[shstrndx]; s.typ == bootelf.SHTStrtab && inData(s.offset, s.size, fileSize) {
			names = b[s.offset : s.offset+s.size]
		}
	}
	sec := func(i uint64) string {
		typ := sectionTypes[secs[i].typ]
		if typ == "" {
			typ = fmt.Sprintf("sh_type %#x", secs[i].typ)
		}
		if off := uint64(secs[i].name); off != 0 && off < uint64(len(names)) {
			if n, _, _ := bytes.Cut(names[off:], []byte{0}); len(n) > 0 {
				return fmt.Sprintf("section %d (%s, %s)", i, n, typ)
			}
		}
		return fmt.Sprintf("section %d (%s)", i, typ)
	}
	// read is kobj_read_mem's check of n bytes of section i.
	read := func(i, n uint64) string {
		if inData(secs[i].offset, n, fileSize) {
			return ""
		}
		return fmt.Sprintf("%s, %d bytes at offset %#x, runs past the module's %d bytes", sec(i), n, secs[i].offset, fileSize)
	}

	// :247-272: a relocation section's target, sh_info, is read as
	// an index into the table unchecked.
	var contents int
	var symtabs []string
	symtab := uint64(0)
	for i, s := range secs {
		switch s.typ {
		case bootelf.SHTProgbits, shtNobits:
			contents++
		case bootelf.SHTSymtab:
			symtabs = append(symtabs, fmt.Sprint(i))
			symtab = uint64(i)
		case shtRel, shtRela:
			if s.info >= uint32(shnum) {
				return kobjAlloc{}, fmt.Sprintf("%s relocates section %d (sh_info), past its %d sections", sec(uint64(i)), s.info, shnum), ""
			}
		}
	}
	switch { // :273-283
	case contents == 0:
		return kobjAlloc{}, "it has no code or data (no SHT_PROGBITS or SHT_NOBITS section)", "file has no contents"
	case len(symtabs) == 0:
		return kobjAlloc{}, "it has no symbol table (SHT_SYMTAB), as after strip", "file has no valid symbol table"
	case len(symtabs) > 1:
		return kobjAlloc{}, fmt.Sprintf("it has %d symbol tables (SHT_SYMTAB: sections %s), and the loader takes one", len(symtabs), strings.Join(symtabs, ", ")), "file has no valid symbol table"
	}
	// :288-293
	strtab := uint64(secs[symtab].link)
	switch {
	case strtab == 0:
		return kobjAlloc{}, fmt.Sprintf("its symbol table, %s, links no string table (sh_link 0)", sec(symtab)), "file has invalid symbol strings"
	case strtab >= uint64(shnum):
		return kobjAlloc{}, fmt.Sprintf("its symbol table, %s, links (sh_link) section %d, past its %d sections", sec(symtab), strtab, shnum), "file has invalid symbol strings"
	case secs[strtab].typ != bootelf.SHTStrtab:
		return kobjAlloc{}, fmt.Sprintf("its symbol table, %s, links (sh_link) %s, not a string table (SHT_STRTAB)", sec(symtab), sec(strtab)), "file has invalid symbol strings"
	}
	// :329-341: whole symbols only.
	nsym := secs[symtab].size / symSize
	if nsym == 0 {
		return kobjAlloc{}, fmt.Sprintf("its symbol table, %s, is %d bytes, less than one %d-byte symbol", sec(symtab), secs[symtab].size, symSize), "no symbol table"
	}
	if why := read(symtab, nsym*symSize); why != "" {
		return kobjAlloc{}, why, kobjShort
	}
	// :346-357
	if secs[strtab].size == 0 {
		return kobjAlloc{}, fmt.Sprintf("its symbols' string table, %s, is empty", sec(strtab)), "no symbol strings"
	}
	if why := read(strtab, secs[strtab].size); why != "" {
		return kobjAlloc{}, why, kobjShort
	}
	// :372-388
	if shstrndx != 0 {
		if shstrndx >= shnum {
			return kobjAlloc{}, fmt.Sprintf("its section names are in section %d (e_shstrndx), past its %d sections", shstrndx, shnum), "bad shstrndx"
		}
		if s := secs[shstrndx]; s.size != 0 && s.typ == bootelf.SHTStrtab {
			if why := read(uint64(shstrndx), s.size); why != "" {
				return kobjAlloc{}, why, kobjShort
			}
		}
	}
	// :393-422: the code's, read-only data's and data's sizes as the
	// loader sums them, each section aligned first; alignmask is an int,
	// sign-extended into a size_t.
	for _, s := range secs {
		if s.typ != bootelf.SHTProgbits && s.typ != shtNobits {
			continue
		}
		sum := &alloc.data
		switch {
		case s.flags&shfExecinstr != 0:
			sum = &alloc.text
		case s.flags&shfWrite == 0:
			sum = &alloc.rodata
		}
		mask := uint64(int64(int32(s.addralign-1))) & word
		*sum = ((*sum+mask)&word&^mask + s.size) & word
	}
	if alloc.text == 0 {
		return kobjAlloc{}, "it has no code (no byte in an SHT_PROGBITS or SHT_NOBITS section with SHF_EXECINSTR)", "no text"
	}
	// :474-570: the code and data, and the relocations of sections of
	// code or data, in whole entries (SHT_RELA's read whole).
	for i, s := range secs {
		n := uint64(0)
		switch s.typ {
		case bootelf.SHTProgbits:
			n = s.size
		case shtRel:
			if secs[s.info].typ == bootelf.SHTProgbits {
				n = s.size - s.size%relSize
			}
		case shtRela:
			if secs[s.info].typ == bootelf.SHTProgbits && s.size-s.size%relaSize != 0 {
				n = s.size
			}
		}
		// Code or data is read even when empty; relocations are not.
		if s.typ != bootelf.SHTProgbits && n == 0 {
			continue
		}
		if why := read(uint64(i), n); why != "" {
			return kobjAlloc{}, why, kobjShort
		}
	}
	return alloc, "", ""
}

// inData reports whether n bytes at off lie within size bytes.
func inData(off, n, size uint64) bool { return off <= size && n <= size-off }

// kobjError says why module i, a kmod, cannot go to the kernel:
// kobj_load would refuse it, printing msg, or, with msg "", read a
// section header from past its copy of the table.
func kobjError(i int, name, why, msg string) error {
	fate := fmt.Sprintf("kobj_load would refuse it (%q), and the kernel would boot without it", msg)
	if msg == "" {
		fate = "kobj_load would read that section's header from past its section header table, whatever lies there"
	}
	return fmt.Errorf("%w: %w: module %d (%s), a kmod, is not one NetBSD's module loader can load: %s; %s",
		ErrModule, ErrKmodDamaged, i, name, why, fate)
}

// checkKmodVersion refuses (ErrKmodVersion) a kmod built for a NetBSD
// version the kernel (of version kernel, its ident note's) will not load: module_do_load
// (9.1 sys/kern/kern_module.c:1106-1114) refuses one whose mi_version
// module_compatible (unchanged in -current) rejects ("module `%s' built for
// `%d', system `%d'"), and the kernel boots on without it. A kmod whose
// mi_version cannot be found is left to the kernel.
func (m Module) checkKmodVersion(i int, kernel uint32) error {
	v, sym, ok := kmodVersion(m.Data)
	if !ok || kernel == 0 || moduleCompatible(v, kernel) {
		return nil
	}
	rule := "a NetBSD release loads only kmods of its own major and minor version"
	if current(kernel) {
		rule = "a -current kernel loads only kmods of its exact version"
	}
	return fmt.Errorf("%w: %w: module %d (%s) was built for NetBSD %s (mi_version %d in %s), but the kernel is NetBSD %s (%d): the kernel would refuse it and boot without it, as %s (\"module `%s' built for `%d', system `%d'\")",
		ErrModule, ErrKmodVersion, i, m.Name, Ident{Version: v}.Release(), v, sym, Ident{Version: kernel}.Release(), kernel, rule,
		strings.TrimSuffix(sym, modinfoSuffix), v, kernel)
}

// current reports whether version is -current's (x.99.z), as
// module_compatible's #if tells it.
func current(version uint32) bool { return version/1000000%100 == 99 }

// moduleCompatible is module_compatible (9.1 sys/kern/kern_module.c:
// 622-631) for a kernel of version kernel: -current wants the same
// version, a release one whose difference, as ints, is under 10000.
func moduleCompatible(kmod, kernel uint32) bool {
	if current(kernel) {
		return kmod == kernel
	}
	d := int64(int32(kmod)) - int64(int32(kernel))
	return d > -10000 && d < 10000
}

// modinfoSuffix ends the name MODULE(class, name, required) gives its
// modinfo_t, name_modinfo (9.1 sys/sys/module.h:154-162), a static
// const whose first member, the u_int mi_version, is the
// __NetBSD_Version__ of the tree it was built in. The link set entry
// _MODULE_REGISTER adds (module.h:150) is named
// __link_set_modules_sym_name_modinfo, and holds a pointer.
const (
	modinfoSuffix = "_modinfo"
	linkSetPrefix = "__link_set_"
	sttObject     = 1 // STT_OBJECT
	shtNobits     = 8 // SHT_NOBITS
)

// kmodVersion returns the mi_version of the kmod b (a little-endian
// ELF relocatable object, as checkKmod found) and the symbol it was read
// from: the first object in its symbol table named like a modinfo_t.
// An ET_REL symbol's value is its offset in its section, read from the
// file, before relocation, which mi_version needs none of. ok is false
// when there is no such symbol or its bytes are not in the file.
func kmodVersion(b []byte) (version uint32, sym string, ok bool) {
	r, size := bytes.NewReader(b), uint64(len(b))
	h, err := bootelf.ReadHeader(r, size)
	if err != nil {
		return 0, "", false
	}
	secs, _, err := h.Sections(r, size)
	if err != nil {
		return 0, "", false
	}
	var symtab, strtab []byte
	for _, s := range secs {
		if s.Index == 0 || s.Type != bootelf.SHTSymtab || s.Link == 0 || uint64(s.Link) >= uint64(len(secs)) {
			continue
		}
		st := secs[s.Link]
		if st.Type != bootelf.SHTStrtab || bootelf.InFile(s.Offset, s.Size, size, "") != nil || bootelf.InFile(st.Offset, st.Size, size, "") != nil {
			continue
		}
		symtab, strtab = b[s.Offset:s.Offset+s.Size], b[st.Offset:st.Offset+st.Size]
		break
	}
	entSize := 16
	if h.Class == bootelf.Class64 {
		entSize = 24
	}
	le := binary.LittleEndian
	for ; len(symtab) >= entSize; symtab = symtab[entSize:] {
		e := symtab[:entSize]
		nameOff, info, shndx, value, symSize := uint64(le.Uint32(e)), e[12], le.Uint16(e[14:]), uint64(le.Uint32(e[4:])), uint64(le.Uint32(e[8:]))
		if h.Class == bootelf.Class64 {
			info, shndx, value, symSize = e[4], le.Uint16(e[6:]), le.Uint64(e[8:]), le.Uint64(e[16:])
		}
		if info&0xf != sttObject || symSize < 4 || shndx == 0 || uint64(shndx) >= uint64(len(secs)) || nameOff >= uint64(len(strtab)) {
			continue
		}
		name := strtab[nameOff:]
		if end := bytes.IndexByte(name, 0); end >= 0 {
			name = name[:end]
		}
		if !bytes.HasSuffix(name, []byte(modinfoSuffix)) || bytes.HasPrefix(name, []byte(linkSetPrefix)) || len(name) == len(modinfoSuffix) {
			continue
		}
		sec := secs[shndx]
		if sec.Type == shtNobits || value > sec.Size || sec.Size-value < 4 || bootelf.InFile(sec.Offset, sec.Size, size, "") != nil {
			return 0, "", false
		}
		return le.Uint32(b[sec.Offset+value:]), string(name), true
	}
	return 0, "", false
}

// RndSeedSize is the size of the entropy seed an rndseed module must be:
// NetBSD's rndsave_t (sys/sys/rndio.h:45-50, unchanged in NetBSD 10), a
// 32-bit entropy count, 512 bytes of data and their SHA-1 digest, as
// rndctl -S saves it (/var/db/entropy-file).
const RndSeedSize = 4 + 512 + sha1.Size

// entropyRewrite is the first __NetBSD_Version__ taken to have
// kern_entropy.c, which replaced kern_rndq.c during 9.99 (April 2020):
// all of 9.99 is, for want of the exact 9.99.x it landed in; a 9.99
// kernel from before it gets a note where it would ignore the seed.
const entropyRewrite = 999000000

// checkRndSeed refuses an rndseed module the kernel would ignore, and
// notes (note, else "") one it takes without crediting its entropy. Both
// rnd_seeds take only RndSeedSize bytes (kern_rndq.c:1370-1391, "rnd:
// bad seed length"; NetBSD 10's kern_entropy.c, "entropy: invalid seed
// length"). A digest that is not the SHA-1 of the entropy count and data
// makes kern_rndq.c's ignore the seed ("rnd: bad seed checksum"), and
// the kernel boot on unseeded; kern_entropy.c's entropy_seed mixes the
// data in all the same, crediting no entropy ("entropy: invalid seed
// checksum").
func (m Module) checkRndSeed(i int, version uint32) (note string, err error) {
	rewritten := version >= entropyRewrite
	if len(m.Data) != RndSeedSize {
		msg := "rnd: bad seed length"
		if rewritten {
			msg = "entropy: invalid seed length"
		}
		return "", fmt.Errorf("%w: module %d (%s), an rndseed, is %d bytes, but NetBSD takes only a %d-byte seed (rndsave_t: a 4-byte entropy count, 512 bytes of data, their SHA-1 digest), the file rndctl -S saves as /var/db/entropy-file; the kernel would ignore it (%q)",
			ErrModule, i, m.Name, len(m.Data), RndSeedSize, msg)
	}
	body, digest := m.Data[:RndSeedSize-sha1.Size], m.Data[RndSeedSize-sha1.Size:]
	if sum := sha1.Sum(body); bytes.Equal(sum[:], digest) {
		return "", nil
	}
	if rewritten {
		return fmt.Sprintf("module %d (%s), an rndseed, ends in a digest (at offset %d) that is not the SHA-1 of its entropy count and data: a NetBSD %s kernel mixes its data in but credits no entropy (\"entropy: invalid seed checksum\")",
			i, m.Name, RndSeedSize-sha1.Size, Ident{Version: version}.Release()), nil
	}
	return "", fmt.Errorf("%w: module %d (%s), an rndseed, ends in a digest (at offset %d) that is not the SHA-1 of its entropy count and data: not a seed rndctl -S saved, or damaged; the kernel would ignore it (\"rnd: bad seed checksum\")",
		ErrModule, i, m.Name, RndSeedSize-sha1.Size)
}
