// Package kstriptest builds small ELF files that carry a NetBSD-style
// cfdata table, with the system's gcc and ld, for kstrip's tests and
// benchmarks. Kernels are linked like NetBSD's: at virtual 0xc0100000 with
// physical load address 0x100000 (i386), or 0xffffffff80200000 and
// 0x200000 (amd64), with NetBSD 9's or 10's struct cfdata and the
// .note.netbsd.ident that says which release they are.
package kstriptest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// Parent is a cfparent: interface attribute, parent driver ("" for
// NULL), parent unit (-1 for "?").
type Parent struct {
	IAttr, Name string // the interface attribute and the parent driver
	Unit        int    // the parent unit
}

// Entry is one cfdata entry.
type Entry struct {
	Name, Attach string  // cf_name and cf_atname
	Unit         int     // cf_unit
	State        int16   // cf_fstate
	Parent       *Parent // cf_pspec; nil for root
	// Spec is the configuration line the entry comes from, without its
	// locators ("com0 at isa?"); FromConfig sets it, Build ignores it.
	Spec string
}

// Options describe one kernel.
type Options struct {
	// Bits is 32 (i386, 24-byte entries) or 64 (amd64, 48-byte entries).
	Bits    int
	Entries []Entry // the cfdata table, in order
	// Pad adds that many bytes of read-only data before the table, to
	// make a kernel-sized file.
	Pad int
	// Debug compiles with -g, so gdb knows struct cfdata.
	Debug bool
	// Stripped links with -s: no symbol table.
	Stripped bool
	// NoTerminator leaves out the all-zero last entry; cfdata is then
	// the last thing in the file-backed part of its segment.
	NoTerminator bool
	// Symbol names the table (default "cfdata").
	Symbol string
	// Provides lists interface attributes a driver provides besides those
	// its children name it with (pciide provides "ata" to "atabus* at ata?").
	Provides map[string][]string
	// NoDrivers leaves out cfdriver_list_initial, the driver table kstrip
	// reads interface attributes from.
	NoDrivers bool
	// Version is the __NetBSD_Version__ of the kernel's .note.netbsd.ident
	// (MMmmrrpp00); 0 means Version91. It also picks struct cfdata's
	// layout: NetBSD 10's bit-field from Version10 on, else 9's shorts.
	Version uint32
	// NoNote leaves out .note.netbsd.ident.
	NoNote bool
	// Layout, when not 0, forces struct cfdata's layout whatever Version
	// says: 9 for "short cf_unit; short cf_fstate;", 10 for "unsigned int
	// cf_unit:24; unsigned char cf_fstate;".
	Layout int
}

// __NetBSD_Version__ of the releases the tests use.
const (
	Version91 = 901000000
	Version10 = 1000000000
)

// Packed reports whether o's kernel has NetBSD 10's struct cfdata.
func (o Options) Packed() bool {
	if o.Layout != 0 {
		return o.Layout == 10
	}
	return o.Version >= Version10
}

// available caches Available's answer per bits: tests ask before every
// kernel they build, and the answer costs a build of its own.
var available struct {
	sync.Mutex
	err map[int]error
}

// Available returns an error saying what is missing when gcc or ld
// cannot build a kernel of the given bits.
func Available(bits int) error {
	available.Lock()
	defer available.Unlock()
	if err, ok := available.err[bits]; ok {
		return err
	}
	if available.err == nil {
		available.err = map[int]error{}
	}
	err := canBuild(bits)
	available.err[bits] = err
	return err
}

func canBuild(bits int) error {
	for _, tool := range []string{"gcc", "ld"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not installed: %w", tool, err)
		}
	}
	dir, err := os.MkdirTemp("", "kstriptest")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	_, err = Build(dir, Options{Bits: bits, Entries: []Entry{{Name: "mainbus", Attach: "mainbus"}}})
	return err
}

// Build writes the kernel into dir and returns its path.
func Build(dir string, o Options) (string, error) {
	if o.Bits != 32 && o.Bits != 64 {
		return "", errors.New("kstriptest: Bits must be 32 or 64")
	}
	src := filepath.Join(dir, "ioconf.c")
	obj := filepath.Join(dir, "ioconf.o")
	lds := filepath.Join(dir, "kern.ld")
	out := filepath.Join(dir, "netbsd")
	if err := os.WriteFile(src, []byte(Source(o)), 0o644); err != nil {
		return "", err
	}
	base, phys, kernbase := "0xc0100000", "0x100000", "0xc0000000"
	cflags := []string{"-m32", "-ffreestanding", "-fno-pic", "-fno-stack-protector",
		"-fno-asynchronous-unwind-tables", "-O1", "-c", "-o", obj, src}
	emul := "elf_i386"
	if o.Bits == 64 {
		base, phys, kernbase = "0xffffffff80200000", "0x200000", "0xffffffff80000000"
		cflags[0] = "-m64"
		cflags = append(cflags, "-mcmodel=kernel")
		emul = "elf_x86_64"
	}
	if o.Debug {
		cflags = append(cflags, "-g")
	}
	// Three PT_LOAD segments, page-aligned, as NetBSD's kern.ldscript
	// gives: text, rodata (the names cfdata points to) and data+bss.
	script := fmt.Sprintf(`ENTRY(start)
PHDRS { text PT_LOAD FLAGS(5); rodata PT_LOAD FLAGS(4); data PT_LOAD FLAGS(6); }
SECTIONS {
	. = %s;
	.text : AT(%s) { *(.text .text.*) } :text
	. = ALIGN(0x1000);
	.rodata : AT(ADDR(.rodata) - %s) { *(.rodata .rodata.*) } :rodata
	.note.netbsd.ident : AT(ADDR(.note.netbsd.ident) - %s) { KEEP(*(.note.netbsd.ident)) } :rodata
	. = ALIGN(0x1000);
	.data : AT(ADDR(.data) - %s) { *(.data .data.*) } :data
	.bss : AT(ADDR(.bss) - %s) { *(.bss .bss.* COMMON) } :data
	/DISCARD/ : { *(.note.* .comment .eh_frame) }
}
`, base, phys, kernbase, kernbase, kernbase, kernbase)
	if err := os.WriteFile(lds, []byte(script), 0o644); err != nil {
		return "", err
	}
	if err := run("gcc", cflags...); err != nil {
		return "", err
	}
	largs := []string{"-m", emul, "-nostdlib", "-T", lds, "-o", out, obj}
	if o.Stripped {
		largs = append(largs, "-s")
	}
	if err := run("ld", largs...); err != nil {
		return "", err
	}
	return out, nil
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// Source is the C file Build compiles. Only cfdata lives in .data, so
// with NoTerminator the table ends the segment's file-backed bytes.
func Source(o Options) string {
	sym := o.Symbol
	if sym == "" {
		sym = "cfdata"
	}
	var b strings.Builder
	unitState := "short cf_unit; short cf_fstate;"
	if o.Packed() {
		unitState = "unsigned int cf_unit:24; unsigned char cf_fstate;"
	}
	fmt.Fprintf(&b, `struct cfparent { const char *cfp_iattr; const char *cfp_parent; int cfp_unit; };
struct cfdata {
	const char *cf_name; const char *cf_atname; %s
	int *cf_loc; int cf_flags; const struct cfparent *cf_pspec;
};
`, unitState)
	if !o.NoNote {
		v := o.Version
		if v == 0 {
			v = Version91
		}
		// As NetBSD's newvers.sh writes it: namesz 7, descsz 4, type 1
		// (ELF_NOTE_TYPE_NETBSD_TAG), "NetBSD\0" padded to 8 bytes.
		fmt.Fprintf(&b, `__asm__(".section .note.netbsd.ident, \"a\", @note\n.p2align 2\n.long 7\n.long 4\n.long 1\n.ascii \"NetBSD\\0\\0\"\n.long %d\n.p2align 2\n.previous\n");
`, v)
	}
	b.WriteString(`static const int loc[4] = { 0x3f8, -1, 4, -1 };
__attribute__((used)) static int kbss[64];
`)
	if o.Pad > 0 {
		fmt.Fprintf(&b, "__attribute__((used)) static const char kpad[%d] = { 1 };\n", o.Pad)
	}
	pspecs := map[Parent]string{}
	for _, e := range o.Entries {
		if e.Parent == nil {
			continue
		}
		if _, ok := pspecs[*e.Parent]; ok {
			continue
		}
		id := fmt.Sprintf("pspec%d", len(pspecs))
		pspecs[*e.Parent] = id
		fmt.Fprintf(&b, "static const struct cfparent %s = { %s, %s, %d };\n", id, cstr(e.Parent.IAttr), cstr(e.Parent.Name), e.Parent.Unit)
	}
	if !o.NoDrivers {
		writeDrivers(&b, o)
	}
	fmt.Fprintf(&b, "struct cfdata %s[] = {\n", sym)
	for i, e := range o.Entries {
		p := "0"
		if e.Parent != nil {
			p = "&" + pspecs[*e.Parent]
		}
		l := "0"
		if i%3 == 1 {
			l = "(int *)loc"
		}
		fmt.Fprintf(&b, "\t{ %s, %s, %d, %d, %s, %d, %s },\n", cstr(e.Name), cstr(e.Attach), e.Unit, e.State, l, i%2, p)
	}
	if !o.NoTerminator {
		b.WriteString("\t{ 0, 0, 0, 0, 0, 0, 0 }\n")
	}
	b.WriteString("};\nvoid start(void) { for (;;) ; }\n")
	return b.String()
}

func cstr(s string) string {
	if s == "" {
		return "0"
	}
	return fmt.Sprintf("%q", s)
}

// writeDrivers emits NetBSD's struct cfdriver for every driver, with the
// interface attributes it provides, and cfdriver_list_initial. All of it
// is const, so .data keeps only cfdata.
func writeDrivers(b *strings.Builder, o Options) {
	var names []string
	attrs := map[string][]string{}
	add := func(driver, attr string) {
		for _, a := range attrs[driver] {
			if a == attr {
				return
			}
		}
		attrs[driver] = append(attrs[driver], attr)
	}
	for _, e := range o.Entries {
		if _, ok := attrs[e.Name]; !ok {
			names = append(names, e.Name)
			attrs[e.Name] = nil
		}
	}
	for _, e := range o.Entries {
		if e.Parent != nil && e.Parent.Name != "" {
			add(e.Parent.Name, e.Parent.IAttr)
		}
	}
	for d, as := range o.Provides {
		for _, a := range as {
			add(d, a)
		}
	}
	b.WriteString(`struct cfiattrdata { const char *ci_name; int ci_loclen; };
struct cfdriver {
	void *cd_list_next, *cd_list_prev; void *cd_attach_first; void **cd_devs;
	const char *cd_name; int cd_class; int cd_ndevs; const struct cfiattrdata * const *cd_attrs;
};
`)
	seen := map[string]bool{}
	for _, d := range names {
		for _, a := range attrs[d] {
			if !seen[a] {
				seen[a] = true
				fmt.Fprintf(b, "static const struct cfiattrdata %s_iattrdata = { %q, 1 };\n", a, a)
			}
		}
	}
	for _, d := range names {
		list := "0"
		if len(attrs[d]) > 0 {
			fmt.Fprintf(b, "static const struct cfiattrdata * const %s_attrs[] = { ", d)
			for _, a := range attrs[d] {
				fmt.Fprintf(b, "&%s_iattrdata, ", a)
			}
			b.WriteString("0 };\n")
			list = d + "_attrs"
		}
		fmt.Fprintf(b, "static const struct cfdriver %s_cd = { 0, 0, 0, 0, %q, 0, 0, %s };\n", d, d, list)
	}
	b.WriteString("const struct cfdriver * const cfdriver_list_initial[] = {\n")
	for _, d := range names {
		fmt.Fprintf(b, "\t&%s_cd,\n", d)
	}
	b.WriteString("\t0\n};\n")
}
