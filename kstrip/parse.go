package kstrip

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/smolvmm/smolvmm/internal/bootelf"
)

// layout is where the fields of struct cfdata and struct cfparent sit for
// one pointer size and one NetBSD release (docs/NETBSD-BOOT-NOTES.md,
// "kstrip's table").
type layout struct {
	ptr      int  // pointer size: 4 or 8
	size     int  // sizeof(struct cfdata)
	unit     int  // the 32-bit word holding cf_unit and cf_fstate
	packed   bool // NetBSD 10's cf_unit:24 and one-byte cf_fstate, not 9's two shorts
	pspec    int  // cf_pspec
	atname   int  // cf_atname
	pUnitOff int  // cfp_unit in struct cfparent
}

// Up to NetBSD 9, cf_unit and cf_fstate are shorts. Since device.h 1.170
// (2021, in 9.99.x, so in every 10.x) they are "unsigned int cf_unit:24;
// unsigned char cf_fstate;": the same 4 bytes, the unit in the first 24
// bits (GCC fills a bit-field from the low bits on little-endian ports and
// from the high bits on big-endian ones, so it is bytes 0-2 of the word in
// both) and the state in byte 3. Entry size and every other offset are
// the same.
var (
	layout32 = layout{ptr: 4, size: 24, atname: 4, unit: 8, pspec: 20, pUnitOff: 8}
	layout64 = layout{ptr: 8, size: 48, atname: 8, unit: 16, pspec: 40, pUnitOff: 16}
)

// state is the offset of cf_fstate in an entry.
func (l layout) state() int {
	if l.packed {
		return l.unit + 3
	}
	return l.unit + 2
}

// stateSize is the size of cf_fstate: 1 or 2 bytes.
func (l layout) stateSize() int {
	if l.packed {
		return 1
	}
	return 2
}

// name says which struct cfdata l is, for messages.
func (l layout) name() string {
	if l.packed {
		return fmt.Sprintf("NetBSD 10 (cf_unit:24 at offset %d, one-byte cf_fstate at %d)", l.unit, l.state())
	}
	return fmt.Sprintf("NetBSD 9 (short cf_unit at offset %d, short cf_fstate at %d)", l.unit, l.state())
}

// maxEntries bounds the walk, and so the memory a table costs: GENERIC
// kernels have about a thousand entries, and a kernel of every driver a
// few thousand. A variable so that a test can reach it without a table
// this long.
var maxEntries = 1 << 16

// Kernel is a parsed kernel image and its autoconfiguration table.
type Kernel struct {
	// Entries is the cfdata array without its terminator.
	Entries []Entry

	image  []byte
	order  binary.ByteOrder
	lay    layout
	addr   uint64
	offset int64
	// version is __NetBSD_Version__ from the kernel's NetBSD ident note,
	// 0 when it has none.
	version uint32
	amap    addrMap
	// providers maps an interface attribute to the drivers providing it,
	// from cfdriver_list_initial; nil when the kernel has no readable one.
	providers map[string][]string
	// strs and parents hold what was read at each address: a table's
	// entries share their names and parents, so each is read and kept
	// once, however many entries point at it.
	strs    map[uint64]string
	parents map[uint64]*Parent
}

// Bytes returns the image, including the changes Apply made to it.
func (k *Kernel) Bytes() []byte { return k.image }

// PointerSize is 4 on 32-bit ports and 8 on LP64 ports.
func (k *Kernel) PointerSize() int { return k.lay.ptr }

// EntrySize is sizeof(struct cfdata): 24 or 48.
func (k *Kernel) EntrySize() int { return k.lay.size }

// ByteOrder is the kernel's byte order, from its ELF header.
func (k *Kernel) ByteOrder() binary.ByteOrder { return k.order }

// Address is the virtual address of cfdata.
func (k *Kernel) Address() uint64 { return k.addr }

// Offset is the file offset of cfdata.
func (k *Kernel) Offset() int64 { return k.offset }

// StateOffset is the file offset of entry i's cf_fstate.
func (k *Kernel) StateOffset(i int) int64 {
	return k.Entries[i].Offset + int64(k.lay.state())
}

// StateSize is the size of cf_fstate: 2 bytes (a short) up to NetBSD 9,
// 1 byte from NetBSD 10 on.
func (k *Kernel) StateSize() int { return k.lay.stateSize() }

// Version is __NetBSD_Version__ (MMmmrrpp00: 901000000 for 9.1) from the
// kernel's .note.netbsd.ident, or 0 when the kernel has no such note.
func (k *Kernel) Version() uint32 { return k.version }

// Parse reads the cfdata table of the ELF kernel image. The Kernel keeps
// image and Apply edits it in place. An image that is not an executable
// (ET_EXEC) is refused with ErrNotExec, and with ErrKASLR too when it is
// amd64's GENERIC_KASLR.
func Parse(image []byte) (k *Kernel, err error) {
	if !isELF(image) {
		return nil, imageNotELF(image)
	}
	// debug/elf is not hardened against every malformed header; a panic
	// there must become an error about the input, not a crash.
	defer func() {
		if r := recover(); r != nil {
			k, err = nil, fmt.Errorf("%w: its headers cannot be read (debug/elf: %v)", ErrMalformed, r)
		}
	}()
	// What runs past the end is told first: debug/elf says only "EOF".
	if what, off, n := pastEnd(image); what != "" {
		return nil, fmt.Errorf("%w: its %s (%d bytes at file offset %#x) run past the end of the file, which has %d bytes; the copy may have been cut short",
			ErrTruncated, what, n, off, len(image))
	}
	f, err := elf.NewFile(bytes.NewReader(image))
	if err != nil {
		return nil, fmt.Errorf("%w: its headers cannot be read (debug/elf: %w)", ErrMalformed, err)
	}
	if err := checkType(f, image); err != nil {
		return nil, err
	}
	k = &Kernel{image: image, order: f.ByteOrder, amap: newAddrMap(f, uint64(len(image))),
		strs: map[uint64]string{}, parents: map[uint64]*Parent{}}
	if n := len(k.amap.regions); n > maxRegions {
		return nil, fmt.Errorf("%w: %d loadable segments or sections, where a kernel has a few (at most %d accepted)", ErrMalformed, n, maxRegions)
	}
	switch f.Class {
	case elf.ELFCLASS32:
		k.lay = layout32
	case elf.ELFCLASS64:
		k.lay = layout64
	default:
		return nil, fmt.Errorf("%w: unknown ELF class %v", ErrNotELF, f.Class)
	}
	sym, drivers, err := findSymbols(f)
	if err != nil {
		return nil, err
	}
	k.addr = sym
	k.version = netbsdVersion(f, image)
	if err := k.walk(); err != nil {
		return nil, err
	}
	if drivers != 0 {
		k.providers = k.readDrivers(drivers)
	}
	return k, nil
}

// checkType refuses an ELF file that is not an executable: only a kernel
// linked at a fixed address has cfdata at an address its segments map.
// amd64's GENERIC_KASLR is linked relocatable (-r -d,
// sys/arch/amd64/conf/Makefile.amd64:77) for the prekern to place; its
// cfdata symbol is an offset in .data, which read as an address names
// other bytes. It is told from a module by the ident note and locore's
// start (sys/arch/amd64/amd64/locore.S:436), as package netbsdboot
// tells it.
func checkType(f *elf.File, image []byte) error {
	if f.Type == elf.ET_EXEC {
		return nil
	}
	if f.Type == elf.ET_REL && f.Class == elf.ELFCLASS64 && netbsdVersion(f, image) != 0 && definesStart(f) {
		return fmt.Errorf("%w: %w: e_type 1 (ET_REL): a NetBSD amd64 kernel linked relocatable for KASLR (as GENERIC_KASLR is), whose cfdata has no address until NetBSD's prekern places the kernel at boot; kstrip edits a kernel linked at a fixed address (ET_EXEC)",
			ErrNotExec, ErrKASLR)
	}
	what := "not a kernel"
	if f.Type == elf.ET_REL {
		what = "a kernel module or other object, not a kernel"
	}
	return fmt.Errorf("%w: e_type %d (%v), want 2 (ET_EXEC): %s", ErrNotExec, uint16(f.Type), f.Type, what)
}

// definesStart says whether the symbol table defines start.
func definesStart(f *elf.File) bool {
	syms, err := f.Symbols()
	if err != nil {
		return false
	}
	for _, s := range syms {
		if s.Name == "start" && s.Section != elf.SHN_UNDEF {
			return true
		}
	}
	return false
}

// pastEnd finds the first of the parts debug/elf reads (the ELF header,
// the program and section headers, the section names, the symbol table
// and its names) that runs past the end of image, which starts with ELF's
// magic. It returns what it is, at which offset and of what size, or ""
// when all are inside (or the header's class or byte order is unknown:
// debug/elf says so). A kernel cut short inside its symbols would
// otherwise be said to have none: a NetBSD kernel's section headers come
// before its symbol table.
func pastEnd(image []byte) (what string, off, size uint64) {
	end := uint64(len(image))
	past := func(off, size uint64) bool { return off > end || size > end-off }
	if past(0, elf.EI_NIDENT) {
		return "ELF identification", 0, elf.EI_NIDENT
	}
	var order binary.ByteOrder
	switch elf.Data(image[elf.EI_DATA]) {
	case elf.ELFDATA2LSB:
		order = binary.LittleEndian
	case elf.ELFDATA2MSB:
		order = binary.BigEndian
	default:
		return "", 0, 0
	}
	// Offsets of e_phoff, e_shoff, e_phentsize (then e_phnum,
	// e_shentsize, e_shnum, e_shstrndx), the header's size, and of a
	// section header's sh_offset, sh_size and sh_link (sh_name and
	// sh_type are its first two 32-bit words in both classes).
	var phoff, shoff, ent, hdr, shOff, shSize, shLink int
	word := func(b []byte) uint64 { return uint64(order.Uint32(b)) }
	switch elf.Class(image[elf.EI_CLASS]) {
	case elf.ELFCLASS32:
		phoff, shoff, ent, hdr, shOff, shSize, shLink = 28, 32, 42, 52, 16, 20, 24
	case elf.ELFCLASS64:
		phoff, shoff, ent, hdr, shOff, shSize, shLink = 32, 40, 54, 64, 24, 32, 40
		word = order.Uint64
	default:
		return "", 0, 0
	}
	if past(0, uint64(hdr)) {
		return "ELF header", 0, uint64(hdr)
	}
	half := func(at int) uint64 { return uint64(order.Uint16(image[at:])) }
	ph, sh := word(image[phoff:]), word(image[shoff:])
	phSize, shEnt := half(ent)*half(ent+2), half(ent+4)
	shNum, strndx := half(ent+6), half(ent+8)
	if phSize > 0 && past(ph, phSize) {
		return "program headers", ph, phSize
	}
	if shNum == 0 {
		return "", 0, 0
	}
	if past(sh, shEnt*shNum) {
		return "section headers", sh, shEnt * shNum
	}
	if shEnt < uint64(shLink)+4 {
		return "", 0, 0
	}
	section := func(i uint64) []byte { return image[sh+i*shEnt:] }
	var names []byte
	if strndx < shNum {
		s := section(strndx)
		o, n := word(s[shOff:]), word(s[shSize:])
		if past(o, n) {
			return "section names", o, n
		}
		names = image[o : o+n]
	}
	// The section's name when the names hold it, else its index.
	name := func(i uint64) string {
		at := uint64(order.Uint32(section(i)))
		if at < uint64(len(names)) {
			if n, _, ok := bytes.Cut(names[at:], []byte{0}); ok && len(n) > 0 && printable(n) {
				return "section " + string(n)
			}
		}
		return fmt.Sprintf("section %d", i)
	}
	// debug/elf reads the first symbol table and the strings its sh_link
	// names.
	for i := uint64(0); i < shNum; i++ {
		s := section(i)
		if elf.SectionType(order.Uint32(s[4:])) != elf.SHT_SYMTAB {
			continue
		}
		if o, n := word(s[shOff:]), word(s[shSize:]); past(o, n) {
			return "symbols in " + name(i), o, n
		}
		if l := uint64(order.Uint32(s[shLink:])); l < shNum {
			if o, n := word(section(l)[shOff:]), word(section(l)[shSize:]); past(o, n) {
				return "symbol names in " + name(l), o, n
			}
		}
		break
	}
	return "", 0, 0
}

// printable reports whether b is all printable ASCII.
func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// isELF reports whether b starts with the ELF magic.
func isELF(b []byte) bool { return bytes.HasPrefix(b, []byte(elf.ELFMAG)) }

// notELF is the error for a file that starts with b, not the ELF magic,
// naming what b's magic says it is (bootelf's kinds: a file compressed
// otherwise than by gzip; 4 bytes tell no more).
func notELF(b []byte) error {
	return &NotELFError{Head: bytes.Clone(head(b)), what: bootelf.IdentifyBytes(b).Is()}
}

// NotELFError is the error for a file that starts neither with the ELF
// magic nor with gzip's: unknown bytes, or data compressed otherwise than
// by gzip, which a kernel can be before it is decompressed, or an empty
// file. It matches ErrNotELF.
type NotELFError struct {
	Head []byte // the file's first bytes, up to 4
	// Empty is set for ReadFile's empty file, said in the words smolvmm
	// run uses for one (`the file starts with ""` said it darkly).
	Empty bool
	what  string // what its magic says it is (": it is xz-compressed data"), "" when unknown
}

// Error quotes the file's first bytes and says what they are, when known.
func (e *NotELFError) Error() string {
	if e.Empty {
		return "the file is empty"
	}
	return fmt.Sprintf("%v: the file starts with %q, not \"\\x7fELF\"%s", ErrNotELF, e.Head, e.what)
}

// Is makes errors.Is(err, ErrNotELF) true for a *NotELFError.
func (e *NotELFError) Is(target error) bool { return target == ErrNotELF }

// imageNotELF is Parse's error for an image that is not ELF. Parse gets
// what a gzipped file decompressed to, or a file as it stands; only gzip
// data still is said otherwise than notELF says it, which would ask for
// the gzipped kernel it may have been decompressed from.
func imageNotELF(b []byte) error {
	c := bootelf.IdentifyBytes(b)
	if c != bootelf.ContentGzip {
		if c == bootelf.ContentUnknown || c.Compressed() {
			return notELF(b)
		}
		// A file system image or a tar archive: no kernel, however given.
		return &NotKernelError{Head: bytes.Clone(head(b)), what: c.Is()}
	}
	return &NotKernelError{Head: bytes.Clone(head(b)), Gzip: true}
}

// NotKernelError is Parse's error for an image that is not ELF and is no
// kernel as given: a file system image or a tar archive, or gzip data,
// which makes a gzipped file it was decompressed from a kernel compressed
// twice. It matches ErrNotELF.
type NotKernelError struct {
	Head []byte // the image's first bytes, up to 4
	Gzip bool   // the image is gzip data
	what string // what its content is (": it is a tar archive ..."), unless Gzip
}

// Error quotes the image's first bytes and says what they are.
func (e *NotKernelError) Error() string {
	if e.Gzip {
		return fmt.Sprintf("%v: the kernel image starts with %q, not \"\\x7fELF\": it is gzip data: a gzipped kernel file that decompresses to it is compressed twice", ErrNotELF, e.Head)
	}
	return fmt.Sprintf("%v: the kernel image starts with %q, not \"\\x7fELF\"%s, not a kernel", ErrNotELF, e.Head, e.what)
}

// Is makes errors.Is(err, ErrNotELF) true for a *NotKernelError.
func (e *NotKernelError) Is(target error) bool { return target == ErrNotELF }

func head(b []byte) []byte {
	if len(b) > 4 {
		return b[:4]
	}
	return b
}

// findSymbols returns the address of the global cfdata symbol, and of
// cfdriver_list_initial (0 when the kernel has none).
func findSymbols(f *elf.File) (cfdata, drivers uint64, err error) {
	syms, err := f.Symbols()
	if errors.Is(err, elf.ErrNoSymbols) {
		return 0, 0, fmt.Errorf("%w: the kernel is stripped, so kstrip cannot find cfdata; NetBSD release kernels (netbsd-GENERIC) keep their symbols", ErrNoSymbols)
	}
	if err != nil {
		// A table there but unreadable is no stripped kernel.
		return 0, 0, fmt.Errorf("%w: reading the symbol table: %w", ErrMalformed, err)
	}
	found := false
	for _, s := range syms {
		if s.Section == elf.SHN_UNDEF || elf.ST_TYPE(s.Info) == elf.STT_FUNC {
			continue
		}
		switch s.Name {
		case "cfdata":
			cfdata, found = s.Value, true
		case "cfdriver_list_initial":
			drivers = s.Value
		}
	}
	if found {
		return cfdata, drivers, nil
	}
	return 0, 0, fmt.Errorf("%w among %d symbols: is this a NetBSD kernel? (modules and boot loaders have no cfdata)", ErrNoCfdata, len(syms))
}

// walk reads the entries up to the terminator, which must lie in the same
// file-backed segment as the start of the table.
func (k *Kernel) walk() error {
	off, end, err := k.amap.offset(k.addr)
	if err != nil {
		return fmt.Errorf("cfdata: %w", err)
	}
	k.offset = int64(off)
	size := uint64(k.lay.size)
	var offs []uint64
	for i := 0; ; i++ {
		if end-off < size {
			return fmt.Errorf("cfdata at %#x (file offset %#x): %w after %d entries, before the end of its segment at file offset %#x", k.addr, k.offset, ErrNoTerminator, i, end)
		}
		raw := k.image[off : off+size]
		if k.ptrAt(raw, 0) == 0 {
			if !allZero(raw) {
				return fmt.Errorf("cfdata[%d] (file offset %#x) has a null cf_name but other fields set: not a cfdata table", i, off)
			}
			break
		}
		if i >= maxEntries {
			return fmt.Errorf("cfdata at %#x (file offset %#x): %w after %d entries, the most a table may have (a kernel has a few thousand at most)", k.addr, k.offset, ErrNoTerminator, i)
		}
		offs = append(offs, off)
		off += size
	}
	if err := k.chooseLayout(offs); err != nil {
		return err
	}
	k.Entries = make([]Entry, 0, len(offs))
	for i, off := range offs {
		e, err := k.entry(i, k.image[off:off+size])
		if err != nil {
			return fmt.Errorf("cfdata[%d] (file offset %#x): %w", i, off, err)
		}
		e.Offset = int64(off)
		k.Entries = append(k.Entries, e)
	}
	return nil
}

// The __NetBSD_Version__ bounds of the two layouts: 9.x and older have
// the shorts, 10.0 and later the bit-field. The change landed during
// 9.99.x, so a 9.99 kernel's table alone tells.
const (
	version9Last  = 999000000 // first 9.99.x (9.99.0)
	version10     = 1000000000
	maxStateValue = DNotFound
)

// unitState reads cf_unit and cf_fstate of the entry raw as l lays them.
func (k *Kernel) unitState(l layout, raw []byte) (unit int, st State) {
	w := raw[l.unit : l.unit+4]
	if !l.packed {
		return int(int16(k.order.Uint16(w))), State(int16(k.order.Uint16(w[2:])))
	}
	if k.order == binary.BigEndian {
		return int(w[0])<<16 | int(w[1])<<8 | int(w[2]), State(w[3])
	}
	return int(w[0]) | int(w[1])<<8 | int(w[2])<<16, State(w[3])
}

// fit is how well a table reads as one layout: whether every cf_fstate is
// one NetBSD defines (else bad is the first entry that is not, and state
// its value), and whether every unit is one a 9.x short holds (a
// config(1) unit is small; a 9.x table read as 10.x turns a Star entry's
// state into unit bits, 0x20000 and up).
type fit struct {
	ok, small bool
	bad       uint64
	state     State
	unit      int
}

func (k *Kernel) fits(l layout, offs []uint64) fit {
	f := fit{ok: true, small: true}
	for _, off := range offs {
		u, st := k.unitState(l, k.image[off:off+uint64(l.size)])
		if st < 0 || st > maxStateValue {
			return fit{bad: off, state: st}
		}
		if f.small && (u < 0 || u > 0x7fff) {
			f.small, f.bad, f.unit = false, off, u
		}
	}
	return f
}

// chooseLayout picks NetBSD 9's or 10's struct cfdata from the kernel's
// version and checks the table against it; without a version (or with a
// 9.99 one), the table alone decides when only one layout reads it
// sensibly. Writing a state with the wrong layout would change a unit
// and leave the entry enabled, so a doubt is an error.
func (k *Kernel) chooseLayout(offs []uint64) error {
	old, packed := k.lay, k.lay
	old.packed, packed.packed = false, true
	fo, fp := k.fits(old, offs), k.fits(packed, offs)
	where := fmt.Sprintf("cfdata at %#x (file offset %#x)", k.addr, k.offset)
	says := fmt.Sprintf("the kernel's .note.netbsd.ident says NetBSD version %d", k.version)
	// wrong says why table entries do not read as l.
	wrong := func(l layout, f fit) string {
		if !f.ok {
			return fmt.Sprintf("the entry at file offset %#x has cf_fstate %d at file offset %#x, which NetBSD does not define (0 to 4)", f.bad, f.state, f.bad+uint64(l.state()))
		}
		return fmt.Sprintf("the entry at file offset %#x has unit %d (%#x), which no kernel configuration has", f.bad, f.unit, f.unit)
	}
	want := func(l layout, f, other fit) error {
		if f.ok && (f.small || !other.ok || !other.small) {
			k.lay = l
			return nil
		}
		return fmt.Errorf("%w: %s: %s, so struct cfdata is %s, but %s; the version note and the table disagree, so kstrip does not know where to write (NetBSD's release kernels agree)", ErrLayout, where, says, l.name(), wrong(l, f))
	}
	neither := func() error {
		return fmt.Errorf("%w: %s fits neither %s (%s) nor %s (%s): not a table NetBSD's config(1) writes, or from a release kstrip does not know", ErrLayout, where, old.name(), wrong(old, fo), packed.name(), wrong(packed, fp))
	}
	switch {
	case len(offs) == 0:
		// Nothing to read or write: either layout will do.
		k.lay = old
	case !fo.ok && !fp.ok:
		return neither()
	case k.version >= version10:
		return want(packed, fp, fo)
	case k.version != 0 && k.version < version9Last:
		return want(old, fo, fp)
	case fo.ok && fo.small && !(fp.ok && fp.small):
		k.lay = old
	case fp.ok && fp.small && !(fo.ok && fo.small):
		k.lay = packed
	case !(fo.ok && fo.small) && !(fp.ok && fp.small):
		// One layout has a state NetBSD does not define, the other a
		// unit no configuration has (or both such units): the table is
		// not ambiguous but fits neither, and the error must say so.
		return neither()
	default:
		why := "the kernel has no NetBSD version note"
		if k.version != 0 {
			why = says + ", from the time the layout changed"
		}
		return fmt.Errorf("%w: %s reads sensibly both as %s and as %s, which keep cf_fstate in different bytes, and %s: cannot tell which one to write (release kernels carry a version note)", ErrLayout, where, old.name(), packed.name(), why)
	}
	return nil
}

// netbsdVersion returns the version in the kernel's NetBSD ident note
// (name "NetBSD", type 1, a 4-byte __NetBSD_Version__), or 0 when it has
// none or the note cannot be read: the table is then checked on its own.
func netbsdVersion(f *elf.File, image []byte) uint32 {
	for _, s := range f.Sections {
		if s.Type != elf.SHT_NOTE || s.Offset > uint64(len(image)) || s.Size > uint64(len(image))-s.Offset {
			continue
		}
		if v := noteVersion(f.ByteOrder, image[s.Offset:s.Offset+s.Size]); v != 0 {
			return v
		}
	}
	return 0
}

// noteVersion finds the NetBSD ident note among the notes in b.
func noteVersion(order binary.ByteOrder, b []byte) uint32 {
	align := func(n uint64) uint64 { return (n + 3) &^ 3 }
	for len(b) >= 12 {
		namesz, descsz, typ := uint64(order.Uint32(b)), uint64(order.Uint32(b[4:])), order.Uint32(b[8:])
		b = b[12:]
		if align(namesz) > uint64(len(b)) {
			return 0
		}
		name := b[:namesz]
		b = b[align(namesz):]
		if align(descsz) > uint64(len(b)) {
			return 0
		}
		desc := b[:descsz]
		b = b[align(descsz):]
		if typ == 1 && descsz == 4 && string(name) == "NetBSD\x00" {
			return order.Uint32(desc)
		}
	}
	return 0
}

func (k *Kernel) entry(i int, raw []byte) (Entry, error) {
	e := Entry{Index: i}
	e.Unit, e.State = k.unitState(k.lay, raw)
	var err error
	if e.Name, err = k.str(k.ptrAt(raw, 0)); err != nil {
		return e, fmt.Errorf("cf_name: %w", err)
	}
	if p := k.ptrAt(raw, k.lay.atname); p != 0 {
		if e.Attach, err = k.str(p); err != nil {
			return e, fmt.Errorf("cf_atname of %q: %w", e.Name, err)
		}
	}
	if p := k.ptrAt(raw, k.lay.pspec); p != 0 {
		if e.Parent, err = k.parent(p); err != nil {
			return e, fmt.Errorf("cf_pspec of %q: %w", e.Name, err)
		}
	}
	return e, nil
}

// str reads the NUL-terminated string at va, once per address.
func (k *Kernel) str(va uint64) (string, error) {
	if s, ok := k.strs[va]; ok {
		return s, nil
	}
	s, err := k.amap.str(k.image, va)
	if err == nil {
		k.strs[va] = s
	}
	return s, err
}

// parent reads the struct cfparent at va, once per address: the entries
// attached at one parent share one *Parent, which nothing changes.
func (k *Kernel) parent(va uint64) (*Parent, error) {
	if p, ok := k.parents[va]; ok {
		return p, nil
	}
	off, end, err := k.amap.offset(va)
	if err != nil {
		return nil, err
	}
	size := uint64(k.lay.pUnitOff + 4)
	if end-off < size {
		return nil, fmt.Errorf("struct cfparent at %#x runs past its segment: %w", va, ErrNotMapped)
	}
	raw := k.image[off : off+size]
	p := &Parent{Unit: int(int32(k.order.Uint32(raw[k.lay.pUnitOff:])))}
	if a := k.ptrAt(raw, 0); a != 0 {
		if p.IAttr, err = k.str(a); err != nil {
			return nil, fmt.Errorf("cfp_iattr: %w", err)
		}
	}
	if a := k.ptrAt(raw, k.lay.ptr); a != 0 {
		if p.Name, err = k.str(a); err != nil {
			return nil, fmt.Errorf("cfp_parent: %w", err)
		}
	}
	k.parents[va] = p
	return p, nil
}

func (k *Kernel) ptrAt(raw []byte, off int) uint64 {
	if k.lay.ptr == 4 {
		return uint64(k.order.Uint32(raw[off:]))
	}
	return k.order.Uint64(raw[off:])
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// putState writes st as the cf_fstate at file offset off: a short up to
// NetBSD 9, one byte from 10 on, where the unit's bits share the word.
func (k *Kernel) putState(off int64, st State) {
	if k.lay.packed {
		k.image[off] = byte(st)
		return
	}
	k.order.PutUint16(k.image[off:off+2], uint16(st))
}
